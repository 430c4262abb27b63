import LinkerdViz
import MeshMetrics
import TerminalUI

/// 2 Edges: every edge with its golden metrics, unhealthy first.
enum EdgesScreen {
    /// The rows in order, read from `data` as they are drawn (a big mesh has tens of thousands).
    static func rows(_ state: DashboardState) -> LazyMapCollection<[Int], EdgeMetrics> {
        let edges = state.data.edges
        return state.edgeOrder.lazy.map { edges[$0] }
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let rows = rows(state)
        guard !rows.isEmpty else {
            screen.put(state.data.edges.isEmpty ? "no edges yet: edges come from the proxies' outbound metrics (dst_* labels)" : "nothing matches the filter \"\(state.filter)\"",
                       x: 1, y: area.y, style: Style(.muted))
            return
        }
        // mTLS identities (shortened as linkerd does) when any edge has them and there is room.
        let identities = screen.width >= 120 && rows.contains { !$0.clientID.isEmpty || !$0.serverID.isEmpty }
        let trendWidth = max(0, min(20, screen.width - (identities ? 124 : 84)))
        let u = screen.unicode
        var columns = [Column("", .left), Column(state.sortTitle("SRC", .name, unicode: u), .left, cut: .middle), Column("DST", .left, cut: .middle),
                       Column(state.sortTitle("SUCCESS", .health, unicode: u)), Column(state.sortTitle("RPS", .rps, unicode: u)),
                       Column("P50"), Column("P95"), Column(state.sortTitle("P99", .p99, unicode: u)), Column("SECURED", .left)]
        if identities { columns += [Column("CLIENT ID", .left, maxWidth: 20), Column("SERVER ID", .left, maxWidth: 20)] }
        if trendWidth >= 6 { columns.append(Column("SUCCESS \(DurationText.format(Int64(trendWidth * state.refreshMs)))", .left)) }
        // Cells for the rows on screen only: a big mesh has tens of thousands of edges.
        let unicode = screen.unicode
        screen.drawScrollingTable(columns, count: rows.count, in: area, selected: state.selected) { i in
            let e = rows[i]
            let health = Health(success: e.traffic.success)
            let secured = e.noTLSReason.isEmpty ? (unicode ? "√ yes" : "yes") : "no"
            var row = [
                TableCell(health.symbol(unicode: unicode), health.style),
                TableCell(e.edge.source.name, Style(.text, bold: true)),
                TableCell(e.edge.destination.name, Style(.text, bold: true)),
                TableCell(Format.percent(e.traffic.success), health.style),
                TableCell(Format.rps(e.traffic.rps)),
                TableCell(Format.ms(e.traffic.latencyP50)),
                TableCell(Format.ms(e.traffic.latencyP95)),
                TableCell(Format.ms(e.traffic.latencyP99)),
                TableCell(secured, Style(e.noTLSReason.isEmpty ? .good : .muted)),
            ]
            if identities {
                row += [TableCell(e.clientID.isEmpty ? "-" : EdgesView.shortID(e.clientID)), TableCell(e.serverID.isEmpty ? "-" : EdgesView.shortID(e.serverID))]
            }
            if trendWidth >= 6 {
                let h = state.history[viewKey(e.edge)]?.success ?? []
                row.append(TableCell(Sparkline.render(h, width: trendWidth, unicode: unicode, floor: 0.8), Style(.accent)))
            }
            return row
        }
    }
}
