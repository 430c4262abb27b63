import Foundation
import Testing

/// The demo as a newcomer runs it: the built binary, no terminal, ten seconds.
@Suite struct HeadlessDemo {
    @Test func printsGoldenMetricsOfTheMesh() throws {
        let result = try run(meshtopBinary, ["demo", "--headless", "--duration", "10s"], timeout: 90)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(lines.first == ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"])
        func row(_ name: String) -> [String]? { lines.first { $0.first == name } }
        for name in ["web", "emoji", "voting"] {
            let r = try #require(row(name), "no row for \(name) in:\n\(result.stdout)")
            let rps = try #require(Double(r[3].replacingOccurrences(of: "rps", with: "")))
            #expect(rps > 0, "\(name) has no traffic")
        }
        let voting = try #require(row("voting"))
        let success = try #require(Double(voting[2].replacingOccurrences(of: "%", with: "")))
        #expect(success < 100 && success > 70, "voting should fail a steady share: \(voting)")
        let emoji = try #require(row("emoji"))
        #expect(emoji[2] == "100.00%")
    }

    @Test func usageErrorsExitTwoWithAMessage() throws {
        let result = try run(meshtopBinary, ["stat", "deploy", "--no-such-flag"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--no-such-flag"))
        let window = try run(meshtopBinary, ["stat", "deploy", "-t", "soon", "--scrape", "127.0.0.1:1"])
        #expect(window.status == 2)
        #expect(window.stderr.contains("-t soon: not a duration"))
    }

    @Test func unreachableTargetsExitThree() throws {
        let result = try run(meshtopBinary, ["stat", "deploy", "--scrape", "127.0.0.1:1;deployment=web"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("connection refused by http://127.0.0.1:1/metrics"))
    }
}
