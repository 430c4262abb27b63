import MeshMetrics
import TerminalUI

/// 7 Compare: now against a marked moment (`m` or `:mark`), per workload and edge; what got
/// worse is highlighted: success down more than 1 point, p99 up more than 20%, traffic gone.
enum CompareScreen {
    struct Change {
        var name: String
        var before: (success: Double?, rps: Double?, p99: Double?)
        var now: (success: Double?, rps: Double?, p99: Double?)
        /// No proxy of the workload answered its last scrape.
        var down = false

        var worse: Bool {
            if let b = before.success, let n = now.success, b - n > 0.01 { return true }
            if let b = before.p99, let n = now.p99, b > 0, n > b * 1.2 { return true }
            if (before.rps ?? 0) > 0, (now.rps ?? 0) == 0 { return true }
            return false
        }

        var better: Bool {
            if let b = before.success, let n = now.success, n - b > 0.01 { return true }
            if let b = before.p99, let n = now.p99, n > 0, b > n * 1.2 { return true }
            return false
        }
    }

    static func changes(_ state: DashboardState) -> [Change] {
        guard let base = state.baseline else { return [] }
        var out: [Change] = []
        let before = Dictionary(base.workloads.map { ($0.workload, $0) }, uniquingKeysWith: { a, _ in a })
        let names = Set(before.keys).union(state.data.workloads.map(\.workload)).sorted()
        for id in names where state.matchesFilter(id.name) {
            let b = before[id], n = state.data.workload(id)
            out.append(Change(name: id.name, before: (b?.success, b?.rps, b?.latencyP99), now: (n?.success, n?.rps, n?.latencyP99), down: n?.isDown ?? false))
        }
        let beforeEdges = Dictionary(base.edges.map { ($0.edge, $0.traffic) }, uniquingKeysWith: { a, _ in a })
        let nowEdges = Dictionary(state.data.edges.map { ($0.edge, $0.traffic) }, uniquingKeysWith: { a, _ in a })
        for id in Set(beforeEdges.keys).union(nowEdges.keys).sorted() {
            let name = "\(id.source.name) > \(id.destination.name)"
            guard state.matchesFilter(name) else { continue }
            let b = beforeEdges[id], n = nowEdges[id]
            out.append(Change(name: name, before: (b?.success, b?.rps, b?.latencyP99), now: (n?.success, n?.rps, n?.latencyP99)))
        }
        // What got worse first.
        return out.enumerated().sorted { ($0.element.worse ? 0 : 1, $0.offset) < ($1.element.worse ? 0 : 1, $1.offset) }.map(\.element)
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        guard state.baseline != nil else {
            screen.put("nothing to compare with yet: press m (or :mark) to mark this moment;", x: 1, y: area.y, style: Style(.muted))
            screen.put("Compare then shows what changed since, per workload and edge.", x: 1, y: area.y + 1, style: Style(.muted))
            return
        }
        let arrow = screen.unicode ? "→" : "->"
        screen.put("now against \(state.baselineName); worse first", x: 1, y: area.y, style: Style(.header))
        let rows = changes(state)
        // The symbol is health now, as everywhere else; the change is said in words beside it.
        let columns = [Column("", .left), Column("WORKLOAD / EDGE", .left, cut: .middle), Column("CHANGE", .left), Column("SUCCESS", .left),
                       Column("RPS", .left), Column("P99", .left)]
        let cells: [[TableCell]] = rows.map { c in
            let health = c.down ? Health.down : Health(success: c.now.success)
            let change = c.worse ? TableCell("worse", Style(.bad, bold: true)) : (c.better ? TableCell("better", Style(.good)) : TableCell("same", Style(.muted)))
            let emphasis = c.worse ? Style(.bad, bold: true) : Style(.text)
            return [
                TableCell(health.symbol(unicode: screen.unicode), health.style), TableCell(c.name, Style(.text, bold: true)), change,
                TableCell("\(Format.percent(c.before.success)) \(arrow) \(c.down ? "down" : Format.percent(c.now.success))", health.style),
                TableCell("\(Format.rps(c.before.rps)) \(arrow) \(Format.rps(c.now.rps))"),
                TableCell("\(Format.ms(c.before.p99)) \(arrow) \(Format.ms(c.now.p99))", emphasis),
            ]
        }
        screen.drawScrollingTable(columns, rows: cells, in: Area(x: area.x, y: area.y + 1, width: area.width, height: area.height - 1), selected: state.selected)
    }
}
