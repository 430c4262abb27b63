import Foundation
public import MeshMetrics
public import MeshTimeline

/// The incident timeline of a recording: the recording replayed round by round, each round's
/// golden metrics (over a short window) handed to a `TimelineDetector`.
public enum TimelineReplay {
    public struct Result: Sendable {
        public var events: [TimelineEvent]
        public var startMs: Int64
        public var endMs: Int64
        /// The window each round's metrics were computed over.
        public var windowMs: Int64
    }

    /// A recording's file, read twice (the rounds' times, then the scrapes) and never held whole.
    /// `windowMs` nil: three scrape intervals (see `window(roundStarts:)`).
    public static func run(path: String, kindLabel: String, namespace: String?, windowMs: Int64?,
                           thresholds: TimelineThresholds = TimelineThresholds(),
                           warn: (String) -> Void) throws(OneShotError) -> Result {
        do {
            let times = try RecordingReader(path: path)
            var starts: [Int64] = []
            var last: Int64?
            while let t = try times.nextTime() {
                if last.map({ t - $0 > roundGapMs }) ?? true { starts.append(t) }
                last = t
            }
            for w in times.warnings { warn(w) }
            guard let start = starts.first, let end = last else { throw OneShotError.input("\(path): the recording has no events") }
            var rounds = Rounds(kindLabel: kindLabel, namespace: namespace, startMs: start,
                                windowMs: windowMs ?? window(roundStarts: starts), thresholds: thresholds)
            let reader = try RecordingReader(path: path)
            while let event = try reader.next() {
                if case .scrape(let result) = event { rounds.add(result) }
            }
            return Result(events: rounds.finish(), startMs: start, endMs: end, windowMs: rounds.windowMs)
        } catch {
            throw OneShotError(readingRecording: path, error)
        }
    }

    /// The same over scrapes already read (the dashboard's replay holds them).
    public static func run(scrapes: [ScrapeResult], kindLabel: String, namespace: String?, windowMs: Int64?,
                           thresholds: TimelineThresholds = TimelineThresholds()) -> Result {
        guard let start = scrapes.first?.startedMs, let end = scrapes.last?.startedMs else {
            return Result(events: [], startMs: 0, endMs: 0, windowMs: windowMs ?? 0)
        }
        var starts: [Int64] = []
        var last: Int64?
        for s in scrapes {
            if last.map({ s.startedMs - $0 > roundGapMs }) ?? true { starts.append(s.startedMs) }
            last = s.startedMs
        }
        var rounds = Rounds(kindLabel: kindLabel, namespace: namespace, startMs: start,
                            windowMs: windowMs ?? window(roundStarts: starts), thresholds: thresholds)
        for s in scrapes { rounds.add(s) }
        return Result(events: rounds.finish(), startMs: start, endMs: end, windowMs: rounds.windowMs)
    }

    /// Three scrape intervals (the median gap between rounds), at least a second: a change shows
    /// within a few scrapes, and one odd scrape does not make one.
    static func window(roundStarts: [Int64]) -> Int64 {
        let gaps = zip(roundStarts.dropFirst(), roundStarts).map { $0 - $1 }.sorted()
        return max(1_000, 3 * (gaps.isEmpty ? 1_000 : gaps[gaps.count / 2]))
    }

    /// Scrapes closer together than this belong to one round.
    static let roundGapMs: Int64 = 300

    /// Scrapes in, round by round; at the end of each round, the detector looks at the moment.
    struct Rounds {
        let kindLabel: String
        let namespace: String?
        let startMs: Int64
        let windowMs: Int64
        var detector: TimelineDetector
        var collector = Collector()
        var lastMs: Int64?

        init(kindLabel: String, namespace: String?, startMs: Int64, windowMs: Int64, thresholds: TimelineThresholds) {
            self.kindLabel = kindLabel
            self.namespace = namespace
            self.startMs = startMs
            self.windowMs = windowMs
            self.detector = TimelineDetector(thresholds: thresholds)
        }

        mutating func add(_ scrape: ScrapeResult) {
            if let lastMs, scrape.startedMs - lastMs > roundGapMs { evaluate(lastMs) }
            collector.ingest([scrape])
            lastMs = scrape.startedMs
        }

        mutating func finish() -> [TimelineEvent] {
            if let lastMs { evaluate(lastMs) }
            return detector.events
        }

        mutating func evaluate(_ atMs: Int64) {
            guard atMs - startMs >= windowMs else { return }  // a whole window of data first
            let (samples, calls) = TimelineSampler.samples(collector.store, kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: atMs)
            detector.observe(atMs: atMs, samples: samples, calls: calls)
        }
    }
}

/// The incident timeline from live sources: a Prometheus server's history stepped through, or
/// proxies scraped while the command runs. Each moment's workloads and edges are handed to a
/// `TimelineDetector`, as a recording's rounds are.
public enum TimelineLive {
    /// The server's last `sinceMs` up to `endMs`, a moment every `stepMs`, each over `windowMs`
    /// (the queries `stat` and `edges` send, batched per moment). `progress` hears (done, total).
    public static func prometheus(_ source: PrometheusSource, kindLabel: String, namespace: String?, endMs: Int64, sinceMs: Int64,
                                  stepMs: Int64, windowMs: Int64, thresholds: TimelineThresholds = TimelineThresholds(),
                                  progress: (Int, Int) -> Void) throws(SourceError) -> TimelineReplay.Result {
        var detector = TimelineDetector(thresholds: thresholds)
        let startMs = endMs - sinceMs
        let total = Int(sinceMs / stepMs) + 1
        for n in 0..<total {
            let t = startMs + Int64(n) * stepMs
            let (workloads, edges) = try source.together(atMs: t) { s throws(SourceError) in
                (try s.stat(kindLabel: kindLabel, namespace: namespace, name: nil, windowMs: windowMs, atMs: t),
                 try s.edges(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: t))
            }
            detector.observe(atMs: t, workloads: workloads, edges: edges, windowMs: windowMs)
            progress(n + 1, total)
        }
        return TimelineReplay.Result(events: detector.events, startMs: startMs, endMs: endMs, windowMs: windowMs)
    }

    /// `live` (started) read every `intervalMs` until `done()`, each moment over `windowMs` once a
    /// whole window has been scraped; `changed` hears each change as it is found.
    public static func scrape(_ live: LiveCollector, kindLabel: String, namespace: String?, windowMs: Int64, intervalMs: Int64,
                              clock: any TimeSource = WallClock(), thresholds: TimelineThresholds = TimelineThresholds(),
                              done: () -> Bool, changed: (TimelineEvent) -> Void) -> TimelineReplay.Result {
        var detector = TimelineDetector(thresholds: thresholds)
        let query = SnapshotQuery(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs)
        let startMs = clock.nowMs()
        var seenMs: Int64 = 0
        while !done() {
            Thread.sleep(forTimeInterval: Double(min(intervalMs, 200)) / 1000)
            let data = live.snapshot(for: query)
            guard data.atMs > seenMs, data.atMs - startMs >= windowMs, !data.workloads.isEmpty else { continue }
            seenMs = data.atMs
            detector.observe(atMs: data.atMs, workloads: data.workloads, edges: data.edges, windowMs: data.windowMs)
            // This moment's changes are the last ones (the detector may have dropped old ones).
            var found: [TimelineEvent] = []
            for e in detector.events.reversed() {
                guard e.atMs == data.atMs else { break }
                found.append(e)
            }
            for e in found.reversed() { changed(e) }
        }
        return TimelineReplay.Result(events: detector.events, startMs: startMs, endMs: clock.nowMs(), windowMs: windowMs)
    }
}
