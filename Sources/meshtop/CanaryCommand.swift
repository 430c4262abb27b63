import ArgumentParser
import Dashboard
import Foundation
import MeshCanary
import MeshMetrics
import MeshSources

/// A canary release driven by the mesh's own metrics: each interval judge the canary's inbound
/// traffic, then step its weight through meshproxy's split API, roll it back, or promote it.
struct CanaryRun {
    var policy: CanaryPolicy
    var intervalMs: Int64
    var namespace: String?
    var canary: String
    var primary: String
    var authority: String
    var canaryBackend: String
    var primaryBackend: String
    var splits: [SplitClient]
    var dryRun: Bool
    /// Where progress lines go (stdout headless; nowhere under a TUI).
    var say: @Sendable (String) -> Void

    /// Runs until promotion or rollback (or `stop`); returns the exit code: 0 promoted, 1 rolled back.
    func run(_ live: LiveCollector, stop: () -> Bool = { false }) -> Int32 {
        var analysis = CanaryAnalysis(policy: policy)
        say("canary: \(canary) against \(primary) on \(authority), every \(DurationText.format(intervalMs)): step \(policy.stepWeight), max \(policy.maxWeight), threshold \(policy.threshold)\(dryRun ? " (dry run: weights are not changed)" : "")")
        if let problem = apply(weight: analysis.begin()) {
            return finish(analysis, result: "rolled back", reason: "the split cannot be set: \(problem)", code: 1)
        }
        say("\(time()) start: canary weight \(analysis.weight)")
        while !stop() {
            let started = Date()
            while Date().timeIntervalSince(started) * 1000 < Double(intervalMs) {
                if stop() { return finish(analysis, result: "stopped", reason: "interrupted; canary left at weight \(analysis.weight)", code: 1) }
                Thread.sleep(forTimeInterval: 0.1)
            }
            let (c, p) = live.read { collector -> (TrafficSample?, TrafficSample?) in
                (sample(collector, canary), sample(collector, primary))
            }
            let checks = CanaryAnalysis.check(canary: c, primary: p, policy: policy)
            let decision = analysis.step(checks)
            let line = checks.map { "\($0.passed ? "✔" : "✖") \($0.name) \($0.detail)" }.joined(separator: "  ")
            say("\(time()) weight \(analysis.weight)  \(line)  => \(CanaryAnalysis.describe(decision))")
            switch decision {
            case .advance(let w):
                if let problem = apply(weight: w) {
                    _ = apply(weight: 0)
                    return finish(analysis, result: "rolled back", reason: "the split cannot be set: \(problem)", code: 1)
                }
            case .hold: break
            case .rollback(let reason):
                if let problem = apply(weight: 0) { say("canary: could not roll back the split: \(problem)") }
                return finish(analysis, result: "rolled back", reason: reason, code: 1)
            case .promote:
                if let problem = apply(weight: 100) {
                    _ = apply(weight: 0)
                    return finish(analysis, result: "rolled back", reason: "the split cannot be set for promotion: \(problem)", code: 1)
                }
                return finish(analysis, result: "promoted", reason: "passed every check up to weight \(policy.maxWeight)", code: 0)
            }
        }
        return finish(analysis, result: "stopped", reason: "interrupted; canary left at weight \(analysis.weight)", code: 1)
    }

    /// The canary's (or primary's) inbound traffic over the last interval.
    private func sample(_ c: borrowing Collector, _ deployment: String) -> TrafficSample? {
        guard let at = c.lastScrapeMs else { return nil }
        var matchers: [Matcher] = [.eq("direction", "inbound"), .eq("deployment", deployment)]
        if let namespace { matchers.append(.eq("namespace", namespace)) }
        let window = c.effectiveWindow(intervalMs)
        guard let t = c.store.traffic(matchers, groupBy: ["deployment"], windowMs: window, at: at).values.first, let rps = t.rps else { return nil }
        return TrafficSample(requests: rps * Double(window) / 1000, success: t.success, p99Ms: t.latencyP99)
    }

    /// Sets canary = weight, primary = 100 - weight on every split; nil, or why it failed.
    private func apply(weight: Int) -> String? {
        guard !dryRun else { return nil }
        for split in splits {
            do {
                try split.set(authority: authority, weights: [canaryBackend: weight, primaryBackend: 100 - weight])
            } catch {
                return error.description
            }
        }
        return nil
    }

    private func finish(_ a: CanaryAnalysis, result: String, reason: String, code: Int32) -> Int32 {
        say("\(time()) \(result): \(reason)")
        let verdict = "{\"result\":\(JSONText.string(result)),\"canary\":\(JSONText.string(canary)),\"weight\":\(a.weight),"
            + "\"intervals\":\(a.intervals),\"failed_checks\":\(a.failedChecks),\"reason\":\(JSONText.string(reason)),"
            + "\"log\":[" + a.log.map(JSONText.string).joined(separator: ",") + "]}"
        say(verdict)
        return code
    }

    private func time() -> String {
        let ms = WallClock().nowMs()
        return TimeSpec.format(ms / 1000 * 1000)
    }
}

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
    @Flag(help: "No terminal UI: one line per interval and a JSON verdict (the only mode so far).") var headless = false
    @OptionGroup var analysis: CanaryOptions
    @OptionGroup var sources: SourceOptions

    func run() throws {
        let (policy, intervalMs) = try analysis.policy()
        guard dryRun || !splitAdmins.isEmpty else { throw Exit.input("give --split-admin URL (a proxy whose split to step), or --dry-run") }
        let live = LiveCollector(targets: try sources.targets(), intervalSeconds: 1)
        live.start(clock: WallClock())
        defer { live.stop() }
        let stop = StopFlag.install()
        let code = CanaryRun(policy: policy, intervalMs: intervalMs, namespace: namespace, canary: target, primary: primary,
                             authority: authority, canaryBackend: canaryBackend ?? target, primaryBackend: primaryBackend ?? primary,
                             splits: splitAdmins.map { SplitClient(adminURL: $0, token: adminToken) }, dryRun: dryRun,
                             say: sayLine).run(live, stop: { stop.isSet })
        if code != 0 { throw ExitCode(code) }
    }
}

/// A line on standard output, written at once (a pipeline reads progress as it happens).
func sayLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
