public import MeshSources

/// The dashboard's data from a recording, at the replay's position: the events up to it run
/// through the same collector a live session uses, so the screen shows what it showed live.
public final class ReplayFeed: DashboardFeed, @unchecked Sendable {
    // @unchecked: the loop calls `data(for:)` from one thread only; the state below is its own.
    private let events: [ScrapeResult]
    private var collector = Collector()
    private var fed = 0
    private var fedUpToMs: Int64 = .min

    /// The scrapes of a recording, in time order.
    public init(events: [ScrapeResult]) {
        self.events = events.sorted { $0.startedMs < $1.startedMs }
    }

    public var startMs: Int64? { events.first?.startedMs }
    public var endMs: Int64? { events.last?.startedMs }

    public func data(for state: DashboardState) -> DashboardData {
        let at = state.replay?.atMs ?? (endMs ?? 0)
        if at < fedUpToMs {
            collector = Collector()
            fed = 0
        }
        while fed < events.count, events[fed].startedMs <= at {
            collector.ingest([events[fed]])
            fed += 1
        }
        fedUpToMs = at
        return DashboardData.make(from: collector, kindLabel: state.kindLabel, namespace: state.namespace, windowMs: state.windowMs)
    }
}
