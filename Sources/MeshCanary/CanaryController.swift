public import MeshMetrics
import MeshTap
import Synchronization

/// The two deployments a canary release compares.
public struct CanaryTarget: Sendable {
    public var namespace: String?
    public var canary: String
    public var primary: String

    public init(namespace: String?, canary: String, primary: String) {
        self.namespace = namespace
        self.canary = canary
        self.primary = primary
    }
}

/// One interval's observation of the canary and the primary.
public struct CanaryObservation: Sendable {
    /// The moment observed (recorded time when replaying).
    public var atMs: Int64
    public var canary: TrafficSample?
    public var primary: TrafficSample?
    /// Why the source could not answer (it counts as missing data, so as a failed check).
    public var problem: String?

    public init(atMs: Int64, canary: TrafficSample?, primary: TrafficSample?, problem: String? = nil) {
        self.atMs = atMs
        self.canary = canary
        self.primary = primary
        self.problem = problem
    }
}

/// Where a canary's traffic comes from, interval after interval.
public protocol CanaryObserver {
    /// What is observed, for the header ("scraping 3 proxies", "Prometheus at …", "replay of …").
    var source: String { get }
    /// Waits for the end of the next interval and observes it; nil when the source has ended
    /// (the end of a recording) or `stop` says so.
    mutating func next(stop: () -> Bool) -> CanaryObservation?
}

extension Collector {
    /// A deployment's inbound traffic over `windowMs` up to the last scrape, as the canary checks see it.
    public func canarySample(_ deployment: String, namespace: String?, windowMs: Int64) -> TrafficSample? {
        guard let at = lastScrapeMs else { return nil }
        var matchers: [Matcher] = [.eq("direction", "inbound"), .eq("deployment", deployment)]
        if let namespace { matchers.append(.eq("namespace", namespace)) }
        let window = effectiveWindow(windowMs)
        guard let t = store.traffic(matchers, groupBy: ["deployment"], windowMs: window, at: at).values.first, let rps = t.rps else { return nil }
        return TrafficSample(requests: rps * Double(window) / 1000, success: t.success, p99Ms: t.latencyP99)
    }
}

/// Judges a recording: the scrapes run through a collector on a virtual clock, one interval at a
/// time, as fast as they can be read.
public struct ReplayCanaryObserver: CanaryObserver {
    private let events: [ScrapeResult]
    private var collector = Collector()
    private var fed = 0
    private var atMs: Int64
    let target: CanaryTarget
    let intervalMs: Int64
    public let source: String

    /// `startMs`: where the analysis starts (default: the recording's start).
    public init(events: [ScrapeResult], target: CanaryTarget, intervalMs: Int64, startMs: Int64? = nil, source: String) {
        self.events = events.sorted { $0.startedMs < $1.startedMs }
        self.target = target
        self.intervalMs = intervalMs
        self.source = source
        atMs = startMs ?? self.events.first?.startedMs ?? 0
    }

    public mutating func next(stop: () -> Bool) -> CanaryObservation? {
        guard !stop(), let end = events.last?.startedMs, atMs + intervalMs <= end else { return nil }
        atMs += intervalMs
        while fed < events.count, events[fed].startedMs <= atMs {
            collector.ingest([events[fed]])
            fed += 1
        }
        return CanaryObservation(atMs: atMs,
                                 canary: collector.canarySample(target.canary, namespace: target.namespace, windowMs: intervalMs),
                                 primary: collector.canarySample(target.primary, namespace: target.namespace, windowMs: intervalMs))
    }
}

/// Everything a canary watch shows: the weight, the last checks, both sides' history and every decision.
public struct CanaryWatch: Sendable {
    public var target: CanaryTarget
    public var authority: String
    public var source: String
    public var policy: CanaryPolicy
    public var intervalMs: Int64
    public var dryRun: Bool
    public var weight = 0
    public var failedChecks = 0
    public var intervals = 0
    public var atMs: Int64?
    public var checks: [CheckResult] = []
    /// One entry per interval, oldest first.
    public var canaryHistory: [TrafficSample?] = []
    public var primaryHistory: [TrafficSample?] = []
    /// Time-stamped decision lines, oldest first.
    public var log: [String] = []
    /// The verdict, once the watch is over.
    public var result: CanaryResult?
    public var reason: String?

    public init(target: CanaryTarget, authority: String, source: String, policy: CanaryPolicy, intervalMs: Int64, dryRun: Bool) {
        self.target = target
        self.authority = authority
        self.source = source
        self.policy = policy
        self.intervalMs = intervalMs
        self.dryRun = dryRun
    }

    /// The final verdict as one JSON object (the last line of a headless run).
    public var verdictJSON: String {
        "{\"result\":\(JSONText.string(result?.rawValue ?? "running")),\"canary\":\(JSONText.string(target.canary)),\"weight\":\(weight),"
            + "\"intervals\":\(intervals),\"failed_checks\":\(failedChecks),\"reason\":\(JSONText.string(reason ?? "")),"
            + "\"log\":[" + log.map(JSONText.string).joined(separator: ",") + "]}"
    }
}

/// How a canary watch ended.
public enum CanaryResult: String, Sendable {
    case promoted
    case rolledBack = "rolled back"
    /// Interrupted, or the source ended, before a verdict.
    case stopped
}

/// Where the controller sets a traffic split: meshproxy's split API (`SplitClient`), or a fake
/// in tests. Throws what went wrong, in words a user can act on.
public protocol WeightSetter: Sendable {
    func set(authority: String, weights: [String: Int]) throws
}

/// A canary release driven by the mesh's own metrics: each interval judge the canary's inbound
/// traffic, then step its weight through every `WeightSetter` (the proxies' split APIs), roll it
/// back, or promote it.
public struct CanaryController: Sendable {
    public var authority: String
    public var canaryBackend: String
    public var primaryBackend: String
    public var splits: [any WeightSetter]
    public var dryRun: Bool

    public init(authority: String, canaryBackend: String, primaryBackend: String, splits: [any WeightSetter], dryRun: Bool) {
        self.authority = authority
        self.canaryBackend = canaryBackend
        self.primaryBackend = primaryBackend
        self.splits = splits
        self.dryRun = dryRun
    }

    /// Runs until promotion, rollback, the end of the source or `stop`; `report` sees the watch after
    /// every change with the line that was logged. Returns the exit code (0 promoted, 1 otherwise) and the final watch.
    public func run(_ observer: inout some CanaryObserver, watch initial: CanaryWatch, startMs: Int64,
                    stop: () -> Bool = { false }, report: (CanaryWatch, String) -> Void) -> (code: Int32, watch: CanaryWatch) {
        var watch = initial
        var analysis = CanaryAnalysis(policy: watch.policy)
        func log(_ line: String, at ms: Int64) {
            watch.atMs = ms
            watch.log.append("\(TimeSpec.format(ms / 1000 * 1000)) \(line)")
            report(watch, watch.log.last!)
        }
        func finish(_ result: CanaryResult, _ reason: String, at ms: Int64, code: Int32, weight: Int? = nil) -> (code: Int32, watch: CanaryWatch) {
            watch.result = result
            watch.reason = reason
            watch.weight = weight ?? analysis.weight
            log("\(result.rawValue): \(reason)", at: ms)
            return (code, watch)
        }
        watch.weight = analysis.begin()
        if let problem = apply(weight: watch.weight) {
            return finish(.rolledBack, "the split cannot be set: \(problem)", at: startMs, code: 1, weight: 0)
        }
        log("start: canary weight \(watch.weight)", at: startMs)
        var lastMs = startMs
        while let o = observer.next(stop: stop) {
            lastMs = o.atMs
            var checks = CanaryAnalysis.check(canary: o.canary, primary: o.primary, policy: watch.policy)
            if let problem = o.problem, let i = checks.firstIndex(where: { !$0.passed }) {
                checks[i].detail += " (\(problem))"
            }
            let weightBefore = analysis.weight
            let decision = analysis.step(checks)
            watch.checks = checks
            watch.canaryHistory.append(o.canary)
            watch.primaryHistory.append(o.primary)
            watch.intervals = analysis.intervals
            watch.failedChecks = analysis.failedChecks
            watch.weight = analysis.weight
            let line = checks.map { "\($0.passed ? "✔" : "✖") \($0.name) \($0.detail)" }.joined(separator: "  ")
            log("weight \(weightBefore)  \(line)  => \(CanaryAnalysis.describe(decision))", at: o.atMs)
            switch decision {
            case .advance(let w):
                if let problem = apply(weight: w) {
                    _ = apply(weight: 0)
                    return finish(.rolledBack, "the split cannot be set: \(problem)", at: o.atMs, code: 1, weight: 0)
                }
            case .hold: break
            case .rollback(let reason):
                if let problem = apply(weight: 0) { log("could not roll back the split: \(problem)", at: o.atMs) }
                return finish(.rolledBack, reason, at: o.atMs, code: 1)
            case .promote:
                if let problem = apply(weight: 100) {
                    _ = apply(weight: 0)
                    return finish(.rolledBack, "the split cannot be set for promotion: \(problem)", at: o.atMs, code: 1, weight: 0)
                }
                return finish(.promoted, "passed every check up to weight \(watch.policy.maxWeight)", at: o.atMs, code: 0)
            }
        }
        let why = stop() ? "interrupted" : "the source ended (end of the recording)"
        return finish(.stopped, "\(why) before a verdict; canary left at weight \(analysis.weight)", at: lastMs, code: 1)
    }

    /// Sets canary = weight, primary = 100 - weight on every split; nil, or why it failed.
    private func apply(weight: Int) -> String? {
        guard !dryRun else { return nil }
        for split in splits {
            do {
                try split.set(authority: authority, weights: [canaryBackend: weight, primaryBackend: 100 - weight])
            } catch {
                return String(describing: error)
            }
        }
        return nil
    }
}

/// The latest canary watch, handed from the controller's thread to the dashboard's.
public final class CanaryBoard: Sendable {
    private let latest = Mutex<(watch: CanaryWatch?, version: Int)>((nil, 0))

    public init() {}

    public func post(_ watch: CanaryWatch) { latest.withLock { $0 = (watch, $0.version + 1) } }

    /// The watch if it changed since `version`.
    public func take(since version: Int) -> (CanaryWatch, Int)? {
        latest.withLock { l in l.version > version ? l.watch.map { ($0, l.version) } : nil }
    }
}
