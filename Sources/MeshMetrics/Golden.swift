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

extension MetricStore {
    /// Golden metrics per workload, computed as linkerd viz stat's PromQL does:
    /// `sum(increase(response_total{direction="inbound",…}[w])) by (namespace, <kind>, classification)`
    /// for success and RPS, `histogram_quantile(q, sum(irate(response_latency_ms_bucket{…}[w])) by (le, namespace, <kind>))`
    /// for latency, `sum(tcp_open_connections{…})` and `increase(tcp_{read,write}_bytes_total{peer="src"}[w])`.
    public func stat(_ query: StatQuery) -> [GoldenMetrics] {
        let kind = query.kindLabel
        let groupLabel = kind == "namespace" ? "namespace" : kind
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

        // Instances: `up` per target.
        for id in select("up", base) {
            let w = workload(keys[id])
            var r = row(w)
            r.runningPods += 1
            if let p = latest(of: id, at: end), p.v == 1 { r.meshedPods += 1 }
            rows[w] = r
        }

        // Success and RPS.
        var successes: [WorkloadID: Double] = [:]
        var failures: [WorkloadID: Double] = [:]
        for id in select("response_total", inbound) {
            guard let inc = PromQL.increase(points(of: id, from: start, through: end), start: start, end: end) else { continue }
            let w = workload(keys[id])
            if keys[id][label: "classification"] == "success" {
                successes[w, default: 0] += inc
            } else if keys[id][label: "classification"] == "failure" {
                failures[w, default: 0] += inc
            }
        }
        for w in Set(successes.keys).union(failures.keys) {
            let s = successes[w] ?? 0
            let f = failures[w] ?? 0
            var r = row(w)
            if s + f > 0 {
                r.success = s / (s + f)
            }
            r.rps = (s + f) / windowSeconds
            rows[w] = r
        }

        // Latency quantiles from the buckets' per-second rates.
        var buckets: [WorkloadID: [Double: Double]] = [:]
        for id in select("response_latency_ms_bucket", inbound) {
            guard let leText = keys[id][label: "le"], let le = Double(leText == "+Inf" ? "inf" : leText),
                  let r = PromQL.irate(points(of: id, from: start, through: end)) else { continue }
            buckets[workload(keys[id]), default: [:]][le, default: 0] += r
        }
        for (w, byLE) in buckets {
            let list = byLE.map { (le: $0.key, count: $0.value) }
            var r = row(w)
            func q(_ q: Double) -> Double? {
                let v = PromQL.histogramQuantile(q, list)
                return v.isNaN ? nil : v
            }
            r.latencyP50 = q(0.5)
            r.latencyP95 = q(0.95)
            r.latencyP99 = q(0.99)
            rows[w] = r
        }

        // TCP: open connections (gauge) and byte rates, inbound server side.
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
