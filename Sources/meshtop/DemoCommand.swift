import TerminalNcurses
import LinkerdViz
import MeshMetrics
import ArgumentParser
import Foundation
import Dashboard
import MeshDemo
import MeshSources
import NIOPosix
import PromText
import TerminalUI
import MeshTap
import MeshCanary

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a small mesh in this process and open the dashboard on it.",
        discussion: """
        Starts an emojivoto-like mesh on loopback: web, emoji, voting, auth and store, each behind \
        its own meshproxy (web calls auth, emoji and voting; emoji and voting call store), and a \
        meshed vote-bot sending open-loop traffic to web. voting fails a steady share of votes, so \
        its success rate (and web's) sits below 100%.
        """)

    @Flag(help: "No terminal UI: run for --duration, then print the stat table.")
    var headless = false

    @Option(help: "How long to run (default: until q, or 10s with --headless).")
    var duration: String?

    @Option(help: "Requests per second the vote-bot sends.")
    var rate: Double = 20

    @Option(help: "Share of voting's requests that fail (0 to 1), in the steady scenario.")
    var failureRate: Double = 0.1

    @Option(help: "steady (voting fails --failure-rate), healthy, incident (voting fails 40% and slows 5x from 20 s to 50 s, then recovers), canary (a voting canary failing 30%: rolled back) or canary-good (promoted).")
    var scenario = "steady"

    @Option(name: .shortAndLong, help: "Output format of the final table with --headless: table, wide or json.")
    var output = "table"

    @OptionGroup var display: DisplayOptions

    @Option(help: ArgumentHelp("Also record the demo's scrapes to this meshrec file.", valueName: "FILE"))
    var record: String?

    @Option(help: ArgumentHelp("Write the demo's proxies as a Prometheus file_sd file (for meshtop --targets, or a Prometheus server).", valueName: "FILE"))
    var targetsOut: String?

    @OptionGroup var window: WindowOption

    func run() async throws {
        guard (0...1).contains(failureRate) else { throw Exit.input("--failure-rate \(failureRate): must be between 0 and 1") }
        guard rate > 0, rate <= 10_000 else { throw Exit.input("--rate \(rate): must be above 0 and at most 10000") }
        guard let format = OutputFormat(rawValue: output) else { throw Exit.input("-o \(output): use table, wide or json") }
        guard let scenario = DemoMesh.Scenario(rawValue: scenario) else {
            throw Exit.input("--scenario \(scenario): use \(DemoMesh.Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let windowMs = try window.milliseconds
        let durationMs = try duration.map { try parseDuration($0, flag: "--duration") } ?? (headless ? 10_000 : nil)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let mesh: DemoMesh
        do {
            var options = DemoMesh.Options(votingFailureRate: failureRate, rate: rate)
            options.scenario = scenario
            mesh = try await DemoMesh.start(options, group: group)
        } catch {
            throw Exit(code: 1, message: "the demo mesh could not start: \(error)")
        }
        let targets = mesh.targets.map { t in
            ScrapeTarget(url: "http://\(t.admin)/metrics", labels: t.labels.map { Label($0.key, $0.value) }.sorted())
        }
        if let targetsOut {
            let groups = mesh.targets.map { t in
                "  {\"targets\": [\(JSONText.string(t.admin.description))], \"labels\": \(JSONText.object(t.labels))}"
            }
            do {
                try ("[\n" + groups.joined(separator: ",\n") + "\n]\n").write(toFile: targetsOut, atomically: true, encoding: .utf8)
            } catch {
                await mesh.stop()
                throw Exit.input("cannot write \(targetsOut): \(error)")
            }
        }
        let clock = WallClock()
        var writer: RecordingWriter?
        if let record {
            do {
                writer = try RecordingWriter(path: record, startedMs: clock.nowMs(), meta: ["source": "demo", "namespace": mesh.namespace])
            } catch {
                await mesh.stop()
                throw Exit.input(error.description)
            }
        }
        let live = LiveCollector(targets: targets, intervalSeconds: 1, recorder: writer)
        live.start(clock: clock)
        let started = clock.nowMs()

        var canaryBoard: CanaryBoard?
        if scenario == .canary || scenario == .canaryGood {
            // A short analysis so the demo decides in about half a minute.
            var policy = CanaryPolicy()
            policy.stepWeight = 20
            policy.maxWeight = 60
            policy.threshold = 2
            policy.minRequests = 5
            let who = CanaryTarget(namespace: mesh.namespace, canary: "voting-canary", primary: "voting")
            let controller = CanaryController(authority: mesh.votingAuthority, canaryBackend: "voting-canary", primaryBackend: "voting",
                                              splits: [SplitClient(adminURL: "http://\(mesh.splitAdmin)")], dryRun: false)
            var observer = LiveCanaryObserver(live: live, target: who, intervalMs: 5_000, source: "scraping \(targets.count) proxies", clock: clock)
            let watch = CanaryWatch(target: who, authority: mesh.votingAuthority, source: observer.source, policy: policy, intervalMs: 5_000, dryRun: false)
            if headless {
                let stop = StopFlag.install()
                sayLine(CanaryHeadless.header(watch))
                let (code, final) = controller.run(&observer, watch: watch, startMs: clock.nowMs(), stop: { stop.isSet }) { _, line in sayLine(line) }
                sayLine(final.verdictJSON)
                // With --duration the mesh runs on after the verdict (a recording then shows the aftermath).
                if duration != nil, let explicit = durationMs {
                    while !stop.isSet, clock.nowMs() < started + explicit { try await Task.sleep(nanoseconds: 200_000_000) }
                }
                live.stop()
                await mesh.stop()
                try? await group.shutdownGracefully()
                if code != 0 { throw ExitCode(code) }
                return
            }
            let board = CanaryBoard()
            board.post(watch)
            canaryBoard = board
            let startMs = clock.nowMs()
            Thread.detachNewThread { [observer] in
                var observer = observer
                _ = controller.run(&observer, watch: watch, startMs: startMs) { w, _ in board.post(w) }
            }
        }
        if headless {
            let end = started + (durationMs ?? 10_000)
            let progress = isatty(STDERR_FILENO) == 0
            var lastReport = started
            while clock.nowMs() < end {
                try await Task.sleep(nanoseconds: 200_000_000)
                if progress, clock.nowMs() - lastReport >= 2000 {
                    lastReport = clock.nowMs()
                    let s = live.snapshot
                    warn("demo: \((lastReport - started) / 1000)s of \((end - started) / 1000)s, \(s.upCount)/\(targets.count) proxies up, \(mesh.traffic.sent) requests sent")
                }
            }
            live.stop()
            live.scrapeOnce(clock: clock)  // a last round at the end, so the window ends now
            let collector = live.snapshot
            let rows = collector.stat(kindLabel: "deployment", namespace: mesh.namespace, windowMs: windowMs)
            switch format {
            case .json: print(StatView.json(rows, kind: "deployment"), terminator: "")
            case .table, .wide: print(StatView.table(rows, showNamespace: false, wide: format == .wide), terminator: "")
            }
            let traffic = mesh.traffic
            warn("demo: window \(DurationText.format(collector.effectiveWindow(windowMs))); vote-bot sent \(traffic.sent), answered \(traffic.byStatus.values.reduce(0, +)), errors \(traffic.errors)")
        } else {
                let terminal: NcursesTerminal
            do {
                terminal = try display.openTerminal()
            } catch {
                live.stop()
                await mesh.stop()
                throw error
            }
            var state = DashboardState(title: "demo mesh: \(mesh.namespace)", source: "demo, \(targets.count) proxies", windowMs: windowMs)
            state.namespace = mesh.namespace
            state.refreshMs = display.refreshMs
            if canaryBoard != nil { state.view = .canary }
            let tap = TapFeed(addresses: mesh.targets.compactMap { $0.tap?.description }, filter: TapFilter(direction: .outbound, maxRps: 50))
            tap.start()
            DashboardLoop.run(state, feed: live, tap: tap, canary: canaryBoard, terminal: terminal, maxFrames: display.maxFrames,
                              deadlineMs: durationMs.map { started + $0 }, clock: clock)
            terminal.close()
            tap.stop()
            live.stop()
        }
        await mesh.stop()
        try? await group.shutdownGracefully()
    }
}
