import MeshtopApp
import MeshMetrics
import ArgumentParser
import Foundation
import Dashboard
import MeshSources

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

    @Flag(help: "No terminal UI: scrape and compute the views every refresh for --duration, with a progress line on stderr, then print the stat table.")
    var headless = false

    @Option(help: "With --headless: how long to run (default 10s; Ctrl-C stops early).")
    var duration = "10s"

    @Option(help: "Time between scrape rounds.")
    var interval = "1s"

    /// The dashboard's whole pipeline without a screen: what a benchmark or a script measures.
    var tapAddresses: [String] { taps.isEmpty ? userConfig.tap : taps }

    func run() throws {
        if let url = sources.prometheus {
            guard sources.scrape.isEmpty, sources.targetsFile == nil, sources.replay == nil else {
                throw Exit.input("--prometheus asks a server: leave out --scrape, --targets and --replay")
            }
            let client = PrometheusClient(baseURL: url, timeoutSeconds: 2)
            let terminal = try display.settings.openTerminal()
            var state = DashboardState(title: "Prometheus \(client.baseURL)", source: "prometheus", windowMs: try window.milliseconds)
            state.namespace = namespace
            state.refreshMs = max(2000, display.refreshMs)  // each refresh is a round of queries to the server
            runDashboard(state, feed: PrometheusFeed(source: PrometheusSource(client: client)),
                         tap: tapAddresses.isEmpty ? nil : TapFeed(addresses: tapAddresses), on: terminal, display: display.settings)
            return
        }
        if let path = sources.replay {
            throw Exit.input("to play a recording use `meshtop replay \(path)`")
        }
        let targets = try sources.targets()  // checked now, so a bad file is an error before the screen opens
        let windowMs = try window.milliseconds
        let clock = WallClock()
        var state = DashboardState(title: "\(targets.count) proxies", source: "scrape", windowMs: windowMs)
        // The dashboard keeps what its views read, summed over pods (one-shot commands keep every series).
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile,
                                 intervalSeconds: Double(try parseDuration(interval, flag: "--interval")) / 1000, timeoutSeconds: 2,
                                 rollup: Rollup(kindLabel: state.kindLabel))
        live.start(clock: clock)
        defer { live.stop() }
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        if headless {
            runHeadless(live, state: state, durationMs: try parseDuration(duration, flag: "--duration"), clock: clock)
            return
        }
        runDashboard(state, feed: live, tap: tapAddresses.isEmpty ? nil : TapFeed(addresses: tapAddresses),
                     on: try display.settings.openTerminal(), display: display.settings, clock: clock)
    }
}
