import Testing
import Dashboard
import MeshMetrics
import MeshSources
import PromText

/// Golden screens: the overview rendered headless from fixed scrapes, compared as text.
@Suite struct OverviewScreens {
    /// Two scrapes, 10 s apart, of three workloads: web and voting failing some requests.
    func collector() throws -> Collector {
        var c = Collector()
        let workloads: [(String, Double, Double, Double)] = [("web", 200, 12, 40), ("emoji", 300, 0, 5), ("voting", 130, 14, 60)]
        for (t, scale) in [(Int64(1_700_000_000_000), 0.0), (1_700_000_010_000, 1.0)] {
            var results: [ScrapeResult] = []
            for (name, ok, failed, slowShare) in workloads {
                let total = (ok + failed) * scale
                let body = """
                response_total{direction="inbound",status_code="200",classification="success"} \(ok * scale)
                response_total{direction="inbound",status_code="500",classification="failure"} \(failed * scale)
                response_latency_ms_bucket{direction="inbound",status_code="200",le="5"} \(total * (1 - slowShare / 100))
                response_latency_ms_bucket{direction="inbound",status_code="200",le="50"} \(total)
                response_latency_ms_bucket{direction="inbound",status_code="200",le="+Inf"} \(total)
                tcp_open_connections{direction="inbound",peer="src"} 2

                """
                let target = ScrapeTarget(url: "http://127.0.0.1:1/\(name)", labels: [Label("deployment", name), Label("namespace", "emojivoto")])
                results.append(ScrapeResult(target: target, startedMs: t, durationSeconds: 0.001, body: Array(body.utf8), error: nil))
            }
            c.ingest(results)
        }
        return c
    }

    func state() throws -> DashboardState {
        var s = DashboardState(title: "demo mesh: emojivoto", source: "fixture", windowMs: 60_000)
        s.collector = try collector()
        s.clockText = "22:13:30Z"
        return s
    }

    @Test func overview80x24() throws {
        try assertGolden(OverviewView.render(try state(), width: 80, height: 24, unicode: true).text, "overview-80x24.txt")
    }

    @Test func overviewAsciiUnderLangC() throws {
        let text = OverviewView.render(try state(), width: 80, height: 24, unicode: false).text
        #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
        try assertGolden(text, "overview-80x24-ascii.txt")
    }

    @Test func worstWorkloadIsFirst() throws {
        let lines = OverviewView.render(try state(), width: 160, height: 48, unicode: true).text.split(separator: "\n")
        let voting = try #require(lines.firstIndex { $0.contains("voting") })
        let web = try #require(lines.firstIndex { $0.contains("web") && !$0.contains("meshtop") })
        let emoji = try #require(lines.firstIndex { $0.contains("emoji ") })
        #expect(voting < web && web < emoji)
        #expect(lines[voting].contains("90.28%"))  // 130 of 144
    }

    @Test func tinyTerminalSaysSo() throws {
        let text = OverviewView.render(try state(), width: 30, height: 5, unicode: true).text
        #expect(text.hasPrefix("terminal too small\nneed 40x8, have 30x5\n"))
    }

    @Test func badTargetIsShownAndEarlierDataKept() throws {
        var s = try state()
        let target = ScrapeTarget(url: "http://127.0.0.1:1/web", labels: [Label("deployment", "web"), Label("namespace", "emojivoto")])
        let problems = s.collector.ingest([ScrapeResult(target: target, startedMs: 1_700_000_011_000, durationSeconds: 0, body: Array("response_total{ 1\n".utf8), error: nil)])
        #expect(problems == ["http://127.0.0.1:1/web: bad metrics at line 1, column 17: expected a label name or '}', found '1'"])
        let text = OverviewView.render(s, width: 100, height: 24, unicode: true).text
        #expect(text.contains("! http://127.0.0.1:1/web: bad metrics at line 1, column 17"))
        #expect(text.contains("web"))
    }
}
