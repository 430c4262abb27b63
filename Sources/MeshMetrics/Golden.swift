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
    /// The latency distribution behind the quantiles.
    public var latencyBuckets: [LatencyBucket] = []
    /// The latency distribution over the whole window.
    public var windowLatencyBuckets: [LatencyBucket] = []

    /// The traffic part: success, RPS, quantiles and the latency distribution behind them.
    public var traffic: TrafficMetrics {
        get {
            var t = TrafficMetrics()
            t.success = success
            t.rps = rps
            t.latencyP50 = latencyP50
            t.latencyP95 = latencyP95
            t.latencyP99 = latencyP99
            t.buckets = latencyBuckets
            t.windowBuckets = windowLatencyBuckets
            return t
        }
        set {
            success = newValue.success
            rps = newValue.rps
            latencyP50 = newValue.latencyP50
            latencyP95 = newValue.latencyP95
            latencyP99 = newValue.latencyP99
            latencyBuckets = newValue.buckets
            windowLatencyBuckets = newValue.windowBuckets
        }
    }

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

/// One cumulative latency bucket: requests per second at or under `le` milliseconds.
public struct LatencyBucket: Sendable, Equatable {
    public var le: Double
    public var perSecond: Double
}

/// Success, request rate and latency quantiles of one group of series.
public struct TrafficMetrics: Sendable, Equatable {
    /// The cumulative latency distribution the quantiles come from, by bound: the latest rate
    /// (`irate`, as linkerd viz's quantiles use), so it covers the last scrape interval only.
    public var buckets: [LatencyBucket] = []
    /// The cumulative latency distribution over the whole window (`increase` per bound, per
    /// second of the window): what a histogram headed "over the window" shows.
    public var windowBuckets: [LatencyBucket] = []
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
    /// Traffic metrics grouped by the values of the labels `groupBy` over the window ending at
    /// `end`, as linkerd viz's PromQL computes them: `sum(increase(response_total{…}[w])) by (…,
    /// classification)` for success and RPS, and `histogram_quantile(q, sum(irate(
    /// response_latency_ms_bucket{…}[w])) by (le, …))` for latency.
    /// `family` selects Linkerd's endpoint metrics (`""`), ServiceProfile route metrics (`"route_"`),
    /// or per-attempt route metrics (`"route_actual_"`, which have no latency).
    public func traffic(_ matchers: [Matcher], groupBy: [String], windowMs: Int64, at end: Int64, family: String = "") -> [[String]: TrafficMetrics] {
        let start = end - windowMs
        let windowSeconds = Double(windowMs) / 1000

        let responses = selection(family + "response_total", matchers, groupBy: groupBy, extra: "classification")
        let successIndex = responses.extraValues.firstIndex(of: "success").map(Int32.init) ?? -1
        let failureIndex = responses.extraValues.firstIndex(of: "failure").map(Int32.init) ?? -1
        var successes = [Double](repeating: 0, count: responses.groups.count)
        var failures = [Double](repeating: 0, count: responses.groups.count)
        var seen = [Bool](repeating: false, count: responses.groups.count)
        for (i, id) in responses.ids.enumerated() {
            let cls = responses.extra[i]
            guard cls == successIndex || cls == failureIndex,
                  let inc = PromQL.increase(points(of: id, from: start, through: end), start: start, end: end) else { continue }
            let g = Int(responses.group[i])
            if cls == successIndex { successes[g] += inc } else { failures[g] += inc }
            seen[g] = true
        }
        var out: [[String]: TrafficMetrics] = [:]
        for g in responses.groups.indices where seen[g] {
            let s = successes[g], f = failures[g]
            var t = TrafficMetrics()
            if s + f > 0 { t.success = s / (s + f) }
            t.rps = (s + f) / windowSeconds
            out[responses.groups[g]] = t
        }

        // Buckets: each `le` resolved once to a column; rates summed into a groups × bounds table.
        let buckets = selection(family + "response_latency_ms_bucket", matchers, groupBy: groupBy, extra: "le")
        let bounds = buckets.extraValues.map { $0 == "+Inf" ? Double.infinity : (Double($0) ?? .nan) }
        let width = bounds.count
        var table = [Double](repeating: 0, count: buckets.groups.count * width)
        var windowTable = [Double](repeating: 0, count: buckets.groups.count * width)
        var present = [Bool](repeating: false, count: buckets.groups.count * width)
        for (i, id) in buckets.ids.enumerated() {
            let column = Int(buckets.extra[i])
            let samples = points(of: id, from: start, through: end)
            guard !bounds[column].isNaN, let r = PromQL.irate(samples) else { continue }
            let cell = Int(buckets.group[i]) * width + column
            table[cell] += r
            windowTable[cell] += (PromQL.increase(samples, start: start, end: end) ?? 0) / windowSeconds
            present[cell] = true
        }
        for g in buckets.groups.indices {
            var list: [(le: Double, count: Double)] = []
            for c in 0..<width where present[g * width + c] { list.append((bounds[c], table[g * width + c])) }
            guard !list.isEmpty else { continue }
            func q(_ q: Double) -> Double? {
                let v = PromQL.histogramQuantile(q, list)
                return v.isNaN ? nil : v
            }
            var t = out[buckets.groups[g]] ?? TrafficMetrics()
            t.buckets = list.sorted { $0.le < $1.le }.map { LatencyBucket(le: $0.le, perSecond: $0.count) }
            // Extrapolated per series, so a bound may come out a hair under the one before it.
            var running = 0.0
            t.windowBuckets = (0..<width).filter { present[g * width + $0] }
                .sorted { bounds[$0] < bounds[$1] }
                .map { c in
                    running = max(running, windowTable[g * width + c])
                    return LatencyBucket(le: bounds[c], perSecond: running)
                }
            t.latencyP50 = q(0.5)
            t.latencyP95 = q(0.95)
            t.latencyP99 = q(0.99)
            out[buckets.groups[g]] = t
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

        var rows: [WorkloadID: GoldenMetrics] = [:]
        func row(_ id: WorkloadID) -> GoldenMetrics { rows[id] ?? GoldenMetrics(workload: id) }

        let groupBy = ["namespace", groupLabel]
        func id(_ group: [String]) -> WorkloadID { WorkloadID(namespace: group[0], name: group[1]) }

        // Instances: `up` series with a sample in the lookback (a pod gone for longer is not running).
        let up = selection("up", base, groupBy: groupBy, extra: "")
        for (i, series) in up.ids.enumerated() {
            guard let p = latest(of: series, at: end) else { continue }
            let w = id(up.groups[Int(up.group[i])])
            var r = row(w)
            r.runningPods += 1
            if p.v == 1 { r.meshedPods += 1 }
            rows[w] = r
        }
        for (group, t) in traffic(inbound, groupBy: groupBy, windowMs: query.windowMs, at: end) {
            let w = id(group)
            var r = row(w)
            r.traffic = t
            rows[w] = r
        }
        let connections = selection("tcp_open_connections", inbound, groupBy: groupBy, extra: "")
        var open = [Double?](repeating: nil, count: connections.groups.count)
        for (i, series) in connections.ids.enumerated() {
            guard let p = latest(of: series, at: end) else { continue }
            open[Int(connections.group[i])] = (open[Int(connections.group[i])] ?? 0) + p.v
        }
        for (g, value) in open.enumerated() {
            guard let value else { continue }
            let w = id(connections.groups[g])
            var r = row(w)
            r.tcpOpenConnections = value
            rows[w] = r
        }
        for (metric, path) in [("tcp_read_bytes_total", \GoldenMetrics.readBytesRate), ("tcp_write_bytes_total", \GoldenMetrics.writeBytesRate)] {
            let bytes = selection(metric, inbound + [.eq("peer", "src")], groupBy: groupBy, extra: "")
            for (i, series) in bytes.ids.enumerated() {
                guard let inc = PromQL.increase(points(of: series, from: start, through: end), start: start, end: end) else { continue }
                let w = id(bytes.groups[Int(bytes.group[i])])
                var r = row(w)
                r[keyPath: path] = (r[keyPath: path] ?? 0) + inc / windowSeconds
                rows[w] = r
            }
        }
        return rows.keys.sorted().map { rows[$0]! }
    }
}
