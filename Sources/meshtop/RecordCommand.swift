import MeshMetrics
import ArgumentParser
import Foundation
import Dashboard
import MeshSources
import Synchronization

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record proxies' metrics to a meshrec file, for replay and post-mortems.",
        discussion: """
        Scrapes every --interval and appends each round to FILE as it comes (meshrec v1, NDJSON), \
        so an interrupted recording keeps all but the last round. Replay it with \
        `meshtop stat deploy --replay FILE`.
        """)

    @Option(name: .shortAndLong, help: ArgumentHelp("The recording to write.", valueName: "FILE"))
    var output: String

    @Option(help: "How long to record (default: until Ctrl-C).")
    var duration: String?

    @Option(help: "Time between scrapes.")
    var interval = "1s"

    @OptionGroup var sources: SourceOptions

    func run() throws {
        guard sources.replay == nil else { throw Exit.input("record scrapes live targets: leave out --replay") }
        let targets = try sources.targets()
        let intervalMs = try parseDuration(interval, flag: "--interval")
        let durationMs = try duration.map { try parseDuration($0, flag: "--duration") }
        let clock = WallClock()
        let writer: RecordingWriter
        do {
            writer = try RecordingWriter(path: output, startedMs: clock.nowMs(), meta: ["source": "scrape", "targets": String(targets.count), "interval": interval])
        } catch {
            throw Exit.input(error.description)
        }
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile,
                                 intervalSeconds: Double(intervalMs) / 1000, recorder: writer)
        try recordUntilDone(live, clock: clock, durationMs: durationMs, output: output)
    }
}

/// Runs a recording collector until the duration passes or SIGINT/SIGTERM, with a progress line
/// on stderr; returns after the last round is on disk.
func recordUntilDone(_ live: LiveCollector, clock: any TimeSource, durationMs: Int64?, output: String) throws {
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

/// Set by SIGINT or SIGTERM, so long-running commands finish cleanly instead of dying mid-write.
final class StopFlag {
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let flag = Flag()
    private var sources: [any DispatchSourceSignal] = []

    var isSet: Bool { flag.value.load(ordering: .relaxed) }

    static func install() -> StopFlag {
        let stop = StopFlag()
        let flag = stop.flag
        stop.sources = [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
        return stop
    }
}
