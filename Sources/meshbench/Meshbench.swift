import ArgumentParser
import Foundation
import MeshMetrics
import PromText

/// Benchmark helpers for scripts/bench-*: payloads and timed runs of meshtop's hot paths.
/// Figures are printed, never asserted: see Benchmarks/ and scripts/.
@main
struct Meshbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate benchmark payloads and time meshtop's parser and aggregation.",
        subcommands: [Payload.self, Parse.self, Aggregate.self])
}

/// A linkerd-shaped exposition: one proxy whose outbound side talks to `destinations` endpoints,
/// each with linkerd2-proxy's families, label sets and buckets.
func linkerdPayload(destinations: Int, pod: Int = 0) -> String {
    let bounds = ["1", "2", "3", "4", "5", "10", "20", "30", "40", "50", "100", "200", "300", "400", "500",
                  "1000", "2000", "3000", "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf"]
    var out = ""
    out.reserveCapacity(destinations * 21_000)
    func labels(_ d: Int) -> String {
        let ip = "10.\(42 + d / 65536).\(d / 256 % 256).\(d % 256)"
        return "direction=\"outbound\",authority=\"svc-\(d).prod-\(d % 17).svc.cluster.local:8080\",target_addr=\"\(ip):8080\",target_ip=\"\(ip)\",target_port=\"8080\",tls=\"true\",server_id=\"svc-\(d).prod-\(d % 17).serviceaccount.identity.linkerd.cluster.local\",dst_control_plane_ns=\"linkerd\",dst_deployment=\"svc-\(d)\",dst_namespace=\"prod-\(d % 17)\",dst_pod=\"svc-\(d)-7d9f8b6c5-x\(pod)q2z\",dst_pod_template_hash=\"7d9f8b6c5\",dst_service=\"svc-\(d)\",dst_serviceaccount=\"svc-\(d)\""
    }
    out += "# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter\n"
    for d in 0..<destinations { out += "request_total{\(labels(d))} \(1000 + d * 7)\n" }
    out += "# HELP response_latency_ms Elapsed times between a request's headers being received and its response stream completing\n# TYPE response_latency_ms histogram\n"
    for d in 0..<destinations {
        for status in ["200", "503"] {
            let l = labels(d) + ",status_code=\"\(status)\""
            for (i, b) in bounds.enumerated() { out += "response_latency_ms_bucket{\(l),le=\"\(b)\"} \(min(i * 40, 600) + d)\n" }
            out += "response_latency_ms_count{\(l)} \(600 + d)\nresponse_latency_ms_sum{\(l)} \(12345 + d * 3)\n"
        }
    }
    out += "# HELP response_total Total count of HTTP responses.\n# TYPE response_total counter\n"
    for d in 0..<destinations {
        out += "response_total{\(labels(d)),status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"} \(990 + d * 7)\n"
        out += "response_total{\(labels(d)),status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"} \(10 + d % 5)\n"
    }
    for (name, type) in [("tcp_open_total", "counter"), ("tcp_open_connections", "gauge"), ("tcp_read_bytes_total", "counter"), ("tcp_write_bytes_total", "counter")] {
        out += "# HELP \(name) \(name)\n# TYPE \(name) \(type)\n"
        for d in 0..<destinations {
            let l = labels(d).replacingOccurrences(of: "direction=\"outbound\",", with: "direction=\"outbound\",peer=\"dst\",")
            out += "\(name){\(l)} \(d * 13 + 1)\n"
        }
    }
    return out
}

struct Payload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a linkerd-shaped exposition of about --mb megabytes.")
    @Option var mb: Double = 20
    @Option(name: .shortAndLong) var output: String

    func run() throws {
        let probe = linkerdPayload(destinations: 10)
        let destinations = max(1, Int(mb * 1_000_000 / (Double(probe.utf8.count) / 10)))
        let text = linkerdPayload(destinations: destinations)
        try text.write(toFile: output, atomically: true, encoding: .utf8)
        let e = try PromTextParser.parse(text)
        print("wrote \(output): \(text.utf8.count) bytes, \(e.samples.count) series")
    }
}

struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Parse a file repeatedly and print the throughput.")
    @Argument var file: String
    @Option(name: .customLong("repeat"), help: "How many times to parse (the best time counts).") var repeatCount: Int = 5


    func run() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        var best = Double.infinity
        var samples = 0
        for _ in 0..<max(1, repeatCount) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let e = try PromTextParser.parse(bytes)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples = e.samples.count
            best = min(best, t)
        }
        let mbps = Double(bytes.count) / 1e6 / best
        print("meshtop parser: \(bytes.count) bytes, \(samples) samples, best of \(repeatCount): \(String(format: "%.3f", best)) s, \(String(format: "%.1f", mbps)) MB/s")
    }
}

struct Aggregate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time golden metrics over many targets' scrapes (per refresh).")
    @Option var targets = 1000
    @Option var destinations = 27
    @Option(help: "Refreshes to time after ingest.") var refreshes = 3

    func run() throws {
        var store = MetricStore()
        let bodies = (0..<2).map { _ in try! PromTextParser.parse(linkerdPayload(destinations: destinations)) }
        var roundTimes: [Double] = []
        for round in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for t in 0..<targets {
                store.ingest(bodies[round % 2], target: [Label("namespace", "prod-\(t % 17)"), Label("deployment", "app-\(t / 3)"),
                                                         Label("pod", "app-\(t)"), Label("instance", "10.0.\(t / 256).\(t % 256):4191")],
                             at: Int64(round) * 10_000)
            }
            roundTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        let ingest = roundTimes.map { String(format: "%.3f", $0) }.joined(separator: " / ")
        var refreshTimes: [Double] = []
        var rows = 0, edgeRows = 0
        for _ in 0..<refreshes {
            let t1 = DispatchTime.now().uptimeNanoseconds
            rows = store.stat(StatQuery(kindLabel: "deployment", windowMs: 60_000, atMs: 20_000)).count
            edgeRows = store.edges(kindLabel: "deployment", namespace: nil, windowMs: 60_000, atMs: 20_000).count
            refreshTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9)
        }
        let views = (refreshTimes.count > 4 ? [refreshTimes[0], refreshTimes.dropFirst().min()!] : refreshTimes).map { String(format: "%.3f", $0) }.joined(separator: " / ")
        print("aggregate: \(targets) targets × \(store.keys.count / targets) series")
        print("  ingest per round (the first creates the series): \(ingest) s")
        print("  stat (\(rows) rows) + edges (\(edgeRows)) per refresh (the first resolves selections): \(views) s")
    }
}
