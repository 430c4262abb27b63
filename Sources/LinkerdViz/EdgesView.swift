public import MeshMetrics
import MeshTap

/// `meshtop edges`' output: linkerd viz edges' columns, then each edge's traffic.
public enum EdgesView {
    /// The table. With `metrics: false` it is exactly linkerd viz edges' table.
    public static func table(_ edges: [EdgeMetrics], wide: Bool, metrics: Bool = true) -> String {
        var headers = ["SRC", "DST", "SRC_NS", "DST_NS"]
        if wide { headers += ["CLIENT_ID", "SERVER_ID"] }
        headers.append("SECURED")
        var alignments = Array(repeating: TextTable.Alignment.left, count: headers.count)
        if metrics {
            headers += ["SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
            alignments += Array(repeating: .right, count: 5)
        }
        var table = TextTable(headers: headers, alignments: alignments)
        for e in edges {
            var cells = [e.edge.source.name, e.edge.destination.name, e.edge.source.namespace, e.edge.destination.namespace]
            if wide { cells += [shortID(e.clientID), shortID(e.serverID)] }
            cells.append(secured(e))
            if metrics {
                let t = e.traffic
                if t.rps == nil {
                    cells += ["-", "-", "-", "-", "-"]
                } else {
                    cells += [t.success.map(StatView.percent) ?? "-", format1(t.rps ?? 0) + "rps",
                              t.latencyP50.map(StatView.milliseconds) ?? "-", t.latencyP95.map(StatView.milliseconds) ?? "-",
                              t.latencyP99.map(StatView.milliseconds) ?? "-"]
                }
            }
            table.append(cells)
        }
        return table.render()
    }

    /// linkerd viz edges' JSON array, each edge with its traffic added after linkerd's keys.
    public static func json(_ edges: [EdgeMetrics], metrics: Bool = true) -> String {
        if edges.isEmpty { return "[]\n" }
        var out = "[\n"
        for (i, e) in edges.enumerated() {
            var fields: [(String, String)] = [
                ("src", JSONText.string(e.edge.source.name)),
                ("src_namespace", JSONText.string(e.edge.source.namespace)),
                ("dst", JSONText.string(e.edge.destination.name)),
                ("dst_namespace", JSONText.string(e.edge.destination.namespace)),
                ("client_id", JSONText.string(shortID(e.clientID))),
                ("server_id", JSONText.string(shortID(e.serverID))),
                ("no_tls_reason", JSONText.string(e.noTLSReason)),
            ]
            if metrics {
                fields += [
                    ("success", JSONText.number(e.traffic.success)),
                    ("rps", JSONText.number(e.traffic.rps)),
                    ("latency_ms_p50", JSONText.number(e.traffic.latencyP50.map { $0.rounded() })),
                    ("latency_ms_p95", JSONText.number(e.traffic.latencyP95.map { $0.rounded() })),
                    ("latency_ms_p99", JSONText.number(e.traffic.latencyP99.map { $0.rounded() })),
                ]
            }
            out += "  {\n" + fields.map { "    \(JSONText.string($0.0)): \($0.1)" }.joined(separator: ",\n")
            out += "\n  }" + (i == edges.count - 1 ? "\n" : ",\n")
        }
        return out + "]\n"
    }

    /// `web.emojivoto.serviceaccount.identity.linkerd.cluster.local` → `web.emojivoto`, as linkerd shortens identities.
    public static func shortID(_ id: String) -> String {
        id.split(separator: ".", omittingEmptySubsequences: false).prefix(2).joined(separator: ".")
    }

    /// `√` for an mTLS edge, else the reason in words (`Not Provided By Service Discovery`).
    public static func secured(_ e: EdgeMetrics) -> String {
        if e.noTLSReason.isEmpty { return "√" }
        return e.noTLSReason.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
    }
}
