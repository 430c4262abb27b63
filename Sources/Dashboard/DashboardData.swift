public import MeshMetrics

/// What the dashboard shows of the mesh at one moment, computed from a collector: the views
/// read this, never the store, so the store is only touched once per refresh.
public struct DashboardData: Sendable, Equatable {
    public var workloads: [GoldenMetrics] = []
    public var edges: [EdgeMetrics] = []
    /// The window the numbers are over (shortened while a live session is younger than it).
    public var windowMs: Int64 = 0
    /// The moment of the data, milliseconds since the epoch.
    public var atMs: Int64 = 0
    public var targetsUp = 0
    public var targetsTotal = 0
    /// Targets not simply up, by state (`1 slow, 2 down`); empty when all are up.
    public var targetStates = ""
    /// One line per target that is down or sent bad metrics, and recording trouble.
    public var problems: [String] = []

    public init() {}

    /// Computes the views' data from `collector` at its latest scrape.
    public static func make(from collector: Collector, kindLabel: String, namespace: String?, windowMs: Int64) -> DashboardData {
        var d = DashboardData()
        guard let at = collector.lastScrapeMs else {
            d.targetsTotal = collector.health.count
            return d
        }
        d.atMs = at
        d.windowMs = collector.effectiveWindow(windowMs)
        d.workloads = collector.store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, windowMs: d.windowMs, atMs: at))
        d.edges = collector.store.edges(kindLabel: kindLabel, namespace: namespace, windowMs: d.windowMs, atMs: at)
        d.targetsUp = collector.upCount
        d.targetStates = collector.stateSummary
        d.targetsTotal = collector.activeCount
        d.problems = collector.health.values.compactMap(\.message).sorted()
        if let e = collector.recordingError { d.problems.insert(e, at: 0) }
        if let e = collector.targetsFileProblem { d.problems.insert(e, at: 0) }
        return d
    }

    /// The workload `id`'s metrics, if it is known.
    public func workload(_ id: WorkloadID) -> GoldenMetrics? { workloads.first { $0.workload == id } }
}
