import MeshtopApp
import MeshMetrics
import ArgumentParser
import Foundation
import MeshSources

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
