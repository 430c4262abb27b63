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

    @Flag(help: "Monochrome: no colours (also when NO_COLOR is set).")
    var noColor = false

    @Option(help: ArgumentHelp("Colours: default-dark, light, tty16, okabe-ito (colour-blind safe), monochrome, or a YAML file.", valueName: "NAME|PATH"))
    var theme = "default-dark"

    @Option(help: "Stop after drawing this many frames (for scripted runs).")
    var maxFrames: Int?

    @Option(name: .customLong("tap"), help: ArgumentHelp("A proxy's tap listener, for the Top and Tap views (repeatable).", valueName: "host:port"))
    var taps: [String] = []

    func run() throws {
        let targets = try sources.targets()
        let windowMs = try window.milliseconds
        let noColor = self.noColor || !(ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        let clock = WallClock()
        let live = LiveCollector(targets: targets, intervalSeconds: 1)
        live.start(clock: clock)
        defer { live.stop() }
        let terminal: NcursesTerminal
        do {
            terminal = try NcursesTerminal(noColor: noColor, theme: loadTheme(theme))
        } catch {
            throw Exit.input("\(error)")
        }
        var state = DashboardState(title: "\(targets.count) proxies", source: "scrape", windowMs: windowMs)
        state.namespace = namespace
        let tap = taps.isEmpty ? nil : TapFeed(addresses: taps)
        tap?.start()
        DashboardLoop.run(state, feed: live, tap: tap, terminal: terminal, maxFrames: maxFrames, clock: clock)
        terminal.close()
        tap?.stop()
    }
}
