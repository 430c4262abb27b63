import PromText

/// A workload: the value of its kind label (`deployment`, `pod`, …) within a namespace.
public struct WorkloadID: Hashable, Sendable, Comparable {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public static func < (a: WorkloadID, b: WorkloadID) -> Bool {
        (a.namespace, a.name) < (b.namespace, b.name)
    }
}

/// The golden metrics of one workload over a window: what `linkerd viz stat` shows for it.
/// A nil metric means "no traffic" (printed as `-`).
public struct GoldenMetrics: Sendable, Equatable {
    public var workload: WorkloadID
    /// Instances that answered their last scrape, and instances known.
    public var meshedPods: Int
    public var runningPods: Int
    /// Successful responses over all responses, 0…1.
    public var success: Double?
    public var rps: Double?
    public var latencyP50: Double?
    public var latencyP95: Double?
    public var latencyP99: Double?
    public var tcpOpenConnections: Double?
    public var readBytesRate: Double?
    public var writeBytesRate: Double?

    public init(workload: WorkloadID, meshedPods: Int = 0, runningPods: Int = 0) {
        self.workload = workload
        self.meshedPods = meshedPods
        self.runningPods = runningPods
    }
}

/// What to compute golden metrics for: which kind label groups workloads, in which namespace,
/// over which window ending when.
public struct StatQuery: Sendable {
    /// The Prometheus label that names the workload: `deployment`, `pod`, `namespace`, …
    public var kindLabel: String
    public var namespace: String?
    public var name: String?
    public var windowMs: Int64
    public var atMs: Int64

    public init(kindLabel: String, namespace: String? = nil, name: String? = nil, windowMs: Int64, atMs: Int64) {
        self.kindLabel = kindLabel
        self.namespace = namespace
        self.name = name
        self.windowMs = windowMs
        self.atMs = atMs
    }
}

/// Success, request rate and latency quantiles of one group of series.
public struct TrafficMetrics: Sendable, Equatable {
    /// Successful responses over all responses, 0…1; nil with no responses.
    public var success: Double?
    /// nil when no series had two samples in the window (no traffic data), else responses per second.
    public var rps: Double?
    public var latencyP50: Double?
    public var latencyP95: Double?
    public var latencyP99: Double?

    public init() {}
}

extension MetricStore {
    /// Traffic metrics grouped by `group` over the window ending at `end`, as linkerd viz's PromQL
    /// computes them: `sum(increase(response_total{…}[w])) by (…, classification)` for success and
    /// RPS, and `histogram_quantile(q, sum(irate(response_latency_ms_bucket{…}[w])) by (le, …))`.
    /// Series for which `group` returns nil are left out.
    public func traffic<Group: Hashable>(_ matchers: [Matcher], windowMs: Int64, at end: Int64,
                                         group: (SeriesKey) -> Group?) -> [Group: TrafficMetrics] {
        let start = end - windowMs
        let windowSeconds = Double(windowMs) / 1000
        var successes: [Group: Double] = [:]
        var failures: [Group: Double] = [:]
        for id in select("response_total", matchers) {
            guard let g = group(keys[id]),
                  let inc = PromQL.increase(points(of: id, from: start, through: end), start: start, end: end) else { continue }
            switch keys[id][label: "classification"] {
            case "success": successes[g, default: 0] += inc
            case "failure": failures[g, default: 0] += inc
            default: break
            }
        }
        var out: [Group: TrafficMetrics] = [:]
        for g in Set(successes.keys).union(failures.keys) {
            let s = successes[g] ?? 0
            let f = failures[g] ?? 0
            var t = TrafficMetrics()
            if s + f > 0 { t.success = s / (s + f) }
            t.rps = (s + f) / windowSeconds
            out[g] = t
        }
        var buckets: [Group: [Double: Double]] = [:]
        for id in select("response_latency_ms_bucket", matchers) {
            guard let g = group(keys[id]), let leText = keys[id][label: "le"],
                  let le = leText == "+Inf" ? Double.infinity : Double(leText),
                  let r = PromQL.irate(points(of: id, from: start, through: end)) else { continue }
            buckets[g, default: [:]][le, default: 0] += r
        }
        for (g, byLE) in buckets {
            let list = byLE.map { (le: $0.key, count: $0.value) }
            func q(_ q: Double) -> Double? {
                let v = PromQL.histogramQuantile(q, list)
                return v.isNaN ? nil : v
            }
            var t = out[g] ?? TrafficMetrics()
            t.latencyP50 = q(0.5)
            t.latencyP95 = q(0.95)
            t.latencyP99 = q(0.99)
            out[g] = t
        }
        return out
    }

    /// Golden metrics per workload, as `linkerd viz stat` computes them from inbound metrics,
    /// with instances from `up`, `sum(tcp_open_connections{…})` and
    /// `increase(tcp_{read,write}_bytes_total{peer="src"}[w])`.
    public func stat(_ query: StatQuery) -> [GoldenMetrics] {
        let groupLabel = query.kindLabel
        var base: [Matcher] = [.ne(groupLabel, "")]
        if let ns = query.namespace { base.append(.eq("namespace", ns)) }
        if let name = query.name { base.append(.eq(groupLabel, name)) }
        let inbound = base + [.eq("direction", "inbound")]
        let start = query.atMs - query.windowMs
        let end = query.atMs
        let windowSeconds = Double(query.windowMs) / 1000

        func workload(_ key: SeriesKey) -> WorkloadID {
            WorkloadID(namespace: key[label: "namespace"] ?? "", name: key[label: groupLabel] ?? "")
        }

        var rows: [WorkloadID: GoldenMetrics] = [:]
        func row(_ id: WorkloadID) -> GoldenMetrics { rows[id] ?? GoldenMetrics(workload: id) }

        // Instances: `up` series with a sample in the lookback (a pod gone for longer is not running).
        for id in select("up", base) {
            guard let p = latest(of: id, at: end) else { continue }
            let w = workload(keys[id])
            var r = row(w)
            r.runningPods += 1
            if p.v == 1 { r.meshedPods += 1 }
            rows[w] = r
        }
        for (w, t) in traffic(inbound, windowMs: query.windowMs, at: end, group: workload) {
            var r = row(w)
            r.success = t.success
            r.rps = t.rps
            r.latencyP50 = t.latencyP50
            r.latencyP95 = t.latencyP95
            r.latencyP99 = t.latencyP99
            rows[w] = r
        }
        for id in select("tcp_open_connections", inbound) {
            guard let p = latest(of: id, at: end) else { continue }
            let w = workload(keys[id])
            var r = row(w)
            r.tcpOpenConnections = (r.tcpOpenConnections ?? 0) + p.v
            rows[w] = r
        }
        for (metric, path) in [("tcp_read_bytes_total", \GoldenMetrics.readBytesRate), ("tcp_write_bytes_total", \GoldenMetrics.writeBytesRate)] {
            for id in select(metric, inbound + [.eq("peer", "src")]) {
                guard let inc = PromQL.increase(points(of: id, from: start, through: end), start: start, end: end) else { continue }
                let w = workload(keys[id])
                var r = row(w)
                r[keyPath: path] = (r[keyPath: path] ?? 0) + inc / windowSeconds
                rows[w] = r
            }
        }
        return rows.values.sorted { $0.workload < $1.workload }
    }
}
