import Foundation
public import MeshMetrics
public import MeshSources

/// Runs `live` (which writes a recording) until `durationMs` or Ctrl-C, with a progress line on
/// stderr every second; a recording that fails stops the run with its reason.
public func recordUntilDone(_ live: LiveCollector, clock: any TimeSource, durationMs: Int64?, output: String) throws {
    let stop = StopFlag.install()
    let started = clock.nowMs()
    live.start(clock: clock)
    var lastReport: Int64 = 0
    while !stop.isSet {
        let now = clock.nowMs()
        if let durationMs, now - started >= durationMs { break }
        if now - lastReport >= 1000 {
            lastReport = now
            let c = live.snapshot
            let written = live.recorded ?? (0, 0)
            warn("record: \((now - started) / 1000)s, \(c.upCount)/\(c.health.count) targets up, \(written.events) events, \(written.bytes / 1024) KiB to \(output)")
            if let e = c.recordingError { throw Exit.input(e) }
        }
        Thread.sleep(forTimeInterval: 0.1)
    }
    live.stop()
    Thread.sleep(forTimeInterval: 0.2)
    let written = live.recorded ?? (0, 0)
    warn("record: wrote \(written.events) events (\(written.bytes / 1024) KiB) to \(output)")
}

/// The scrapes of a recording, in file order; what the reader skipped is said on stderr.
public func loadScrapes(_ path: String) throws(Exit) -> [ScrapeResult] {
    var scrapes: [ScrapeResult] = []
    do {
        let reader = try RecordingReader(path: path)
        while let event = try reader.next() {
            if case .scrape(let r) = event { scrapes.append(r) }
        }
        for w in reader.warnings { warn("meshtop: \(w)") }
    } catch {
        throw Exit.input(error.description)
    }
    return scrapes
}
