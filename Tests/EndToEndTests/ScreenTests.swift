import Testing
import Dashboard
import MeshMetrics
import MeshSources
import MeshTap
import PromText
import TerminalUI

/// A fixed dashboard state: three workloads and their edges from two scrapes 10 s apart, a fourth
/// (payments) whose proxy stopped answering after the first, some history, a mark to compare
/// with, and tap events.
enum FixtureState {
    static func collector(scale: Double = 1, failuresVoting: Double = 14) throws -> Collector {
        var c = Collector()
        let workloads: [(String, Double, Double, Double)] = [("web", 200, 12, 40), ("emoji", 300, 0, 5), ("voting", 130, failuresVoting, 60)]
        for (t, k) in [(Int64(1_700_000_000_000), 0.0), (1_700_000_010_000, scale)] {
            var results: [ScrapeResult] = []
            for (name, ok, failed, slowShare) in workloads {
                let total = (ok + failed) * k
                var body = """
                response_total{direction="inbound",status_code="200",classification="success"} \(ok * k)
                response_total{direction="inbound",status_code="500",classification="failure"} \(failed * k)
                response_latency_ms_bucket{direction="inbound",status_code="200",le="5"} \(total * (1 - slowShare / 100))
                response_latency_ms_bucket{direction="inbound",status_code="200",le="50"} \(total)
                response_latency_ms_bucket{direction="inbound",status_code="200",le="+Inf"} \(total)
                tcp_open_connections{direction="inbound",peer="src"} 2

                """
                if name == "web" {
                    for (dst, dstOK, dstFailed) in [("emoji", 300.0, 0.0), ("voting", 130.0, failuresVoting)] {
                        let l = "direction=\"outbound\",dst_deployment=\"\(dst)\",dst_namespace=\"emojivoto\",no_tls_reason=\"not_provided_by_service_discovery\""
                        body += """
                        response_total{\(l),classification="success"} \(dstOK * k)
                        response_total{\(l),classification="failure"} \(dstFailed * k)
                        response_latency_ms_bucket{\(l),le="10"} \((dstOK + dstFailed) * k * 0.7)
                        response_latency_ms_bucket{\(l),le="100"} \((dstOK + dstFailed) * k)
                        response_latency_ms_bucket{\(l),le="+Inf"} \((dstOK + dstFailed) * k)
                        tcp_open_connections{\(l),peer="dst"} 1

                        """
                    }
                }
                let target = ScrapeTarget(url: "http://127.0.0.1:1/\(name)", labels: [Label("deployment", name), Label("namespace", "emojivoto")])
                results.append(ScrapeResult(target: target, startedMs: t, durationSeconds: 0.001, body: Array(body.utf8), error: nil))
            }
            // payments: answered the first scrape, then its proxy went away (a down target).
            let payments = ScrapeTarget(url: "http://127.0.0.1:1/payments", labels: [Label("deployment", "payments"), Label("namespace", "emojivoto")])
            if k == 0 {
                let body = "response_total{direction=\"inbound\",status_code=\"200\",classification=\"success\"} 50\n"
                results.append(ScrapeResult(target: payments, startedMs: t, durationSeconds: 0.001, body: Array(body.utf8), error: nil))
            } else {
                results.append(ScrapeResult(target: payments, startedMs: t, durationSeconds: 0.001, body: nil,
                                            error: "http://127.0.0.1:1/payments: connection refused"))
            }
            c.ingest(results)
        }
        return c
    }

    static func tapEvents() -> [TapEvent] {
        var out: [TapEvent] = []
        for n in 0..<6 {
            let id = TapStreamID(base: 0, stream: UInt64(n))
            let src = TapPeer(ip: "127.0.0.1", port: 5000, metadata: ["pod": "web-9bc91"])
            let dst = TapPeer(ip: "127.0.0.1", port: 6000, metadata: ["pod": n % 2 == 0 ? "voting-db28e" : "emoji-ef3d"])
            let path = n % 2 == 0 ? "/vote" : "/list"
            let status = n == 2 ? 500 : 200
            out.append(TapEvent(source: src, destination: dst, direction: .outbound, http: .requestInit(id: id, method: n % 2 == 0 ? "POST" : "GET", scheme: "HTTP", authority: "x", path: path, headers: [])))
            out.append(TapEvent(source: src, destination: dst, direction: .outbound, http: .responseInit(id: id, sinceRequestInitNanos: Int64(n + 1) * 1_000_000, httpStatus: status, headers: [])))
            out.append(TapEvent(source: src, destination: dst, direction: .outbound, http: .responseEnd(id: id, sinceRequestInitNanos: Int64(n + 2) * 1_000_000, sinceResponseInitNanos: 1_000_000, responseBytes: 18, grpcStatus: nil, resetErrorCode: nil, trailers: [])))
        }
        return out
    }

    static func state() throws -> DashboardState {
        var s = DashboardState(title: "demo mesh: emojivoto", source: "fixture", windowMs: 60_000)
        s.tapSources = 1
        // Earlier data as the mark to compare with (voting healthy then), then history, then now.
        update(&s, .data(MeshSnapshot.make(from: try collector(scale: 1, failuresVoting: 0), kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: "22:13:10Z"))
        update(&s, .key(.character("m")))
        for step in 0..<8 {
            update(&s, .data(MeshSnapshot.make(from: try collector(scale: 0.6 + Double(step) * 0.05), kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: "22:13:2\(step)Z"))
        }
        update(&s, .data(MeshSnapshot.make(from: try collector(), kindLabel: "deployment", namespace: nil, windowMs: 60_000), clockText: "22:13:30Z"))
        update(&s, .tap(tapEvents()))
        s.message = nil
        return s
    }

    static func render(_ s: DashboardState, _ width: Int, _ height: Int, unicode: Bool = true) -> String {
        DashboardScreen.render(s, width: width, height: height, unicode: unicode).text
    }
}

/// Golden screens: every view at 80×24 and 160×48, as the headless renderer draws them.
@Suite struct GoldenScreens {
    static let views: [(ViewKind, [Key])] = [
        (.overview, []), (.edges, []), (.graph, []), (.detail, [.character("1"), .enter]), (.top, []), (.tap, []),
        (.compare, []), (.targets, []), (.help, []),
    ]

    @Test(arguments: views.map(\.0))
    func everyViewAtBothSizes(view: ViewKind) throws {
        var s = try FixtureState.state()
        let keys = Self.views.first { $0.0 == view }!.1
        if keys.isEmpty { update(&s, .key(.character(Character(String(view.rawValue))))) }
        for k in keys { update(&s, .key(k)) }
        #expect(s.view == view)
        try assertGolden(FixtureState.render(s, 80, 24), "\(view.rawValue)-\(view.command)-80x24.txt")
        try assertGolden(FixtureState.render(s, 160, 48), "\(view.rawValue)-\(view.command)-160x48.txt")
    }

    @Test func asciiUnderLangC() throws {
        var s = try FixtureState.state()
        for view in ViewKind.allCases {
            update(&s, .key(.character(Character(view.key))))
            let text = FixtureState.render(s, 80, 24, unicode: false)
            #expect(text.unicodeScalars.allSatisfy { $0.isASCII }, "view \(view.title) has non-ASCII under LANG=C")
        }
        update(&s, .key(.character("3")))
        try assertGolden(FixtureState.render(s, 80, 24, unicode: false), "3-graph-80x24-ascii.txt")
    }

    @Test func tinyTerminalSaysSo() throws {
        let text = FixtureState.render(try FixtureState.state(), 30, 5)
        #expect(text.hasPrefix("terminal too small\nneed 60x12, have 30x5\n"))
    }
}

/// What keys do: the reducer, checked through what the screen then shows.
@Suite struct Keys {
    @Test func worstWorkloadFirstAndSortCycles() throws {
        var s = try FixtureState.state()
        var lines = FixtureState.render(s, 160, 48).split(separator: "\n")
        func row(_ name: String) -> Int? { lines.firstIndex { $0.contains(" \(name) ") && $0.contains("1/1") } }
        let voting = try #require(row("voting"))
        let emoji = try #require(row("emoji"))
        #expect(voting < emoji)
        update(&s, .key(.character("s")))  // by name
        lines = FixtureState.render(s, 160, 48).split(separator: "\n")
        #expect(try #require(row("emoji")) < (try #require(row("voting"))))
    }

    @Test func filterKeepsMatchingRows() throws {
        var s = try FixtureState.state()
        for k: Key in [.character("/"), .character("v"), .character("o"), .character("t"), .enter] { update(&s, .key(k)) }
        func tableRows() -> [Substring] { FixtureState.render(s, 100, 30).split(separator: "\n").filter { $0.contains("1/1") } }
        #expect(tableRows().count == 1 && tableRows()[0].contains(" voting "))
        update(&s, .key(.escape))
        #expect(tableRows().count == 3)
    }

    @Test func commandLineSwitchesViewsAndNamespaces() throws {
        var s = try FixtureState.state()
        for c in ":graph" { update(&s, .key(.character(c))) }
        #expect(FixtureState.render(s, 80, 24).contains(":graph"))
        update(&s, .key(.enter))
        #expect(s.view == .graph)
        for c in ":ns emojivoto" { update(&s, .key(.character(c))) }
        update(&s, .key(.enter))
        #expect(s.namespace == "emojivoto")
        for c in ":nonsense" { update(&s, .key(.character(c))) }
        update(&s, .key(.enter))
        #expect(FixtureState.render(s, 120, 24).contains("unknown command :nonsense"))
    }

    @Test func tabCyclesAndEscGoesBack() throws {
        var s = try FixtureState.state()
        update(&s, .key(.tab))
        #expect(s.view == .edges)
        update(&s, .key(.backTab))
        update(&s, .key(.backTab))
        #expect(s.view == .timeline, "the last view, before Overview")
        update(&s, .key(.backTab))
        #expect(s.view == .help)
        update(&s, .key(.escape))
        #expect(s.view == .timeline)
        update(&s, .key(.escape))
        #expect(s.view == .help)
    }

    @Test func pauseHoldsDataAndTapWithoutLosingEvents() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("6")))
        update(&s, .key(.character(" ")))
        let before = FixtureState.render(s, 100, 30)
        update(&s, .tap(FixtureState.tapEvents()))
        update(&s, .data(MeshSnapshot(), clockText: "23:59:59Z"))
        let during = FixtureState.render(s, 100, 30)
        #expect(during.contains("PAUSED: 18 new events held"))
        #expect(!during.contains("23:59:59Z"))
        #expect(before.split(separator: "\n").dropFirst(3).first == during.split(separator: "\n").dropFirst(3).first)
        update(&s, .key(.character(" ")))
        #expect(s.tapEvents.count == 36)
    }

    @Test func enterOpensTheSelectedEdgeInDetail() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("2")))
        update(&s, .key(.enter))
        #expect(s.view == .detail)
        let text = FixtureState.render(s, 100, 30)
        #expect(text.contains("edge web") && text.contains("voting"))
        #expect(text.contains("latency (share of requests per bucket"))
    }

    @Test func compareHighlightsWhatGotWorse() throws {
        var s = try FixtureState.state()
        update(&s, .key(.character("7")))
        let lines = FixtureState.render(s, 120, 30).split(separator: "\n")
        let first = try #require(lines.first { $0.contains("%") && $0.contains("→") })
        #expect(first.contains("voting") && first.contains("100.00% → 90.28%"))
    }
}
