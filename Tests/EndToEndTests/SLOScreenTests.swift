import Dashboard
import Foundation
import MeshMetrics
import MeshSLO
import MeshSources
import MeshTesting
import Testing

/// The dashboard's SLO view and Overview's badges: the same burn rates `meshtop slo` prints for the
/// same recording and moment, golden screens, and the badges a 6-hour burn gives.
@Suite struct SLOScreen {
    static let incident = repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz"
    static let slos = [
        WatchedSLO(name: "voting", namespace: "emojivoto", objective: SuccessObjective(target: 0.999)!),
        WatchedSLO(name: "web", namespace: nil, objective: SuccessObjective(target: 0.99)!),
    ]

    /// The incident replayed and paused at `+offsetMs`, with the two SLOs watched.
    static func replayState(atOffsetMs offsetMs: Int64) throws -> DashboardState {
        let reader = try RecordingReader(path: incident)
        var scrapes: [ScrapeResult] = []
        while let e = try reader.next() { if case .scrape(let r) = e { scrapes.append(r) } }
        let feed = ReplayFeed(events: scrapes)
        let start = try #require(feed.startMs), end = try #require(feed.endMs)
        var s = DashboardState(title: "replay: demo-incident.meshrec.gz", source: "demo-incident.meshrec.gz", windowMs: 10_000)
        s.replay = ReplayPosition(startMs: start, endMs: end, atMs: start + offsetMs)
        s.paused = true
        s.slos = slos
        update(&s, .data(feed.snapshot(for: s.query), clockText: "22:39:34Z"))
        return s
    }

    @Test func burnRatesAreWhatMeshtopSLOPrintsAtTheSameMoment() throws {
        let s = try Self.replayState(atOffsetMs: 35_000)
        let shown = s.sloEvaluations
        // The very moment the dashboard shows, in unix seconds.
        let at = String(format: "%.3f", Double(try #require(s.replay?.atMs)) / 1000)
        #expect(shown.map(\.workload.name) == ["voting", "web"])
        for (e, objective) in zip(shown, ["99.9", "99"]) {
            let r = try run(meshtopBinary, ["slo", "deploy/\(e.workload.name)", "-n", "emojivoto", "--objective", objective,
                                            "--replay", Self.incident, "--at", at, "-o", "json"])
            #expect(r.status == 0, "\(r.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
            let windows = try #require(json["windows"] as? [[String: Any]])
            #expect(windows.count == e.windows.count)
            for (w, mine) in zip(windows, e.windows) {
                let burn = try #require(w["burn_rate"] as? Double)
                #expect(abs(burn - (mine.burnRate ?? -1)) < 1e-6, "\(e.workload.name) \(w["window"] ?? ""): slo \(burn), dashboard \(mine.burnRate ?? -1)")
            }
            #expect(json["alert"] as? String == e.alert.rawValue && e.alert == .unknown, "35 s of data judge no rule")
        }
        // voting is failing about 40% of votes at +35s: its burn over 0.1% of budget is hundreds.
        #expect((shown[0].windows[0].burnRate ?? 0) > 100)
    }

    @Test func goldens() throws {
        for (width, height) in [(80, 24), (120, 40)] {
            var s = try Self.replayState(atOffsetMs: 35_000)
            update(&s, .key(.character("o")))
            #expect(s.view == .slo)
            try assertGolden(FixtureState.render(s, width, height), "incident-slo-\(width)x\(height).txt")
        }
        var s = try Self.replayState(atOffsetMs: 35_000)
        update(&s, .key(.character("1")))
        try assertGolden(FixtureState.render(s, 120, 40), "incident-overview-slo-120x40.txt")
        // Enter on the SLO view opens the workload in Detail.
        update(&s, .key(.character("o")))
        update(&s, .key(.enter))
        #expect(s.view == .detail && s.detail == .workload(WorkloadID(namespace: "emojivoto", name: "voting")))
    }

    @Test func sixHoursOfBurnPageAndTicketInOverview() {
        var s = DashboardState(title: "synthetic", source: "synthetic", windowMs: 60_000)
        s.slos = [WatchedSLO(name: "voting", namespace: "ns", objective: SuccessObjective(target: 0.999)!),
                  WatchedSLO(name: "web", namespace: "ns", objective: SuccessObjective(target: 0.999)!),
                  WatchedSLO(name: "emoji", namespace: "ns", objective: SuccessObjective(target: 0.999)!)]
        var data = MeshSnapshot()
        data.atMs = 1_800_000_000_000
        data.windowMs = 60_000
        let windows = BurnRule.workbookWindowsMs
        func workload(_ name: String, _ success: [Double]) -> GoldenMetrics {
            var g = GoldenMetrics(workload: WorkloadID(namespace: "ns", name: name))
            g.success = success[0]
            g.rps = 10
            g.meshedPods = 1
            g.runningPods = 1
            data.windowedSuccess[g.workload] = Dictionary(uniqueKeysWithValues: zip(windows, success))
            return g
        }
        // voting burns 50x everywhere (page); web 8x on 6h and 30m, 2x on 1h and 5m (ticket);
        // emoji 0.5x (none).
        data.workloads = [workload("voting", [0.95, 0.95, 0.95, 0.95]), workload("web", [0.998, 0.992, 0.998, 0.992]),
                          workload("emoji", [0.9995, 0.9995, 0.9995, 0.9995])]
        data.successHeldMs = 7 * 3_600_000
        update(&s, .data(data, clockText: "12:00:00Z"))
        #expect(s.sloEvaluations.map(\.alert) == [.page, .ticket, .none])
        let text = FixtureState.render(s, 120, 40)
        func row(_ name: String) -> String { text.split(separator: "\n").first { $0.contains(" \(name) ") }.map(String.init) ?? "" }
        #expect(row("voting").contains("PAGE") && row("web").contains("ticket") && row("emoji").contains(" ok"), "\(text)")
        #expect(text.contains("o SLO"), "the SLO tab is shown when SLOs are watched\n\(text)")
        #expect(text.contains("TCP  SLO"), "\(text)")
        var elsewhere = s
        elsewhere.namespace = "other"
        #expect(!FixtureState.render(elsewhere, 120, 40).contains("TCP  SLO"), "no SLO column where no declared SLO is shown")
        var none = s
        none.slos = []
        #expect(!FixtureState.render(none, 120, 40).contains("SLO"), "no SLO column or tab without slos")
    }
}
