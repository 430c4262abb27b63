import MeshTap
import Foundation
import Testing
import NIOPosix
import Dashboard
import MeshDemo
import MeshCanary
import MeshMetrics
import MeshSources
import PromText
import MeshTesting
import MeshTimeline

/// A real Prometheus scraping the demo's meshproxies, as it would scrape Linkerd's: the same
/// file_sd file feeds it and meshtop.
@Suite(.serialized) struct PrometheusScrapesTheDemo {
    /// A real Prometheus scraping the demo's proxies every second (a file_sd file in a fresh
    /// directory), and the same proxies as targets for meshtop to scrape.
    static func prometheus(scraping mesh: DemoMesh, name: String) throws -> (URL, RealPrometheus, [ScrapeTarget]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let targetsFile = dir.appendingPathComponent("targets.json")
        let groups = mesh.targets.map { t in "{\"targets\":[\"\(t.admin)\"],\"labels\":\(JSONText.object(t.labels))}" }
        try ("[" + groups.joined(separator: ",") + "]").write(to: targetsFile, atomically: true, encoding: .utf8)
        let prometheus = try RealPrometheus(directory: dir, config: """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: linkerd-proxy
            file_sd_configs:
              - files: ["\(targetsFile.path)"]

        """)
        return (dir, prometheus, try TargetsFile.parse(String(contentsOf: targetsFile, encoding: .utf8), file: "targets.json"))
    }

    @Test func meshtopThroughPrometheusAgreesWithDirectScrapesAndFlaggersQueriesAnswer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // 20 req/s: the whole mesh (six proxies with mTLS, the apps, the load) runs on one debug
        // event loop here, and costs about 18 ms of CPU per request through it; at 40 req/s, with
        // Prometheus and meshtop scraping beside it, it ran near saturation and latency spiralled
        // on a busy machine (p99 of seconds), which is not what this test is about.
        let mesh = try await DemoMesh.start(DemoMesh.Options(votingFailureRate: 0.2, rate: 20), group: group)
        let (dir, prometheus, targets) = try Self.prometheus(scraping: mesh, name: "meshtop-scrape")
        // meshtop scrapes the same proxies directly, every second, meanwhile.
        let live = LiveCollector(targets: targets, intervalSeconds: 1)
        live.start(clock: WallClock())
        try await Task.sleep(nanoseconds: 20_000_000_000)
        let now = WallClock().nowMs() - 1_500  // a moment both have scraped past
        // 15 s windows: long enough that two unsynchronised scrapers on a busy machine see the same
        // traffic to within sampling noise; a unit or window mistake would be off by far more.
        let direct = live.read { c in c.store.stat(StatQuery(kindLabel: "deployment", namespace: "emojivoto", windowMs: 15_000, atMs: now)) }
        live.stop()
        let viaPrometheus = try PrometheusSource(client: prometheus.client).stat(kindLabel: "deployment", namespace: "emojivoto", name: nil,
                                                                                 windowMs: 15_000, atMs: now)
        for name in ["web", "emoji", "voting"] {
            let d = try #require(direct.first { $0.workload.name == name }, "no direct row for \(name)")
            let p = try #require(viaPrometheus.first { $0.workload.name == name }, "Prometheus has no row for \(name)")
            // Two scrapers, unsynchronised: the same traffic seen through different samples.
            let rpsD = try #require(d.rps), rpsP = try #require(p.rps)
            #expect(abs(rpsD - rpsP) / max(rpsD, rpsP) < 0.3, "\(name): rps direct \(rpsD) vs Prometheus \(rpsP)")
            #expect(abs((d.success ?? 0) - (p.success ?? 0)) < 0.1, "\(name): success direct \(d.success ?? -1) vs Prometheus \(p.success ?? -1)")
            #expect(p.latencyP99 != nil && p.meshedPods == 1 && p.runningPods == 1)
        }
        // The dashboard's SLO windows over the same server and moment: each workload's success as
        // stat computes it over that window, whatever the window, and no problem line.
        let clock = ManualClock(startMs: now)
        let feed = PrometheusFeed(source: PrometheusSource(client: prometheus.client), clock: clock)
        let slo = feed.snapshot(for: SnapshotQuery(kindLabel: "deployment", namespace: "emojivoto", windowMs: 15_000,
                                                   successWindowsMs: [15_000, 300_000]))
        #expect(slo.problems.isEmpty, "\(slo.problems)")
        let over5m = try PrometheusSource(client: prometheus.client).stat(kindLabel: "deployment", namespace: "emojivoto", name: nil,
                                                                        windowMs: 300_000, atMs: now)
        for name in ["web", "voting"] {
            let id = WorkloadID(namespace: "emojivoto", name: name)
            #expect(slo.windowedSuccess[id]?[15_000] == viaPrometheus.first { $0.workload == id }?.success, "\(name) over 15s")
            #expect(slo.windowedSuccess[id]?[300_000] == over5m.first { $0.workload == id }?.success, "\(name) over 5m")
        }
        // Flagger's Linkerd templates (reference §5), rendered for voting over 10s.
        let sr = try prometheus.client.query("""
        sum(rate(response_total{namespace="emojivoto", deployment=~"voting", classification!="failure", direction="inbound"}[10s])) \
        / sum(rate(response_total{namespace="emojivoto", deployment=~"voting", direction="inbound"}[10s])) * 100
        """, atMs: now)
        let successRate = try #require(sr.first?.value)
        #expect(successRate > 60 && successRate < 95, "Flagger's success rate for voting: \(successRate)")
        let duration = try prometheus.client.query("""
        histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="emojivoto", deployment=~"voting", direction="inbound"}[10s])) by (le))
        """, atMs: now)
        let p99 = try #require(duration.first?.value)
        // In milliseconds (voting answers in 2-12 ms; seconds would be below 1), with room for a busy machine.
        if !(p99.isFinite && p99 > 1 && p99 < 2000) {
            // Where the slow ones are, so a failure says more than its quantile.
            let buckets = try prometheus.client.query("""
            sum by (le, status_code) (increase(response_latency_ms_bucket{namespace="emojivoto", deployment=~"voting", direction="inbound"}[10s]))
            """, atMs: now)
            Issue.record("Flagger's request duration for voting: \(p99) ms; buckets: \(buckets.map { "\($0.labels) \($0.value)" })")
        }

        // `meshtop canary --prometheus` judges from these queries: its samples agree with direct scrapes,
        // and a deployment Prometheus has no series for gives no sample (a failed check, never a pass).
        let who = CanaryTarget(namespace: "emojivoto", canary: "voting", primary: "emoji")
        let observer = PrometheusCanaryObserver(client: prometheus.client, target: who, intervalMs: 15_000)
        let viaFlagger = try #require(try observer.sample("voting", atMs: now))
        let directVoting = try #require(direct.first { $0.workload.name == "voting" })
        #expect(abs((viaFlagger.success ?? 0) - (directVoting.success ?? 0)) < 0.1, "success \(viaFlagger) vs \(directVoting)")
        #expect(viaFlagger.requests > 100 && viaFlagger.p99Ms != nil, "\(viaFlagger)")
        #expect(try observer.sample("voting-v9", atMs: now) == nil)
        await mesh.stop()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: dir)
    }

    /// `meshtop timeline --prometheus` and `--targets`: the demo's incident (voting fails 40% of
    /// votes from 20 s) found in a real Prometheus' history and in live scrapes, voting's success
    /// falling no later than web's, which depends on it.
    @Test func theIncidentsTimelineFromPrometheusHistoryAndFromLiveScrapes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = DemoMesh.Options(votingFailureRate: 0, rate: 20)
        options.scenario = .incident
        let mesh = try await DemoMesh.start(options, group: group)
        let started = WallClock().nowMs()
        let (dir, prometheus, targets) = try Self.prometheus(scraping: mesh, name: "meshtop-timeline")
        let live = LiveCollector(targets: targets, intervalSeconds: 1, rollup: Rollup(kindLabel: "deployment"))
        live.start(clock: WallClock())
        // Live: watched until 34 s after the mesh started (the incident runs from 20 s to 50 s).
        let watched = await Task.detached {
            TimelineLive.scrape(live, kindLabel: "deployment", namespace: "emojivoto", windowMs: 3_000, intervalMs: 1_000,
                                done: { WallClock().nowMs() - started > 34_000 }, changed: { _ in })
        }.value
        live.stop()
        // History: the same 34 s as Prometheus holds them, a moment a second.
        let endMs = WallClock().nowMs() - 1_500
        let history = try TimelineLive.prometheus(PrometheusSource(client: prometheus.client), kindLabel: "deployment", namespace: "emojivoto",
                                                  endMs: endMs, sinceMs: endMs - started - 2_000, stepMs: 1_000, windowMs: 4_000) { _, _ in }
        await mesh.stop()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: dir)

        for (source, events) in [("live scrapes", watched.events), ("Prometheus", history.events)] {
            func fell(_ name: String) -> TimelineEvent? {
                events.first { $0.subject == .workload(WorkloadID(namespace: "emojivoto", name: name)) && $0.metric == .success && $0.change == .left }
            }
            let voting = try #require(fell("voting"), "\(source): voting's success never fell: \(events)")
            let web = try #require(fell("web"), "\(source): web's success never fell: \(events)")
            // Live scrapes read every proxy at the same moment. Prometheus scrapes each target at
            // its own offset within the interval (1 s), so its history can show the effect up to
            // one interval before its cause: that much, and no more, is allowed there.
            let slack: Int64 = source == "Prometheus" ? 1_000 : 0
            #expect(voting.atMs <= web.atMs + slack, "\(source): web fell first: \(events)")
            #expect(voting.atMs - started >= 19_000, "\(source): voting fell before the incident began: \(events)")
            if voting.atMs == web.atMs, slack == 0 {
                let order = events.filter { $0.atMs == voting.atMs }.map(\.subject)
                #expect(order.firstIndex(of: voting.subject)! < order.firstIndex(of: web.subject)!, "\(source): callee first: \(order)")
            }
        }
    }
}
