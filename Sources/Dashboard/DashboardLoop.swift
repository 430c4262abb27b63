public import TerminalUI
#if canImport(Glibc)
import Glibc
#endif
public import MeshSources

/// Runs the dashboard on a real terminal: reads keys, folds them and fresh data into the state,
/// renders the view and draws it, until `q`, Ctrl-C, a deadline or `maxFrames`.
public enum DashboardLoop {
    public static func run(_ initial: DashboardState, collector: LiveCollector, terminal: NcursesTerminal,
                           refreshMs: Int = 1000, maxFrames: Int? = nil, deadlineMs: Int64? = nil, clock: any Clock = WallClock()) {
        var state = initial
        var frames = 0
        var lastRefresh: Int64 = 0
        while !state.quit {
            let now = clock.nowMs()
            if let deadlineMs, now >= deadlineMs { break }
            if now - lastRefresh >= Int64(refreshMs) {
                lastRefresh = now
                update(&state, .data(collector.snapshot, clockText: clockText(now)))
                let size = terminal.size
                terminal.draw(OverviewView.render(state, width: size.width, height: size.height, unicode: terminal.unicode))
                frames += 1
                if let maxFrames, frames >= maxFrames { break }
            }
            guard let key = terminal.readKey(timeoutMs: 100) else { continue }
            switch key {
            case .resize, .control("l"):
                terminal.invalidate()
                lastRefresh = 0
            default:
                update(&state, .key(key))
                let size = terminal.size
                terminal.draw(OverviewView.render(state, width: size.width, height: size.height, unicode: terminal.unicode))
            }
        }
    }

    static func clockText(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format2d(Int(parts.tm_hour))) + ":" + format2d(Int(parts.tm_min)) + ":" + format2d(Int(parts.tm_sec)) + "Z"
    }

    private static func format2d(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
