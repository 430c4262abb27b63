import ArgumentParser
import Dashboard
import Foundation
import MeshCanary
import MeshMetrics
import MeshSources
import Synchronization

struct CanaryOptions: ParsableArguments {
    @Option(help: "Canary analysis interval.") var interval = "30s"
    @Option(help: "Weight added to the canary per passing interval.") var stepWeight = 5
    @Option(help: "Promote when passing at this weight.") var maxWeight = 50
    @Option(help: "Failed checks before rollback.") var threshold = 5
    @Option(help: "Lowest success rate, percent.") var successRateMin: Double = 99
    @Option(help: "Highest p99 latency (e.g. 500ms).") var latencyP99Max = "500ms"
    @Option(help: "Fewer requests per interval is a failed check.") var minRequests: Double = 10
    @Option(help: "Fail when the canary's success rate is more than this many points below the primary's.") var maxSuccessRateDrop: Double?
    @Option(help: "Fail when the canary's p99 is more than this many percent above the primary's.") var maxP99Increase: Double?

    func policy() throws -> (CanaryPolicy, Int64) {
        var p = CanaryPolicy()
        guard stepWeight > 0, stepWeight <= 100, maxWeight > 0, maxWeight <= 100, threshold > 0 else {
            throw Exit.input("--step-weight and --max-weight must be 1-100, --threshold at least 1")
        }
        p.stepWeight = stepWeight
        p.maxWeight = maxWeight
        p.threshold = threshold
        p.successRateMin = successRateMin
        p.latencyP99MaxMs = Double(try parseDuration(latencyP99Max, flag: "--latency-p99-max"))
        p.minRequests = minRequests
        p.maxSuccessRateDropPoints = maxSuccessRateDrop
        p.maxP99IncreasePercent = maxP99Increase
        return (p, try parseDuration(interval, flag: "--interval"))
    }
}

struct Canary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a canary release: judge it from mesh metrics, shift traffic, exit 0 (promote) or 1 (roll back).",
        discussion: """
        Flagger's analysis: each --interval the canary's inbound success rate, p99 and request \
        volume are checked (no data or too few requests is a failed check, so missing data never \
        promotes); passing raises its weight by --step-weight through meshproxy's /split, --threshold \
        failed checks roll it back to 0, passing at --max-weight promotes it to 100.

        Sources: the proxies scraped directly (--scrape, --targets), a Prometheus server asked with \
        Flagger's Linkerd queries (--prometheus), or a recording judged as fast as it reads \
        (--replay FILE [--at TIME]; weights are not moved). On a terminal the dashboard opens on \
        its Canary view (9); --headless prints one line per interval and a final JSON verdict.
        """)

    @Option(help: "The canary's deployment.") var target: String
    @Option(help: "The primary's deployment.") var primary: String
    @Option(name: .shortAndLong, help: "Their namespace.") var namespace: String?
    @Option(help: ArgumentHelp("The authority whose split is stepped (host:port).", valueName: "host:port")) var authority: String
    @Option(help: "The canary's backend name in the destinations (default: --target).") var canaryBackend: String?
    @Option(help: "The primary's backend name in the destinations (default: --primary).") var primaryBackend: String?
    @Option(name: .customLong("split-admin"), help: ArgumentHelp("A meshproxy admin listener whose outbound split to step (repeatable).", valueName: "URL")) var splitAdmins: [String] = []
    @Option(help: "Token for the admin listeners' /split.") var adminToken: String?
    @Flag(help: "Judge without moving weights.") var dryRun = false
    @Flag(help: "No terminal UI: one line per interval and a JSON verdict.") var headless = false
    @OptionGroup var analysis: CanaryOptions
    @OptionGroup var sources: SourceOptions
    @OptionGroup var display: DisplayOptions

    func run() throws {
        let (policy, intervalMs) = try analysis.policy()
        let who = CanaryTarget(namespace: namespace, canary: target, primary: primary)
        if sources.replay != nil, !splitAdmins.isEmpty {
            throw Exit.input("--replay judges a recording and moves no weights: leave out --split-admin")
        }
        let judgeOnly = dryRun || sources.replay != nil
        guard judgeOnly || !splitAdmins.isEmpty else { throw Exit.input("give --split-admin URL (a proxy whose split to step), or --dry-run") }
        let controller = CanaryController(authority: authority, canaryBackend: canaryBackend ?? target, primaryBackend: primaryBackend ?? primary,
                                          splits: splitAdmins.map { SplitClient(adminURL: $0, token: adminToken) }, dryRun: judgeOnly)
        let clock = WallClock()

        if let path = sources.replay {
            let scrapes = try loadScrapes(path)
            guard let first = scrapes.first?.startedMs, let last = scrapes.last?.startedMs else {
                throw Exit.input("\(path): the recording has no scrapes to judge")
            }
            var start = first
            if let at = sources.at {
                guard let t = TimeSpec.milliseconds(at, startMs: first, endMs: last) else {
                    throw Exit.input("--at \(at): not a time (try -5m, +30s, 21:30:05 or 2026-11-25T21:30:05Z)")
                }
                start = t
            }
            var observer = ReplayCanaryObserver(events: scrapes, target: who, intervalMs: intervalMs, startMs: start,
                                                source: "replay of \(URL(fileURLWithPath: path).lastPathComponent)")
            try headlessRun(controller, &observer, policy: policy, intervalMs: intervalMs, startMs: start, judgeOnly: true)
            return
        }
        if let url = sources.prometheus {
            guard sources.scrape.isEmpty, sources.targetsFile == nil else { throw Exit.input("--prometheus asks a server: leave out --scrape and --targets") }
            let client = PrometheusClient(baseURL: url, timeoutSeconds: 5)
            var observer = PrometheusCanaryObserver(client: client, target: who, intervalMs: intervalMs, clock: clock)
            if headless {
                try headlessRun(controller, &observer, policy: policy, intervalMs: intervalMs, startMs: clock.nowMs(), judgeOnly: judgeOnly)
            } else {
                try dashboardRun(controller, &observer, policy: policy, intervalMs: intervalMs,
                                 feed: PrometheusFeed(source: PrometheusSource(client: client), clock: clock), judgeOnly: judgeOnly)
            }
            return
        }
        let targets = try sources.targets()
        let live = LiveCollector(targets: try sources.targets(includingFile: false), targetsFile: sources.targetsFile, intervalSeconds: 1)
        live.start(clock: clock)
        defer { live.stop() }
        var observer = LiveCanaryObserver(live: live, target: who, intervalMs: intervalMs, source: "scraping \(targets.count) proxies", clock: clock)
        if headless {
            try headlessRun(controller, &observer, policy: policy, intervalMs: intervalMs, startMs: clock.nowMs(), judgeOnly: judgeOnly)
        } else {
            try dashboardRun(controller, &observer, policy: policy, intervalMs: intervalMs, feed: live, judgeOnly: judgeOnly)
        }
    }

    private func watch(_ observer: some CanaryObserver, policy: CanaryPolicy, intervalMs: Int64, judgeOnly: Bool) -> CanaryWatch {
        CanaryWatch(target: CanaryTarget(namespace: namespace, canary: target, primary: primary), authority: authority,
                    source: observer.source, policy: policy, intervalMs: intervalMs, dryRun: judgeOnly)
    }

    /// One line per decision on stdout, then the JSON verdict; exit 0 promoted, 1 otherwise.
    func headlessRun(_ controller: CanaryController, _ observer: inout some CanaryObserver, policy: CanaryPolicy,
                             intervalMs: Int64, startMs: Int64, judgeOnly: Bool) throws {
        let stop = StopFlag.install()
        let w = watch(observer, policy: policy, intervalMs: intervalMs, judgeOnly: judgeOnly)
        sayLine(CanaryHeadless.header(w))
        let (code, final) = controller.run(&observer, watch: w, startMs: startMs, stop: { stop.isSet }) { _, line in sayLine(line) }
        sayLine(final.verdictJSON)
        if code != 0 { throw ExitCode(code) }
    }

    /// The dashboard, opened on its Canary view, while the controller runs on its own thread;
    /// after the terminal closes the decision log and the verdict are printed, so nothing is lost.
    private func dashboardRun(_ controller: CanaryController, _ observer: inout some CanaryObserver & Sendable, policy: CanaryPolicy,
                              intervalMs: Int64, feed: any SnapshotFeed, judgeOnly: Bool) throws {
        let terminal = try display.openTerminal()
        let board = CanaryBoard()
        let w = watch(observer, policy: policy, intervalMs: intervalMs, judgeOnly: judgeOnly)
        board.post(w)
        let outcome = CanaryOutcome()
        let started = WallClock().nowMs()
        Thread.detachNewThread { [observer] in
            var observer = observer
            let result = controller.run(&observer, watch: w, startMs: started, stop: { outcome.abandoned }) { watch, _ in board.post(watch) }
            outcome.finish(result.code, result.watch)
        }
        var state = DashboardState(title: "canary: \(target)", source: observer.source, windowMs: intervalMs)
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        state.view = .canary
        DashboardLoop.run(state, feed: feed, canary: board, terminal: terminal, maxFrames: display.maxFrames)
        terminal.close()
        // Quitting before a verdict stops the controller (the canary stays at its weight, as said).
        outcome.abandon()
        let (code, final) = outcome.wait()
        for line in final.log { sayLine(line) }
        sayLine(final.verdictJSON)
        if code != 0 { throw ExitCode(code) }
    }
}

/// The controller thread's result, handed to the main thread.
final class CanaryOutcome: Sendable {
    private let state = Mutex<(code: Int32, watch: CanaryWatch?, abandoned: Bool)>((1, nil, false))
    var abandoned: Bool { state.withLock { $0.abandoned } }
    func abandon() { state.withLock { $0.abandoned = true } }
    func finish(_ code: Int32, _ watch: CanaryWatch) { state.withLock { $0 = (code, watch, $0.abandoned) } }
    func wait() -> (Int32, CanaryWatch) {
        while true {
            if let r = state.withLock({ s in s.watch.map { (s.code, $0) } }) { return r }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}

enum CanaryHeadless {
    static func header(_ w: CanaryWatch) -> String {
        "canary: \(w.target.canary) against \(w.target.primary) on \(w.authority) (\(w.source)), every \(DurationText.format(w.intervalMs)): "
            + "step \(w.policy.stepWeight), max \(w.policy.maxWeight), threshold \(w.policy.threshold)\(w.dryRun ? " (weights are not changed)" : "")"
    }
}

/// A line on standard output, written at once (a pipeline reads progress as it happens).
func sayLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
