import LinkerdViz
import MeshMetrics
import TerminalUI

/// 3 Graph: the service graph laid out by call depth (callers left, callees right), each edge
/// labelled with success rate, RPS and p99 and drawn in its health; j/k select an edge.
enum GraphScreen {
    struct Layout {
        var columns: [[WorkloadID]]
        var position: [WorkloadID: (column: Int, row: Int)]
    }

    /// Depth = the longest chain of callers above a workload (cycles are cut where met).
    static func layout(_ edges: [EdgeMetrics], workloads: [WorkloadID]) -> Layout {
        var nodes = Set(workloads)
        var callers: [WorkloadID: [WorkloadID]] = [:]
        for e in edges {
            nodes.insert(e.edge.source)
            nodes.insert(e.edge.destination)
            if e.edge.source != e.edge.destination { callers[e.edge.destination, default: []].append(e.edge.source) }
        }
        var depth: [WorkloadID: Int] = [:]
        func resolve(_ n: WorkloadID, _ visiting: inout Set<WorkloadID>) -> Int {
            if let d = depth[n] { return d }
            guard visiting.insert(n).inserted else { return 0 }
            let d = (callers[n] ?? []).map { resolve($0, &visiting) + 1 }.max() ?? 0
            visiting.remove(n)
            depth[n] = d
            return d
        }
        for n in nodes {
            var visiting = Set<WorkloadID>()
            _ = resolve(n, &visiting)
        }
        let maxDepth = depth.values.max() ?? 0
        var columns = Array(repeating: [WorkloadID](), count: maxDepth + 1)
        for n in nodes.sorted() { columns[depth[n] ?? 0].append(n) }
        var position: [WorkloadID: (Int, Int)] = [:]
        for (c, column) in columns.enumerated() { for (r, n) in column.enumerated() { position[n] = (c, r) } }
        return Layout(columns: columns, position: position)
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let edges = Array(EdgesScreen.rows(state))
        let workloads = state.data.workloads.map(\.workload)
        guard !workloads.isEmpty || !edges.isEmpty else {
            screen.put("no workloads yet", x: 1, y: area.y, style: Style(.muted))
            return
        }
        let l = layout(edges, workloads: workloads)
        let columnCount = l.columns.count
        let boxWidth = max(12, min(22, (area.width - 2) / max(1, columnCount) - 10))
        let gapWidth = max(8, (area.width - 2 - boxWidth * columnCount) / max(1, columnCount - 1))
        let rowsPerColumn = max(1, l.columns.map(\.count).max() ?? 1)
        let rowHeight = max(3, min(5, (area.height - 2) / rowsPerColumn))
        func origin(_ n: WorkloadID) -> (x: Int, y: Int) {
            let p = l.position[n]!
            let columnHeight = l.columns[p.column].count * rowHeight
            let top = area.y + max(0, (area.height - 2 - columnHeight) / 2)
            return (area.x + 1 + p.column * (boxWidth + gapWidth), top + p.row * rowHeight)
        }
        let selectedIndex = edges.isEmpty ? nil : min(state.selected, edges.count - 1)
        let u = screen.unicode
        // Edges first, so boxes draw over line ends.
        var joints: [Int: (bits: UInt8, style: Style)] = [:]
        for (i, e) in edges.enumerated() {
            guard let a = l.position[e.edge.source], let b = l.position[e.edge.destination] else { continue }
            let from = origin(e.edge.source), to = origin(e.edge.destination)
            let health = Health(success: e.traffic.success)
            var style = health.style
            if i == selectedIndex { style.reverse = true }
            let y1 = from.y + 1, y2 = to.y + 1
            let x1 = from.x + boxWidth, x2 = to.x - 1
            guard b.column > a.column, x2 > x1 else {
                // Same column (or back edge): note it beside the source box.
                screen.put(" \(u ? "↺" : "<-") \(e.edge.destination.name)", x: from.x + boxWidth, y: from.y + 2, style: style)
                continue
            }
            let bend = x1 + 1
            for x in x1..<bend { screen[x, y1] = Cell(u ? "─" : "-", style) }
            // The bend column is shared by the edges leaving one column: its cells are joined
            // from every edge's directions once all are known.
            func join(_ y: Int, _ bits: UInt8) { joints[y * screen.width + bend, default: (0, style)].bits |= bits; joints[y * screen.width + bend]!.style = style }
            if y1 != y2 {
                for y in (min(y1, y2) + 1)..<max(y1, y2) { join(y, Joint.up | Joint.down) }
                join(y1, Joint.left | (y2 > y1 ? Joint.down : Joint.up))
                join(y2, Joint.right | (y2 > y1 ? Joint.up : Joint.down))
            } else {
                join(y1, Joint.left | Joint.right)
            }
            for x in (bend + 1)..<x2 { screen[x, y2] = Cell(u ? "─" : "-", style) }
            screen[x2, y2] = Cell(u ? "▶" : ">", style)
            let sr = e.traffic.success.map { format1($0 * 100) + "%" } ?? "-"
            let rps = e.traffic.rps.map { String(Int($0.rounded())) + "/s" } ?? ""
            let room = x2 - bend - 2
            var label = "\(health.symbol(unicode: u))\(sr) \(rps) \(Format.ms(e.traffic.latencyP99))"
            if label.count > room { label = "\(health.symbol(unicode: u))\(sr) \(rps)" }
            if label.count > room { label = "\(health.symbol(unicode: u))\(sr)" }
            screen.put(label, x: bend + 2, y: y2 - 1, style: style, maxWidth: max(0, x2 - bend - 2))
        }
        for (cell, joint) in joints {
            screen[cell % screen.width, cell / screen.width] = Cell(Joint.glyph(joint.bits, unicode: u), joint.style)
        }
        // Boxes: name and the workload's own success rate.
        for n in l.position.keys.sorted() {
            let o = origin(n)
            let w = state.data.workload(n)
            let health = w.map { Health($0) } ?? .idle
            let border = Style(health == .idle ? .border : health.role)
            let h = u ? "─" : "-", v = u ? "│" : "|"
            screen.put((u ? "┌" : "+") + String(repeating: h, count: boxWidth - 2) + (u ? "┐" : "+"), x: o.x, y: o.y, style: border)
            screen.put(v, x: o.x, y: o.y + 1, style: border)
            screen.put(" " + n.name, x: o.x + 1, y: o.y + 1, style: Style(.text, bold: true), maxWidth: boxWidth - 2)
            screen.put(v, x: o.x + boxWidth - 1, y: o.y + 1, style: border)
            screen.put((u ? "└" : "+") + String(repeating: h, count: boxWidth - 2) + (u ? "┘" : "+"), x: o.x, y: o.y + 2, style: border)
            if rowHeight > 3 {
                let symbol = health.symbol(unicode: u), percent = Format.percent(w?.success)
                // The longest form that fits under the box (a cut one would read as another number).
                let forms = health == .down ? ["\(symbol) down"] : w?.rps == nil ? ["\(symbol) no inbound"]
                    : ["\(symbol) \(percent) \(Format.rps(w?.rps))/s", "\(symbol) \(percent) \(Int((w?.rps ?? 0).rounded()))/s", "\(symbol) \(percent)"]
                let text = forms.first { $0.count <= boxWidth } ?? forms.last!
                screen.put(text, x: o.x + 1, y: o.y + 3, style: health.style, maxWidth: boxWidth)
            }
        }
        if let i = selectedIndex {
            let e = edges[i]
            let line = "selected: \(e.edge.source.name) \(u ? "→" : "->") \(e.edge.destination.name)  SR \(Format.percent(e.traffic.success))  "
                + "\(Format.rps(e.traffic.rps)) rps  p50 \(Format.ms(e.traffic.latencyP50))  p99 \(Format.ms(e.traffic.latencyP99))   Enter: detail"
            screen.put(line, x: 1, y: area.y + area.height - 1, style: Style(.accent))
        }
    }
}

/// Line directions meeting in a cell, and the box-drawing character that joins them.
enum Joint {
    static let up: UInt8 = 1, down: UInt8 = 2, left: UInt8 = 4, right: UInt8 = 8

    static func glyph(_ bits: UInt8, unicode: Bool) -> Unicode.Scalar {
        let vertical = bits & (up | down) != 0, horizontal = bits & (left | right) != 0
        guard unicode else { return vertical && horizontal ? "+" : (vertical ? "|" : "-") }
        switch bits {
        case left | right, left, right: return "─"
        case up | down, up, down: return "│"
        case left | down: return "┐"
        case left | up: return "┘"
        case right | up: return "└"
        case right | down: return "┌"
        case left | right | down: return "┬"
        case left | right | up: return "┴"
        case up | down | right: return "├"
        case up | down | left: return "┤"
        default: return "┼"
        }
    }
}
