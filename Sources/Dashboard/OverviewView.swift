public import TerminalUI
import MeshMetrics

/// The dashboard's state: what is shown, and how.
public struct DashboardState: Sendable {
    public var title: String
    /// Where the numbers come from, for the status line.
    public var source: String
    public var windowMs: Int64
    public var kindLabel = "deployment"
    public var namespace: String?
    public var paused = false
    public var selected = 0
    public var quit = false
    /// The collector shown: frozen while paused.
    public var collector = Collector()
    /// Wall time of the data shown, as `HH:MM:SS` (UTC).
    public var clockText = ""

    public init(title: String, source: String, windowMs: Int64) {
        self.title = title
        self.source = source
        self.windowMs = windowMs
    }
}

/// What the user or the clock asks for.
public enum Action: Sendable {
    case key(Key)
    /// New data arrived.
    case data(Collector, clockText: String)
}

/// state + action → new state: the dashboard's only place that changes state.
public func update(_ state: inout DashboardState, _ action: Action) {
    switch action {
    case .data(let collector, let clock):
        guard !state.paused else { return }
        state.collector = collector
        state.clockText = clock
    case .key(let key):
        switch key {
        case .character("q"), .control("c"): state.quit = true
        case .character(" "): state.paused.toggle()
        case .down, .character("j"): state.selected += 1
        case .up, .character("k"): state.selected = max(0, state.selected - 1)
        case .character("g"), .home: state.selected = 0
        default: break
        }
    }
}

/// The overview: every workload's golden metrics, worst first, and the status line.
public enum OverviewView {
    public static let minimumSize = (width: 40, height: 8)

    /// Draws `state` on a screen of the given size: a pure function, so tests compare its text.
    public static func render(_ state: DashboardState, width: Int, height: Int, unicode: Bool) -> Screen {
        var screen = Screen(width: width, height: height, unicode: unicode)
        guard width >= minimumSize.width, height >= minimumSize.height else {
            screen.put("terminal too small", x: 0, y: 0, style: Style(.warn, bold: true))
            screen.put("need \(minimumSize.width)x\(minimumSize.height), have \(width)x\(height)", x: 0, y: 1)
            return screen
        }
        // Title bar.
        screen.fill(row: 0, style: Style(.header, reverse: true))
        let window = DurationText.format(state.collector.effectiveWindow(state.windowMs))
        let right = "window \(window)  \(state.clockText)"
        screen.put(" meshtop  \(state.title)", x: 0, y: 0, style: Style(.header, bold: true, reverse: true))
        screen.put(right + " ", x: max(0, width - right.count - 1), y: 0, style: Style(.header, reverse: true))

        let rows = state.collector.stat(kindLabel: state.kindLabel, namespace: state.namespace, windowMs: state.windowMs)
            .sorted { ($0.success ?? 2, $0.workload) < ($1.success ?? 2, $1.workload) }
        let columns = [
            Column("", .left), Column("NAMESPACE", .left), Column("NAME", .left), Column("MESHED"), Column("SUCCESS"),
            Column("RPS"), Column("P50"), Column("P95"), Column("P99"), Column("TCP"),
        ]
        let cells: [[TableCell]] = rows.map { r in
            let health = Health(success: r.success)
            return [
                TableCell(health.symbol(unicode: unicode), Style(health.role, bold: health == .failing)),
                TableCell(r.workload.namespace, Style(.muted)),
                TableCell(r.workload.name, Style(.text, bold: true)),
                TableCell("\(r.meshedPods)/\(r.runningPods)", Style(r.meshedPods < r.runningPods ? .warn : .text)),
                TableCell(r.success.map(StatView.percent) ?? "-", Style(health.role, bold: health == .failing)),
                TableCell(r.rps.map { format1($0) } ?? "-"),
                TableCell(r.latencyP50.map(StatView.milliseconds) ?? "-"),
                TableCell(r.latencyP95.map(StatView.milliseconds) ?? "-"),
                TableCell(r.latencyP99.map(StatView.milliseconds) ?? "-"),
                TableCell(r.tcpOpenConnections.map { String(Int($0)) } ?? "-"),
            ]
        }
        let selected = rows.isEmpty ? nil : min(state.selected, rows.count - 1)
        if rows.isEmpty {
            screen.put("no workloads yet: waiting for the first scrapes of \(state.source)", x: 1, y: 2, style: Style(.muted))
        } else {
            screen.drawTable(columns, rows: cells, y: 2, maxRows: height - 6, selected: selected)
        }

        // Target problems, then the status line.
        let problems = state.collector.health.values.compactMap(\.message).sorted()
        if let first = problems.first {
            screen.put("! " + first + (problems.count > 1 ? " (+\(problems.count - 1) more)" : ""), x: 0, y: height - 2, style: Style(.bad, bold: true))
        }
        screen.fill(row: height - 1, style: Style(.muted, reverse: true))
        let up = state.collector.upCount
        let total = state.collector.health.count
        let mode = state.paused ? "PAUSED" : "live"
        let status = " \(mode)  \(state.source)  targets \(up)/\(total) up   q quit  space pause  j/k move"
        screen.put(status, x: 0, y: height - 1, style: Style(state.paused ? .warn : .muted, bold: state.paused, reverse: true))
        return screen
    }
}

/// A workload's health from its success rate: what colour and symbol it gets.
enum Health: Equatable {
    case healthy, degraded, failing, idle

    init(success: Double?) {
        guard let s = success else { self = .idle; return }
        self = s >= 0.99 ? .healthy : (s >= 0.95 ? .degraded : .failing)
    }

    var role: Role {
        switch self {
        case .healthy: return .good
        case .degraded: return .warn
        case .failing: return .bad
        case .idle: return .muted
        }
    }

    func symbol(unicode: Bool) -> String {
        switch self {
        case .healthy: return unicode ? "✔" : "+"
        case .degraded: return unicode ? "▲" : "~"
        case .failing: return unicode ? "✖" : "X"
        case .idle: return unicode ? "·" : "."
        }
    }
}
