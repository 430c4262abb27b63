import ArgumentParser
import Foundation
import Dashboard
import MeshSources
import TerminalUI

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "The live dashboard on proxies you name (the default command).")

    @OptionGroup var sources: SourceOptions
    @OptionGroup var window: WindowOption

    @Option(name: .shortAndLong, help: "Only this namespace.")
    var namespace: String?

    @OptionGroup var display: DisplayOptions

    @Option(name: .customLong("tap"), help: ArgumentHelp("A proxy's tap listener, for the Top and Tap views (repeatable).", valueName: "host:port"))
    var taps: [String] = []

    func run() throws {
        let targets = try sources.targets()  // checked now, so a bad file is an error before the screen opens
        let windowMs = try window.milliseconds
        let clock = WallClock()
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile, intervalSeconds: 1)
        live.start(clock: clock)
        defer { live.stop() }
        let terminal = try display.openTerminal()
        var state = DashboardState(title: "\(targets.count) proxies", source: "scrape", windowMs: windowMs)
        state.namespace = namespace
        let tap = taps.isEmpty ? nil : TapFeed(addresses: taps)
        tap?.start()
        DashboardLoop.run(state, feed: live, tap: tap, terminal: terminal, maxFrames: display.maxFrames, clock: clock)
        terminal.close()
        tap?.stop()
    }
}
