public import MeshMetrics

/// The dashboard's data from a recording, at the replay's position: the events up to it run
/// through the same collector a live session uses, so the screen shows what it showed live.
public final class ReplayFeed: SnapshotFeed, @unchecked Sendable {
    // @unchecked: the loop calls `snapshot(for:)` from one thread only; the state below is its own.
    private let events: [ScrapeResult]
    private var collector = Collector()
    private var fed = 0
    private var fedUpToMs: Int64 = .min
    /// The last SLO windows computed: playing, they are computed again once the replay has moved
    /// a second on (a frame's worth of data changes them little), paused, they are exact.
    private var windowed: (query: SnapshotQuery, atMs: Int64, success: [WorkloadID: [Int64: Double]], heldMs: Int64?)?
    private static let defaultRetentionMs = MetricStore().retentionMs

    /// The scrapes of a recording, in time order.
    public init(events: [ScrapeResult]) {
        self.events = events.sorted { $0.startedMs < $1.startedMs }
    }

    public var startMs: Int64? { events.first?.startedMs }
    public var endMs: Int64? { events.last?.startedMs }

    public func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        let at = query.atMs ?? (endMs ?? 0)
        // The store holds the longest window asked for (SLO windows reach 6h), 30 minutes at least.
        let retention = max(Self.defaultRetentionMs, query.windowMs, query.successWindowsMs.max() ?? 0)
        if at < fedUpToMs || collector.store.retentionMs < retention {
            collector = Collector(store: MetricStore(retentionMs: retention))
            fed = 0
            windowed = nil
        }
        while fed < events.count, events[fed].startedMs <= at {
            collector.ingest([events[fed]])
            fed += 1
        }
        fedUpToMs = at
        var data = MeshSnapshot.make(from: collector, kindLabel: query.kindLabel, namespace: query.namespace, windowMs: query.windowMs)
        data.history = history(at: at, query: query)
        if !query.successWindowsMs.isEmpty {
            var asked = query
            asked.atMs = nil
            if let w = windowed, w.query == asked, at >= w.atMs, at - w.atMs < 1000 {
                (data.windowedSuccess, data.successHeldMs) = (w.success, w.heldMs)
            } else {
                (data.windowedSuccess, data.successHeldMs) = collector.windowedSuccess(kindLabel: query.kindLabel, namespace: query.namespace,
                                                                                       windowsMs: query.successWindowsMs, atMs: at)
                windowed = (asked, at, data.windowedSuccess, data.successHeldMs)
            }
        }
        return data
    }

    // MARK: History from the recording

    /// The numbers of every workload and edge at one moment.
    private struct Point {
        var values: [String: (rps: Double?, success: Double?, p99: Double?)] = [:]
    }

    private var points: [Int64: Point] = [:]
    private var pointsKey = ""

    /// The sparklines' history as the recording has it: the moments on a grid of the refresh
    /// step up to `at`, each computed from the samples up to it (not the positions visited, so a
    /// jump shows what led there). A moment's numbers do not depend on how one got to it, so they
    /// are kept (per kind, namespace, window and step) and a step forward computes one.
    func history(at: Int64, query: SnapshotQuery) -> [String: History] {
        let step = Int64(max(250, query.stepMs))
        let key = "\(query.kindLabel)|\(query.namespace ?? "")|\(query.windowMs)|\(step)"
        if key != pointsKey || points.count > 4 * History.length {
            if key != pointsKey { points = [:] }
            pointsKey = key
            let oldest = at - Int64(History.length) * step
            points = points.filter { $0.key >= oldest && $0.key <= at }
        }
        guard let first = startMs else { return [:] }
        // The grid: `at` itself and the steps before it, back to the recording's start.
        var moments: [Int64] = []
        var t = at
        while moments.count < History.length, t >= first {
            moments.append(t)
            t -= step
        }
        moments.reverse()
        var out: [String: History] = [:]
        for (i, t) in moments.enumerated() {
            let p = points[t] ?? point(at: t, query: query)
            points[t] = p
            for (name, v) in p.values {
                var h = out[name] ?? History()
                // A workload or edge seen later than the first moment: gaps before it.
                while h.rps.count < i { h.append(rps: nil, success: nil, p99: nil) }
                h.append(rps: v.rps, success: v.success, p99: v.p99)
                out[name] = h
            }
        }
        for name in out.keys {
            while out[name]!.rps.count < moments.count { out[name]!.append(rps: nil, success: nil, p99: nil) }
        }
        return out
    }

    private func point(at t: Int64, query: SnapshotQuery) -> Point {
        var p = Point()
        guard let first = collector.firstScrapeMs, t > first else { return p }
        let window = min(query.windowMs, t - first)
        let store = collector.store
        for w in store.stat(StatQuery(kindLabel: query.kindLabel, namespace: query.namespace, windowMs: window, atMs: t)) {
            p.values[viewKey(w.workload)] = (w.rps, w.success, w.latencyP99)
        }
        for e in store.edges(kindLabel: query.kindLabel, namespace: query.namespace, windowMs: window, atMs: t) {
            p.values[viewKey(e.edge)] = (e.traffic.rps, e.traffic.success, e.traffic.latencyP99)
        }
        return p
    }
}
