import ArgumentParser
import Foundation
import MeshCanary
import MeshMetrics
import MeshSources
import MeshtopApp

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
        let source: CanarySource
        if let path = sources.replay {
            source = .replay(path: path, at: sources.at)
        } else if let url = sources.prometheus {
            guard sources.scrape.isEmpty, sources.targetsFile == nil else { throw Exit.input("--prometheus asks a server: leave out --scrape and --targets") }
            source = .prometheus(url: url)
        } else {
            source = .live(targets: try sources.targets(), following: try sources.targets(includingFile: false), file: sources.targetsFile)
        }
        let run = CanaryRun(controller: controller, target: who, authority: authority, policy: policy, intervalMs: intervalMs, dryRun: judgeOnly)
        let code = try run.run(source, headless: headless, display: display.settings)
        if code != 0 { throw ExitCode(code) }
    }
}
