import LinkerdViz
import MeshMetrics
import MeshTap
import TerminalUI

/// 6 Tap: the live stream, newest at the bottom; Space pauses without losing events.
enum TapScreen {
    /// A tap event in a line that fits a terminal: kind, direction, who called whom, and what
    /// (`req out web-9bc91 → voting-db28e POST /vote`, `rsp … 500 12ms`, `end … 13ms 22B`).
    /// `meshtop tap` prints linkerd's own lines.
    static func line(_ e: TapEvent, unicode: Bool) -> String {
        func name(_ p: TapPeer) -> String { p.metadata?["pod"] ?? p.address }
        let flow = "\(e.direction == .inbound ? "in " : "out") \(name(e.source)) \(unicode ? "→" : "->") \(name(e.destination))"
        switch e.http {
        case let .requestInit(_, method, _, _, path, _):
            return "req \(flow)  \(method) \(path)"
        case let .responseInit(_, since, status, _):
            return "rsp \(flow)  \(status) \(TopAggregator.format(nanos: since))"
        case let .responseEnd(_, since, _, bytes, grpc, reset, _):
            var s = "end \(flow)  \(TopAggregator.format(nanos: since)) \(bytes)B"
            if let grpc { s += " grpc=\(TapText.grpcCodeName(grpc))" }
            if let reset { s += " reset=\(reset)" }
            return s
        }
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let lines = state.tapEvents.map { line($0, unicode: screen.unicode) }.filter { state.matchesFilter($0) }
        guard !lines.isEmpty else {
            let why = state.tapSources == 0 ? "no tap source: start meshtop with --tap host:port (the demo has them)" : "waiting for requests…"
            screen.put(why, x: 1, y: area.y, style: Style(.muted))
            return
        }
        let visible = area.height - 1
        // Following the stream unless a line is selected above the end.
        let selected = state.selection[.tap].map { min($0, lines.count - 1) } ?? lines.count - 1
        let last = state.paused || state.selection[.tap] != nil ? max(selected, min(lines.count - 1, selected + visible - 1)) : lines.count - 1
        let first = max(0, last - visible + 1)
        let header = state.paused ? "PAUSED: \(state.tapHeld.count) new events held (Space resumes)" : "\(lines.count) events (newest last); Space pauses, j/k scroll"
        screen.put(header, x: 1, y: area.y, style: Style(state.paused ? .warn : .muted, bold: state.paused))
        for (i, line) in lines[first...last].enumerated() {
            let style: Style
            if line.hasPrefix("rsp"), line.contains(" 5"), let code = line.split(separator: " ").compactMap({ Int($0) }).first, code >= 500 {
                style = Style(.bad, bold: true)
            } else {
                style = Style(line.hasPrefix("req") ? .text : .muted)
            }
            var s = style
            if state.selection[.tap] != nil, first + i == selected { s.reverse = true }
            screen.put(line, x: 1, y: area.y + 1 + i, style: s, maxWidth: area.width - 2)
        }
    }
}
