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

    /// Tap listeners from the flags, else from the config file.
    var tapAddresses: [String] { taps.isEmpty ? userConfig.tap : taps }

    func run() throws {
        if let url = sources.prometheus {
            guard sources.scrape.isEmpty, sources.targetsFile == nil, sources.replay == nil else {
                throw Exit.input("--prometheus asks a server: leave out --scrape, --targets and --replay")
            }
            let client = PrometheusClient(baseURL: url, timeoutSeconds: 2)
            let terminal = try display.openTerminal()
            var state = DashboardState(title: "Prometheus \(client.baseURL)", source: "prometheus", windowMs: try window.milliseconds)
            state.namespace = namespace
            state.refreshMs = max(2000, display.refreshMs)  // each refresh is a round of queries to the server
            let tap = tapAddresses.isEmpty ? nil : TapFeed(addresses: tapAddresses)
            tap?.start()
            DashboardLoop.run(state, feed: PrometheusFeed(source: PrometheusSource(client: client)), tap: tap, terminal: terminal, maxFrames: display.maxFrames)
            terminal.close()
            tap?.stop()
            return
        }
        if let path = sources.replay {
            throw Exit.input("to play a recording use `meshtop replay \(path)`")
        }
        let targets = try sources.targets()  // checked now, so a bad file is an error before the screen opens
        let windowMs = try window.milliseconds
        let clock = WallClock()
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile, intervalSeconds: 1)
        live.start(clock: clock)
        defer { live.stop() }
        let terminal = try display.openTerminal()
        var state = DashboardState(title: "\(targets.count) proxies", source: "scrape", windowMs: windowMs)
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        let tap = tapAddresses.isEmpty ? nil : TapFeed(addresses: tapAddresses)
        tap?.start()
        DashboardLoop.run(state, feed: live, tap: tap, terminal: terminal, maxFrames: display.maxFrames, clock: clock)
        terminal.close()
        tap?.stop()
    }
}
