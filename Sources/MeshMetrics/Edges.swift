/// One edge of the service graph: a source workload calling a destination workload, seen from
/// the source's outbound proxy.
public struct EdgeID: Hashable, Sendable, Comparable {
    public var source: WorkloadID
    public var destination: WorkloadID

    public init(source: WorkloadID, destination: WorkloadID) {
        self.source = source
        self.destination = destination
    }

    public static func < (a: EdgeID, b: EdgeID) -> Bool {
        (a.source, a.destination) < (b.source, b.destination)
    }
}

/// What `linkerd viz edges` shows of an edge, plus its traffic over the window.
public struct EdgeMetrics: Sendable, Equatable {
    public var edge: EdgeID
    /// The client's and server's mTLS identities, when the edge is secured.
    public var clientID: String
    public var serverID: String
    /// Why the edge is not secured (`not_provided_by_service_discovery`, …), empty when it is.
    public var noTLSReason: String
    public var tcpOpenConnections: Double
    public var traffic: TrafficMetrics

    public init(edge: EdgeID, clientID: String = "", serverID: String = "", noTLSReason: String = "",
                tcpOpenConnections: Double = 0, traffic: TrafficMetrics = TrafficMetrics()) {
        self.edge = edge
        self.clientID = clientID
        self.serverID = serverID
        self.noTLSReason = noTLSReason
        self.tcpOpenConnections = tcpOpenConnections
        self.traffic = traffic
    }
}

extension MetricStore {
    /// Every edge between workloads of kind `kindLabel` (`deployment`, …): those with open
    /// connections (linkerd viz edges' `sum(tcp_open_connections{direction="outbound", <kind>!="",
    /// dst_<kind>!=""}) by (…)`, zeros skipped) and those with traffic in the window, each with its
    /// success rate, RPS and latency from the source's outbound metrics.
    public func edges(kindLabel: String, namespace: String?, windowMs: Int64, atMs: Int64) -> [EdgeMetrics] {
        let dstLabel = "dst_" + kindLabel
        var matchers: [Matcher] = [.eq("direction", "outbound"), .ne(kindLabel, ""), .ne(dstLabel, "")]
        if let namespace { matchers.append(.eq("namespace", namespace)) }

        func edge(_ key: SeriesKey) -> EdgeID {
            EdgeID(source: WorkloadID(namespace: key[label: "namespace"] ?? "", name: key[label: kindLabel] ?? ""),
                   destination: WorkloadID(namespace: key[label: "dst_namespace"] ?? "", name: key[label: dstLabel] ?? ""))
        }

        var out: [EdgeID: EdgeMetrics] = [:]
        for id in select("tcp_open_connections", matchers) {
            guard let p = latest(of: id, at: atMs), p.v > 0 else { continue }
            let key = keys[id]
            let e = edge(key)
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.tcpOpenConnections += p.v
            m.serverID = key[label: "server_id"] ?? m.serverID
            m.noTLSReason = key[label: "no_tls_reason"] ?? m.noTLSReason
            out[e] = m
        }
        for (e, t) in traffic(matchers, windowMs: windowMs, at: atMs, group: edge) where t.rps != nil {
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.traffic = t
            out[e] = m
        }
        // Identities and TLS state from the edge's request series, where connections did not say.
        for id in select("request_total", matchers) {
            let key = keys[id]
            let e = edge(key)
            guard var m = out[e] else { continue }
            if m.serverID.isEmpty { m.serverID = key[label: "server_id"] ?? "" }
            if m.noTLSReason.isEmpty { m.noTLSReason = key[label: "no_tls_reason"] ?? "" }
            if m.clientID.isEmpty { m.clientID = key[label: "client_id"] ?? "" }
            out[e] = m
        }
        return out.values.sorted { $0.edge < $1.edge }
    }
}
