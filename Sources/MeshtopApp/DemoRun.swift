import Foundation
public import LinkerdViz
import MeshCanary
public import MeshDemo
import MeshMetrics
import MeshSources
import MeshTap
import NIOPosix
import PromText
import TerminalNcurses
import Dashboard

/// What `meshtop demo` was asked for, checked.
public struct DemoSettings: Sendable {
    public var scenario: DemoMesh.Scenario
    public var failureRate: Double
    public var rate: Double
    public var headless: Bool
    /// How long to run: given, or 10 s when headless; nil runs until `q`.
    public var durationMs: Int64?
    /// `--duration` was given (a headless canary then runs on after its verdict).
    public var durationGiven: Bool
    public var format: OutputFormat
    public var windowMs: Int64
    public var record: String?
    public var targetsOut: String?
    public var display: DisplaySettings

    public init(scenario: DemoMesh.Scenario, failureRate: Double, rate: Double, headless: Bool, durationMs: Int64?, durationGiven: Bool,
                format: OutputFormat, windowMs: Int64, record: String?, targetsOut: String?, display: DisplaySettings) {
        (self.scenario, self.failureRate, self.rate, self.headless) = (scenario, failureRate, rate, headless)
        (self.durationMs, self.durationGiven, self.format, self.windowMs) = (durationMs, durationGiven, format, windowMs)
        (self.record, self.targetsOut, self.display) = (record, targetsOut, display)
    }
}

/// `meshtop demo`: the demo mesh in this process, scraped (and recorded, if asked), shown on the
/// dashboard or, headless, as a final stat table; the canary scenarios run the controller on it.
public enum DemoRun {
    /// Runs the demo; returns the exit code (a headless canary's verdict: 0 promoted).
    public static func run(_ settings: DemoSettings) async throws -> Int32 {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let mesh: DemoMesh
        do {
            var options = DemoMesh.Options(votingFailureRate: settings.failureRate, rate: settings.rate)
            options.scenario = settings.scenario
            mesh = try await DemoMesh.start(options, group: group)
        } catch {
            throw Exit(code: 1, message: "the demo mesh could not start: \(error)")
        }
        let targets = mesh.targets.map { t in
            ScrapeTarget(url: "http://\(t.admin)/metrics", labels: t.labels.map { Label($0.key, $0.value) }.sorted())
        }
        if let targetsOut = settings.targetsOut {
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
        if let record = settings.record {
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
        if settings.scenario == .canary || settings.scenario == .canaryGood {
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
            if settings.headless {
                let stop = StopFlag.install()
                let code = CanaryRuns.headless(controller, &observer, watch: watch, startMs: clock.nowMs(), stop: stop)
                // With --duration the mesh runs on after the verdict (a recording then shows the aftermath).
                if let explicit = settings.durationMs, settings.durationGiven {
                    while !stop.isSet, clock.nowMs() < started + explicit { try await Task.sleep(nanoseconds: 200_000_000) }
                }
                live.stop()
                await mesh.stop()
                try? await group.shutdownGracefully()
                return code
            }
            canaryBoard = CanaryThread.start(controller, observer: observer, watch: watch, startMs: clock.nowMs()).board
        }
        if settings.headless {
            let end = started + (settings.durationMs ?? 10_000)
            let progress = isatty(STDERR_FILENO) == 0
            var lastReport = started
            // Ctrl-C or SIGTERM ends the run early as --duration would: the table is printed and
            // a recording is closed whole.
            let stop = StopFlag.install()
            while clock.nowMs() < end, !stop.isSet {
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
            let rows = collector.stat(kindLabel: "deployment", namespace: mesh.namespace, windowMs: settings.windowMs)
            switch settings.format {
            case .json: print(StatView.json(rows, kind: "deployment"), terminator: "")
            case .table, .wide: print(StatView.table(rows, showNamespace: false, wide: settings.format == .wide), terminator: "")
            }
            let traffic = mesh.traffic
            warn("demo: window \(DurationText.format(collector.effectiveWindow(settings.windowMs))); vote-bot sent \(traffic.sent), answered \(traffic.byStatus.values.reduce(0, +)), errors \(traffic.errors)")
        } else {
            let terminal: NcursesTerminal
            do {
                terminal = try settings.display.openTerminal()
            } catch {
                live.stop()
                await mesh.stop()
                throw error
            }
            var state = DashboardState(title: "demo mesh: \(mesh.namespace)", source: "demo, \(targets.count) proxies", windowMs: settings.windowMs)
            state.namespace = mesh.namespace
            state.refreshMs = settings.display.refreshMs
            if canaryBoard != nil { state.view = .canary }
            let tap = TapFeed(addresses: mesh.targets.compactMap { $0.tap?.description }, filter: TapFilter(direction: .outbound, maxRps: 50))
            runDashboard(state, feed: live, tap: tap, canary: canaryBoard, on: terminal, display: settings.display,
                         deadlineMs: settings.durationMs.map { started + $0 }, clock: clock)
            live.stop()
        }
        await mesh.stop()
        try? await group.shutdownGracefully()
        return 0
    }
}
