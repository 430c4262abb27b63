public import MeshMetrics
import Foundation
import Synchronization

/// Scrapes targets on a background thread every interval and keeps a `Collector` up to date;
/// the UI reads snapshots of it, so a slow or dead target never stalls the screen.
public final class LiveCollector: SnapshotFeed {
    private let state = Mutex(Collector())
    private let stopped = Mutex(false)
    private let targetList: Mutex<[ScrapeTarget]>
    /// A file_sd file to follow: re-read when it changes.
    private let targetsFile: String?
    private let targetsFileStamp = Mutex<Date?>(nil)
    private let intervalSeconds: Double
    private let timeoutSeconds: Double

    private let recorder: Mutex<RecordingWriter?>
    /// The interval scrapes run at now: longer than asked while rounds take longer than it.
    private let pace: Mutex<(intervalSeconds: Double, lastRoundSeconds: Double)>
    /// With a rollup, the most memory the points may take; retention shrinks to fit.
    public static let pointBudgetBytes = 96 << 20

    /// With a `recorder`, every round of scrapes is also written to a recording.
    /// With `targetsFile`, targets listed there are added to `targets` and followed: the file is
    /// read again whenever it changes.
    /// With a `rollup`, only what the dashboard's views read is kept, summed over pods (see
    /// `Rollup`), and for as long as the window asked needs; without one, every series for 30
    /// minutes (one-shot commands, whose answers must match Prometheus' to the digit).
    public init(targets: [ScrapeTarget], targetsFile: String? = nil, intervalSeconds: Double = 1, timeoutSeconds: Double = 2,
                recorder: sending RecordingWriter? = nil, rollup: Rollup? = nil) {
        self.targetList = Mutex(targets)
        self.targetsFile = targetsFile
        self.recorder = Mutex(recorder)
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = min(timeoutSeconds, intervalSeconds * 0.9)
        self.pace = Mutex((intervalSeconds, 0))
        if let rollup {
            var store = MetricStore(retentionMs: 2 * 60_000, rollup: rollup)
            store.pointBudgetBytes = Self.pointBudgetBytes
            state.withLock { $0 = Collector(store: store) }
        }
    }

    /// The targets scraped now.
    public var targets: [ScrapeTarget] { targetList.withLock { $0 } }

    /// Takes one round of scrapes now, on the calling thread (over HTTP, unless a test hands in
    /// another transport).
    public func scrapeOnce(clock: any TimeSource, transport: (any ScrapeTransport)? = nil) {
        followTargetsFile()
        let scraper = transport ?? Scraper(timeoutSeconds: timeoutSeconds)
        let results = scraper.scrape(targets) { clock.nowMs() }
        absorb(results)
    }

    /// Re-reads the targets file when its modification time changed. A file that does not parse
    /// keeps the last good list, and says why; targets no longer listed are shown as gone.
    private func followTargetsFile() {
        guard let file = targetsFile else { return }
        let stamp = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
        guard stamp != targetsFileStamp.withLock({ $0 }) else { return }
        targetsFileStamp.withLock { $0 = stamp }
        do {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw SourceError("cannot read the targets file \(file)") }
            let fresh = try TargetsFile.parse(text, file: file)
            let old = targetList.withLock { list in
                defer { list = fresh }
                return list
            }
            let gone = old.filter { o in !fresh.contains { $0.url == o.url } }
            state.withLock { c in
                c.targetsFileProblem = nil
                for t in gone { c.markGone(t, reason: "removed from \(file)") }
            }
        } catch {
            state.withLock { $0.targetsFileProblem = "\(error); still scraping the last good list" }
        }
    }

    private func absorb(_ results: [ScrapeResult]) {
        let failure: String? = recorder.withLock { writer in
            guard let w = writer else { return nil }
            do {
                try w.append(results)
                return nil
            } catch {
                writer = nil
                return "recording stopped: \(error)"
            }
        }
        state.withLock { c in
            _ = c.ingest(results)
            if let failure { c.recordingError = failure }
        }
    }

    /// Events and bytes written to the recording so far.
    public var recorded: (events: Int, bytes: Int)? {
        recorder.withLock { w in w.map { ($0.events, $0.bytes) } }
    }

    /// Starts the background loop.
    public func start(clock: any TimeSource) {
        let thread = Thread { [self] in
            ThreadPriority.background()
            let scraper = Scraper(timeoutSeconds: timeoutSeconds)
            while !stopped.withLock({ $0 }) {
                let started = clock.nowMs()
                followTargetsFile()
                if recorder.withLock({ $0 == nil }) {
                    // Each body parsed as it arrives and let go: a round's bodies are never all
                    // in memory at once (1,000 proxies send half a gigabyte a round).
                    scraper.scrape(targets, now: { clock.nowMs() }) { _, result in
                        state.withLock { _ = $0.ingest(result) }
                    }
                    state.withLock { $0.endRound() }
                } else {
                    absorb(scraper.scrape(targets) { clock.nowMs() })
                }
                let elapsed = Double(clock.nowMs() - started) / 1000
                // A round slower than the interval stretches it (by a quarter of the round's time
                // more), rather than starting the next round at once and keeping a core busy.
                let interval = elapsed > intervalSeconds * 0.9 ? max(intervalSeconds, (elapsed * 1.25 * 10).rounded(.up) / 10) : intervalSeconds
                pace.withLock { $0 = (interval, elapsed) }
                // ±10% jitter, so many meshtops (or one and a Prometheus) do not scrape in lockstep.
                let pause = max(0.05, interval * Double.random(in: 0.9...1.1) - elapsed)
                var remaining = pause
                while remaining > 0, !stopped.withLock({ $0 }) {
                    Thread.sleep(forTimeInterval: min(0.1, remaining))
                    remaining -= 0.1
                }
            }
        }
        thread.name = "meshtop-scrape"
        thread.start()
    }

    public func stop() {
        stopped.withLock { $0 = true }
    }

    /// The collector as it is now. A copy shares the store until the next scrape writes to it,
    /// which then copies every series it touches: views should use `read` instead.
    public var snapshot: Collector { state.withLock { $0 } }

    /// Runs `body` on the collector under its lock, so nothing is copied.
    public func read<T: Sendable>(_ body: (borrowing Collector) -> T) -> T {
        state.withLock { c in body(c) }
    }

    public func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        let pace = pace.withLock { $0 }
        var notes: [String] = []
        if pace.intervalSeconds > intervalSeconds {
            notes.append("a round of \(targets.count) scrapes took \(seconds(pace.lastRoundSeconds)): scraping every \(seconds(pace.intervalSeconds)), not every \(seconds(intervalSeconds))")
        }
        if let note = keep(windowMs: query.windowMs, sloWindowMs: query.successWindowsMs.min(), intervalSeconds: pace.intervalSeconds) {
            notes.append(note)
        }
        // Nothing new since the last snapshot for this query (a round takes longer than a
        // refresh): the same numbers, not computed again.
        let rounds = read { $0.rounds }
        var d: MeshSnapshot
        if let (key, cached) = lastSnapshot.withLock({ $0 }), key.rounds == rounds, key.query == query {
            d = cached
        } else {
            d = read { collector in
                var d = MeshSnapshot.make(from: collector, kindLabel: query.kindLabel, namespace: query.namespace, windowMs: query.windowMs)
                if !query.successWindowsMs.isEmpty {
                    (d.windowedSuccess, d.successHeldMs) = collector.windowedSuccess(kindLabel: query.kindLabel, namespace: query.namespace,
                                                                                     windowsMs: query.successWindowsMs)
                }
                return d
            }
            let made = d
            lastSnapshot.withLock { $0 = ((rounds, query), made) }
        }
        d.problems.insert(contentsOf: notes, at: 0)
        return d
    }

    /// The last snapshot made, and the round count and query it answers.
    private let lastSnapshot = Mutex<(key: (rounds: Int, query: SnapshotQuery), snapshot: MeshSnapshot)?>(nil)

    /// With a rollup: holds points for the window asked, or the shortest SLO window (and a few
    /// rounds more), within the memory budget; says so when the budget shortens either. Longer
    /// SLO windows are not held live (6 hours of every series would cost hundreds of megabytes):
    /// their burn rates are over what is held, marked short, and judge no rule; a Prometheus
    /// server holds them.
    private func keep(windowMs: Int64, sloWindowMs: Int64?, intervalSeconds: Double) -> String? {
        state.withLock { c -> String? in
            guard c.store.rollup != nil else { return nil }
            let intervalMs = max(1, Int64(intervalSeconds * 1000))
            let longest = max(windowMs, sloWindowMs ?? 0)
            let wanted = Int(longest / intervalMs) + 3
            c.store.pointBudgetBytes = Self.pointBudgetBytes
            c.store.maxPointsPerSeries = wanted
            c.store.retentionMs = longest + 3 * intervalMs
            let series = c.store.seriesCount
            let affordable = c.store.roundsAffordable ?? wanted
            guard affordable < wanted else { return nil }
            let kept = Int64(affordable - 1) * intervalMs
            if kept >= windowMs {
                return "\(series) series held: memory keeps \(DurationText.format(kept)) of data; SLO burn rates are over that (marked *)"
            }
            return "\(series) series held: memory keeps \(DurationText.format(kept)) of data, less than the \(DurationText.format(windowMs)) window"
        }
    }
}

/// `1.8s`: seconds to a tenth.
private func seconds(_ s: Double) -> String {
    "\((s * 10).rounded() / 10)s"
}
