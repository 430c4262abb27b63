public import MeshMetrics

/// The timeline's samples at one moment: each workload's golden metrics (as `stat` computes
/// them) and each edge's (as `edges` does), over `windowMs`.
public enum TimelineSampler {
    /// Below this many responses in the window, success and p99 say too little to compare.
    public static let minimumResponses = 10.0

    /// From the store, at `atMs`.
    public static func samples(_ store: MetricStore, kindLabel: String, namespace: String?, windowMs: Int64, atMs: Int64)
        -> (samples: [TimelineSubject: TimelineSample], calls: [EdgeID]) {
        samples(workloads: store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: atMs)),
                edges: store.edges(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: atMs), windowMs: windowMs)
    }

    /// From rows already computed (a dashboard snapshot's, a Prometheus server's).
    public static func samples(workloads: [GoldenMetrics], edges: [EdgeMetrics], windowMs: Int64)
        -> (samples: [TimelineSubject: TimelineSample], calls: [EdgeID]) {
        var out: [TimelineSubject: TimelineSample] = [:]
        func sample(_ t: TrafficMetrics) -> TimelineSample {
            let enough = (t.rps ?? 0) * Double(windowMs) / 1000 >= minimumResponses
            return TimelineSample(success: enough ? t.success : nil, p99: enough ? t.latencyP99 : nil, rps: t.rps)
        }
        for row in workloads { out[.workload(row.workload)] = sample(row.traffic) }
        for e in edges { out[.edge(e.edge)] = sample(e.traffic) }
        return (out, edges.map(\.edge))
    }
}

extension TimelineDetector {
    /// The moment `atMs` from rows already computed over `windowMs` (a snapshot's workloads and
    /// edges): the dashboard's live timeline and `meshtop timeline` over Prometheus or live scrapes.
    public mutating func observe(atMs: Int64, workloads: [GoldenMetrics], edges: [EdgeMetrics], windowMs: Int64) {
        let (samples, calls) = TimelineSampler.samples(workloads: workloads, edges: edges, windowMs: windowMs)
        observe(atMs: atMs, samples: samples, calls: calls)
    }
}
