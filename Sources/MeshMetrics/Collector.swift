import PromText

/// How a target's last scrape went.
public enum TargetState: String, Sendable {
    case up, down, badFormat = "bad format"
    /// Answered, but slower than the collector's `slowSeconds`: its numbers are late and the
    /// proxy (or the path to it) is struggling.
    case slow
    /// No longer a target (removed from the targets file): shown, not silently dropped.
    case gone
}

public struct TargetHealth: Sendable {
    public var target: ScrapeTarget
    public var state: TargetState
    /// What went wrong, naming the target (and line and column for bad format).
    public var message: String?
    public var lastScrapeMs: Int64
    /// When it last answered with metrics that parsed (nil: never, in this session).
    public var lastSuccessMs: Int64? = nil
    /// Scrapes in a row that failed (0 when the last one worked).
    public var failures = 0
}

/// Turns scrape results into the store: parses each body, adds the target's labels, and keeps
/// per-target health. A body that does not parse is rejected whole; the target's earlier data
/// stays in use and the target shows as erroring.
public struct Collector: Sendable {
    public var store: MetricStore
    public private(set) var health: [String: TargetHealth] = [:]
    /// Scrapes taken, and the time of the first and latest.
    public private(set) var rounds = 0
    public private(set) var firstScrapeMs: Int64?
    public private(set) var lastScrapeMs: Int64?
    /// Recording problems (the recorder stops at the first).
    public var recordingError: String?
    /// Why the targets file's latest version is not in use.
    public var targetsFileProblem: String?
    /// A scrape that takes longer than this marks its target slow.
    public var slowSeconds: Double = 0.5

    /// Marks a target that is no longer scraped; its last data stays until it ages out.
    public mutating func markGone(_ target: ScrapeTarget, reason: String) {
        let before = health[target.url]
        health[target.url] = TargetHealth(target: target, state: .gone, message: "\(target.instance) is gone: \(reason)",
                                          lastScrapeMs: before?.lastScrapeMs ?? 0, lastSuccessMs: before?.lastSuccessMs,
                                          failures: before?.failures ?? 0)
    }

    public init(store: MetricStore = MetricStore()) {
        self.store = store
    }

    /// Adds one round of scrapes; returns the messages of targets that failed in it.
    @discardableResult
    public mutating func ingest(_ results: [ScrapeResult]) -> [String] {
        let problems = results.compactMap { ingest($0) }
        endRound()
        return problems
    }

    /// The first and last scrape of the round being taken.
    private var round: (first: Int64, last: Int64)?

    /// Adds one scrape of a round as it arrives (`endRound` closes the round); returns what went
    /// wrong with it, if anything.
    public mutating func ingest(_ r: ScrapeResult) -> String? {
        round = (min(round?.first ?? r.startedMs, r.startedMs), max(round?.last ?? r.startedMs, r.startedMs))
        let labels = r.target.seriesLabels
        let lastSuccess = health[r.target.url]?.lastSuccessMs
        let failures = (health[r.target.url]?.failures ?? 0) + 1
        guard let body = r.body else {
            store.ingestFailure(target: labels, at: r.startedMs)
            let message = r.error ?? "\(r.target.url): scrape failed"
            health[r.target.url] = TargetHealth(target: r.target, state: .down, message: message, lastScrapeMs: r.startedMs,
                                                lastSuccessMs: lastSuccess, failures: failures)
            return message
        }
        do {
            // A scrape whose lines are those of the last one, new values aside, skips the parse.
            let known = store.rollup != nil && body.withUnsafeBytes { store.ingestKnown($0, target: labels, at: r.startedMs) }
            if !known {
                let exposition = try PromTextParser.parse(body)
                store.ingest(exposition, target: labels, at: r.startedMs, lines: store.rollup != nil ? SeriesLines.hashes(body) : nil)
            }
            let slow = r.durationSeconds > slowSeconds
            let message = slow ? "\(r.target.url) is slow: the scrape took \(Int(r.durationSeconds * 1000)) ms (over \(Int(slowSeconds * 1000)) ms)" : nil
            health[r.target.url] = TargetHealth(target: r.target, state: slow ? .slow : .up, message: message, lastScrapeMs: r.startedMs,
                                                lastSuccessMs: r.startedMs, failures: 0)
            return message
        } catch {
            let message = "\(r.target.url): bad metrics at \(error)"
            health[r.target.url] = TargetHealth(target: r.target, state: .badFormat, message: message, lastScrapeMs: r.startedMs,
                                                lastSuccessMs: lastSuccess, failures: failures)
            return message
        }
    }

    /// Closes a round of scrapes: its moment becomes the data's, and a rollup writes its points.
    public mutating func endRound() {
        if let round {
            firstScrapeMs = min(firstScrapeMs ?? round.first, round.first)
            lastScrapeMs = max(lastScrapeMs ?? round.last, round.last)
            if store.rollup != nil { store.commit(at: round.last) }
        }
        round = nil
        rounds += 1
        if let last = lastScrapeMs { store.trim(now: last) }
    }

    /// The window to compute over: the one asked for, or less when the data does not reach back
    /// that far (a fresh session would otherwise report a fraction of the real rate; a store that
    /// keeps less than the window holds what it holds).
    public func effectiveWindow(_ requestedMs: Int64) -> Int64 {
        guard let first = firstScrapeMs, let last = lastScrapeMs, last > first else { return requestedMs }
        let held = last - max(first, store.earliestMs)
        return held > 0 ? min(requestedMs, held) : requestedMs
    }

    /// Golden metrics per workload at the latest scrape, over the window clamped to the data
    /// held (a live session that started a moment ago has no older samples).
    public func stat(kindLabel: String, namespace: String?, name: String? = nil, windowMs: Int64) -> [GoldenMetrics] {
        guard let last = lastScrapeMs else { return [] }
        return store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, name: name,
                                    windowMs: effectiveWindow(windowMs), atMs: last))
    }

    /// How far back the data held reaches from `atMs` (default: the latest scrape): what the store
    /// still keeps.
    public func heldMs(atMs: Int64? = nil) -> Int64? {
        guard let first = firstScrapeMs, let at = atMs ?? lastScrapeMs else { return nil }
        return at - (store.earliestMs <= at ? max(first, store.earliestMs) : first)
    }

    /// Each workload's success over each of `windowsMs`, and how far back the data held reaches
    /// (the snapshot's `windowedSuccess` and `successHeldMs`). A window longer than the data is
    /// computed over the data. Live (`atMs` nil): at the latest scrape, as `stat` computes it. A
    /// replay's moment (`atMs`): windows end exactly there, as `meshtop slo --replay --at` and
    /// `stat --replay --at` compute them, so the dashboard and the one-shot agree.
    public func windowedSuccess(kindLabel: String, namespace: String?, windowsMs: [Int64],
                                atMs: Int64? = nil) -> (success: [WorkloadID: [Int64: Double]], heldMs: Int64?) {
        let held = heldMs(atMs: atMs)
        guard let at = atMs ?? lastScrapeMs else { return ([:], held) }
        var out: [WorkloadID: [Int64: Double]] = [:]
        // Windows longer than the data are all computed over it: once.
        var bySpan: [Int64: [WorkloadID: Double]] = [:]
        for window in windowsMs {
            let span = atMs == nil ? effectiveWindow(window) : min(window, max(held ?? window, 1))
            if bySpan[span] == nil {
                let rows = store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, windowMs: span, atMs: at))
                bySpan[span] = Dictionary(rows.compactMap { r in r.success.map { (r.workload, $0) } }, uniquingKeysWith: { a, _ in a })
            }
            for (workload, success) in bySpan[span] ?? [:] { out[workload, default: [:]][window] = success }
        }
        return (out, held)
    }

    /// Targets answering with metrics (slow ones included).
    public var upCount: Int { health.values.filter { $0.state == .up || $0.state == .slow }.count }

    /// How many targets are in each state other than up, e.g. `1 slow, 2 down`.
    public var stateSummary: String {
        let counts = Dictionary(grouping: health.values.filter { $0.state != .up }, by: \.state).mapValues(\.count)
        return [TargetState.slow, .down, .badFormat, .gone].compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(separator: ", ")
    }

    /// Targets being scraped (gone ones left out).
    public var activeCount: Int { health.values.filter { $0.state != .gone }.count }
}
