public import TerminalUI
#if canImport(Glibc)
import Glibc
#endif
public import MeshSources
public import MeshTap
import Synchronization

/// Where the dashboard's data comes from each refresh.
public protocol DashboardFeed: Sendable {
    /// The data at this moment, for the state's kind, namespace and window.
    func data(for state: DashboardState) -> DashboardData
}

extension LiveCollector: DashboardFeed {
    public func data(for state: DashboardState) -> DashboardData {
        read { DashboardData.make(from: $0, kindLabel: state.kindLabel, namespace: state.namespace, windowMs: state.windowMs) }
    }
}

/// Merges tap subscriptions into one queue the UI drains each frame.
public final class TapFeed: Sendable {
    private let queue = Mutex<[TapEvent]>([])
    private let problems = Mutex<[String]>([])
    private let subscriptions: [TapSubscription]

    public init(addresses: [String], filter: TapFilter = TapFilter()) {
        subscriptions = addresses.map { TapSubscription(address: $0, filter: filter) }
    }

    public var count: Int { subscriptions.count }

    public func start() {
        for s in subscriptions {
            s.start { update in
                switch update {
                case .event(let e): self.queue.withLock { q in if q.count < 50_000 { q.append(e) } }
                case .problem(let p): self.problems.withLock { $0.append(p) }
                case .closed: break
                }
            }
        }
    }

    public func stop() { for s in subscriptions { s.stop() } }

    func drain() -> (events: [TapEvent], problems: [String]) {
        let events = queue.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q }
        let problems = problems.withLock { p in defer { p.removeAll() }; return p }
        return (events, problems)
    }
}

/// The latest canary watch, handed from the controller's thread to the dashboard's.
public final class CanaryBoard: Sendable {
    private let latest = Mutex<(watch: CanaryWatch?, version: Int)>((nil, 0))

    public init() {}

    public func post(_ watch: CanaryWatch) { latest.withLock { $0 = (watch, $0.version + 1) } }

    /// The watch if it changed since `version`.
    func take(since version: Int) -> (CanaryWatch, Int)? {
        latest.withLock { l in l.version > version ? l.watch.map { ($0, l.version) } : nil }
    }
}

/// Runs the dashboard on a real terminal: reads keys, folds them, fresh data and tap events into
/// the state, renders the view and draws it, until `q`, Ctrl-C, a deadline or `maxFrames`.
public enum DashboardLoop {
    public static func run(_ initial: DashboardState, feed: any DashboardFeed, tap: TapFeed? = nil, canary: CanaryBoard? = nil,
                           terminal: NcursesTerminal, maxFrames: Int? = nil, deadlineMs: Int64? = nil, clock: any TimeSource = WallClock()) {
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
                update(&state, .data(feed.data(for: state), clockText: clockText(state.replay?.atMs ?? now)))
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
