public import MeshMetrics
import Foundation

/// Why a one-shot command's source could not answer: the input was wrong (a bad flag, a bad
/// recording; meshtop exits 2) or nothing could be reached (meshtop exits 3).
public struct OneShotError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case input, unreachable }
    public var kind: Kind
    public var description: String

    public static func input(_ text: String) -> OneShotError { OneShotError(kind: .input, description: text) }
    public static func unreachable(_ text: String) -> OneShotError { OneShotError(kind: .unreachable, description: text) }
}

/// Where a one-shot command (`stat`, `edges`, `routes`) gets its numbers.
public protocol OneShotSource {
    func stat(kindLabel: String, namespace: String?, name: String?, windowMs: Int64) throws(OneShotError) -> [GoldenMetrics]
    func edges(kindLabel: String, namespace: String?, windowMs: Int64) throws(OneShotError) -> [EdgeMetrics]
    func routes(kindLabel: String, name: String, namespace: String?, windowMs: Int64) throws(OneShotError) -> [RouteMetrics]
    /// How far back the data reaches from the moment asked about; nil where that is not known
    /// (a Prometheus server keeps its own retention).
    var heldMs: Int64? { get }
}

extension OneShotSource {
    public var heldMs: Int64? { nil }
}

/// A Prometheus server, asked at `atMs`.
public struct PrometheusAt: OneShotSource {
    public var source: PrometheusSource
    public var atMs: Int64

    public init(source: PrometheusSource, atMs: Int64) {
        self.source = source
        self.atMs = atMs
    }

    public func stat(kindLabel: String, namespace: String?, name: String?, windowMs: Int64) throws(OneShotError) -> [GoldenMetrics] {
        do { return try source.together(atMs: atMs) { s throws(SourceError) in try s.stat(kindLabel: kindLabel, namespace: namespace, name: name, windowMs: windowMs, atMs: atMs) } }
        catch { throw error.badAnswer ? .input(error.description) : .unreachable(error.description) }
    }

    public func edges(kindLabel: String, namespace: String?, windowMs: Int64) throws(OneShotError) -> [EdgeMetrics] {
        do { return try source.together(atMs: atMs) { s throws(SourceError) in try s.edges(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: atMs) } }
        catch { throw error.badAnswer ? .input(error.description) : .unreachable(error.description) }
    }

    public func routes(kindLabel: String, name: String, namespace: String?, windowMs: Int64) throws(OneShotError) -> [RouteMetrics] {
        do { return try source.together(atMs: atMs) { s throws(SourceError) in try s.routes(kindLabel: kindLabel, name: name, namespace: namespace, windowMs: windowMs, atMs: atMs) } }
        catch { throw error.badAnswer ? .input(error.description) : .unreachable(error.description) }
    }
}

/// Scrapes, from a recording or taken live, at one moment: the collector, the moment, and whether
/// the window is exact (replay: Prometheus' semantics to the letter) or clamped to the data held
/// (live: two scrapes a few seconds apart hold no more than that).
public struct ScrapedAt: OneShotSource {
    public var collector: Collector
    public var atMs: Int64
    public var exactWindow: Bool

    public init(collector: Collector, atMs: Int64, exactWindow: Bool) {
        self.collector = collector
        self.atMs = atMs
        self.exactWindow = exactWindow
    }

    /// A recording up to `at` (a `TimeSpec` relative to its span; nil: its last event). Problems
    /// the reader skipped over go to `warn`.
    /// The store keeps `windowMs` before the moment (at least its usual 30 minutes), so a long
    /// window reads the recording, not only its last half hour.
    public static func replay(path: String, at: String?, windowMs: Int64 = 0, warn: (String) -> Void) throws(OneShotError) -> ScrapedAt {
        func collector() -> Collector {
            Collector(store: MetricStore(retentionMs: max(MetricStore().retentionMs, windowMs + 60_000)))
        }
        do {
            guard let at else {
                // The last moment: one pass, no need to find the span first.
                let reader = try RecordingReader(path: path)
                var collector = collector()
                try collector.replay(reader)
                for w in reader.warnings { warn(w) }
                guard let last = collector.lastScrapeMs else { throw OneShotError.input("\(path): the recording has no events") }
                return ScrapedAt(collector: collector, atMs: last, exactWindow: true)
            }
            // A first pass finds the span, so `at` can be relative to it.
            let span = try RecordingReader(path: path)
            var first: Int64?
            var last: Int64?
            while let t = try span.nextTime() {
                first = first ?? t
                last = t
            }
            for w in span.warnings { warn(w) }
            guard let first, let last else { throw OneShotError.input("\(path): the recording has no events") }
            guard let atMs = TimeSpec.milliseconds(at, startMs: first, endMs: last) else {
                throw OneShotError.input("--at \(at): not a time (try -5m, +30s, 21:30:05 or 2026-11-25T21:30:05Z)")
            }
            guard atMs >= first, atMs <= last else {
                throw OneShotError.input("--at \(at) is \(atMs < first ? "before" : "after") the recording: \(path) runs from \(TimeSpec.format(first)) to \(TimeSpec.format(last)) (\(DurationText.format(last - first)))")
            }
            let reader = try RecordingReader(path: path)
            var collector = collector()
            try collector.replay(reader, untilMs: atMs)
            return ScrapedAt(collector: collector, atMs: atMs, exactWindow: true)
        } catch {
            throw OneShotError(readingRecording: path, error)
        }
    }

    /// The live `targets` scraped twice, `sampleMs` apart; each target's problem goes to `warn`.
    /// Unreachable when no target answered the first round.
    public static func live(targets: [ScrapeTarget], sampleMs: Int64, clock: any TimeSource = WallClock(),
                            warn: (String) -> Void) throws(OneShotError) -> ScrapedAt {
        let live = LiveCollector(targets: targets, intervalSeconds: 5, timeoutSeconds: 5)
        live.scrapeOnce(clock: clock)
        if live.snapshot.upCount == 0 { throw .unreachable(unreachableMessage(live.snapshot)) }
        Thread.sleep(forTimeInterval: Double(sampleMs) / 1000)
        live.scrapeOnce(clock: clock)
        let collector = live.snapshot
        for message in collector.health.values.compactMap(\.message).sorted() { warn(message) }
        return ScrapedAt(collector: collector, atMs: collector.lastScrapeMs ?? clock.nowMs(), exactWindow: false)
    }

    /// From the first scrape held to the moment reported.
    public var heldMs: Int64? { collector.heldMs(atMs: atMs) }

    /// What a window longer than the data held reports over, said in words (nil when the data covers it).
    public func shortWindowNote(_ windowMs: Int64) -> String? {
        guard let first = collector.firstScrapeMs else { return nil }
        let held = atMs - first
        guard held < windowMs else { return nil }
        let asked = DurationText.format(windowMs)
        if exactWindow {
            return "-t \(asked) reaches back before the recording starts: only \(DurationText.format(held)) of data precede --at; as Prometheus would, rates are over the whole \(asked), so they read low (-t \(DurationText.format(held)) or less covers only recorded time)"
        }
        return "-t \(asked) is longer than the data: reporting over the \(DurationText.format(held)) between the two scrapes (--sample); use --replay or --prometheus for a \(asked) window"
    }

    public func routes(kindLabel: String, name: String, namespace: String?, windowMs: Int64) -> [RouteMetrics] {
        let window = exactWindow ? windowMs : collector.effectiveWindow(windowMs)
        return collector.store.routes(kindLabel: kindLabel, name: name, namespace: namespace, windowMs: window, atMs: atMs)
    }

    public func edges(kindLabel: String, namespace: String?, windowMs: Int64) -> [EdgeMetrics] {
        let window = exactWindow ? windowMs : collector.effectiveWindow(windowMs)
        return collector.store.edges(kindLabel: kindLabel, namespace: namespace, windowMs: window, atMs: atMs)
    }

    public func stat(kindLabel: String, namespace: String?, name: String?, windowMs: Int64) -> [GoldenMetrics] {
        if exactWindow {
            return collector.store.stat(StatQuery(kindLabel: kindLabel, namespace: namespace, name: name, windowMs: windowMs, atMs: atMs))
        }
        return collector.stat(kindLabel: kindLabel, namespace: namespace, name: name, windowMs: windowMs)
    }
}

/// "no target answered: " and the first three targets' problems.
public func unreachableMessage(_ collector: Collector) -> String {
    let messages = collector.health.values.compactMap(\.message).sorted()
    let shown = messages.prefix(3).joined(separator: "; ")
    return "no target answered: " + shown + (messages.count > 3 ? "; and \(messages.count - 3) more" : "")
}

extension OneShotError {
    /// What reading the recording at `path` failed with, as an input error naming the file.
    init(readingRecording path: String, _ error: any Error) {
        switch error {
        case let e as OneShotError: self = e
        case let e as RecordingError: self = .input(e.description)
        default: self = .input("\(path): \(error)")
        }
    }
}
