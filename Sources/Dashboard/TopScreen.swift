import LinkerdViz
import MeshMetrics
import MeshTap
import TerminalUI

/// 5 Top: requests grouped by source, destination and path, from tap, as linkerd viz top.
enum TopScreen {
    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let rows = state.topRows.filter { state.matchesFilter("\($0.source) \($0.destination) \($0.method) \($0.path)") }
        guard !rows.isEmpty else {
            let why = state.tapSources == 0 ? "no tap source: start meshtop with --tap host:port (the demo has them)"
                : state.top.rows.isEmpty ? "waiting for requests from \(state.tapSources) tap source(s)…"
                : state.filter.isEmpty ? "no request finished in the last \(DurationText.format(state.data.windowMs > 0 ? state.data.windowMs : state.windowMs))"
                : "nothing matches the filter \"\(state.filter)\""
            screen.put(why, x: 1, y: area.y, style: Style(.muted))
            return
        }
        // Names and paths give way first, so the numbers stay on screen; P50/P99 when there is room.
        let wide = area.width >= 110
        let fixed = 1 + 5 + 5 + 5 + 5 + 7 + 2 * 8 + (wide ? 14 : 0)
        let flexible = max(8, (area.width - fixed) / 3)
        var columns = [Column("", .left), Column("Source", .left, maxWidth: flexible, cut: .middle), Column("Destination", .left, maxWidth: flexible, cut: .middle),
                       Column("Request", .left, maxWidth: flexible + (area.width - fixed) % 3, cut: .distinct),
                       Column("Count"), Column("Best"), Column("Worst"), Column("Last"), Column("Success")]
        if wide { columns += [Column("P50"), Column("P99")] }
        let cells: [[TableCell]] = rows.map { r in
            let health = Health(success: r.successRate)
            var row = [
                TableCell(health.symbol(unicode: screen.unicode), health.style),
                TableCell(r.source), TableCell(r.destination, Style(.text, bold: true)), TableCell("\(r.method) \(r.path)"),
                TableCell(String(r.count)), TableCell(TopAggregator.format(nanos: r.best)), TableCell(TopAggregator.format(nanos: r.worst)),
                TableCell(TopAggregator.format(nanos: r.last)), TableCell(r.successRate.map(StatView.percent) ?? "-", health.style),
            ]
            if wide {
                row += [TableCell(r.latencies.quantile(0.5).map { TopAggregator.format(nanos: $0) } ?? "-"),
                        TableCell(r.latencies.quantile(0.99).map { TopAggregator.format(nanos: $0) } ?? "-")]
            }
            return row
        }
        screen.drawScrollingTable(columns, rows: cells, in: area, selected: state.selected)
    }
}
