public import MeshMetrics
import MeshTap

/// `meshtop routes`' output, as `linkerd viz routes` prints it.
public enum RoutesView {
    /// The table for one resource, followed by a blank line (linkerd prints one per resource).
    public static func table(_ routes: [RouteMetrics], wide: Bool) -> String {
        let headers = wide
            ? ["ROUTE", "SERVICE", "EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS", "ACTUAL_RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
            : ["ROUTE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
        var alignments = Array(repeating: TextTable.Alignment.right, count: headers.count)
        alignments[0] = .left
        var table = TextTable(headers: headers, alignments: alignments)
        for r in routes {
            var cells = [r.route ?? "[DEFAULT]", service(r.authority)]
            let e = r.effective
            if (e.rps ?? 0) == 0 {  // no requests in the window: linkerd prints dashes
                cells += Array(repeating: "-", count: headers.count - 2)
            } else {
                cells += [e.success.map(StatView.percent) ?? "-", format1(e.rps ?? 0) + "rps"]
                if wide {
                    cells += [r.actual.success.map(StatView.percent) ?? "-", r.actual.rps.map { format1($0) + "rps" } ?? "-"]
                }
                cells += [e.latencyP50.map(StatView.milliseconds) ?? "-", e.latencyP95.map(StatView.milliseconds) ?? "-",
                          e.latencyP99.map(StatView.milliseconds) ?? "-"]
            }
            table.append(cells)
        }
        return table.render() + "\n"
    }

    /// `{"deploy/NAME": [{route, authority, success, rps, latency_ms_p50, …}]}`.
    public static func json(_ routes: [RouteMetrics], resource: String) -> String {
        var out = "{\n  \(JSONText.string(resource)): ["
        for (i, r) in routes.enumerated() {
            let e = r.effective
            // As linkerd: a route without requests has success 0 and rps 0 in JSON.
            let fields: [(String, String)] = [
                ("route", JSONText.string(r.route ?? "[DEFAULT]")),
                ("authority", JSONText.string(service(r.authority))),
                ("success", JSONText.number(e.success ?? 0)),
                ("rps", JSONText.number(e.rps ?? 0)),
                ("latency_ms_p50", JSONText.number(e.latencyP50.map { $0.rounded() })),
                ("latency_ms_p95", JSONText.number(e.latencyP95.map { $0.rounded() })),
                ("latency_ms_p99", JSONText.number(e.latencyP99.map { $0.rounded() })),
            ]
            out += (i == 0 ? "\n" : ",\n") + "    {\n"
            out += fields.map { "      \(JSONText.string($0.0)): \($0.1)" }.joined(separator: ",\n")
            out += "\n    }"
        }
        return out + (routes.isEmpty ? "]\n}\n" : "\n  ]\n}\n")
    }

    /// `web-svc.emojivoto.svc.cluster.local:8080` → `web-svc`: the service a route's authority names.
    static func service(_ authority: String) -> String {
        let host = authority.split(separator: ":").first.map(String.init) ?? authority
        return host.split(separator: ".").first.map(String.init) ?? host
    }
}
