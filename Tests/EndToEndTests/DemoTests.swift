import Foundation
import MeshMetrics
import MeshSources
import PromText
import Testing

/// The demo as a newcomer runs it: the built binary, no terminal, ten seconds.
@Suite struct HeadlessDemo {
    @Test func printsGoldenMetricsOfTheMesh() throws {
        let record = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString).meshrec.gz").path
        defer { try? FileManager.default.removeItem(atPath: record) }
        let result = try run(meshtopBinary, ["demo", "--headless", "--duration", "10s", "--record", record], timeout: 90)
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

        // web calls emoji and voting over gRPC: web's proxy counts those answers by grpc-status,
        // a failed vote as UNAVAILABLE (14) in an HTTP 200, over mTLS to the callee's identity.
        let scrapes = try RecordingReader(path: record).readAll().compactMap { event -> ScrapeResult? in
            if case .scrape(let r) = event { return r }
            return nil
        }
        let lastWeb = try #require(scrapes.last { $0.target.labels.contains(Label("deployment", "web")) && $0.body != nil })
        let samples = try PromTextParser.parse(try #require(lastWeb.body)).samples.filter { $0.name == "response_total" && $0[label: "direction"] == "outbound" }
        func answers(_ service: String, grpc status: String) -> Double {
            samples.filter { $0[label: "dst_service"] == service && $0[label: "grpc_status"] == status }.reduce(0) { $0 + $1.value }
        }
        #expect(answers("emoji-svc", grpc: "0") > 0, "web → emoji: no grpc_status=\"0\" answers")
        #expect(answers("voting-svc", grpc: "0") > 0 && answers("voting-svc", grpc: "14") > 0, "web → voting: OK and UNAVAILABLE votes")
        let failed = samples.filter { $0[label: "dst_service"] == "voting-svc" && $0[label: "grpc_status"] == "14" }
        #expect(failed.allSatisfy { $0[label: "classification"] == "failure" && $0[label: "status_code"] == "200" })
        #expect(samples.filter { $0[label: "dst_service"] == "voting-svc" }.allSatisfy {
            $0[label: "tls"] == "true" && $0[label: "server_id"] == "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        })
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
