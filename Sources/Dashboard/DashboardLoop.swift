public import MeshCanary
public import MeshMetrics
public import TerminalUI
#if canImport(Glibc)
import Glibc
#endif

public import MeshTap

/// Runs the dashboard on a terminal (the real one, or a headless one in tests): reads keys, folds them, fresh data and tap events into
/// the state, renders the view and draws it, until `q`, Ctrl-C, a deadline or `maxFrames`.
public enum DashboardLoop {
    public static func run(_ initial: DashboardState, feed: any SnapshotFeed, tap: (any TapEventFeed)? = nil, canary: CanaryBoard? = nil,
                           terminal: any TerminalBackend, maxFrames: Int? = nil, deadlineMs: Int64? = nil, clock: any TimeSource = WallClock()) {
        var state = initial
        var canaryVersion = 0
        state.tapSources = tap?.count ?? 0
        var frames = 0
        var lastRefresh: Int64 = 0
        var lastTick = clock.nowMs()
        var dirty = true
        while !state.quit {
            let now = clock.nowMs()
            if let deadlineMs, now >= deadlineMs { break }
            state.nowMs = now
            if state.replay != nil {
                let before = state.replay
                update(&state, .tick(elapsedMs: now - lastTick))
                if state.replay != before { lastRefresh = 0 }
            }
            lastTick = now
            if let tap {
                let (events, problems) = tap.drain()
                if !events.isEmpty {
                    update(&state, .tap(events))
                    if state.view == .tap || state.view == .top { dirty = true }
                }
                if let p = problems.last { state.message = p; dirty = true }
            }
            if let (watch, version) = canary?.take(since: canaryVersion) {
                canaryVersion = version
                update(&state, .canary(watch))
                dirty = true
            }
            if now - lastRefresh >= Int64(state.refreshMs) {
                lastRefresh = now
                let snapshot = feed.snapshot(for: state.query)
                // The feed is still computing what was asked: look again in 100 ms, not a refresh later.
                if snapshot.catchingUp { lastRefresh = now - Int64(state.refreshMs) + 100 }
                let old = state.data
                update(&state, .data(snapshot, clockText: clockText(state.replay?.atMs ?? now)))
                feed.recycle(old)  // freed off this thread
                dirty = true
            }
            if dirty {
                let size = terminal.size
                terminal.draw(DashboardScreen.render(state, width: size.width, height: size.height, unicode: terminal.unicode))
                dirty = false
                frames += 1
                if let maxFrames, frames >= maxFrames { break }
            }
            guard let key = terminal.readKey(timeoutMs: state.view == .tap ? 100 : 200) else { continue }
            switch key {
            case .resize, .control("l"):
                terminal.invalidate()
            default:
                let namespace = state.namespace, window = state.windowMs, position = state.replay
                update(&state, .key(key))
                // A new namespace, window or replay position needs new data now, not at the next refresh.
                if state.namespace != namespace || state.windowMs != window || state.replay != position { lastRefresh = 0 }
            }
            dirty = true
        }
    }

    static func clockText(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
