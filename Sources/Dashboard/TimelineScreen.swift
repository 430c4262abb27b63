import LinkerdViz
import MeshMetrics
import MeshTimeline
import TerminalUI

/// t Timeline: what broke first. Each workload's and edge's success, p99 and RPS leaving its
/// recent baseline and coming back, oldest first; Enter opens the change's subject in Detail
/// (and moves a replay to its moment).
enum TimelineScreen {
    static func rows(_ state: DashboardState) -> [TimelineEvent] {
        let kind = TimelineSubject.shortKind(state.kindLabel)
        return state.timeline.filter {
            (state.namespace == nil || $0.subject.namespace == state.namespace)
                && state.matchesFilter("\($0.subject.name(kind: kind)) \($0.metric.rawValue) \(TimelineView.what($0))")
        }
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let rows = rows(state)
        guard !rows.isEmpty else {
            let why = !state.filter.isEmpty && !state.timeline.isEmpty ? "nothing matches the filter \"\(state.filter)\""
                : state.replay != nil ? "no changes in this recording: every metric stayed within its baseline"
                : "no changes yet: a success rate, p99 or RPS leaving its baseline of the last 5 minutes shows here, and its return"
            screen.put(why, x: 1, y: area.y, style: Style(.muted))
            return
        }
        let kind = TimelineSubject.shortKind(state.kindLabel)
        let start = state.replay?.startMs
        let now = state.replay?.atMs
        let unicode = screen.unicode
        var columns = [Column("", .left), Column("TIME", .left)]
        if start != nil { columns.append(Column("+")) }
        columns += [Column("SUBJECT", .left, maxWidth: max(16, area.width - (start == nil ? 48 : 54)), cut: .middle), Column("CHANGE", .left),
                    Column("FROM"), Column("", .left), Column("TO")]
        screen.drawScrollingTable(columns, count: rows.count, in: area, selected: state.selected) { i in
            let e = rows[i]
            // In a replay, changes after the moment shown are still to come: muted.
            let ahead = now.map { e.atMs > $0 } ?? false
            let health: Health = e.change == .returned ? .healthy : e.metric == .success ? .failing : .degraded
            let style = ahead ? Style(.muted) : health.style
            var cells = [TableCell(ahead ? " " : health.symbol(unicode: unicode), style),
                         TableCell(TimelineView.timeOfDay(e.atMs), Style(ahead ? .muted : .text))]
            if let start { cells.append(TableCell("+" + DurationText.format(max(0, e.atMs - start)), Style(.muted))) }
            cells += [TableCell(e.subject.name(kind: kind, arrow: unicode ? "→" : "->"), Style(ahead ? .muted : .text, bold: !ahead)),
                      TableCell(TimelineView.what(e), style),
                      TableCell(TimelineView.value(e.from, e.metric), Style(ahead ? .muted : .text)),
                      TableCell(unicode ? "→" : "->", Style(.muted)),
                      TableCell(TimelineView.value(e.to, e.metric), style)]
            return cells
        }
    }
}
