import MeshtopApp
import MeshMetrics
import ArgumentParser
import Dashboard
import Foundation
import MeshSources

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The dashboard over a recording, on a virtual clock.",
        discussion: """
        Plays FILE (meshrec, from `meshtop record` or `meshtop demo --record`) through the same \
        pipeline a live session uses. Space pauses, ←/→ step five seconds, [ and ] change speed, \
        Home/End jump to the start/end, :goto 12:03:10 (or -5m, +30s) moves anywhere; t lists \
        what broke first, and Enter there jumps to that moment. The status \
        line shows the recorded time and the position in the recording.
        """)

    @Argument(help: ArgumentHelp("The recording.", valueName: "FILE"))
    var file: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Start paused at this moment (-5m, +30s, 21:30:05, RFC 3339); default: play from the start.", valueName: "TIME"))
    var at: String?

    @Option(help: "Recorded seconds per second (0.125 to 1024).")
    var speed: Double = 1

    @Option(name: .shortAndLong, help: "Only this namespace.")
    var namespace: String?

    @OptionGroup var display: DisplayOptions

    @OptionGroup var window: WindowOption

    func run() throws {
        guard (0.125...1024).contains(speed) else { throw Exit.input("--speed \(speed): use 0.125 to 1024") }
        let scrapes = try loadScrapes(file)
        let feed = ReplayFeed(events: scrapes)
        guard let start = feed.startMs, let end = feed.endMs else { throw Exit.input("\(file): the recording has no scrapes to replay") }
        var position = start
        if let at {
            guard let t = TimeSpec.milliseconds(at, startMs: start, endMs: end) else {
                throw Exit.input("--at \(at): not a time (try -5m, +30s, 21:30:05 or 2026-11-25T21:30:05Z)")
            }
            position = t
        }
        let terminal = try display.settings.openTerminal()
        var state = DashboardState(title: "replay: \(URL(fileURLWithPath: file).lastPathComponent)",
                                   source: URL(fileURLWithPath: file).lastPathComponent, windowMs: try window.milliseconds)
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        var replay = ReplayPosition(startMs: start, endMs: end, atMs: position)
        replay.speed = speed
        state.replay = replay
        state.paused = at != nil
        // The whole recording's timeline, so the Timeline view (t) can jump anywhere in it.
        state.timeline = TimelineReplay.run(scrapes: scrapes, kindLabel: state.kindLabel, namespace: nil, windowMs: nil).events
        runDashboard(state, feed: feed, inBackground: false, on: terminal, display: display.settings)
    }
}

/// Every scrape of a recording, in the order recorded; a damaged end is reported on stderr and
/// what came before it is kept.
