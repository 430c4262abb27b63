import LinkerdViz
public import TerminalUI
import MeshMetrics

/// The dashboard on a screen: a frame (title, view tabs, message line, status line) around the
/// current view. A pure function of the state, so tests compare its text.
public enum DashboardScreen {
    public static let minimumSize = (width: 60, height: 12)

    public static func render(_ state: DashboardState, width: Int, height: Int, unicode: Bool) -> Screen {
        var screen = Screen(width: width, height: height, unicode: unicode)
        guard width >= minimumSize.width, height >= minimumSize.height else {
            screen.put("terminal too small", x: 0, y: 0, style: Style(.warn, bold: true))
            screen.put("need \(minimumSize.width)x\(minimumSize.height), have \(width)x\(height)", x: 0, y: 1)
            screen.put("q quits", x: 0, y: 2, style: Style(.muted))
            return screen
        }
        drawTitle(state, &screen)
        drawTabs(state, &screen)
        let area = Area(x: 0, y: 2, width: width, height: height - 4)
        switch state.view {
        case .overview: OverviewScreen.draw(state, in: area, &screen)
        case .edges: EdgesScreen.draw(state, in: area, &screen)
        case .graph: GraphScreen.draw(state, in: area, &screen)
        case .detail: DetailScreen.draw(state, in: area, &screen)
        case .top: TopScreen.draw(state, in: area, &screen)
        case .tap: TapScreen.draw(state, in: area, &screen)
        case .compare: CompareScreen.draw(state, in: area, &screen)
        case .targets: TargetsScreen.draw(state, in: area, &screen)
        case .help: HelpScreen.draw(state, in: area, &screen)
        case .canary:
            if let w = state.canary { CanaryScreen.draw(w, in: area, &screen) }
        case .timeline: TimelineScreen.draw(state, in: area, &screen)
        case .slo: SLOScreen.draw(state, in: area, &screen)
        }
        drawMessageLine(state, &screen)
        drawStatus(state, &screen)
        return screen
    }

    static func drawTitle(_ state: DashboardState, _ screen: inout Screen) {
        screen.fill(row: 0, style: Style(.header, reverse: true))
        let window = DurationText.format(state.data.windowMs > 0 ? state.data.windowMs : state.windowMs)
        let right = "\(state.namespace.map { "ns \($0)  " } ?? "")window \(window)  \(state.clockText) "
        // The title gives way to the window and clock (cut in its middle), never overlapping them.
        let room = max(0, screen.width - right.count - 1)
        screen.put(Column.Cut.middle.shorten(" meshtop  \(state.title)", to: room, unicode: screen.unicode), x: 0, y: 0,
                   style: Style(.header, bold: true, reverse: true), maxWidth: room)
        screen.put(right, x: max(0, screen.width - right.count), y: 0, style: Style(.header, reverse: true))
    }

    static func drawTabs(_ state: DashboardState, _ screen: inout Screen) {
        var x = 1
        var views = state.views
        // Too narrow for every tab: Timeline goes first (t still opens it), then SLO (o), Help
        // (8 and ?), then Targets (0), never the view on screen.
        for spare in [ViewKind.timeline, .slo, .help, .targets, .tap, .compare] where spare != state.view {
            guard views.reduce(0, { $0 + "\($1.key) \($1.title)".count + 2 }) >= screen.width else { break }
            views.removeAll { $0 == spare }
        }
        for v in views {
            let label = "\(v.key) \(v.title)"
            guard x + label.count < screen.width else { break }
            let current = v == state.view
            screen.put(current ? "[\(label)]" : " \(label) ", x: x - 1, y: 1, style: current ? Style(.accent, bold: true, reverse: true) : Style(.muted))
            x += label.count + 2
        }
    }

    /// The line above the status line: the command or filter being typed, else a message,
    /// else the first problem with a source.
    static func drawMessageLine(_ state: DashboardState, _ screen: inout Screen) {
        let y = screen.height - 2
        if let line = state.commandLine {
            screen.put(":" + line + (screen.unicode ? "▏" : "_"), x: 0, y: y, style: Style(.accent, bold: true))
        } else if state.editingFilter {
            screen.put("/" + state.filter + (screen.unicode ? "▏" : "_") + "   (Enter keeps, Esc clears)", x: 0, y: y, style: Style(.accent, bold: true))
        } else if let message = state.message {
            screen.put(message, x: 0, y: y, style: Style(.accent))
        } else if let first = state.data.problems.first {
            let more = state.data.problems.count > 1 ? " (+\(state.data.problems.count - 1) more)" : ""
            screen.put("! " + first + more, x: 0, y: y, style: Style(.bad, bold: true))
        } else if !state.filter.isEmpty {
            screen.put("filter: \(state.filter)   (Esc clears)", x: 0, y: y, style: Style(.muted))
        }
    }

    static func drawStatus(_ state: DashboardState, _ screen: inout Screen) {
        let y = screen.height - 1
        screen.fill(row: y, style: Style(.muted, reverse: true))
        let mode = state.replay != nil ? (state.paused ? " REPLAY paused " : " REPLAY ") : (state.paused ? " PAUSED " : " LIVE ")
        screen.put(mode, x: 0, y: y, style: Style(state.paused ? .warn : .good, bold: true, reverse: true))
        var parts = [state.source, "targets \(state.data.targetsUp)/\(state.data.targetsTotal) up" + (state.data.targetStates.isEmpty ? "" : " (\(state.data.targetStates))")]
        if let r = state.replay {
            let into = DurationText.format(max(0, (r.atMs - r.startMs) / 1000 * 1000))
            let total = DurationText.format(max(0, (r.endMs - r.startMs) / 1000 * 1000))
            parts = [state.source, "\(TimeSpec.format(r.atMs / 1000 * 1000)) (\(into) of \(total)) x\(speedText(r.speed))"]
        }
        if state.replay == nil, let series = state.data.seriesHeld { parts.append("\(countText(series)) series") }
        if state.tapSources > 0 { parts.append("tap \(state.tapSources)") }
        parts.append("refresh \(DurationText.format(Int64(state.refreshMs)))")
        // Live numbers older than two refreshes: the source is behind, and the screen says by how much.
        var stale: String?
        if state.replay == nil, state.data.atMs > 0, state.nowMs - state.data.atMs >= max(3_000, 2 * Int64(state.refreshMs)) {
            stale = " data \(DurationText.format((state.nowMs - state.data.atMs) / 1000 * 1000)) old "
        }
        let left = parts.joined(separator: "  ")
        screen.put(" " + left, x: mode.count, y: y, style: Style(.muted, reverse: true))
        if let stale { screen.put(stale, x: mode.count + left.count + 2, y: y, style: Style(.warn, bold: true, reverse: true)) }
        let used = mode.count + left.count + (stale?.count ?? 0) + 2
        let hint = state.replay != nil ? "\(screen.unicode ? "←→" : "<>") step  [] speed  ? help " : "? help  q quit "
        if used + hint.count + 1 < screen.width {
            screen.put(hint, x: screen.width - hint.count, y: y, style: Style(.muted, reverse: true))
        }
    }
}

extension DashboardScreen {
    /// `950`, `12k`, `1.7M`: a count in at most four characters.
    static func countText(_ n: Int) -> String {
        switch n {
        case ..<10_000: return String(n)
        case ..<1_000_000: return "\(n / 1000)k"
        default: return "\(n / 1_000_000).\(n / 100_000 % 10)M"
        }
    }

    static func speedText(_ speed: Double) -> String {
        speed >= 1 ? String(Int(speed)) : "1/\(Int((1 / speed).rounded()))"
    }
}

/// A rectangle of the screen a view draws in.
struct Area {
    var x: Int
    var y: Int
    var width: Int
    var height: Int
}

/// A workload's or edge's health from its success rate: its colour and its symbol, so meaning
/// never rests on colour alone.
enum Health: Equatable {
    /// From the success rate: at least 99%, at least 95%, below; idle is answered scrapes that
    /// show no responses in the window.
    case healthy, degraded, failing, idle
    /// No proxy of it answered its last scrape: its numbers are not known, not zero.
    case down
    /// Nothing known yet (no scrape has come back).
    case unknown

    init(success: Double?) {
        guard let s = success else { self = .idle; return }
        self = s >= 0.99 ? .healthy : (s >= 0.95 ? .degraded : .failing)
    }

    /// A workload's health: down when none of its proxies answered, else from its success rate.
    init(_ w: GoldenMetrics) {
        self = w.isDown ? .down : Health(success: w.success)
    }

    var role: Role {
        switch self {
        case .healthy: return .good
        case .degraded: return .warn
        case .failing, .down: return .bad
        case .idle, .unknown: return .muted
        }
    }

    func symbol(unicode: Bool) -> String {
        switch self {
        case .healthy: return unicode ? "✔" : "+"
        case .degraded: return unicode ? "▲" : "~"
        case .failing: return unicode ? "✖" : "X"
        case .idle: return unicode ? "·" : "."
        case .down: return unicode ? "⊘" : "!"
        case .unknown: return "?"
        }
    }

    var style: Style { Style(role, bold: self == .failing || self == .down) }
}

extension GoldenMetrics {
    /// Known instances, none of which answered its last scrape.
    var isDown: Bool { runningPods > 0 && meshedPods == 0 }
    /// The key health sorting uses: down before the worst success rate, idle last.
    var healthSortKey: Double? { isDown ? -1 : success }
}

/// Small pictures of recent values.
enum Sparkline {
    /// `width` cells of the most recent values, scaled to their own maximum; gaps for no data.
    static func render(_ values: [Double?], width: Int, unicode: Bool, floor: Double? = nil) -> String {
        let levels: [Character] = unicode ? ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] : [".", ":", "-", "=", "+", "*", "#", "@"]
        let recent = Array(values.suffix(width))
        let present = recent.compactMap { $0 }
        guard let maximum = present.max() else { return String(repeating: " ", count: width) }
        let minimum = floor ?? min(0, present.min() ?? 0)
        let span = max(maximum - minimum, 1e-9)
        var out = String(repeating: " ", count: width - recent.count)
        for v in recent {
            guard let v else { out.append(" "); continue }
            let level = Int(((v - minimum) / span * Double(levels.count - 1)).rounded())
            out.append(levels[max(0, min(levels.count - 1, level))])
        }
        return out
    }
}

enum Format {
    static func percent(_ v: Double?) -> String { v.map(StatView.percent) ?? "-" }
    static func rps(_ v: Double?) -> String { v.map { format1($0) } ?? "-" }
    static func ms(_ v: Double?) -> String { v.map(StatView.milliseconds) ?? "-" }
}

extension Screen {
    /// Draws a table that scrolls to keep `selected` in view, building only the rows that show:
    /// a view of ten thousand rows costs what a view of a screenful does.
    mutating func drawScrollingTable(_ columns: [Column], count: Int, in area: Area, selected: Int?, row: (Int) -> [TableCell]) {
        guard area.height > 1 else { return }
        // More rows than fit: the last line says which are shown (not over the headers).
        let scrolls = count > area.height - 1 && area.height > 2
        let visible = area.height - 1 - (scrolls ? 1 : 0)
        let sel = selected.map { min($0, max(0, count - 1)) }
        let first = max(0, min((sel ?? 0) - visible + 1, count - visible))
        let shown = (first..<min(count, first + visible)).map(row)
        drawTable(columns, rows: shown, y: area.y, maxRows: visible, selected: sel.map { $0 - first })
        if scrolls {
            let note = " \(first + 1)-\(first + shown.count) of \(count) (j k PgUp PgDn) "
            put(note, x: max(0, width - note.count - 1), y: area.y + area.height - 1, style: Style(.muted))
        }
    }

    mutating func drawScrollingTable(_ columns: [Column], rows: [[TableCell]], in area: Area, selected: Int?) {
        drawScrollingTable(columns, count: rows.count, in: area, selected: selected) { rows[$0] }
    }
}

/// Filtering and sorting, as the views share them.
extension DashboardState {
    /// `title` with the sort mark when the list is sorted by `key`: `↓` in the key's own order
    /// (worst, A–Z, busiest, slowest first), `↑` reversed (`v` and `^` in ASCII).
    func sortTitle(_ title: String, _ key: SortKey, unicode: Bool) -> String {
        guard sort == key else { return title }
        return title + (sortReversed ? (unicode ? "↑" : "^") : (unicode ? "↓" : "v"))
    }

    /// Whether `text` (built only when a filter is set) contains the filter.
    func matchesFilter(_ text: @autoclosure () -> String) -> Bool {
        filter.isEmpty || text().localizedLowercase.contains(filter.localizedLowercase)
    }

    /// The indices `0..<count` (those `included`) in the chosen order. Rows are reached by index
    /// and only small keys are sorted: a big mesh's tens of thousands of edges are neither moved
    /// nor copied. Ties go by `nameLess`; nil when the rows are in name order already, so a tie
    /// is an index comparison.
    func order(count: Int, included: (Int) -> Bool, nameLess: ((Int, Int) -> Bool)?, success: (Int) -> Double?, rps: (Int) -> Double?,
               p99: (Int) -> Double?) -> [Int] {
        var keys: [(index: Int, number: Double)] = []
        keys.reserveCapacity(count)
        for i in 0..<count where included(i) {
            switch sort {
            case .health: keys.append((i, success(i) ?? 2))
            case .name: keys.append((i, 0))
            case .rps: keys.append((i, -(rps(i) ?? -1)))
            case .p99: keys.append((i, -(p99(i) ?? -1)))
            }
        }
        var order: [Int]
        if let nameLess {
            order = keys.sorted { $0.number != $1.number ? $0.number < $1.number : nameLess($0.index, $1.index) }.map(\.index)
        } else {
            order = keys.sorted { $0.number != $1.number ? $0.number < $1.number : $0.index < $1.index }.map(\.index)
        }
        if sortReversed { order.reverse() }
        return order
    }

    /// What the Overview's and Edges' row order depends on.
    var rowOrderKey: RowOrder.Key {
        RowOrder.Key(atMs: data.atMs, workloads: data.workloads.count, edges: data.edges.count, filter: filter, sort: sort, reversed: sortReversed)
    }

    /// The Overview's rows, as indices into `data.workloads`: kept from the last update when
    /// nothing they depend on changed, so a frame does not sort a big mesh again.
    var workloadOrder: [Int] {
        rowOrder.key == rowOrderKey ? rowOrder.workloads : Self.workloadOrder(self)
    }

    /// The Edges view's rows, as indices into `data.edges`.
    var edgeOrder: [Int] {
        rowOrder.key == rowOrderKey ? rowOrder.edges : Self.edgeOrder(self)
    }

    static func workloadOrder(_ s: DashboardState) -> [Int] {
        let w = s.data.workloads
        return s.order(count: w.count, included: { s.matchesFilter(w[$0].workload.name) }, nameLess: { w[$0].workload.name < w[$1].workload.name },
                       success: { w[$0].healthSortKey }, rps: { w[$0].rps }, p99: { w[$0].latencyP99 })
    }

    static func edgeOrder(_ s: DashboardState) -> [Int] {
        let e = s.data.edges
        // Every source lists edges in EdgeID order; a hand-made snapshot might not.
        let inOrder = e.indices.dropFirst().allSatisfy { !(e[$0].edge < e[$0 - 1].edge) }
        return s.order(count: e.count, included: { s.matchesFilter("\(e[$0].edge.source.name)>\(e[$0].edge.destination.name)") },
                       nameLess: inOrder ? nil : { e[$0].edge < e[$1].edge },
                       success: { e[$0].traffic.success }, rps: { e[$0].traffic.rps }, p99: { e[$0].traffic.latencyP99 })
    }

    /// Sorts the rows once, after an update.
    mutating func refreshRowOrder() {
        let key = rowOrderKey
        guard rowOrder.key != key else { return }
        rowOrder = RowOrder(key: key, workloads: Self.workloadOrder(self), edges: Self.edgeOrder(self))
    }
}

/// The Overview's and Edges' rows in the chosen order, and what they were sorted for.
public struct RowOrder: Sendable, Equatable {
    struct Key: Sendable, Equatable {
        var atMs: Int64
        var workloads: Int
        var edges: Int
        var filter: String
        var sort: SortKey
        var reversed: Bool
    }

    var key: Key?
    var workloads: [Int] = []
    var edges: [Int] = []
}
