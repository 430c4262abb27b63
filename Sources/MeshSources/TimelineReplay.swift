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

    /// `windowMs` nil: three scrape intervals (the median gap between rounds), so a change shows
    /// within a few scrapes and one odd scrape does not make one.
    public static func run(path: String, kindLabel: String, namespace: String?, windowMs: Int64?,
                           thresholds: TimelineThresholds = TimelineThresholds(),
                           warn: (String) -> Void) throws(OneShotError) -> Result {
        do {
            // First pass: the rounds' times, for the span and the scrape interval.
            let times = try RecordingReader(path: path)
            var roundStarts: [Int64] = []
            var previous: Int64?
            while let t = try times.nextTime() {
                if previous.map({ t - $0 > roundGapMs }) ?? true { roundStarts.append(t) }
                previous = t
            }
            for w in times.warnings { warn(w) }
            guard let start = roundStarts.first, let end = previous else { throw OneShotError.input("\(path): the recording has no events") }
            let gaps = zip(roundStarts.dropFirst(), roundStarts).map { $0 - $1 }.sorted()
            let window = windowMs ?? max(1_000, 3 * (gaps.isEmpty ? 1_000 : gaps[gaps.count / 2]))

            var detector = TimelineDetector(thresholds: thresholds)
            var collector = Collector()
            var last: Int64?
            func evaluate(_ at: Int64) {
                guard at - start >= window else { return }
                let (samples, calls) = TimelineSampler.samples(collector.store, kindLabel: kindLabel, namespace: namespace, windowMs: window, atMs: at)
                detector.observe(atMs: at, samples: samples, calls: calls)
            }
            let reader = try RecordingReader(path: path)
            while let event = try reader.next() {
                if let last, event.timeMs - last > roundGapMs { evaluate(last) }
                if case .scrape(let result) = event { collector.ingest([result]) }
                last = event.timeMs
            }
            if let last { evaluate(last) }
            return Result(events: detector.events, startMs: start, endMs: end, windowMs: window)
        } catch let e as RecordingError {
            throw .input(e.description)
        } catch let e as OneShotError {
            throw e
        } catch {
            throw .input("\(path): \(error)")
        }
    }

    /// Scrapes closer together than this belong to one round.
    static let roundGapMs: Int64 = 300
}
