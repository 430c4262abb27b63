import Foundation
public import MeshSources
import Synchronization

/// Scrapes targets on a background thread every interval and keeps a `Collector` up to date;
/// the UI reads snapshots of it, so a slow or dead target never stalls the screen.
public final class LiveCollector: Sendable {
    private let state = Mutex(Collector())
    private let stopped = Mutex(false)
    private let targets: [ScrapeTarget]
    private let intervalSeconds: Double
    private let timeoutSeconds: Double

    private let recorder: Mutex<RecordingWriter?>

    /// With a `recorder`, every round of scrapes is also written to a recording.
    public init(targets: [ScrapeTarget], intervalSeconds: Double = 1, timeoutSeconds: Double = 2, recorder: sending RecordingWriter? = nil) {
        self.targets = targets
        self.recorder = Mutex(recorder)
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = min(timeoutSeconds, intervalSeconds * 0.9)
    }

    /// Takes one round of scrapes now, on the calling thread.
    public func scrapeOnce(clock: any Clock) {
        let scraper = Scraper(timeoutSeconds: timeoutSeconds)
        let results = scraper.scrape(targets) { clock.nowMs() }
        absorb(results)
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
    public func start(clock: any Clock) {
        let thread = Thread { [self] in
            let scraper = Scraper(timeoutSeconds: timeoutSeconds)
            while !stopped.withLock({ $0 }) {
                let started = clock.nowMs()
                let results = scraper.scrape(targets) { clock.nowMs() }
                absorb(results)
                let elapsed = Double(clock.nowMs() - started) / 1000
                let pause = max(0.05, intervalSeconds - elapsed)
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
}
