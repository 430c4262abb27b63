#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import MeshMetrics
import MeshTap

/// How a one-shot command prints: linkerd viz's `-o table|wide|json`.
public enum OutputFormat: String, Sendable, CaseIterable {
    case table, wide, json
}

/// `meshtop stat`'s output, formatted exactly as `linkerd viz stat` formats its columns.
public enum StatView {
    /// The table (or wide table) for `rows`. With `showNamespace` the first column is NAMESPACE,
    /// as with linkerd's `-A`.
    public static func table(_ rows: [GoldenMetrics], showNamespace: Bool, wide: Bool = false) -> String {
        var headers = ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"]
        if wide { headers += ["READ_BYTES/SEC", "WRITE_BYTES/SEC"] }
        if showNamespace { headers.insert("NAMESPACE", at: 0) }
        var alignments = Array(repeating: TextTable.Alignment.right, count: headers.count)
        alignments[0] = .left
        if showNamespace { alignments[1] = .left }
        var table = TextTable(headers: headers, alignments: alignments)
        for r in rows {
            var cells = [r.workload.name, "\(r.meshedPods)/\(r.runningPods)"]
            if r.rps == nil {
                cells += ["-", "-", "-", "-", "-", "-"]
                if wide { cells += ["-", "-"] }
            } else {
                cells += [
                    r.success.map(percent) ?? "-",
                    String(format1(r.rps ?? 0)) + "rps",
                    r.latencyP50.map(milliseconds) ?? "-",
                    r.latencyP95.map(milliseconds) ?? "-",
                    r.latencyP99.map(milliseconds) ?? "-",
                    r.tcpOpenConnections.map { String(Int(($0).rounded())) } ?? "-",
                ]
                if wide {
                    cells += [bytesRate(r.readBytesRate ?? 0), bytesRate(r.writeBytesRate ?? 0)]
                }
            }
            if showNamespace { cells.insert(r.workload.namespace, at: 0) }
            table.append(cells)
        }
        return table.render()
    }

    /// The JSON array linkerd viz stat prints with `-o json`: `success` is a fraction, missing values are null.
    public static func json(_ rows: [GoldenMetrics], kind: String) -> String {
        if rows.isEmpty { return "[]\n" }
        var out = "[\n"
        for (i, r) in rows.enumerated() {
            var fields: [(String, String)] = [
                ("namespace", JSONText.string(r.workload.namespace)),
                ("kind", JSONText.string(kind)),
                ("name", JSONText.string(r.workload.name)),
                ("success", JSONText.number(r.success)),
                ("rps", JSONText.number(r.rps)),
                ("latency_ms_p50", JSONText.number(r.latencyP50.map { $0.rounded() })),
                ("latency_ms_p95", JSONText.number(r.latencyP95.map { $0.rounded() })),
                ("latency_ms_p99", JSONText.number(r.latencyP99.map { $0.rounded() })),
            ]
            fields.append(("tcp_open_connections", JSONText.number(r.tcpOpenConnections)))
            fields.append(("tcp_read_bytes_rate", JSONText.number(r.readBytesRate)))
            fields.append(("tcp_write_bytes_rate", JSONText.number(r.writeBytesRate)))
            out += "  {\n"
            out += fields.map { "    \(JSONText.string($0.0)): \($0.1)" }.joined(separator: ",\n")
            out += "\n  }" + (i == rows.count - 1 ? "\n" : ",\n")
        }
        return out + "]\n"
    }

    public static func percent(_ fraction: Double) -> String { format2(fraction * 100) + "%" }

    public static func milliseconds(_ ms: Double) -> String { String(Int64(ms.rounded())) + "ms" }

    static func bytesRate(_ rate: Double) -> String { format1(rate) + "B/s" }
}

/// `%.1f` and `%.2f` as C (and Go) print them.
public func format1(_ v: Double) -> String { cFormat("%.1f", v) }
public func format2(_ v: Double) -> String { cFormat("%.2f", v) }

private func cFormat(_ format: String, _ v: Double) -> String {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buf in
        _ = withVaList([v]) { vsnprintf(buf.baseAddress!, 64, format, $0) }
        return String(cString: buf.baseAddress!)
    }
}
