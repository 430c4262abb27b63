/// One ServiceProfile route of a workload, as `linkerd viz routes` shows it.
public struct RouteMetrics: Sendable, Equatable {
    /// The route's name, or nil for requests no route matched (`[DEFAULT]`).
    public var route: String?
    /// The `dst` authority the route belongs to.
    public var authority: String
    /// Counted once per request (what the caller saw).
    public var effective: TrafficMetrics
    /// Counted once per attempt, retries included: success and RPS only.
    public var actual: TrafficMetrics

    public init(route: String?, authority: String, effective: TrafficMetrics = TrafficMetrics(), actual: TrafficMetrics = TrafficMetrics()) {
        self.route = route
        self.authority = authority
        self.effective = effective
        self.actual = actual
    }
}

extension MetricStore {
    /// The inbound routes of the workloads `kindLabel`=`name` in `namespace`: every route their
    /// proxies know (from `route_request_total`), with `sum(increase(route_response_total{…}[w]))
    /// by (rt_route, dst, classification)` and the quantiles of `route_response_latency_ms`.
    /// Named routes sorted by name, then `[DEFAULT]`.
    public func routes(kindLabel: String, name: String, namespace: String?, windowMs: Int64, atMs: Int64) -> [RouteMetrics] {
        var matchers: [Matcher] = [.eq("direction", "inbound"), .eq(kindLabel, name)]
        if let namespace { matchers.append(.eq("namespace", namespace)) }
        let groupBy = ["rt_route", "dst"]
        var out: [[String]: RouteMetrics] = [:]
        for group in selection("route_request_total", matchers, groupBy: groupBy, extra: "").groups {
            out[group] = RouteMetrics(route: group[0].isEmpty ? nil : group[0], authority: group[1])
        }
        for (group, t) in traffic(matchers, groupBy: groupBy, windowMs: windowMs, at: atMs, family: "route_") {
            var r = out[group] ?? RouteMetrics(route: group[0].isEmpty ? nil : group[0], authority: group[1])
            r.effective = t
            out[group] = r
        }
        for (group, t) in traffic(matchers, groupBy: groupBy, windowMs: windowMs, at: atMs, family: "route_actual_") {
            var r = out[group] ?? RouteMetrics(route: group[0].isEmpty ? nil : group[0], authority: group[1])
            r.actual = t
            out[group] = r
        }
        return out.values.sorted { a, b in
            switch (a.route, b.route) {
            case let (x?, y?): return (x, a.authority) < (y, b.authority)
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.authority < b.authority
            }
        }
    }
}
