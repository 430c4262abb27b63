import MeshMetrics
import Foundation
import MeshSources
import PromText
import MeshTesting

let linkerdBounds: [Double] = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000,
                               10000, 20000, 30000, 40000, 50000]

/// The response metrics of one target (inbound app, or one outbound destination) of a proxy.
struct TargetCounters {
    var requests = 0.0
    var responses: [Int: Double] = [:]           // status → count
    var buckets: [Int: [Double]] = [:]           // status → cumulative count per bound (+Inf last)
    var sums: [Int: Double] = [:]

    mutating func observe(status: Int, latencyMs: Double) {
        requests += 1
        responses[status, default: 0] += 1
        var b = buckets[status] ?? Array(repeating: 0, count: linkerdBounds.count + 1)
        for (i, bound) in linkerdBounds.enumerated() where latencyMs <= bound { b[i] += 1 }
        b[linkerdBounds.count] += 1
        buckets[status] = b
        sums[status, default: 0] += latencyMs.rounded(.down)
    }

    func lines(_ labels: String, prefix: String = "") -> [String] {
        var out = ["\(prefix)request_total{\(labels)} \(Int(requests))"]
        for status in buckets.keys.sorted() {
            let b = buckets[status]!
            for (i, bound) in linkerdBounds.enumerated() {
                out.append("\(prefix)response_latency_ms_bucket{\(labels),status_code=\"\(status)\",le=\"\(Int(bound))\"} \(Int(b[i]))")
            }
            out.append("\(prefix)response_latency_ms_bucket{\(labels),status_code=\"\(status)\",le=\"+Inf\"} \(Int(b.last!))")
            out.append("\(prefix)response_latency_ms_count{\(labels),status_code=\"\(status)\"} \(Int(b.last!))")
            out.append("\(prefix)response_latency_ms_sum{\(labels),status_code=\"\(status)\"} \(Int(sums[status]!))")
        }
        for status in responses.keys.sorted() {
            let cls = (500...599).contains(status) ? "failure" : "success"
            out.append("\(prefix)response_total{\(labels),status_code=\"\(status)\",classification=\"\(cls)\",grpc_status=\"\",error=\"\"} \(Int(responses[status]!))")
        }
        return out
    }
}

/// One meshed pod: its inbound counters and, for callers, outbound counters per destination.
struct Pod {
    let deployment: String
    let name: String
    let instance: String
    let rate: Double
    let failure: Double
    let slowMs: Double
    var inbound = TargetCounters()
    /// ServiceProfile routes: "GET /api/vote" for most requests, the rest unmatched ([DEFAULT]).
    var routes: [String: TargetCounters] = [:]
    var outbound: [String: TargetCounters] = [:]
    var calls: [String] = []
    var connections = 0.0

    mutating func restart() {
        inbound = TargetCounters()
        routes = routes.mapValues { _ in TargetCounters() }
        outbound = outbound.mapValues { _ in TargetCounters() }
    }

    mutating func run(seconds: Double, rng: inout SplitMix64) {
        let n = Int((rate * seconds * Double.random(in: 0.6...1.4, using: &rng)).rounded())
        for _ in 0..<n {
            let latency = -slowMs * log(Double.random(in: 0.0001...1, using: &rng))
            let status = Double.random(in: 0..<1, using: &rng) < failure ? 500 : (Double.random(in: 0..<1, using: &rng) < 0.03 ? 404 : 200)
            inbound.observe(status: status, latencyMs: latency)
            routes[Double.random(in: 0..<1, using: &rng) < 0.7 ? "GET /api/vote" : "", default: TargetCounters()].observe(status: status, latencyMs: latency)
            for dst in calls {
                outbound[dst, default: TargetCounters()].observe(status: status == 500 && dst == "voting" ? 500 : 200, latencyMs: latency * 0.6)
            }
        }
        connections = Double(Int.random(in: 0...4, using: &rng))
    }

    func body() -> String {
        let target = "target_addr=\"10.0.0.1:8080\",target_ip=\"10.0.0.1\",target_port=\"8080\""
        var lines = inbound.lines("direction=\"inbound\",\(target),tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"")
        for route in routes.keys.sorted() {
            let rt = route.isEmpty ? "" : ",rt_route=\"\(route)\""
            lines += routes[route]!.lines("direction=\"inbound\",dst=\"\(deployment)-svc.conformance.svc.cluster.local:8080\"\(rt)", prefix: "route_")
        }
        lines.append("tcp_open_connections{direction=\"inbound\",peer=\"src\",\(target),tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} \(Int(connections))")
        for dst in outbound.keys.sorted() {
            let labels = "direction=\"outbound\",authority=\"\(dst)-svc.conformance.svc.cluster.local:8080\",\(target),tls=\"no_identity\",no_tls_reason=\"not_provided_by_service_discovery\",dst_deployment=\"\(dst)\",dst_namespace=\"conformance\",dst_pod=\"\(dst)-0\""
            lines += outbound[dst]!.lines(labels)
            lines.append("tcp_open_connections{\(labels.replacingOccurrences(of: "direction=\"outbound\",", with: "direction=\"outbound\",peer=\"dst\","))} 1")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A recording of 6 pods over `minutes`, scraped every 15 s with up to ±4 s of jitter, with a
/// counter reset (voting-1 restarts), a run of failed scrapes (emoji-0 unreachable) and a
/// scale-up (web-2 appears at the restart, so its series are born mid-recording).
struct SyntheticRecording {
    let startMs: Int64
    let endMs: Int64
    let restartMs: Int64
    let gap: ClosedRange<Int64>

    static func write(to path: String, startMs: Int64, minutes: Int, seed: UInt64) throws -> SyntheticRecording {
        var rng = SplitMix64(state: seed)
        var pods: [Pod] = []
        for (deployment, rate, failure, slow) in [("web", 8.0, 0.05, 15.0), ("emoji", 12.0, 0.0, 3.0), ("voting", 6.0, 0.12, 25.0)] {
            for i in 0..<2 {
                var pod = Pod(deployment: deployment, name: "\(deployment)-\(i)", instance: "10.0.\(pods.count).1:4191",
                              rate: rate, failure: failure, slowMs: slow)
                if deployment == "web" { pod.calls = ["emoji", "voting"] }
                pods.append(pod)
            }
        }
        let endMs = startMs + Int64(minutes) * 60_000
        let restartMs = startMs + Int64(minutes) * 60_000 * 6 / 10
        let gap = (startMs + Int64(minutes) * 60_000 / 4)...(startMs + Int64(minutes) * 60_000 / 4 + 90_000)
        let writer = try RecordingWriter(path: path, startedMs: startMs, meta: ["source": "conformance", "seed": String(seed)])
        var scaleUp = Pod(deployment: "web", name: "web-2", instance: "10.0.9.1:4191", rate: 8, failure: 0.05, slowMs: 15)
        scaleUp.calls = ["emoji", "voting"]
        pods.append(scaleUp)
        var next = pods.map { _ in startMs + Int64.random(in: 0...5_000, using: &rng) }
        next[next.count - 1] = restartMs + 1_234
        var last = next
        var restarted = false
        while true {
            guard let i = next.indices.min(by: { next[$0] < next[$1] }), next[i] <= endMs else { break }
            let t = next[i]
            pods[i].run(seconds: Double(t - last[i]) / 1000, rng: &rng)
            if !restarted, pods[i].name == "voting-1", t >= restartMs {
                pods[i].restart()
                pods[i].run(seconds: 2, rng: &rng)
                restarted = true
            }
            last[i] = t
            let target = ScrapeTarget(url: "http://\(pods[i].instance)/metrics", labels: [
                Label("deployment", pods[i].deployment), Label("namespace", "conformance"), Label("pod", pods[i].name),
            ])
            let result: ScrapeResult
            if pods[i].name == "emoji-0", gap.contains(t) {
                result = ScrapeResult(target: target, startedMs: t, durationSeconds: 0, body: nil, error: "connection refused")
            } else {
                result = ScrapeResult(target: target, startedMs: t, durationSeconds: 0.002, body: Array(pods[i].body().utf8), error: nil)
            }
            try writer.append([result])
            next[i] = t + 15_000 + Int64.random(in: -4_000...4_000, using: &rng)
        }
        return SyntheticRecording(startMs: startMs, endMs: endMs, restartMs: restartMs, gap: gap)
    }
}

#if canImport(Glibc)
import Glibc
#endif
