public import MeshTap
import Synchronization

/// Merges tap subscriptions into one queue the UI drains each frame.
public final class TapFeed: TapEventFeed {
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

    public func drain() -> (events: [TapEvent], problems: [String]) {
        let events = queue.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q }
        let problems = problems.withLock { p in defer { p.removeAll() }; return p }
        return (events, problems)
    }
}
