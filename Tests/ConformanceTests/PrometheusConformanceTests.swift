import MeshTesting
import Foundation
import Testing
import Dashboard
import MeshMetrics
import MeshSources
import PromText

/// A real Prometheus (Debian's `prometheus`), on loopback, over TSDB blocks built by `promtool`
/// from exactly the samples meshtop holds.
final class RealPrometheus {
    let client: PrometheusClient
    private let process: Process
    let directory: URL

    /// A Prometheus over TSDB blocks built by promtool from `openMetrics`, scraping nothing.
    convenience init(openMetrics: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let input = directory.appendingPathComponent("samples.om")
        try openMetrics.write(to: input, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("data")
        try Self.requireTools()
        let promtool = try runTool("/usr/bin/promtool", ["tsdb", "create-blocks-from", "openmetrics", input.path, data.path])
        guard promtool.status == 0 else { throw ConformanceError("promtool failed: \(promtool.output)") }
        try self.init(directory: directory, config: "global:\n  scrape_interval: 15s\n")
    }

    /// A Prometheus with this configuration (scrape jobs and all), on loopback.
    init(directory: URL, config: String) throws {
        try Self.requireTools()
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = directory.appendingPathComponent("data")
        let configFile = directory.appendingPathComponent("prometheus.yml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        guard let port = freePort() else { throw ConformanceError("cannot find a free port") }
        let process = Process()
        self.process = process
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        process.arguments = ["--config.file=\(configFile.path)", "--storage.tsdb.path=\(data.path)",
                             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:\(port)"]
        process.standardOutput = FileHandle.nullDevice
        let logURL = directory.appendingPathComponent("prometheus.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: logURL)
        try process.run()
        client = PrometheusClient(baseURL: "http://127.0.0.1:\(port)")
        var ready = false
        eventually(within: 30, pollMs: 200) {
            ready = Scraper(timeoutSeconds: 1).scrape([ScrapeTarget(url: "http://127.0.0.1:\(port)/-/ready")]) { 0 }[0].body != nil
            return ready || !process.isRunning
        }
        if ready { return }
        let log = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        process.terminate()
        throw ConformanceError("prometheus did not become ready:\n\(log.suffix(2000))")
    }

    static func requireTools() throws {
        for tool in ["/usr/bin/prometheus", "/usr/bin/promtool"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ConformanceError("\(tool) is missing: install Debian's prometheus package (make test does)")
        }
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

struct ConformanceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-tool-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
}


/// Equal to 1e-9 relative (both nil counts as equal).
func agree(_ a: Double?, _ b: Double?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-12)
    default: return false
    }
}

/// The conformance suite: a recording nobody tuned, loaded into a real Prometheus, queried with
/// linkerd viz's PromQL; meshtop must give the same numbers from the same recording.
@Suite(.serialized) struct PrometheusConformance {
    static let windows: [(text: String, ms: Int64)] = [("10s", 10_000), ("1m", 60_000), ("5m", 300_000)]

    struct Setup {
        let recording: SyntheticRecording
        let path: String
        let store: MetricStore
        let prometheus: RealPrometheus
        /// Evaluation times: the end, just after the counter reset and scale-up, inside the failed
        /// scrapes, a while later, and early (windows reaching before the first scrape).
        var moments: [Int64] {
            [recording.endMs, recording.restartMs + 20_000, recording.restartMs + 47_500, recording.gap.lowerBound + 45_000,
             recording.startMs + 7 * 60_000 + 333, recording.startMs + 100_000]
        }
    }

    static func setUp() throws -> Setup {
        // Recent times, as a live mesh would have; whole seconds are not assumed anywhere.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let start = now - 40 * 60_000 + 123
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString).meshrec").path
        let recording = try SyntheticRecording.write(to: path, startMs: start, minutes: 20, seed: 0x5EED_2026)
        var collector = Collector()
        try collector.replay(try RecordingReader(path: path))
        return Setup(recording: recording, path: path, store: collector.store, prometheus: try RealPrometheus(openMetrics: collector.store.openMetrics()))
    }

    @Test func statAndEdgesEqualPrometheus() throws {
        let setup = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.path) }
        var compared = 0
        for at in setup.moments {
            for window in Self.windows {
                // stat: linkerd viz's queries, grouped by deployment.
                let mine = Dictionary(uniqueKeysWithValues: setup.store.stat(StatQuery(kindLabel: "deployment", namespace: "conformance", windowMs: window.ms, atMs: at)).map { ($0.workload.name, $0) })
                let theirs = try statFromPrometheus(setup.prometheus.client, window: window.text, at: at)
                #expect(Set(theirs.keys).isSubset(of: Set(mine.keys)), "at \(at) over \(window.text)")
                if window.ms >= 60_000 {
                    // Windows that span several scrapes must have answers for every workload, or the comparison proves nothing.
                    #expect(Set(theirs.keys) == ["web", "emoji", "voting"], "Prometheus answered for \(theirs.keys.sorted()) at \(at) over \(window.text)")
                }
                for (name, t) in theirs {
                    let m = mine[name]
                    #expect(agree(m?.rps, t.rps), "rps of \(name) at \(at) over \(window.text): meshtop \(String(describing: m?.rps)) vs Prometheus \(String(describing: t.rps))")
                    #expect(agree(m?.success, t.success), "success of \(name) at \(at) over \(window.text)")
                    #expect(agree(m?.latencyP50, t.latencyP50), "p50 of \(name) at \(at) over \(window.text): \(String(describing: m?.latencyP50)) vs \(String(describing: t.latencyP50))")
                    #expect(agree(m?.latencyP95, t.latencyP95), "p95 of \(name) at \(at) over \(window.text)")
                    #expect(agree(m?.latencyP99, t.latencyP99), "p99 of \(name) at \(at) over \(window.text)")
                    compared += 1
                }
                for (name, m) in mine where theirs[name] == nil {
                    #expect(m.rps == nil, "meshtop has traffic for \(name) at \(at) over \(window.text) where Prometheus has none")
                }
                // edges: the same queries on outbound series, grouped by source and destination.
                let myEdges = Dictionary(uniqueKeysWithValues: setup.store.edges(kindLabel: "deployment", namespace: "conformance", windowMs: window.ms, atMs: at)
                    .map { ("\($0.edge.source.name)>\($0.edge.destination.name)", $0.traffic) })
                let theirEdges = try edgesFromPrometheus(setup.prometheus.client, window: window.text, at: at)
                if window.ms >= 60_000 { #expect(Set(theirEdges.keys) == ["web>emoji", "web>voting"]) }
                // routes: linkerd viz routes' queries on the route_* families of one workload.
                let myRoutes = Dictionary(uniqueKeysWithValues: setup.store.routes(kindLabel: "deployment", name: "voting", namespace: "conformance", windowMs: window.ms, atMs: at)
                    .map { ($0.route ?? "[DEFAULT]", $0.effective) })
                let theirRoutes = try routesFromPrometheus(setup.prometheus.client, deployment: "voting", window: window.text, at: at)
                if window.ms >= 60_000 { #expect(Set(theirRoutes.keys) == ["GET /api/vote", "[DEFAULT]"]) }
                for (route, t) in theirRoutes {
                    let m = myRoutes[route]
                    #expect(agree(m?.rps, t.rps), "rps of route \(route) at \(at) over \(window.text)")
                    #expect(agree(m?.success, t.success), "success of route \(route) at \(at) over \(window.text)")
                    #expect(agree(m?.latencyP95, t.latencyP95), "p95 of route \(route) at \(at) over \(window.text)")
                    compared += 1
                }
                for (edge, t) in theirEdges {
                    let m = myEdges[edge]
                    #expect(agree(m?.rps, t.rps), "rps of edge \(edge) at \(at) over \(window.text)")
                    #expect(agree(m?.success, t.success), "success of edge \(edge) at \(at) over \(window.text)")
                    #expect(agree(m?.latencyP99, t.latencyP99), "p99 of edge \(edge) at \(at) over \(window.text)")
                    compared += 1
                }
            }
        }
        // 6 moments × 2 long windows × (3 workloads + 2 edges + 2 routes), plus whatever 10 s windows held.
        #expect(compared >= 84, "only \(compared) comparisons were made")
    }

    @Test func commandLineOverTheRecordingGivesPrometheusNumbers() throws {
        let setup = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: setup.path) }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshtop")
        for window in Self.windows {
            let at = setup.moments[1]
            let out = try runTool(binary.path, ["stat", "deploy", "-n", "conformance", "--replay", setup.path,
                                                "--at", PromTextWriter.seconds(at), "-t", window.text, "-o", "json"])
            #expect(out.status == 0, "\(out.output)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(out.output.utf8)) as? [[String: Any]], "\(out.output)")
            let theirs = try statFromPrometheus(setup.prometheus.client, window: window.text, at: at)
            for row in rows {
                guard let name = row["name"] as? String, let t = theirs[name] else { continue }
                #expect(agree(row["rps"] as? Double, t.rps), "CLI rps of \(name) over \(window.text)")
                #expect(agree(row["success"] as? Double, t.success), "CLI success of \(name) over \(window.text)")
                #expect((row["latency_ms_p99"] as? Double) == t.latencyP99?.rounded(), "CLI p99 of \(name) over \(window.text)")
            }
            #expect(rows.count >= 3)

            // edges through the binary, against linkerd viz's queries on Prometheus.
            let edgesOut = try runTool(binary.path, ["edges", "deploy", "-n", "conformance", "--replay", setup.path,
                                                     "--at", PromTextWriter.seconds(at), "-t", window.text, "-o", "json"])
            #expect(edgesOut.status == 0, "\(edgesOut.output)")
            let edgeRows = try #require(try JSONSerialization.jsonObject(with: Data(edgesOut.output.utf8)) as? [[String: Any]], "\(edgesOut.output)")
            let theirEdges = try edgesFromPrometheus(setup.prometheus.client, window: window.text, at: at)
            #expect(edgeRows.count == 2)
            for row in edgeRows {
                let key = "\(row["src"] as? String ?? "")>\(row["dst"] as? String ?? "")"
                guard let t = theirEdges[key] else {
                    // Listed for its open connections, with no traffic in the window: no numbers.
                    #expect(row["rps"] is NSNull, "edge \(key) has rps \(row["rps"] ?? "?") where Prometheus has no traffic over \(window.text)")
                    continue
                }
                #expect(agree(row["rps"] as? Double, t.rps), "CLI rps of edge \(key) over \(window.text)")
                #expect(agree(row["success"] as? Double, t.success), "CLI success of edge \(key) over \(window.text)")
                #expect((row["latency_ms_p99"] as? Double) == t.latencyP99?.rounded(), "CLI p99 of edge \(key) over \(window.text)")
            }

            // The same command asking Prometheus itself must print the same numbers.
            let viaServer = try runTool(binary.path, ["stat", "deploy", "-n", "conformance", "--prometheus", setup.prometheus.client.baseURL,
                                                      "--at", PromTextWriter.seconds(at), "-t", window.text, "-o", "json"])
            #expect(viaServer.status == 0, "\(viaServer.output)")
            let serverRows = try #require(try JSONSerialization.jsonObject(with: Data(viaServer.output.utf8)) as? [[String: Any]])
            #expect(serverRows.map { $0["name"] as? String } == rows.map { $0["name"] as? String })
            for (a, b) in zip(rows, serverRows) {
                for key in ["success", "rps", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "tcp_open_connections"] {
                    #expect(agree(a[key] as? Double, b[key] as? Double), "\(key) of \(a["name"] ?? "?") over \(window.text): replay \(a[key] ?? "nil") vs prometheus \(b[key] ?? "nil")")
                }
            }
        }
    }

    @Test func unreachablePrometheusExitsThree() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshtop")
        let out = try runTool(binary.path, ["stat", "deploy", "--prometheus", "http://127.0.0.1:\(freePort() ?? 9)"])
        #expect(out.status == 3)
        #expect(out.output.contains("connection refused"))
    }
}

/// linkerd viz stat's queries (reference §4.1) against Prometheus, folded into per-deployment numbers.
func statFromPrometheus(_ client: PrometheusClient, window: String, at: Int64) throws -> [String: TrafficMetrics] {
    let selector = #"{direction="inbound", namespace="conformance"}"#
    return try trafficFromPrometheus(client, selector: selector, groupBy: "namespace, deployment", key: { $0["deployment"] ?? "" }, window: window, at: at)
}

func edgesFromPrometheus(_ client: PrometheusClient, window: String, at: Int64) throws -> [String: TrafficMetrics] {
    let selector = #"{direction="outbound", namespace="conformance", deployment!="", dst_deployment!=""}"#
    return try trafficFromPrometheus(client, selector: selector, groupBy: "namespace, deployment, dst_namespace, dst_deployment",
                                     key: { "\($0["deployment"] ?? "")>\($0["dst_deployment"] ?? "")" }, window: window, at: at)
}

func routesFromPrometheus(_ client: PrometheusClient, deployment: String, window: String, at: Int64) throws -> [String: TrafficMetrics] {
    let selector = "{direction=\"inbound\", namespace=\"conformance\", deployment=\"\(deployment)\"}"
    return try trafficFromPrometheus(client, selector: selector, groupBy: "rt_route, dst", key: { $0["rt_route"] ?? "[DEFAULT]" },
                                     window: window, at: at, family: "route_")
}

func trafficFromPrometheus(_ client: PrometheusClient, selector: String, groupBy: String,
                           key: ([String: String]) -> String, window: String, at: Int64, family: String = "") throws -> [String: TrafficMetrics] {
    var success: [String: Double] = [:]
    var failure: [String: Double] = [:]
    for s in try client.query("sum(increase(\(family)response_total\(selector)[\(window)])) by (\(groupBy), classification, tls)", atMs: at) {
        if s.labels["classification"] == "success" { success[key(s.labels), default: 0] += s.value } else { failure[key(s.labels), default: 0] += s.value }
    }
    let windowSeconds = Double(DurationText.milliseconds(window)!) / 1000
    var out: [String: TrafficMetrics] = [:]
    for k in Set(success.keys).union(failure.keys) {
        var t = TrafficMetrics()
        let s = success[k] ?? 0, f = failure[k] ?? 0
        t.rps = (s + f) / windowSeconds
        if s + f > 0 { t.success = s / (s + f) }
        out[k] = t
    }
    for (q, path) in [("0.5", \TrafficMetrics.latencyP50), ("0.95", \TrafficMetrics.latencyP95), ("0.99", \TrafficMetrics.latencyP99)] {
        for s in try client.query("histogram_quantile(\(q), sum(irate(\(family)response_latency_ms_bucket\(selector)[\(window)])) by (le, \(groupBy)))", atMs: at) {
            var t = out[key(s.labels)] ?? TrafficMetrics()
            t[keyPath: path] = s.value.isNaN ? nil : s.value
            out[key(s.labels)] = t
        }
    }
    return out
}
