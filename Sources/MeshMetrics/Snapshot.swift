
/// What the dashboard shows of the mesh at one moment, computed by a feed from a collector or a
/// Prometheus server: the views read this, never the store, so the store is only touched once
/// per refresh, and the snapshot can be handed between threads as it is.
public struct MeshSnapshot: Sendable, Equatable {
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
    /// Every target and how its scrapes go, worst first (the Targets view).
    public var targets: [TargetRow] = []
    /// A replay's sparklines, from the recording at the moments before `atMs`; nil for live
    /// data, whose history is what the session saw.
    public var history: [String: History]?
    /// The responses behind each workload's (`w:ns/name`) and edge's (`e:…`) success rate, by
    /// HTTP status, gRPC status and stream error: the cause, one key (Enter) from the failing row.
    public var breakdown: [String: [ResponseShare]] = [:]
    /// The feed is still computing the snapshot for the query asked (a new namespace or window):
    /// this one answers an earlier query, and the loop asks again soon.
    public var catchingUp = false
    /// Series the source holds to answer (nil for a Prometheus server, which holds its own).
    public var seriesHeld: Int?
    /// Each workload's success over the query's `successWindowsMs` (SLO burn rates), window by
    /// window; a window without traffic is absent. Over what the source holds where that is
    /// shorter: `successHeldMs`.
    public var windowedSuccess: [WorkloadID: [Int64: Double]] = [:]
    /// How far back the data behind `windowedSuccess` reaches; nil where the source keeps its own
    /// history (a Prometheus server).
    public var successHeldMs: Int64?

    public init() {}

    /// Computes the views' data from `collector` at its latest scrape.
    public static func make(from collector: Collector, kindLabel: String, namespace: String?, windowMs: Int64) -> MeshSnapshot {
        var d = MeshSnapshot()
        d.targets = TargetRow.rows(collector.health.values, kindLabel: kindLabel)
        d.seriesHeld = collector.store.seriesCount
        guard let at = collector.lastScrapeMs else {
            d.targetsTotal = collector.health.count
            return d
        }
        d.atMs = at
        d.windowMs = collector.effectiveWindow(windowMs)
        d.workloads = collector.store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, windowMs: d.windowMs, atMs: at))
        d.edges = collector.store.edges(kindLabel: kindLabel, namespace: namespace, windowMs: d.windowMs, atMs: at)
        d.breakdown = breakdown(collector.store, kindLabel: kindLabel, namespace: namespace, windowMs: d.windowMs, atMs: at)
        d.targetsUp = collector.upCount
        d.targetStates = collector.stateSummary
        d.targetsTotal = collector.activeCount
        d.problems = collector.health.values.compactMap(\.message).sorted()
        if let e = collector.recordingError { d.problems.insert(e, at: 0) }
        if let e = collector.targetsFileProblem { d.problems.insert(e, at: 0) }
        return d
    }

    static func breakdown(_ store: MetricStore, kindLabel: String, namespace: String?, windowMs: Int64, atMs: Int64) -> [String: [ResponseShare]] {
        var scope: [Matcher] = [.ne(kindLabel, "")]
        if let namespace { scope.append(.eq("namespace", namespace)) }
        var out: [String: [ResponseShare]] = [:]
        for (g, shares) in store.responseBreakdown(scope + [.eq("direction", "inbound")], groupBy: ["namespace", kindLabel], windowMs: windowMs, at: atMs) {
            out[viewKey(WorkloadID(namespace: g[0], name: g[1]))] = shares
        }
        let edgeScope = scope + [.eq("direction", "outbound"), .ne("dst_" + kindLabel, "")]
        for (g, shares) in store.responseBreakdown(edgeScope, groupBy: ["namespace", kindLabel, "dst_namespace", "dst_" + kindLabel], windowMs: windowMs, at: atMs) {
            out[viewKey(EdgeID(source: WorkloadID(namespace: g[0], name: g[1]), destination: WorkloadID(namespace: g[2], name: g[3])))] = shares
        }
        return out
    }

    /// The workload `id`'s metrics, if it is known.
    public func workload(_ id: WorkloadID) -> GoldenMetrics? { workloads.first { $0.workload == id } }
}

/// One target in the Targets view: its state, what went wrong last, and when it last worked.
public struct TargetRow: Sendable, Equatable {
    public var url: String
    /// `namespace/deployment` (or whatever identifying labels it has).
    public var workload: String
    public var state: TargetState
    public var message: String?
    public var lastScrapeMs: Int64
    public var lastSuccessMs: Int64?
    public var failures: Int

    public init(url: String, workload: String, state: TargetState, message: String? = nil, lastScrapeMs: Int64, lastSuccessMs: Int64? = nil, failures: Int = 0) {
        self.url = url
        self.workload = workload
        self.state = state
        self.message = message
        self.lastScrapeMs = lastScrapeMs
        self.lastSuccessMs = lastSuccessMs
        self.failures = failures
    }

    /// Down and bad-format first, then slow, up, gone; by URL within a state. The workload is
    /// named by `kindLabel`, as the views name it.
    static func rows(_ health: some Sequence<TargetHealth>, kindLabel: String) -> [TargetRow] {
        let rank: [TargetState: Int] = [.down: 0, .badFormat: 1, .slow: 2, .up: 3, .gone: 4]
        return health.map { h in
            let labels = Dictionary(h.target.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            let name = labels[kindLabel]
            let workload = [labels["namespace"], name].compactMap { $0 }.joined(separator: "/")
            return TargetRow(url: h.target.url, workload: workload, state: h.state, message: h.message,
                             lastScrapeMs: h.lastScrapeMs, lastSuccessMs: h.lastSuccessMs, failures: h.failures)
        }.sorted { (rank[$0.state] ?? 9, $0.url) < (rank[$1.state] ?? 9, $1.url) }
    }
}

/// The key of a workload's or an edge's history and breakdown (`w:ns/name`, `e:…`): one spelling
/// for every place that files or looks them up.
public func viewKey(_ w: WorkloadID) -> String { "w:\(w.namespace)/\(w.name)" }
public func viewKey(_ e: EdgeID) -> String { "e:" + edgeKey(e) }

public func edgeKey(_ e: EdgeID) -> String {
    "\(e.source.namespace)/\(e.source.name)>\(e.destination.namespace)/\(e.destination.name)"
}

/// What a feed is asked for at each refresh.
public struct SnapshotQuery: Sendable, Equatable {
    /// The label naming workloads (`deployment`, `statefulset`…).
    public var kindLabel: String
    /// One namespace, or nil for all.
    public var namespace: String?
    public var windowMs: Int64
    /// A replay's position on its recording's clock; nil for live data (now).
    public var atMs: Int64?
    /// The refresh step: a replay's sparklines are computed on a grid of it.
    public var stepMs: Int
    /// Longer windows each workload's success is also wanted over (SLO burn rates: 5m, 30m, 1h,
    /// 6h); empty for none.
    public var successWindowsMs: [Int64]

    public init(kindLabel: String, namespace: String? = nil, windowMs: Int64, atMs: Int64? = nil, stepMs: Int = 1000,
                successWindowsMs: [Int64] = []) {
        self.kindLabel = kindLabel
        self.namespace = namespace
        self.windowMs = windowMs
        self.atMs = atMs
        self.stepMs = stepMs
        self.successWindowsMs = successWindowsMs
    }
}

/// Where the dashboard's snapshots come from: live scrapes, a recording or a Prometheus server.
public protocol SnapshotFeed: Sendable {
    /// The mesh at this moment (or at the replay's position), as `query` asks.
    func snapshot(for query: SnapshotQuery) -> MeshSnapshot
    /// Takes back a snapshot the caller is done with, so that a feed computing on a thread of its
    /// own frees it there: a big mesh's snapshot is tens of thousands of rows to free.
    func recycle(_ old: MeshSnapshot)
}

extension SnapshotFeed {
    public func recycle(_ old: MeshSnapshot) {}
}
