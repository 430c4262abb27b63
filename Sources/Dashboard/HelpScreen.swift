import MeshMetrics
import TerminalUI

/// 8 Help: every key and every column.
enum HelpScreen {
    static let lines: [(String, String)] = [
        ("Views", ""),
        ("1-8, 0, Tab, Shift-Tab", "Overview, Edges, Graph, Detail, Top, Tap, Compare, Help; 0 Targets"),
        ("t", "Timeline: what broke first (Enter opens the change in Detail; in a replay, at its moment)"),
        ("o", "SLO: each objective's burn rate, budget and page/ticket alert (with slos: in the config file)"),
        (":VIEW", ":overview :edges :graph :detail :top :tap :compare :targets :help :timeline :slo"),
        (":ns NAME, :ns all", "show one namespace, or all"),
        (":window 1m", "compute over a different window"),
        (":mark, :q", "mark this moment for Compare; quit"),
        ("Enter / Esc", "open the selected workload or edge in Detail / go back (or clear the filter)"),
        ("Moving", ""),
        ("j k, arrows", "select; PgUp PgDn (Ctrl-B Ctrl-F) by ten; g G (Home End) first, last"),
        ("/", "filter rows by name (Enter keeps it, Esc clears it)"),
        ("s / S", "sort by health, name, rps, p99 / reverse the order"),
        ("Time", ""),
        ("Space", "pause: the screen and the tap stream hold still; nothing is lost"),
        ("m", "mark this moment for Compare (7)"),
        ("+ / -", "refresh faster / slower"),
        ("Ctrl-L", "redraw the screen"),
        ("q, Ctrl-C", "quit"),
        ("Replay", ""),
        ("Space", "pause or play the recording"),
        ("\u{2190} / \u{2192}", "step back / forward five seconds"),
        ("[ / ]", "slower / faster (x1/8 to x1024)"),
        ("Home / End", "the start / the end of the recording"),
        (":goto TIME", "12:03:10 (UTC), -5m before the end, +30s after the start"),
        ("Columns", ""),
        ("SUCCESS", "successful responses / all responses (failure: HTTP 5xx, gRPC 2,4,7,13,14,15, stream errors)"),
        ("RPS", "responses per second over the window"),
        ("P50 P95 P99", "latency to the first response byte, from the proxies' histograms (as histogram_quantile)"),
        ("MESHED", "proxies that answered their last scrape / proxies known"),
        ("TCP", "open inbound connections"),
        ("SECURED", "mTLS between the two proxies, or why not"),
        ("SLO", "in Overview, with slos declared: PAGE, ticket, ok, or ? (too little data to judge a rule)"),
        ("BURN", "in SLO: (1 - success) / (1 - objective) over the window; * over less data than the window"),
        ("CHANGE", "in Compare: worse (success down over 1 point, p99 up over 20%, traffic gone), better, or same"),
        ("Symbols", "✔/+ 99% or better   ▲/~ 95% to 99%   ✖/X below 95%   ·/. no traffic   ⊘/! down (no proxy answered its scrape)   ? not known yet"),
    ]

    /// The help as screen rows: keys in a column, descriptions wrapped beside them.
    static func rows(width: Int) -> [(key: String, text: String, heading: Bool)] {
        let textWidth = max(20, width - 25)
        var out: [(String, String, Bool)] = []
        for (key, text) in lines {
            if text.isEmpty {
                out.append((key, "", true))
                continue
            }
            var line = ""
            var first = true
            for word in text.split(separator: " ") {
                if !line.isEmpty, line.count + 1 + word.count > textWidth {
                    out.append((first ? key : "", line, false))
                    first = false
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
            out.append((first ? key : "", line, false))
        }
        return out
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        let rows = rows(width: area.width)
        let first = min(state.selected, max(0, rows.count - area.height))
        for (i, row) in rows.dropFirst(first).prefix(area.height).enumerated() {
            if row.heading {
                screen.put(row.key, x: 1, y: area.y + i, style: Style(.header, bold: true))
            } else {
                screen.put(row.key, x: 3, y: area.y + i, style: Style(.accent, bold: true), maxWidth: 20)
                screen.put(row.text, x: 24, y: area.y + i, style: Style(.text), maxWidth: area.width - 25)
            }
        }
        if rows.count > area.height {
            screen.put(" j/k scroll ", x: area.width - 13, y: area.y, style: Style(.muted))
        }
    }
}
