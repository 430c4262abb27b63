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

        let edgeLabels = ["namespace", kindLabel, "dst_namespace", dstLabel]
        func edge(_ g: [String]) -> EdgeID {
            EdgeID(source: WorkloadID(namespace: g[0], name: g[1]), destination: WorkloadID(namespace: g[2], name: g[3]))
        }

        var out: [EdgeID: EdgeMetrics] = [:]
        // Open connections, with the TLS labels that say whether and how the edge is secured.
        let connections = selection("tcp_open_connections", matchers, groupBy: edgeLabels + ["server_id", "no_tls_reason"], extra: "")
        var open = [Double](repeating: 0, count: connections.groups.count)
        for (i, series) in connections.ids.enumerated() {
            guard let p = latest(of: series, at: atMs) else { continue }
            open[Int(connections.group[i])] += p.v
        }
        for (g, value) in open.enumerated() where value > 0 {
            let labels = connections.groups[g]
            let e = edge(labels)
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.tcpOpenConnections += value
            m.serverID = labels[4]
            m.noTLSReason = labels[5]
            out[e] = m
        }
        for (g, t) in traffic(matchers, groupBy: edgeLabels, windowMs: windowMs, at: atMs) where t.rps != nil {
            let e = edge(g)
            var m = out[e] ?? EdgeMetrics(edge: e)
            m.traffic = t
            out[e] = m
        }
        // Identities and TLS state from the edge's request series, where connections did not say.
        let requests = selection("request_total", matchers, groupBy: edgeLabels + ["server_id", "no_tls_reason", "client_id"], extra: "")
        for labels in requests.groups {
            let e = edge(labels)
            guard var m = out[e] else { continue }
            if m.serverID.isEmpty { m.serverID = labels[4] }
            if m.noTLSReason.isEmpty { m.noTLSReason = labels[5] }
            if m.clientID.isEmpty { m.clientID = labels[6] }
            out[e] = m
        }
        // The client's identity is the source workload's own (as linkerd looks it up from the source
        // pod's service account): meshproxy reports it in meshproxy_identity_info.
        let identities = selection("meshproxy_identity_info", [.ne(kindLabel, ""), .ne("identity", "")], groupBy: ["namespace", kindLabel, "identity"], extra: "")
        var identityOf: [WorkloadID: String] = [:]
        for g in identities.groups { identityOf[WorkloadID(namespace: g[0], name: g[1])] = g[2] }
        for (e, var m) in out where m.clientID.isEmpty && m.noTLSReason.isEmpty && !m.serverID.isEmpty {
            if let id = identityOf[e.source] {
                m.clientID = id
                out[e] = m
            }
        }
        // Sort the keys, then copy each row once: moving the rows themselves (with their bucket
        // arrays) through a sort of tens of thousands of edges costs more than computing them.
        return out.keys.sorted().map { out[$0]! }
    }
}
