public import PromText

/// What a live dashboard keeps of each scrape: only the families its views read, each summed over
/// the labels no view groups or filters by (pod, instance, addresses, authorities). A thousand
/// proxies of three pods per workload then become a third as many series, and a family no view
/// reads (e.g. `response_latency_ms_count`) costs nothing but its parsing.
///
/// Counters are summed as their increases (a reset counts from zero, as `increase()` reads one),
/// so `increase()` over a rolled-up series equals the sum of the members' increases; gauges are
/// summed as they stand. One-shot commands keep every series (Prometheus-exact answers): this is
/// for the dashboard's live feed only.
public struct Rollup: Sendable {
    struct Family: Sendable {
        /// The labels kept: those the views group or filter by.
        var labels: Set<String>
        /// A counter (summed as increases) or a gauge (summed as it stands).
        var counter: Bool
    }

    public let kindLabel: String
    let families: [String: Family]

    /// The families and labels the dashboard's views read (stat, edges, routes, the response
    /// breakdown), for workloads of `kindLabel` (e.g. `deployment`).
    public init(kindLabel: String) {
        self.kindLabel = kindLabel
        let workload: Set = ["namespace", kindLabel, "direction"]
        let edge = workload.union(["dst_namespace", "dst_" + kindLabel])
        let route = workload.union(["rt_route", "dst"])
        let responses: Set = ["classification", "status_code", "grpc_status", "error", "tls"]
        var f: [String: Family] = [
            "response_total": Family(labels: edge.union(responses), counter: true),
            "response_latency_ms_bucket": Family(labels: edge.union(["le"]), counter: true),
            "request_total": Family(labels: edge.union(["server_id", "no_tls_reason", "client_id"]), counter: true),
            "tcp_open_connections": Family(labels: edge.union(["server_id", "no_tls_reason", "peer"]), counter: false),
            "tcp_read_bytes_total": Family(labels: workload.union(["peer"]), counter: true),
            "tcp_write_bytes_total": Family(labels: workload.union(["peer"]), counter: true),
            "meshproxy_identity_info": Family(labels: ["namespace", kindLabel, "identity"], counter: false),
            "route_request_total": Family(labels: route, counter: true),
        ]
        for prefix in ["route_", "route_actual_"] {
            f[prefix + "response_total"] = Family(labels: route.union(responses), counter: true)
            f[prefix + "response_latency_ms_bucket"] = Family(labels: route.union(["le"]), counter: true)
        }
        families = f
    }
}

/// One series of a target's last scrape, in a store that keeps rollups: which rolled-up series it
/// adds to and what it last read. 24 bytes, where keeping the series itself would cost its labels.
struct RollupMember: Sendable {
    /// FNV-1a of the sample's name and labels as scraped.
    var fingerprint: UInt64
    /// The rolled-up series it adds to; -1 for a family no view reads.
    var group: Int32
    var counter: Bool
    /// Its value at the last scrape; NaN before the first.
    var last: Double
}

extension RollupMember {
    static func fingerprint(_ sample: Sample) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ s: String) {
            for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            h = (h ^ 0xFF) &* 0x0000_0100_0000_01B3
        }
        mix(sample.name)
        for label in sample.labels {
            mix(label.name)
            mix(label.value)
        }
        return h
    }

    /// What this scrape's `value` adds to the rolled-up series: a counter's increase (a drop is a
    /// reset, counting from zero; nothing on first sight), a gauge's change.
    mutating func take(_ value: Double) -> Double {
        guard value.isFinite else { return 0 }
        defer { last = value }
        if last.isNaN { return counter ? 0 : value }
        if counter { return value >= last ? value - last : value }
        return value - last
    }
}
