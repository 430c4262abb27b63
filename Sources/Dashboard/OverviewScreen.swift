import LinkerdViz
import MeshMetrics
import TerminalUI

/// 1 Overview: every workload's golden metrics with a trend, the worst edges called out first.
enum OverviewScreen {
    static func rows(_ state: DashboardState) -> [GoldenMetrics] {
        state.workloadOrder.map { state.data.workloads[$0] }
    }

    /// Targets that do not answer (or answer with bad metrics): their workloads' numbers are
    /// missing, not good, so they are said first.
    static func downLine(_ data: MeshSnapshot) -> String? {
        let down = data.targets.filter { $0.state == .down || $0.state == .badFormat }
        let active = data.targets.filter { $0.state != .gone }.count
        guard !down.isEmpty else { return nil }
        if down.count == active {
            return "all \(active) target\(active == 1 ? "" : "s") down: \(down[0].message ?? down[0].url)  (key 0: Targets)"
        }
        let names = down.map { $0.workload.isEmpty ? $0.url : $0.workload }
        return "\(down.count) of \(active) targets down: \(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", …" : "")  (key 0: Targets)"
    }

    /// The headline when no edge is failing: what is known, never ✔ for what is not.
    static func headline(_ data: MeshSnapshot) -> (Health, String)? {
        if data.atMs == 0 { return (.unknown, "waiting for the first scrape") }
        if data.targetsTotal > 0 && data.targetsUp == 0 { return nil }  // the down line says it all
        if data.edges.isEmpty { return (.idle, "no edges in this window") }
        return (.healthy, "all \(data.edges.count) edges at 99% or better")
    }

    /// The `count` edges with the lowest success rate below 99%, worst first (ties in the order
    /// given), as indices: one pass, nothing copied or sorted, for it runs every frame.
    static func worstEdges(_ edges: [EdgeMetrics], count: Int) -> [Int] {
        var worst: [(index: Int, success: Double)] = []
        for i in edges.indices {
            guard let s = edges[i].traffic.success, s < 0.99 else { continue }
            if worst.count == count, s >= worst[count - 1].success { continue }
            let at = worst.firstIndex { s < $0.success } ?? worst.count
            worst.insert((i, s), at: at)
            if worst.count > count { worst.removeLast() }
        }
        return worst.map(\.index)
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        var y = area.y
        if let line = downLine(state.data) {
            screen.put("\(Health.down.symbol(unicode: screen.unicode)) \(line)", x: 1, y: y, style: Health.down.style, maxWidth: area.width - 2)
            y += 1
        }
        // The worst edges, so the failing call is on screen first.
        let bad = worstEdges(state.data.edges, count: 2)
        if bad.isEmpty {
            if let h = headline(state.data) {
                screen.put(h.0.symbol(unicode: screen.unicode) + " " + h.1, x: 1, y: y, style: h.0.style, maxWidth: area.width - 2)
                y += 1
            }
        } else {
            let arrow = screen.unicode ? "→" : "->"
            for e in bad.map({ state.data.edges[$0] }) {
                let health = Health(success: e.traffic.success)
                let text = "\(health.symbol(unicode: screen.unicode)) worst edge: \(e.edge.source.name) \(arrow) \(e.edge.destination.name)  "
                    + "\(Format.percent(e.traffic.success))  \(Format.rps(e.traffic.rps)) rps  p99 \(Format.ms(e.traffic.latencyP99))"
                screen.put(text, x: 1, y: y, style: health.style)
                y += 1
            }
        }
        y += 1
        let rows = rows(state)
        guard !rows.isEmpty else {
            let why: String
            if !state.data.workloads.isEmpty {
                why = "nothing matches the filter \"\(state.filter)\""
            } else if state.data.atMs == 0 {
                why = "no workloads yet: waiting for the first scrapes of \(state.source)"
            } else if let ns = state.namespace {
                why = "no workloads in namespace \(ns) (scrapes answer; :ns alone shows every namespace)"
            } else {
                why = "no workloads: no target answered with metrics (key 0, Targets, says why)"
            }
            screen.put(why, x: 1, y: y, style: Style(.muted))
            return
        }
        // Trends: success first (what an incident is about), then RPS where there is room; each
        // titled with its span (one point per refresh).
        // With SLOs declared for workloads shown: each one's alert (o opens the SLO view).
        let alerts = Dictionary(state.sloEvaluations.map { ($0.workload, $0.alert) }, uniquingKeysWith: { a, _ in a })
        let sloWidth = alerts.isEmpty ? 0 : 8
        let trendWidth = max(0, min(20, screen.width - 76 - sloWidth))
        let rpsTrendWidth = max(0, min(20, screen.width - 76 - sloWidth - trendWidth - 2))
        let span = DurationText.format(Int64(trendWidth * state.refreshMs))
        let unicode = screen.unicode
        var columns = [Column("", .left), Column(state.sortTitle("NAME", .name, unicode: unicode), .left, cut: .middle), Column("MESHED"),
                       Column(state.sortTitle("SUCCESS", .health, unicode: unicode)), Column(state.sortTitle("RPS", .rps, unicode: unicode)),
                       Column("P50"), Column("P95"), Column(state.sortTitle("P99", .p99, unicode: unicode)), Column("TCP")]
        if state.namespace == nil { columns.insert(Column("NAMESPACE", .left), at: 1) }
        if !alerts.isEmpty { columns.append(Column("SLO", .left)) }
        if trendWidth >= 6 { columns.append(Column("SUCCESS \(span)", .left)) }
        if rpsTrendWidth >= 6 { columns.append(Column("RPS \(DurationText.format(Int64(rpsTrendWidth * state.refreshMs)))", .left)) }
        let selected = state.selected
        screen.drawScrollingTable(columns, count: rows.count, in: Area(x: area.x, y: y, width: area.width, height: area.y + area.height - y),
                                  selected: selected) { i in
            let r = rows[i]
            let health = Health(r)
            var row = [
                TableCell(health.symbol(unicode: unicode), health.style),
                TableCell(r.workload.name, Style(.text, bold: true)),
                TableCell("\(r.meshedPods)/\(r.runningPods)", Style(r.meshedPods < r.runningPods ? .warn : .text)),
                TableCell(r.isDown ? "down" : Format.percent(r.success), health.style),
                TableCell(Format.rps(r.rps)),
                TableCell(Format.ms(r.latencyP50)),
                TableCell(Format.ms(r.latencyP95)),
                TableCell(Format.ms(r.latencyP99)),
                TableCell(r.tcpOpenConnections.map { String(Int($0)) } ?? "-"),
            ]
            if state.namespace == nil { row.insert(TableCell(r.workload.namespace, Style(.muted)), at: 1) }
            if !alerts.isEmpty { row.append(alerts[r.workload].map(SLOScreen.badge) ?? TableCell("", Style(.muted))) }
            let h = state.history[viewKey(r.workload)]
            if trendWidth >= 6 {
                row.append(TableCell(Sparkline.render(h?.success ?? [], width: trendWidth, unicode: unicode, floor: 0.8), Style(.accent)))
            }
            if rpsTrendWidth >= 6 {
                row.append(TableCell(Sparkline.render(h?.rps ?? [], width: rpsTrendWidth, unicode: unicode), Style(.accent)))
            }
            return row
        }
    }
}
