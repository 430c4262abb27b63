import MeshMetrics
import Foundation
import Testing
import Dashboard
import MeshCanary
import MeshSources
import MeshTesting

/// Canary watch mode judged from the recorded demo canaries (Fixtures/recordings/demo-canary*),
/// through the CLI and on the dashboard's Canary view.
@Suite struct CanaryWatch {
    /// The demo's short analysis: every 5 s, step 20, max 60, two failed checks roll back.
    static let policyArguments = ["--target", "voting-canary", "--primary", "voting", "-n", "emojivoto", "--authority", "voting-svc:8080",
                                  "--interval", "5s", "--step-weight", "20", "--max-weight", "60", "--threshold", "2", "--min-requests", "5"]

    func verdict(_ stdout: String) throws -> [String: Any] {
        let last = try #require(stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "no JSON verdict: \(stdout)")
    }

    @Test func aRecordedBadCanaryRollsBackAfterThresholdFailedChecks() throws {
        let r = try run(meshtopBinary, ["canary", "--replay", repositoryRoot.path + "/Fixtures/recordings/demo-canary.meshrec.gz"] + Self.policyArguments)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        let v = try verdict(r.stdout)
        #expect(v["result"] as? String == "rolled back")
        #expect(v["weight"] as? Int == 0)
        #expect(v["failed_checks"] as? Int == 2)
        #expect(r.stdout.contains("rolled back: 2 failed checks reached the threshold of 2"))
        #expect(r.stdout.contains("(weights are not changed)"))
    }

    @Test func aRecordedGoodCanaryIsPromotedAtMaxWeight() throws {
        let r = try run(meshtopBinary, ["canary", "--replay", repositoryRoot.path + "/Fixtures/recordings/demo-canary-good.meshrec.gz"] + Self.policyArguments)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let v = try verdict(r.stdout)
        #expect(v["result"] as? String == "promoted")
        #expect(v["weight"] as? Int == 100)
        #expect(r.stdout.contains("advance canary weight to 40") && r.stdout.contains("advance canary weight to 60"))
    }

    @Test func missingDataNeverPromotes() throws {
        // A canary that never got traffic: every interval is a failed request-volume check.
        var args = Self.policyArguments
        args[1] = "voting-v3"
        let r = try run(meshtopBinary, ["canary", "--replay", repositoryRoot.path + "/Fixtures/recordings/demo-healthy.meshrec.gz"] + args)
        #expect(r.status == 1)
        let v = try verdict(r.stdout)
        #expect(v["result"] as? String == "rolled back")
        #expect(r.stdout.contains("no values found, the canary is probably not receiving traffic"))
        #expect(!r.stdout.contains("advance canary weight"))

        // A recording that ends before a verdict: stopped, exit 1, never promoted.
        // (40 s recorded; ten steps of 10 every 5 s would need 50 s.)
        let short = try run(meshtopBinary, ["canary", "--replay", repositoryRoot.path + "/Fixtures/recordings/demo-canary-good.meshrec.gz",
                                            "--target", "voting-canary", "--primary", "voting", "-n", "emojivoto", "--authority", "voting-svc:8080",
                                            "--interval", "5s", "--step-weight", "10", "--max-weight", "100", "--min-requests", "5"])
        #expect(short.status == 1, "\(short.stdout)")
        #expect(try verdict(short.stdout)["result"] as? String == "stopped")
        #expect(short.stdout.contains("the source ended"))
    }

    @Test func replayRefusesToMoveWeightsAndBadFlagsExitTwo() throws {
        let r = try run(meshtopBinary, ["canary", "--replay", repositoryRoot.path + "/Fixtures/recordings/demo-canary.meshrec.gz",
                                        "--split-admin", "http://127.0.0.1:1"] + Self.policyArguments)
        #expect(r.status == 2 && r.stderr.contains("leave out --split-admin"), "\(r.stderr)")
        let missing = try run(meshtopBinary, ["canary", "--replay", "/nonexistent.meshrec"] + Self.policyArguments)
        #expect(missing.status == 2 && missing.stderr.contains("/nonexistent.meshrec"), "\(missing.stderr)")
    }

    /// The Prometheus source sends Flagger's Linkerd templates (reference §5) as Flagger renders them.
    @Test func prometheusQueriesAreFlaggersTemplates() {
        #expect(PrometheusCanaryObserver.successRateQuery(namespace: "default", target: "podinfo", interval: "1m") ==
            #"sum(rate(response_total{namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound"}[1m])) / sum(rate(response_total{namespace="default", deployment=~"podinfo", direction="inbound"}[1m])) * 100"#)
        #expect(PrometheusCanaryObserver.durationQuery(namespace: "default", target: "podinfo", interval: "1m") ==
            #"histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="default", deployment=~"podinfo", direction="inbound"}[1m])) by (le))"#)
    }

    /// The Canary view: the watch after the recorded bad canary, at two sizes.
    @Test func canaryViewGoldens() throws {
        let events = try RecordingReader(path: repositoryRoot.path + "/Fixtures/recordings/demo-canary.meshrec.gz").readAll().compactMap { e -> ScrapeResult? in
            if case .scrape(let r) = e { return r } else { return nil }
        }
        var policy = CanaryPolicy()
        policy.stepWeight = 20
        policy.maxWeight = 60
        policy.threshold = 2
        policy.minRequests = 5
        let who = CanaryTarget(namespace: "emojivoto", canary: "voting-canary", primary: "voting")
        var observer = ReplayCanaryObserver(events: events, target: who, intervalMs: 5_000, source: "replay of demo-canary.meshrec.gz")
        let initial = MeshCanary.CanaryWatch(target: who, authority: "voting-svc:8080", source: observer.source, policy: policy, intervalMs: 5_000, dryRun: true)
        let controller = CanaryController(authority: "voting-svc:8080", canaryBackend: "voting-canary", primaryBackend: "voting", splits: [], dryRun: true)
        var seen: [MeshCanary.CanaryWatch] = []
        let (code, final) = controller.run(&observer, watch: initial, startMs: events[0].startedMs) { w, _ in seen.append(w) }
        #expect(code == 1 && final.result == .rolledBack)
        // Every change was reported, and the weight never went above what passed.
        #expect(seen.count == final.log.count)
        #expect(seen.allSatisfy { $0.weight <= 40 })

        var state = DashboardState(title: "canary: voting-canary", source: observer.source, windowMs: 5_000)
        update(&state, .canary(final))
        #expect(state.message?.contains("canary rolled back") == true)
        update(&state, .key(.character("9")))
        #expect(state.view == .canary)
        try assertGolden(FixtureState.render(state, 80, 24), "9-canary-80x24.txt")
        try assertGolden(FixtureState.render(state, 120, 40), "9-canary-120x40.txt")

        // Without a canary there is no view 9: the key does nothing and Tab skips it.
        var plain = DashboardState(title: "t", source: "s", windowMs: 5_000)
        update(&plain, .key(.character("9")))
        #expect(plain.view == .overview)
        plain.view = .help
        update(&plain, .key(.tab))
        #expect(plain.view == .timeline)
        update(&plain, .key(.tab))
        #expect(plain.view == .overview)
    }
}
