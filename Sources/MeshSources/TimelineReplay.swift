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
