public import MeshTap

/// `meshtop top`'s table, as `linkerd viz top` lays it out: Source, Destination, Method, Path,
/// Count, Best, Worst, Last, Success Rate, two spaces apart; `wide` adds P50 and P99.
public enum TopView {
    public static func table(_ rows: [TopRow], wide: Bool = false, hideSources: Bool = false) -> String {
        var headers = ["Source", "Destination", "Method", "Path", "Count", "Best", "Worst", "Last", "Success Rate"]
        var minimums = [0, 0, 10, 0, 6, 6, 6, 6, 12]
        var alignments: [TextTable.Alignment] = [.left, .left, .left, .left, .right, .right, .right, .right, .right]
        if wide {
            headers += ["P50", "P99"]
            minimums += [6, 6]
            alignments += [.right, .right]
        }
        if hideSources {
            headers.removeFirst()
            minimums.removeFirst()
            alignments.removeFirst()
        }
        var table = TextTable(headers: headers, alignments: alignments, minimumWidths: minimums)
        for r in rows {
            var cells = [r.source, r.destination, r.method, r.path, String(r.count),
                         TopAggregator.format(nanos: r.best), TopAggregator.format(nanos: r.worst), TopAggregator.format(nanos: r.last),
                         r.successRate.map(StatView.percent) ?? "-"]
            if wide {
                cells += [r.latencies.quantile(0.5).map { TopAggregator.format(nanos: $0) } ?? "-",
                          r.latencies.quantile(0.99).map { TopAggregator.format(nanos: $0) } ?? "-"]
            }
            if hideSources { cells.removeFirst() }
            table.append(cells)
        }
        return table.render(gap: 2)
    }

    /// The rows as a JSON array (latencies in milliseconds).
    public static func json(_ rows: [TopRow]) -> String {
        if rows.isEmpty { return "[]\n" }
        func ms(_ n: Int64?) -> String { JSONText.number(n.map { Double($0) / 1e6 }) }
        let items = rows.map { r in
            "  {\n" + [
                ("source", JSONText.string(r.source)), ("destination", JSONText.string(r.destination)),
                ("method", JSONText.string(r.method)), ("path", JSONText.string(r.path)), ("count", String(r.count)),
                ("best_ms", ms(r.best)), ("worst_ms", ms(r.worst)), ("last_ms", ms(r.last)),
                ("success", JSONText.number(r.successRate)),
                ("latency_ms_p50", ms(r.latencies.quantile(0.5))), ("latency_ms_p99", ms(r.latencies.quantile(0.99))),
            ].map { "    \(JSONText.string($0.0)): \($0.1)" }.joined(separator: ",\n") + "\n  }"
        }
        return "[\n" + items.joined(separator: ",\n") + "\n]\n"
    }
}
