import LinkerdViz
import MeshMetrics
import MeshTap
import TerminalUI

/// 4 Detail: one workload or edge — its numbers, SR/RPS/p99 over time, its latency histogram
/// from the buckets, and (for a workload, with tap) its top paths.
enum DetailScreen {
    /// A pod (or workload) name belongs to workload `w`: it is `w`, or `w` and a dash and more.
    static func isOf(_ name: String, _ w: String) -> Bool { name == w || name.hasPrefix(w + "-") }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let u = screen.unicode
        var y = area.y
        let title: String
        let traffic: TrafficMetrics
        let history: History
        var paths: [TopRow] = []
        var down = false
        var failingTargets: [TargetRow] = []
        var breakdown: [ResponseShare] = []
        switch state.detail {
        case nil:
            screen.put("nothing selected: pick a workload (1 Overview) or an edge (2 Edges, 3 Graph) and press Enter", x: 1, y: y, style: Style(.muted))
            return
        case .workload(let id)?:
            breakdown = state.data.breakdown[viewKey(id)] ?? []
            guard let w = state.data.workload(id) else {
                screen.put("\(id.name) has no data in this window", x: 1, y: y, style: Style(.muted))
                return
            }
            title = "workload \(id.namespace)/\(id.name)   pods \(w.meshedPods)/\(w.runningPods)   tcp \(w.tcpOpenConnections.map { String(Int($0)) } ?? "-")"
            traffic = w.traffic
            down = w.isDown
            failingTargets = state.data.targets.filter { $0.workload == "\(id.namespace)/\(id.name)" && ($0.state == .down || $0.state == .badFormat) }
            history = state.history[viewKey(id)] ?? History()
            paths = state.topRows.filter { isOf($0.destination, id.name) }
        case .edge(let id)?:
            breakdown = state.data.breakdown[viewKey(id)] ?? []
            guard let e = state.data.edges.first(where: { $0.edge == id }) else {
                screen.put("this edge has no data in this window", x: 1, y: y, style: Style(.muted))
                return
            }
            title = "edge \(id.source.name) \(u ? "→" : "->") \(id.destination.name)   secured \(e.noTLSReason.isEmpty ? "yes (mTLS)" : "no: " + EdgesView.secured(e))"
            traffic = e.traffic
            history = state.history[viewKey(id)] ?? History()
            // This edge's requests only: both ends must be the edge's workloads (a pod is named
            // after its workload and a dash).
            paths = state.topRows.filter { isOf($0.source, id.source.name) && isOf($0.destination, id.destination.name) }
        }
        let health = down ? Health.down : Health(success: traffic.success)
        screen.put(title, x: 1, y: y, style: Style(.header, bold: true))
        y += 1
        // Why its numbers are missing, before anything else: the scrape errors of its proxies.
        for t in failingTargets.prefix(3) {
            let since = t.lastSuccessMs.map { "last answered \(DurationText.format(max(0, state.data.atMs - $0) / 1000 * 1000)) ago" } ?? "never answered"
            screen.put("\(Health.down.symbol(unicode: u)) \(t.message ?? t.url)  (\(since), \(t.failures) failed in a row)", x: 1, y: y,
                       style: Health.down.style, maxWidth: area.width - 2)
            y += 1
        }
        screen.put("\(health.symbol(unicode: u))\(down ? " down:" : "") success \(Format.percent(traffic.success))   rps \(Format.rps(traffic.rps))   "
                   + "p50 \(Format.ms(traffic.latencyP50))   p95 \(Format.ms(traffic.latencyP95))   p99 \(Format.ms(traffic.latencyP99))",
                   x: 1, y: y, style: health.style)
        y += 1
        // What the responses were (failures first): the cause of a low success rate at a glance.
        if !breakdown.isEmpty {
            let total = max(breakdown.reduce(0) { $0 + $1.perSecond }, 1e-9)
            var x = screen.put("responses", x: 1, y: y, style: Style(.muted))
            x = max(x, 11)
            for share in breakdown.prefix(6) {
                let text = "\(share.label) \(format1(share.perSecond))/s (\(format1(share.perSecond / total * 100))%)   "
                guard x + text.count - 3 <= area.width else { break }
                x = screen.put(text, x: x, y: y, style: share.failure ? Style(.bad, bold: true) : Style(.text))
            }
        }
        y += 1
        // Each sparkline says its range and its span: the last points, one per refresh.
        let sparkWidth = max(10, min(History.length, area.width - 50))
        let formats: [(String, [Double?], Double?, (Double) -> String)] = [
            ("success", history.success, 0.8, { StatView.percent($0) }), ("rps", history.rps, nil, { format1($0) }),
            ("p99 ms", history.p99, nil, { StatView.milliseconds($0) }),
        ]
        for (label, values, floor, format) in formats {
            screen.put(label.padding(toLength: 9, withPad: " ", startingAt: 0), x: 1, y: y, style: Style(.muted))
            screen.put(Sparkline.render(values, width: sparkWidth, unicode: u, floor: floor), x: 11, y: y, style: Style(.accent))
            let shown = values.suffix(sparkWidth).compactMap { $0 }
            if let lo = shown.min(), let hi = shown.max() {
                let span = DurationText.format(Int64(values.suffix(sparkWidth).count * state.refreshMs))
                let floorNote = floor.map { lo < $0 ? "" : ", floor \(format($0))" } ?? ""
                screen.put("\(format(lo))\(u ? "–" : "-")\(format(hi)) over \(span)\(floorNote)", x: 12 + sparkWidth, y: y, style: Style(.muted),
                           maxWidth: area.width - 13 - sparkWidth)
            }
            y += 1
        }
        y += 1
        // The latency histogram: share of requests per bucket over the whole window (not the
        // last scrape interval the quantiles' irate looks at).
        screen.put("latency (share of requests per bucket, last \(DurationText.format(state.data.windowMs)))", x: 1, y: y, style: Style(.header))
        y += 1
        let total = traffic.windowBuckets.last?.perSecond ?? 0
        var previous = 0.0
        var lines: [(label: String, share: Double)] = []
        var lastFinite = 0.0
        for b in traffic.windowBuckets {
            let share = total > 0 ? (b.perSecond - previous) / total : 0
            previous = b.perSecond
            if b.le.isInfinite {
                lines.append(("> \(Int(lastFinite))ms", share))
            } else {
                lines.append(("\(u ? "≤" : "<=") \(Int(b.le))ms", share))
                lastFinite = b.le
            }
        }
        // Show the buckets where the requests are, not 26 mostly empty rows.
        let firstUsed = lines.firstIndex { $0.share > 0 } ?? 0
        let lastUsed = lines.lastIndex { $0.share > 0 } ?? 0
        let barWidth = max(10, area.width - 30)
        let room = max(0, area.y + area.height - y - (paths.isEmpty ? 0 : 4))
        for line in lines.isEmpty ? [] : Array(lines[firstUsed...max(firstUsed, lastUsed)].prefix(room)) {
            screen.put(line.label, x: 1, y: y, style: Style(.muted))
            screen.put(String(repeating: u ? "█" : "#", count: Int((line.share * Double(barWidth)).rounded())), x: 12, y: y, style: Style(.accent))
            screen.put(format1(line.share * 100) + "%", x: 13 + barWidth, y: y, style: Style(.text))
            y += 1
        }
        if total == 0 {
            screen.put(down ? "no proxy of it answered its last scrape: its responses are unknown (key 0: Targets)" : "no responses in the window", x: 1, y: y, style: Style(.muted))
            y += 1
        }
        if !paths.isEmpty, y + 2 < area.y + area.height {
            y += 1
            screen.put("top paths (from tap, last \(DurationText.format(state.data.windowMs > 0 ? state.data.windowMs : state.windowMs)))", x: 1, y: y, style: Style(.header))
            y += 1
            for p in paths.prefix(area.y + area.height - y) {
                let sr = p.successRate.map(StatView.percent) ?? "-"
                let room = max(10, area.width - 30)
                screen.put(Column.Cut.middle.shorten("\(p.method) \(p.path)", to: room, unicode: u), x: 1, y: y, style: Style(.text), maxWidth: room)
                screen.put("\(p.count)  \(sr)  last \(TopAggregator.format(nanos: p.last))", x: max(12, area.width - 28), y: y, style: Style(.muted))
                y += 1
            }
        }
    }
}
