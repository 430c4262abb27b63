import LinkerdViz
import MeshMetrics
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

    @Flag(help: "No terminal UI: scrape and compute the views every refresh for --duration, with a progress line on stderr, then print the stat table.")
    var headless = false

    @Option(help: "With --headless: how long to run (default 10s; Ctrl-C stops early).")
    var duration = "10s"

    @Option(help: "Time between scrape rounds.")
    var interval = "1s"

    /// The dashboard's whole pipeline without a screen: what a benchmark or a script measures.
    private func runHeadless(_ live: LiveCollector, state: DashboardState, clock: WallClock) throws {
        let durationMs = try parseDuration(duration, flag: "--duration")
        let stop = StopFlag.install()
        let started = clock.nowMs()
        var lastReport = started, refreshes = 0, slowest: Int64 = 0
        while !stop.isSet, clock.nowMs() - started < durationMs {
            let t0 = clock.nowMs()
            let data = live.snapshot(for: state.query)
            refreshes += 1
            slowest = max(slowest, clock.nowMs() - t0)
            if clock.nowMs() - lastReport >= 5_000 {
                lastReport = clock.nowMs()
                let rounds = live.read { $0.rounds }
                warn("meshtop: \((lastReport - started) / 1000)s, \(rounds) scrape rounds, targets \(data.targetsUp)/\(data.targetsTotal) up\(data.targetStates.isEmpty ? "" : " (\(data.targetStates))"), \(data.workloads.count) workloads, slowest refresh \(slowest) ms")
            }
            Thread.sleep(forTimeInterval: max(0, Double(Int64(state.refreshMs) - (clock.nowMs() - t0)) / 1000))
        }
        live.stop()
        let (rounds, targets) = live.read { ($0.rounds, $0.activeCount) }
        let rows = live.read { $0.stat(kindLabel: state.kindLabel, namespace: state.namespace, windowMs: state.windowMs) }
        print(StatView.table(rows, showNamespace: state.namespace == nil, wide: false), terminator: "")
        warn("meshtop: \(rounds) scrape rounds of \(targets) targets and \(refreshes) refreshes (slowest \(slowest) ms) in \((clock.nowMs() - started) / 1000)s")
    }

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
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile,
                                 intervalSeconds: Double(try parseDuration(interval, flag: "--interval")) / 1000, timeoutSeconds: 2)
        live.start(clock: clock)
        defer { live.stop() }
        var state = DashboardState(title: "\(targets.count) proxies", source: "scrape", windowMs: windowMs)
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        if headless {
            try runHeadless(live, state: state, clock: clock)
            return
        }
        let terminal = try display.openTerminal()
        let tap = tapAddresses.isEmpty ? nil : TapFeed(addresses: tapAddresses)
        tap?.start()
        DashboardLoop.run(state, feed: live, tap: tap, terminal: terminal, maxFrames: display.maxFrames, clock: clock)
        terminal.close()
        tap?.stop()
    }
}
