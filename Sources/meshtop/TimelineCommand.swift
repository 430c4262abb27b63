import ArgumentParser
import Foundation
import LinkerdViz
import MeshMetrics
import MeshSources
import MeshTimeline
import MeshtopApp

struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What broke first: each workload's and edge's success, p99 and RPS leaving its recent baseline, and coming back.",
        discussion: """
        Each moment, every workload's and edge's golden metrics (over -t) are compared with their \
        baseline, the median of their last 5 minutes. A change is listed when success falls \
        (errors at least doubled and 2 points up), p99 rises (1.5x and 20 ms up) or RPS moves by \
        half, and again when it comes back. Changes seen at the same moment list a callee before \
        its callers, as failures travel up a call chain. Oldest first.

        The moments: a recording's rounds (--replay); a Prometheus server's last --since, a moment \
        every quarter window (--prometheus, ending at --at or now); or the proxies scraped while \
        it runs (--scrape/--targets, until --duration or Ctrl-C; each change is also said on \
        stderr as it is found).
        """)

    @Argument(help: "Resource kind: deploy, pod, ns, sts or ds.")
    var kind = "deploy"

    @OptionGroup var sources: SourceOptions

    @Option(name: .shortAndLong, help: "Only this namespace (all namespaces by default).")
    var namespace: String?

    @Option(name: [.customShort("t"), .customLong("time-window")], help: "The window each moment's metrics are computed over (default: three scrape intervals of a recording or a live scrape; 1m for Prometheus).")
    var timeWindow: String?

    @Option(help: "With --prometheus: how far back to look (default 30m).")
    var since = "30m"

    @Option(help: "With --scrape/--targets: how long to watch (default: until Ctrl-C).")
    var duration: String?

    @Option(help: "With --scrape/--targets: time between scrape rounds.")
    var interval = "1s"

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output = "table"

    func run() throws {
        let label = try kindLabel(kind)
        guard let format = OutputFormat(rawValue: output), format != .wide else { throw Exit.input("-o \(output): use table or json") }
        let windowMs = try timeWindow.map { try parseDuration($0, flag: "-t") }
        let result: TimelineReplay.Result
        let what: String
        if let path = sources.replay {
            guard sources.at == nil else { throw Exit.input("--at: the timeline covers the whole recording; leave it out") }
            result = try TimelineReplay.run(path: path, kindLabel: label, namespace: namespace, windowMs: windowMs) { warn("meshtop: \($0)") }
            what = path
        } else if let url = sources.prometheus {
            result = try prometheus(url, label: label, windowMs: windowMs ?? 60_000)
            what = "Prometheus \(url)"
        } else {
            result = try scrape(label: label, windowMs: windowMs)
            what = "the scrapes"
        }
        let short = TimelineSubject.shortKind(label)
        switch format {
        case .json: print(TimelineView.json(result.events, kind: short), terminator: "")
        case .table, .wide:
            if result.events.isEmpty {
                warn("meshtop: no changes in \(DurationText.format(result.endMs - result.startMs)) of \(what) (window \(DurationText.format(result.windowMs)))")
            } else {
                print(TimelineView.table(result.events, kind: short, startMs: result.startMs, showNamespace: namespace == nil), terminator: "")
            }
        }
    }

    /// A Prometheus server's history, stepped through a quarter window at a time.
    func prometheus(_ url: String, label: String, windowMs: Int64) throws -> TimelineReplay.Result {
        guard sources.scrape.isEmpty, sources.targetsFile == nil else {
            throw Exit.input("--prometheus asks a server: leave out --scrape and --targets")
        }
        let sinceMs = try parseDuration(since, flag: "--since")
        let endMs = try sources.prometheusAtMs()
        let stepMs = max(1_000, windowMs / 4)
        let progress = isatty(STDERR_FILENO) == 0
        do {
            return try TimelineLive.prometheus(PrometheusSource(client: PrometheusClient(baseURL: url)), kindLabel: label, namespace: namespace,
                                               endMs: endMs, sinceMs: sinceMs, stepMs: stepMs, windowMs: windowMs) { done, total in
                if progress, done % 20 == 0 || done == total { warn("meshtop: \(done) of \(total) moments asked") }
            }
        } catch {
            throw Exit.unreachable(error.description)
        }
    }

    /// The proxies scraped while the command runs.
    func scrape(label: String, windowMs: Int64?) throws -> TimelineReplay.Result {
        guard sources.at == nil else { throw Exit.input("--at goes with --replay or --prometheus") }
        guard !sources.scrape.isEmpty || sources.targetsFile != nil else {
            throw Exit.input("no sources: give --replay FILE, --prometheus URL, or --scrape URL or --targets FILE to watch "
                             + "(or list them in \(UserConfig.defaultPath()))")
        }
        let intervalMs = try parseDuration(interval, flag: "--interval")
        let durationMs = try duration.map { try parseDuration($0, flag: "--duration") }
        let live = LiveCollector(targets: try sources.targets(), intervalSeconds: Double(intervalMs) / 1000, timeoutSeconds: 2,
                                 rollup: Rollup(kindLabel: label))
        let clock = WallClock()
        live.start(clock: clock)
        defer { live.stop() }
        let stop = StopFlag.install()
        let started = clock.nowMs()
        let window = windowMs ?? 3 * max(intervalMs, 1_000)
        warn("meshtop: watching \(live.targets.count) proxies every \(DurationText.format(intervalMs)), window \(DurationText.format(window))"
             + (durationMs.map { " for \(DurationText.format($0))" } ?? " until Ctrl-C"))
        let kindName = TimelineSubject.shortKind(label)
        return TimelineLive.scrape(live, kindLabel: label, namespace: namespace, windowMs: window, intervalMs: intervalMs, clock: clock,
                                   done: { stop.isSet || durationMs.map { clock.nowMs() - started >= $0 } ?? false }) { e in
            warn("meshtop: \(TimelineView.timeOfDay(e.atMs))  \(e.subject.name(kind: kindName))  \(TimelineView.what(e))  "
                 + "\(TimelineView.value(e.from, e.metric)) → \(TimelineView.value(e.to, e.metric))")
        }
    }
}
