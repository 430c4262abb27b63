import MeshCheck
import Foundation
import Testing
import Dashboard
import MeshMetrics
import MeshSources
import MeshTap
import PromText
import MeshTesting

/// Every number on screen means what it says (the dashboard's correctness during an incident):
/// one test per way the screen used to mislead, each failing on the old code.
@Suite struct HonestNumbers {
    static func render(_ s: DashboardState, _ w: Int = 120, _ h: Int = 40) -> String { FixtureState.render(s, w, h) }

    // MARK: the latency histogram covers the window it names

    @Test func detailHistogramIsOverTheWindowNotTheLastScrape() throws {
        // voting: 100 fast responses in the first 10 s, then 10 slow ones in the last second.
        var c = Collector()
        let target = ScrapeTarget(url: "http://127.0.0.1:1/voting", labels: [Label("deployment", "voting"), Label("namespace", "emojivoto")])
        for (t, fast, slow) in [(Int64(1_700_000_000_000), 0.0, 0.0), (1_700_000_010_000, 100, 0), (1_700_000_011_000, 100, 10)] {
            let body = """
            response_total{direction="inbound",classification="success"} \(fast + slow)
            response_latency_ms_bucket{direction="inbound",le="5"} \(fast)
            response_latency_ms_bucket{direction="inbound",le="500"} \(fast + slow)
            response_latency_ms_bucket{direction="inbound",le="+Inf"} \(fast + slow)

            """
            c.ingest([ScrapeResult(target: target, startedMs: t, durationSeconds: 0.001, body: Array(body.utf8), error: nil)])
        }
        var s = DashboardState(title: "t", source: "fixture", windowMs: 60_000)
        update(&s, .data(MeshSnapshot.make(from: c, kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: ""))
        update(&s, .key(.character("1")))
        update(&s, .key(.enter))
        let text = Self.render(s)
        #expect(text.contains("latency (share of requests per bucket, last 11s)"), "\(text)")
        // Over the 11 s: 100 of 110 under 5 ms. (The last second alone would say 0% and 100%.)
        let fast = try #require(text.split(separator: "\n").first { $0.contains("≤ 5ms") })
        #expect(fast.hasSuffix("90.9%"), "\(fast)")
    }

    // MARK: Detail of an edge lists that edge's paths, over the window

    @Test func edgeDetailListsOnlyThatEdgesPaths() throws {
        var s = try FixtureState.state()
        // vote-bot calling voting directly: not the web → voting edge.
        let id = TapStreamID(base: 9, stream: 1)
        let src = TapPeer(ip: "127.0.0.2", port: 5000, metadata: ["pod": "vote-bot-77f1"])
        let dst = TapPeer(ip: "127.0.0.1", port: 6000, metadata: ["pod": "voting-db28e"])
        update(&s, .tap([
            TapEvent(source: src, destination: dst, direction: .outbound, http: .requestInit(id: id, method: "GET", scheme: "HTTP", authority: "x", path: "/leaderboard", headers: [])),
            TapEvent(source: src, destination: dst, direction: .outbound, http: .responseEnd(id: id, sinceRequestInitNanos: 1_000_000, sinceResponseInitNanos: 0, responseBytes: 1, grpcStatus: nil, resetErrorCode: nil, trailers: [])),
        ]))
        update(&s, .key(.character("2")))
        update(&s, .key(.enter))  // web → voting, the worst edge
        let text = Self.render(s)
        #expect(text.contains("edge web → voting"), "\(text)")
        #expect(text.contains("POST /vote"))
        #expect(!text.contains("/leaderboard"), "another edge's path under web → voting:\n\(text)")
    }

    @Test func topCountsTheWindowItIsHeadedWith() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("5")))
        #expect(Self.render(s).contains("POST /vote"))
        // 70 s later, with no new requests: the 60 s window holds none of them.
        var later = s.data
        later.atMs += 70_000
        update(&s, .data(later, clockText: ""))
        let text = Self.render(s)
        #expect(!text.contains("POST /vote"), "\(text)")
        #expect(text.contains("no request finished in the last 10s"), "\(text)")
    }

    // MARK: replay history is the recording's

    static func incidentFeed() throws -> ReplayFeed {
        let reader = try RecordingReader(path: repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz")
        var scrapes: [ScrapeResult] = []
        while let e = try reader.next() { if case .scrape(let r) = e { scrapes.append(r) } }
        return ReplayFeed(events: scrapes)
    }

    @Test func replayHistoryComesFromTheRecordingAtTheMomentShown() throws {
        let feed = try Self.incidentFeed()
        let start = try #require(feed.startMs), end = try #require(feed.endMs)
        var s = DashboardState(title: "replay", source: "fixture", windowMs: 10_000)
        s.replay = ReplayPosition(startMs: start, endMs: end, atMs: start + 35_000)
        s.paused = true
        func refresh() { update(&s, .data(feed.snapshot(for: s.query), clockText: "")) }
        refresh()
        let first = s.history
        let voting = try #require(first["w:emojivoto/voting"])
        #expect(voting.success.count >= 30, "history at +35s holds \(voting.success.count) points; the recording has 35 s")
        refresh()
        refresh()
        #expect(s.history == first, "refreshing while paused must not add points")
        s.replay?.atMs = end
        refresh()
        s.replay?.atMs = start + 35_000
        refresh()
        #expect(s.history == first, "going to the end and back must show the same history, not a splice")
    }

    // MARK: down is its own state

    @Test func aDownTargetIsDownNotIdleAndSortsFirst() throws {
        let s = try FixtureState.state()
        let lines = Self.render(s).split(separator: "\n")
        #expect(lines.contains { $0.contains("⊘ 1 of 4 targets down: emojivoto/payments") }, "\(lines.joined(separator: "\n"))")
        let payments = try #require(lines.firstIndex { $0.contains(" payments ") })
        #expect(lines[payments].contains("⊘") && lines[payments].contains("down") && lines[payments].contains("0/1"))
        #expect(!lines[payments].contains("·"))
        let voting = try #require(lines.firstIndex { $0.contains(" voting ") && $0.contains("1/1") })
        #expect(payments < voting, "a down workload sorts before the worst success rate")
    }

    @Test func aDownWorkloadsDetailShowsTheScrapeError() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("1")))
        update(&s, .key(.enter))  // payments: first by health
        let text = Self.render(s)
        #expect(text.contains("workload emojivoto/payments"), "\(text)")
        #expect(text.contains("connection refused"))
        #expect(!text.contains("no responses in the window"))
    }

    @Test func targetsViewListsStateLastErrorAndLastSuccess() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("0")))
        #expect(s.view == .targets)
        let lines = Self.render(s).split(separator: "\n")
        let payments = try #require(lines.first { $0.contains("/payments") })
        #expect(payments.contains("down") && payments.contains("10s ago") && payments.contains("connection refused"), "\(payments)")
        #expect(lines.filter { $0.contains("✔  up ") }.count == 3)
    }

    @Test func everyTargetDownIsNeverHealthy() throws {
        var c = Collector()
        let target = ScrapeTarget(url: "http://127.0.0.1:1/web", labels: [Label("deployment", "web")])
        c.ingest([ScrapeResult(target: target, startedMs: 1_700_000_000_000, durationSeconds: 0, body: nil, error: "http://127.0.0.1:1/web: connection refused")])
        var s = DashboardState(title: "t", source: "targets.yaml", windowMs: 60_000)
        update(&s, .data(MeshSnapshot.make(from: c, kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: ""))
        let text = Self.render(s)
        #expect(!text.contains("✔"), "\(text)")
        #expect(text.contains("⊘ all 1 target down: http://127.0.0.1:1/web: connection refused"), "\(text)")
        #expect(!text.contains("waiting for the first scrapes"))
    }

    @Test func anEmptyNamespaceSaysSoNotWaiting() throws {
        var s = try FixtureState.state()
        for c in ":ns foo" { update(&s, .key(.character(c))) }
        update(&s, .key(.enter))
        update(&s, .data(MeshSnapshot.make(from: try FixtureState.collector(), kindLabel: "deployment", namespace: "foo", windowMs: 60_000), clockText: ""))
        let text = Self.render(s)
        #expect(text.contains("no workloads in namespace foo"), "\(text)")
        #expect(!text.contains("waiting for the first scrapes") && !text.contains("✔ no edges"))
    }

    @Test func checkRunsNothingOnProxiesThatDidNotAnswer() {
        let down = ScrapeResult(target: ScrapeTarget(url: "http://127.0.0.1:1/metrics"), startedMs: 0, durationSeconds: 0, body: nil, error: "connection refused")
        let outcomes = ProxyChecks.run([down], nowMs: 0)
        #expect(!outcomes.contains { $0.status == .ok }, "\(outcomes)")
        #expect(!ProxyChecks.text(outcomes, unicode: true).contains("metrics parse"))
    }

    // MARK: time arguments as the README writes them

    @Test func atTakesANegativeTimeAsWritten() throws {
        let rec = repositoryRoot.path + "/Fixtures/recordings/demo-emojivoto.meshrec.gz"
        let spaced = try run(meshtopBinary, ["stat", "deploy", "--replay", rec, "-o", "json", "--at", "-15s"])
        let joined = try run(meshtopBinary, ["stat", "deploy", "--replay", rec, "-o", "json", "--at=-15s"])
        #expect(spaced.status == 0, "\(spaced.stderr)")
        #expect(spaced.stdout == joined.stdout && !spaced.stdout.isEmpty)
    }

    @Test func aWindowLongerThanTheRecordingSaysWhatItUsed() throws {
        let rec = repositoryRoot.path + "/Fixtures/recordings/demo-emojivoto.meshrec.gz"
        let r = try run(meshtopBinary, ["stat", "deploy", "--replay", rec, "--at", "+20s", "-t", "10m"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("-t 10m reaches back before the recording starts: only 20s of data"), "\(r.stderr)")
        let outside = try run(meshtopBinary, ["edges", "deploy", "--replay", rec, "--at", "-5m"])
        #expect(outside.status == 2 && outside.stderr.contains("--at -5m is before the recording"), "\(outside.stderr)")
    }

    // MARK: symbols mean health; truncation keeps what differs; marks and steps

    @Test func compareSymbolIsHealthAndTheChangeIsSaidInWords() throws {
        var s = DashboardState(title: "t", source: "fixture", windowMs: 60_000)
        update(&s, .data(MeshSnapshot.make(from: try FixtureState.collector(failuresVoting: 14), kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: "a"))
        update(&s, .key(.character("m")))
        update(&s, .data(MeshSnapshot.make(from: try FixtureState.collector(failuresVoting: 11), kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: "b"))
        update(&s, .key(.character("7")))
        let voting = try #require(Self.render(s).split(separator: "\n").first { $0.contains(" voting ") })
        #expect(voting.hasPrefix("✖") && voting.contains("better") && !voting.contains("✔"), "\(voting)")
    }

    @Test func topCutsLongPathsInTheMiddle() throws {
        var s = try FixtureState.state()
        var events: [TapEvent] = []
        for (n, choice) in [":ghost:", ":rocket:", ":cat:", ":dog:", ":100:"].enumerated() {
            let id = TapStreamID(base: 7, stream: UInt64(n))
            let src = TapPeer(ip: "127.0.0.1", port: 5000, metadata: ["pod": "web-9bc91"])
            let dst = TapPeer(ip: "127.0.0.1", port: 6000, metadata: ["pod": "voting-db28e"])
            events.append(TapEvent(source: src, destination: dst, direction: .outbound, http: .requestInit(id: id, method: "GET", scheme: "HTTP", authority: "x",
                                                                                                          path: "/api/vote?choice=\(choice)&voter=0000000000", headers: [])))
            events.append(TapEvent(source: src, destination: dst, direction: .outbound, http: .responseEnd(id: id, sinceRequestInitNanos: 1_000_000, sinceResponseInitNanos: 0, responseBytes: 1, grpcStatus: nil, resetErrorCode: nil, trailers: [])))
        }
        update(&s, .tap(events))
        update(&s, .key(.character("5")))
        let rows = Self.render(s, 120, 30).split(separator: "\n").filter { $0.contains("GET /ap") }
        // Each row keeps the part that tells it apart: its choice.
        for choice in [":ghost:", ":rocket:", ":cat:", ":dog:", ":100:"] {
            #expect(rows.filter { $0.contains("=" + choice) }.count == 1, "\(choice):\n\(rows.joined(separator: "\n"))")
        }
        #expect(rows.count == 5 && rows.allSatisfy { $0.contains("…") })
    }

    @Test func theSortColumnIsMarked() throws {
        var s = try FixtureState.state()
        func header() -> Substring { Self.render(s).split(separator: "\n").first { $0.contains("NAME") } ?? "" }
        #expect(header().contains("SUCCESS↓"))
        update(&s, .key(.character("s")))
        #expect(header().contains("NAME↓") && !header().contains("SUCCESS↓"))
        update(&s, .key(.character("S")))
        #expect(header().contains("NAME↑"))
    }

    @Test func refreshStepsFromAList() throws {
        var s = try FixtureState.state()
        var seen: [Int] = []
        for _ in 0..<4 { update(&s, .key(.character("-"))); seen.append(s.refreshMs) }
        for _ in 0..<6 { update(&s, .key(.character("+"))); seen.append(s.refreshMs) }
        #expect(seen == [2000, 5000, 10_000, 10_000, 5000, 2000, 1000, 500, 250, 250])
        #expect(s.message == "refresh every 250ms")
    }

    @Test func theSmallestScreenKeepsTitleAndClockApart() throws {
        var s = try FixtureState.state()
        for c in ":ns emojivoto" { update(&s, .key(.character(c))) }
        update(&s, .key(.enter))
        let first = try #require(Self.render(s, 60, 12).split(separator: "\n").first)
        #expect(first.hasPrefix(" meshtop") && first.contains("22:13:30Z"), "\(first)")
        // The title is cut to make room (…), not overwritten by the namespace and clock.
        #expect(first.contains("…") && first.contains(" ns emojivoto  window"), "\(first)")
    }

    @Test func sparklinesSayTheirRangeAndSpan() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("j")))  // voting, below payments (down)
        update(&s, .key(.enter))
        let text = Self.render(s)
        #expect(text.contains("workload emojivoto/voting"), "\(text)")
        #expect(text.contains("90.28%–100.00% over 10s"), "\(text)")
    }

    @Test func theCauseIsOneKeyFromTheFailingRow() throws {
        var s = try FixtureState.state()
        let overview = Self.render(s, 140, 40)
        #expect(overview.contains("SUCCESS 20s") && overview.contains("RPS 20s"), "a success trend in Overview, with its span:\n\(overview)")
        update(&s, .key(.character("j")))  // voting
        update(&s, .key(.enter))
        let text = Self.render(s)
        let line = try #require(text.split(separator: "\n").first { $0.contains("responses") }, "\(text)")
        #expect(line.contains("HTTP 500 1.4/s (9.7%)") && line.contains("HTTP 200 13.0/s (90.3%)"), "\(line)")
        #expect(line.range(of: "HTTP 500")!.lowerBound < line.range(of: "HTTP 200")!.lowerBound, "failures first: \(line)")
    }

    @Test func theBreakdownNamesGRPCStatusesAndStreamErrors() throws {
        var c = Collector()
        let target = ScrapeTarget(url: "http://127.0.0.1:1/emoji", labels: [Label("deployment", "emoji"), Label("namespace", "e")])
        for (t, k) in [(Int64(1_700_000_000_000), 0.0), (1_700_000_010_000, 1)] {
            let body = """
            response_total{direction="inbound",status_code="200",grpc_status="0",classification="success"} \(80 * k)
            response_total{direction="inbound",status_code="200",grpc_status="14",classification="failure"} \(15 * k)
            response_total{direction="inbound",error="timeout",classification="failure"} \(5 * k)

            """
            c.ingest([ScrapeResult(target: target, startedMs: t, durationSeconds: 0.001, body: Array(body.utf8), error: nil)])
        }
        let data = MeshSnapshot.make(from: c, kindLabel: "deployment", namespace: nil, windowMs: 10_000)
        let shares = try #require(data.breakdown["w:e/emoji"])
        #expect(shares.map(\.label) == ["gRPC 14 UNAVAILABLE", "error timeout", "gRPC 0 OK"], "\(shares)")
        #expect(shares.map(\.failure) == [true, true, false])
        #expect(abs(shares[0].perSecond - 1.5) < 1e-9)
    }

    // MARK: golden screens with a down target in the fixture

    @Test func incidentGoldens() throws {
        for (width, height) in [(80, 24), (120, 40)] {
            var s = try FixtureState.state()
            update(&s, .key(.character("1")))
            update(&s, .key(.enter))
            try assertGolden(Self.render(s, width, height), "incident-detail-down-\(width)x\(height).txt")
            update(&s, .key(.escape))
            update(&s, .key(.character("j")))
            update(&s, .key(.enter))
            try assertGolden(Self.render(s, width, height), "incident-detail-workload-\(width)x\(height).txt")
            update(&s, .key(.character("2")))
            update(&s, .key(.enter))
            try assertGolden(Self.render(s, width, height), "incident-detail-edge-\(width)x\(height).txt")
            for (key, name) in [("5", "top"), ("7", "compare"), ("0", "targets"), ("1", "overview")] {
                update(&s, .key(.character(Character(key))))
                try assertGolden(Self.render(s, width, height), "incident-\(name)-\(width)x\(height).txt")
            }
        }
    }
}
