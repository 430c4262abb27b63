public import MeshMetrics
import Synchronization

/// Golden metrics from a Prometheus-compatible server that scrapes the proxies, by the PromQL
/// linkerd viz sends (reference §4.1): the server does the work, meshtop formats the answers.
public struct PrometheusSource: Sendable {
    public let client: PrometheusClient
    /// How queries are answered: one at a time, noted down (the first pass of `together`), or
    /// from answers fetched together.
    private var mode = Mode.oneByOne

    private enum Mode: Sendable {
        case oneByOne
        case noting(QueryNotes)
        case answered([String: Result<[PromSample], SourceError>])
    }

    public init(client: PrometheusClient) {
        self.client = client
    }

    /// Runs `body` with every query it sends going out at once: a first pass notes the queries
    /// (they depend on the arguments, never on answers), they are sent together, each with the
    /// client's timeout, and a second pass reads the answers. A refresh then takes as long as its
    /// slowest query, not as long as all of them one after another.
    public func together<T>(atMs: Int64, _ body: (PrometheusSource) throws(SourceError) -> T) throws(SourceError) -> T {
        let notes = QueryNotes()
        var noting = self
        noting.mode = .noting(notes)
        _ = try? body(noting)
        let list = notes.unique
        var answering = self
        answering.mode = .answered(Dictionary(uniqueKeysWithValues: zip(list, client.queries(list, atMs: atMs))))
        return try body(answering)
    }

    private func query(_ promql: String, atMs: Int64) throws(SourceError) -> [PromSample] {
        switch mode {
        case .oneByOne: return try client.query(promql, atMs: atMs)
        case .noting(let notes):
            notes.add(promql)
            return []
        case .answered(let answers):
            guard let answer = answers[promql] else { return try client.query(promql, atMs: atMs) }
            return try answer.get()
        }
    }

    /// `linkerd viz stat`'s queries for workloads of `kindLabel`.
    public func stat(kindLabel: String, namespace: String?, name: String?, windowMs: Int64, atMs: Int64) throws(SourceError) -> [GoldenMetrics] {
        var selector = ["\(kindLabel)!=\"\""]
        if let namespace { selector.append("namespace=\"\(escape(namespace))\"") }
        if let name { selector.append("\(kindLabel)=\"\(escape(name))\"") }
        let by = "namespace, \(kindLabel)"
        func id(_ labels: [String: String]) -> WorkloadID {
            WorkloadID(namespace: labels["namespace"] ?? "", name: labels[kindLabel] ?? "")
        }
        var rows: [WorkloadID: GoldenMetrics] = [:]
        func update(_ w: WorkloadID, _ change: (inout GoldenMetrics) -> Void) {
            var r = rows[w] ?? GoldenMetrics(workload: w)
            change(&r)
            rows[w] = r
        }
        let all = "{" + selector.joined(separator: ", ") + "}"
        for q in ["count(up\(all)) by (\(by))", "sum(up\(all)) by (\(by))"] {
            for s in try query(q, atMs: atMs) {
                let n = try PrometheusAnswer.podCount(s.value, query: q)
                update(id(s.labels)) { if q.hasPrefix("count") { $0.runningPods = n } else { $0.meshedPods = n } }
            }
        }
        let inbound = "{" + (["direction=\"inbound\""] + selector).joined(separator: ", ") + "}"
        for (w, t) in try traffic(selector: inbound, by: by, windowMs: windowMs, atMs: atMs, key: id) {
            update(w) { $0.traffic = t }
        }
        for s in try query("sum(tcp_open_connections\(inbound)) by (\(by))", atMs: atMs) {
            update(id(s.labels)) { $0.tcpOpenConnections = s.value }
        }
        let src = "{" + (["direction=\"inbound\"", "peer=\"src\""] + selector).joined(separator: ", ") + "}"
        let window = DurationText.format(windowMs)
        let seconds = Double(windowMs) / 1000
        for s in try query("sum(increase(tcp_read_bytes_total\(src)[\(window)])) by (\(by))", atMs: atMs) {
            update(id(s.labels)) { $0.readBytesRate = s.value / seconds }
        }
        for s in try query("sum(increase(tcp_write_bytes_total\(src)[\(window)])) by (\(by))", atMs: atMs) {
            update(id(s.labels)) { $0.writeBytesRate = s.value / seconds }
        }
        return rows.values.sorted { $0.workload < $1.workload }
    }

    /// Each workload's success over `windowMs`: `stat`'s success query alone (one query), for SLO
    /// burn rates over long windows.
    public func success(kindLabel: String, namespace: String?, windowMs: Int64, atMs: Int64) throws(SourceError) -> [WorkloadID: Double] {
        var selector = ["direction=\"inbound\"", "\(kindLabel)!=\"\""]
        if let namespace { selector.append("namespace=\"\(escape(namespace))\"") }
        let traffic = try traffic(selector: "{" + selector.joined(separator: ", ") + "}", by: "namespace, \(kindLabel)", windowMs: windowMs,
                                  atMs: atMs, key: { WorkloadID(namespace: $0["namespace"] ?? "", name: $0[kindLabel] ?? "") }, latency: false)
        return traffic.compactMapValues(\.success)
    }

    /// Edges from outbound metrics: linkerd viz edges' gauge query, and the traffic queries grouped
    /// by source and destination.
    public func edges(kindLabel: String, namespace: String?, windowMs: Int64, atMs: Int64) throws(SourceError) -> [EdgeMetrics] {
        let dst = "dst_" + kindLabel
        var selector = ["direction=\"outbound\"", "\(kindLabel)!=\"\"", "\(dst)!=\"\""]
        if let namespace { selector.append("namespace=\"\(escape(namespace))\"") }
        let all = "{" + selector.joined(separator: ", ") + "}"
        func id(_ l: [String: String]) -> EdgeID {
            EdgeID(source: WorkloadID(namespace: l["namespace"] ?? "", name: l[kindLabel] ?? ""),
                   destination: WorkloadID(namespace: l["dst_namespace"] ?? "", name: l[dst] ?? ""))
        }
        var out: [EdgeID: EdgeMetrics] = [:]
        let gauge = "sum(tcp_open_connections\(all)) by (\(kindLabel), \(dst), server_id, namespace, dst_namespace, no_tls_reason)"
        for s in try query(gauge, atMs: atMs) where s.value > 0 {
            let e = id(s.labels)
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.tcpOpenConnections += s.value
            m.serverID = s.labels["server_id"] ?? ""
            m.noTLSReason = s.labels["no_tls_reason"] ?? ""
            out[e] = m
        }
        for (e, t) in try traffic(selector: all, by: "namespace, \(kindLabel), dst_namespace, \(dst)", windowMs: windowMs, atMs: atMs, key: id) {
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.traffic = t
            out[e] = m
        }
        return out.values.sorted { $0.edge < $1.edge }
    }

    /// `linkerd viz routes`' queries for the inbound routes of one workload.
    public func routes(kindLabel: String, name: String, namespace: String?, windowMs: Int64, atMs: Int64) throws(SourceError) -> [RouteMetrics] {
        var selector = ["direction=\"inbound\"", "\(kindLabel)=\"\(escape(name))\""]
        if let namespace { selector.append("namespace=\"\(escape(namespace))\"") }
        let all = "{" + selector.joined(separator: ", ") + "}"
        func id(_ l: [String: String]) -> [String] { [l["rt_route"] ?? "", l["dst"] ?? ""] }
        var out: [[String]: RouteMetrics] = [:]
        func row(_ k: [String]) -> RouteMetrics { out[k] ?? RouteMetrics(route: k[0].isEmpty ? nil : k[0], authority: k[1]) }
        for s in try query("count(route_request_total\(all)) by (rt_route, dst)", atMs: atMs) { out[id(s.labels)] = row(id(s.labels)) }
        for (k, t) in try traffic(selector: all, by: "rt_route, dst", windowMs: windowMs, atMs: atMs, key: id, family: "route_") {
            var r = row(k)
            r.effective = t
            out[k] = r
        }
        for (k, t) in try traffic(selector: all, by: "rt_route, dst", windowMs: windowMs, atMs: atMs, key: id, family: "route_actual_", latency: false) {
            var r = row(k)
            r.actual = t
            out[k] = r
        }
        return out.values.sorted { ($0.route ?? "\u{10FFFF}", $0.authority) < ($1.route ?? "\u{10FFFF}", $1.authority) }
    }

    /// `sum(increase(response_total…[w])) by (…, classification, tls)` and the three
    /// `histogram_quantile(q, sum(irate(response_latency_ms_bucket…[w])) by (le, …))`.
    func traffic<Key: Hashable>(selector: String, by: String, windowMs: Int64, atMs: Int64,
                                key: ([String: String]) -> Key, family: String = "", latency: Bool = true) throws(SourceError) -> [Key: TrafficMetrics] {
        let window = DurationText.format(windowMs)
        var success: [Key: Double] = [:]
        var failure: [Key: Double] = [:]
        for s in try query("sum(increase(\(family)response_total\(selector)[\(window)])) by (\(by), classification, tls)", atMs: atMs) {
            if s.labels["classification"] == "success" { success[key(s.labels), default: 0] += s.value }
            else if s.labels["classification"] == "failure" { failure[key(s.labels), default: 0] += s.value }
        }
        var out: [Key: TrafficMetrics] = [:]
        for k in Set(success.keys).union(failure.keys) {
            let s = success[k] ?? 0, f = failure[k] ?? 0
            var t = TrafficMetrics()
            t.rps = (s + f) / (Double(windowMs) / 1000)
            if s + f > 0 { t.success = s / (s + f) }
            out[k] = t
        }
        for (q, path) in [("0.5", \TrafficMetrics.latencyP50), ("0.95", \TrafficMetrics.latencyP95), ("0.99", \TrafficMetrics.latencyP99)] where latency {
            for s in try query("histogram_quantile(\(q), sum(irate(\(family)response_latency_ms_bucket\(selector)[\(window)])) by (le, \(by)))", atMs: atMs) {
                var t = out[key(s.labels)] ?? TrafficMetrics()
                t[keyPath: path] = s.value.isNaN ? nil : s.value
                out[key(s.labels)] = t
            }
        }
        return out
    }

}

/// The queries a first pass of `PrometheusSource.together` sent, in order, once each.
final class QueryNotes: @unchecked Sendable {
    // @unchecked: used by one pass on one thread, then read.
    private var seen: Set<String> = []
    private(set) var unique: [String] = []

    func add(_ q: String) {
        if seen.insert(q).inserted { unique.append(q) }
    }
}

/// A label value inside a PromQL string literal.
func escape(_ v: String) -> String {
    v.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"")
}

/// The dashboard over a Prometheus server: each refresh sends linkerd viz's queries for now. When
/// the server fails, the last good numbers stay on screen and the problem shows on the message line.
public final class PrometheusFeed: SnapshotFeed {
    private let source: PrometheusSource
    private let clock: any TimeSource
    private let lastGood = Mutex<MeshSnapshot?>(nil)

    public init(source: PrometheusSource, clock: any TimeSource = WallClock()) {
        self.source = source
        self.clock = clock
    }

    public func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        let at = clock.nowMs()
        var d = MeshSnapshot()
        d.atMs = at
        d.windowMs = query.windowMs
        do {
            (d.workloads, d.edges) = try source.together(atMs: at) { s throws(SourceError) in
                (try s.stat(kindLabel: query.kindLabel, namespace: query.namespace, name: nil, windowMs: query.windowMs, atMs: at),
                 try s.edges(kindLabel: query.kindLabel, namespace: query.namespace, windowMs: query.windowMs, atMs: at))
            }
            d.targetsUp = d.workloads.reduce(0) { $0 + $1.meshedPods }
            d.targetsTotal = d.workloads.reduce(0) { $0 + $1.runningPods }
        } catch {
            var kept = lastGood.withLock { $0 } ?? d
            kept.problems = [error.description]
            return kept
        }
        // SLO windows: Prometheus holds its own history, asked at the same moment, all at once. A
        // server that cannot answer them (a 6h range too big for it) costs the SLO view, not the rest.
        if !query.successWindowsMs.isEmpty {
            do {
                let answers = try source.together(atMs: at) { s throws(SourceError) in
                    try query.successWindowsMs.map { w throws(SourceError) in
                        (w, try s.success(kindLabel: query.kindLabel, namespace: query.namespace, windowMs: w, atMs: at))
                    }
                }
                for (window, successes) in answers {
                    for (workload, success) in successes { d.windowedSuccess[workload, default: [:]][window] = success }
                }
            } catch {
                d.problems.append("SLO windows: \(error.description)")
            }
        }
        lastGood.withLock { $0 = d }
        return d
    }
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
