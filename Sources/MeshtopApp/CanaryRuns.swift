import Dashboard
public import MeshCanary
public import MeshMetrics
public import MeshSources
import Foundation

/// How a canary watch is shown: lines on stdout, or the dashboard's Canary view.
public enum CanaryRuns {
    /// One line per decision on stdout, then the JSON verdict. Returns the exit code (0 promoted).
    /// `stop` (Ctrl-C) ends it early; one is installed when none is given.
    public static func headless(_ controller: CanaryController, _ observer: inout some CanaryObserver, watch: CanaryWatch,
                                startMs: Int64, stop: StopFlag? = nil) -> Int32 {
        let stop = stop ?? StopFlag.install()
        sayLine(header(watch))
        let (code, final) = controller.run(&observer, watch: watch, startMs: startMs, stop: { stop.isSet }) { _, line in sayLine(line) }
        sayLine(final.verdictJSON)
        return code
    }

    /// The dashboard, opened on its Canary view, while the controller runs on its own thread;
    /// after the terminal closes the decision log and the verdict are printed, so nothing is
    /// lost. Quitting before a verdict stops the controller. Returns the exit code (0 promoted).
    public static func dashboard(_ controller: CanaryController, observer: some CanaryObserver & Sendable, watch: CanaryWatch,
                                 feed: any SnapshotFeed, namespace: String?, display: DisplaySettings) throws(Exit) -> Int32 {
        let terminal = try display.openTerminal()
        let run = CanaryThread.start(controller, observer: observer, watch: watch, startMs: WallClock().nowMs())
        var state = DashboardState(title: "canary: \(watch.target.canary)", source: observer.source, windowMs: watch.intervalMs)
        state.namespace = namespace
        state.refreshMs = display.refreshMs
        state.view = .canary
        runDashboard(state, feed: feed, canary: run.board, on: terminal, display: display)
        run.abandon()
        let (code, final) = run.wait()
        for line in final.log { sayLine(line) }
        sayLine(final.verdictJSON)
        return code
    }

    /// The first line of a headless watch: what is compared, where the numbers come from, the policy.
    public static func header(_ w: CanaryWatch) -> String {
        "canary: \(w.target.canary) against \(w.target.primary) on \(w.authority) (\(w.source)), every \(DurationText.format(w.intervalMs)): "
            + "step \(w.policy.stepWeight), max \(w.policy.maxWeight), threshold \(w.policy.threshold)\(w.dryRun ? " (weights are not changed)" : "")"
    }
}

/// Where a canary's numbers come from.
public enum CanarySource: Sendable {
    /// A recording, judged as fast as it reads from `at` (a `TimeSpec`; nil: its start).
    case replay(path: String, at: String?)
    /// A Prometheus server, asked with Flagger's Linkerd queries.
    case prometheus(url: String)
    /// The proxies scraped live: `targets` in all, `following` plus those of `file` (re-read when it changes).
    case live(targets: [ScrapeTarget], following: [ScrapeTarget], file: String?)
}

/// One canary release to watch: the controller, what it compares and how.
public struct CanaryRun: Sendable {
    public var controller: CanaryController
    public var target: CanaryTarget
    public var authority: String
    public var policy: CanaryPolicy
    public var intervalMs: Int64
    public var dryRun: Bool

    public init(controller: CanaryController, target: CanaryTarget, authority: String, policy: CanaryPolicy, intervalMs: Int64, dryRun: Bool) {
        (self.controller, self.target, self.authority) = (controller, target, authority)
        (self.policy, self.intervalMs, self.dryRun) = (policy, intervalMs, dryRun)
    }

    private func watch(_ observer: some CanaryObserver) -> CanaryWatch {
        CanaryWatch(target: target, authority: authority, source: observer.source, policy: policy, intervalMs: intervalMs, dryRun: dryRun)
    }

    /// Watches the canary from `source`, headless or on the dashboard (a recording is always judged
    /// headless); returns the exit code (0 promoted).
    public func run(_ source: CanarySource, headless: Bool, display: DisplaySettings) throws(Exit) -> Int32 {
        let clock = WallClock()
        switch source {
        case .replay(let path, let at):
            let scrapes = try loadScrapes(path)
            guard let first = scrapes.first?.startedMs, let last = scrapes.last?.startedMs else {
                throw Exit.input("\(path): the recording has no scrapes to judge")
            }
            var start = first
            if let at {
                guard let t = TimeSpec.milliseconds(at, startMs: first, endMs: last) else {
                    throw Exit.input("--at \(at): not a time (try -5m, +30s, 21:30:05 or 2026-11-25T21:30:05Z)")
                }
                start = t
            }
            var observer = ReplayCanaryObserver(events: scrapes, target: target, intervalMs: intervalMs, startMs: start,
                                                source: "replay of \(URL(fileURLWithPath: path).lastPathComponent)")
            return CanaryRuns.headless(controller, &observer, watch: watch(observer), startMs: start)
        case .prometheus(let url):
            let client = PrometheusClient(baseURL: url, timeoutSeconds: 5)
            var observer = PrometheusCanaryObserver(client: client, target: target, intervalMs: intervalMs, clock: clock)
            if headless { return CanaryRuns.headless(controller, &observer, watch: watch(observer), startMs: clock.nowMs()) }
            return try CanaryRuns.dashboard(controller, observer: observer, watch: watch(observer),
                                            feed: PrometheusFeed(source: PrometheusSource(client: client), clock: clock),
                                            namespace: target.namespace, display: display)
        case .live(let targets, let following, let file):
            let live = LiveCollector(targets: following, targetsFile: file, intervalSeconds: 1)
            live.start(clock: clock)
            defer { live.stop() }
            var observer = LiveCanaryObserver(live: live, target: target, intervalMs: intervalMs, source: "scraping \(targets.count) proxies", clock: clock)
            if headless { return CanaryRuns.headless(controller, &observer, watch: watch(observer), startMs: clock.nowMs()) }
            return try CanaryRuns.dashboard(controller, observer: observer, watch: watch(observer), feed: live,
                                            namespace: target.namespace, display: display)
        }
    }
}
