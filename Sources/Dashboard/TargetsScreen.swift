import MeshMetrics
import TerminalUI

/// 0 Targets: every scrape target, worst first: its state, the workload it belongs to, when it
/// last answered, how many scrapes in a row failed, and the last error in full.
enum TargetsScreen {
    static func rows(_ state: DashboardState) -> [TargetRow] {
        state.data.targets.filter { state.matchesFilter("\($0.url) \($0.workload) \($0.state.rawValue)") }
    }

    static func health(_ t: TargetRow) -> Health {
        switch t.state {
        case .up: return .healthy
        case .slow: return .degraded
        case .down, .badFormat: return .down
        case .gone: return .idle
        }
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let rows = rows(state)
        guard !rows.isEmpty else {
            let why = state.data.targets.isEmpty
                ? "no scrape targets (over a Prometheus, its own /targets page lists them)"
                : "nothing matches the filter \"\(state.filter)\""
            screen.put(why, x: 1, y: area.y, style: Style(.muted))
            return
        }
        let at = state.data.atMs
        func ago(_ ms: Int64?) -> String {
            guard let ms else { return "never" }
            guard at >= ms else { return "-" }
            return at - ms < 1000 ? "now" : DurationText.format((at - ms) / 1000 * 1000) + " ago"
        }
        /// The message without the URL it starts with (the row already shows it).
        func error(_ t: TargetRow) -> String {
            guard t.state != .up, let m = t.message else { return "" }
            return m.hasPrefix(t.url + ": ") ? String(m.dropFirst(t.url.count + 2)) : m
        }
        let urlWidth = max(16, min(40, area.width / 4))
        let columns = [Column("", .left), Column("STATE", .left), Column("TARGET", .left, maxWidth: urlWidth, cut: .middle), Column("WORKLOAD", .left, maxWidth: 24, cut: .middle),
                       Column("LAST OK"), Column("FAILS"), Column("LAST ERROR", .left)]
        let unicode = screen.unicode
        screen.drawScrollingTable(columns, count: rows.count, in: area, selected: state.selected) { i in
            let t = rows[i]
            let h = health(t)
            return [
                TableCell(h.symbol(unicode: unicode), h.style),
                TableCell(t.state.rawValue, h.style),
                TableCell(t.url.hasPrefix("http://") ? String(t.url.dropFirst(7)) : t.url),
                TableCell(t.workload.isEmpty ? "-" : t.workload, Style(.text, bold: true)),
                TableCell(ago(t.lastSuccessMs)),
                TableCell(String(t.failures)),
                TableCell(error(t), Style(t.state == .up ? .muted : h.role)),
            ]
        }
    }
}
