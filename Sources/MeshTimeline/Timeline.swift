public import MeshMetrics

/// What changed: a workload, or an edge between two.
public enum TimelineSubject: Hashable, Sendable, Comparable {
    case workload(WorkloadID)
    case edge(EdgeID)

    /// `deploy/voting`, `deploy/web → deploy/voting` (with `kind` the short kind name; `arrow`
    /// `->` where the terminal has no Unicode).
    public func name(kind: String, arrow: String = "→") -> String {
        switch self {
        case .workload(let w): return "\(kind)/\(w.name)"
        case .edge(let e): return "\(kind)/\(e.source.name) \(arrow) \(kind)/\(e.destination.name)"
        }
    }

    /// linkerd's short kind names, as subjects are written: `deployment` → `deploy`.
    public static func shortKind(_ label: String) -> String {
        switch label {
        case "deployment": return "deploy"
        case "statefulset": return "sts"
        case "daemonset": return "ds"
        case "namespace": return "ns"
        default: return label
        }
    }

    public var namespace: String {
        switch self {
        case .workload(let w): return w.namespace
        case .edge(let e): return e.source.namespace
        }
    }

    public static func < (a: TimelineSubject, b: TimelineSubject) -> Bool {
        switch (a, b) {
        case (.workload(let x), .workload(let y)): return x < y
        case (.edge(let x), .edge(let y)): return (x.source, x.destination) < (y.source, y.destination)
        case (.workload, .edge): return true
        case (.edge, .workload): return false
        }
    }
}

/// The golden metrics a timeline watches.
public enum TimelineMetric: String, Sendable, CaseIterable, Comparable {
    case success, p99, rps

    public static func < (a: TimelineMetric, b: TimelineMetric) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One change: a metric leaving its recent baseline, or coming back to it.
public struct TimelineEvent: Sendable, Equatable {
    /// `settled`: away for longer than the baseline reaches, the new level is the baseline now.
    public enum Change: String, Sendable { case left, returned, settled }
    public var atMs: Int64
    public var subject: TimelineSubject
    public var metric: TimelineMetric
    public var change: Change
    /// Leaving: the baseline, then the value that left it. Returning: the worst value while away,
    /// then the value back within the baseline.
    public var from: Double
    public var to: Double
}

/// A subject's metrics at one moment (nil: no traffic, or too little to say).
public struct TimelineSample: Sendable, Equatable {
    public var success: Double?
    public var p99: Double?
    public var rps: Double?

    public init(success: Double?, p99: Double?, rps: Double?) {
        self.success = success
        self.p99 = p99
        self.rps = rps
    }

    public subscript(metric: TimelineMetric) -> Double? {
        switch metric {
        case .success: return success
        case .p99: return p99
        case .rps: return rps
        }
    }
}

/// When a value has left its baseline, and when it is back. Each band has a ratio and an absolute
/// part, both needed, so neither noise at low values nor small drifts at high values count.
public struct TimelineThresholds: Sendable, Equatable {
    /// Success: the error rate at least `errorRatio` times the baseline's and `errorPoints` (0…1) above it.
    public var errorRatio = 2.0
    public var errorPoints = 0.02
    /// p99: at least `latencyRatio` times the baseline and `latencyMs` above it.
    public var latencyRatio = 1.5
    public var latencyMs = 20.0
    /// RPS: off the baseline by `rpsFraction` of it, and by at least `rpsAbsolute`.
    public var rpsFraction = 0.5
    public var rpsAbsolute = 1.0
    /// Observations in the baseline before anything can leave it.
    public var minimumBaseline = 5
    /// How far back the baseline reaches.
    public var baselineMs: Int64 = 5 * 60 * 1000

    public init() {}

    /// Away from `base`? `back` asks the looser question (half the margin), so a value hovering
    /// at the edge does not flap.
    func away(_ metric: TimelineMetric, value: Double, base: Double, back: Bool = false) -> Bool {
        let k = back ? 0.5 : 1.0
        switch metric {
        case .success:
            let err = 1 - value, baseErr = 1 - base
            return err > baseErr + errorPoints * k && err > baseErr * (1 + (errorRatio - 1) * k)
        case .p99:
            return value > base + latencyMs * k && value > base * (1 + (latencyRatio - 1) * k)
        case .rps:
            let d = abs(value - base)
            return d > rpsAbsolute * k && d > base * rpsFraction * k
        }
    }
}

/// Watches samples over time and reports each metric of each subject leaving its recent
/// baseline (the median of its last `baselineMs` of ordinary values) and returning to it.
/// While away, the baseline is frozen: coming back means back to where it was.
public struct TimelineDetector: Sendable {
    struct Track: Sendable {
        var history: [(t: Int64, v: Double)] = []
        var awaySince: Int64?
        var base = 0.0
        var worst = 0.0
    }

    public var thresholds: TimelineThresholds
    var tracks: [TimelineSubject: [TimelineMetric: Track]] = [:]
    var lastSeen: [TimelineSubject: Int64] = [:]
    public private(set) var events: [TimelineEvent] = []
    /// The newest this many events are kept (a live dashboard runs for days).
    public var capacity = 2_000

    public init(thresholds: TimelineThresholds = TimelineThresholds()) {
        self.thresholds = thresholds
    }

    /// The subjects' samples at `atMs`, and which workload calls which (for the order of changes
    /// seen at the same moment: a callee's before its callers', as failures travel up a call chain).
    public mutating func observe(atMs: Int64, samples: [TimelineSubject: TimelineSample], calls: [EdgeID]) {
        var now: [TimelineEvent] = []
        for (subject, sample) in samples {
            lastSeen[subject] = atMs
            for metric in TimelineMetric.allCases {
                guard let value = sample[metric], value.isFinite else { continue }
                var track = tracks[subject]?[metric] ?? Track()
                if let since = track.awaySince {
                    if thresholds.away(metric, value: value, base: track.base, back: true) {
                        track.worst = worse(metric, track.worst, value, base: track.base)
                        // Away for longer than a baseline reaches: this is the level now.
                        if atMs - since > thresholds.baselineMs {
                            now.append(TimelineEvent(atMs: atMs, subject: subject, metric: metric, change: .settled, from: track.base, to: value))
                            track = Track()
                            track.history.append((atMs, value))
                        }
                    } else {
                        now.append(TimelineEvent(atMs: atMs, subject: subject, metric: metric, change: .returned, from: track.worst, to: value))
                        track.awaySince = nil
                        track.history.append((atMs, value))
                    }
                } else {
                    track.history.removeAll { $0.t < atMs - thresholds.baselineMs }
                    if track.history.count >= max(1, thresholds.minimumBaseline) {
                        let base = median(track.history.map(\.v))
                        if thresholds.away(metric, value: value, base: base) {
                            now.append(TimelineEvent(atMs: atMs, subject: subject, metric: metric, change: .left, from: base, to: value))
                            track.awaySince = atMs
                            track.base = base
                            track.worst = value
                        }
                    }
                    if track.awaySince == nil { track.history.append((atMs, value)) }
                }
                tracks[subject, default: [:]][metric] = track
            }
        }
        // Subjects gone for longer than a baseline reaches start afresh if they come back.
        for (subject, seen) in lastSeen where atMs - seen > thresholds.baselineMs {
            tracks[subject] = nil
            lastSeen[subject] = nil
        }
        guard !now.isEmpty else { return }
        events += Self.ordered(now, calls: calls)
        if events.count > capacity { events.removeFirst(events.count - capacity) }
    }

    /// Changes seen at one moment: callees before their callers (an edge just before its caller),
    /// then by metric and name.
    static func ordered(_ events: [TimelineEvent], calls: [EdgeID]) -> [TimelineEvent] {
        var callees: [WorkloadID: Set<WorkloadID>] = [:]
        for e in calls where e.source != e.destination { callees[e.source, default: []].insert(e.destination) }
        // How many workloads each one reaches through its calls: a caller reaches all its callee
        // reaches and more, so fewer means further down the chain; workloads that call each other
        // reach the same set and rank alike (then by name), whatever order they were seen in.
        var reachMemo: [WorkloadID: Int] = [:]
        func depth(_ w: WorkloadID) -> Int {
            if let d = reachMemo[w] { return d }
            var seen: Set<WorkloadID> = [w]
            var queue = Array(callees[w] ?? [])
            while let next = queue.popLast() {
                guard seen.insert(next).inserted else { continue }
                queue += callees[next] ?? []
            }
            reachMemo[w] = seen.count - 1
            return seen.count - 1
        }
        func rank(_ s: TimelineSubject) -> Int {
            switch s {
            case .workload(let w): return depth(w) * 2
            case .edge(let e): return depth(e.destination) * 2 + 1
            }
        }
        return events.sorted {
            (rank($0.subject), $0.metric, $0.subject) < (rank($1.subject), $1.metric, $1.subject)
        }
    }

    func worse(_ metric: TimelineMetric, _ a: Double, _ b: Double, base: Double) -> Double {
        switch metric {
        case .success: return min(a, b)
        case .p99: return max(a, b)
        case .rps: return abs(a - base) >= abs(b - base) ? a : b
        }
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
