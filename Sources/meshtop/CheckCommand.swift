import MeshtopApp
import MeshCheck
import MeshMetrics
import ArgumentParser
import Foundation
import MeshSources
import MeshTap

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the mesh as `linkerd check` does: proxies, metrics, versions, certificates, tap, Prometheus.",
        discussion: "Each check prints √ (ok), ‼ (warning) or × (failed, with a hint). Exit 0 when nothing failed, 1 otherwise.")

    @OptionGroup var sources: SourceOptions
    @Option(name: .customLong("tap"), help: ArgumentHelp("A tap listener to check (repeatable).", valueName: "host:port")) var taps: [String] = []
    @Option(name: .shortAndLong, help: "Output: table (default) or json.") var output = "table"
    @Option(help: "Warn when a certificate expires within this many days.") var warnDays: Double = 60
    @Option(help: "Warn when a proxy's clock is off by more than this (e.g. 5s).") var maxClockSkew = "5s"

    func run() throws {
        guard output == "table" || output == "json" else { throw Exit.input("-o \(output): use table or json") }
        let skewMs = try parseDuration(maxClockSkew, flag: "--max-clock-skew")
        let clock = WallClock()
        var outcomes: [CheckOutcome] = []
        if sources.prometheus == nil || !sources.scrape.isEmpty || sources.targetsFile != nil {
            let targets = try sources.targets()
            let results = Scraper(timeoutSeconds: 5).scrape(targets) { clock.nowMs() }
            outcomes += ProxyChecks.run(results, nowMs: clock.nowMs(), warnDays: warnDays, maxSkewSeconds: Double(skewMs) / 1000)
        }
        outcomes += taps.map { ProxyChecks.tapListener($0, problem: CheckFacts.tapProblem($0)) }
        if let url = sources.prometheus {
            let client = PrometheusClient(baseURL: url, timeoutSeconds: 5)
            outcomes += ProxyChecks.prometheus(client.baseURL, answer: CheckFacts.prometheus(client, atMs: clock.nowMs()))
        }
        print(output == "json" ? ProxyChecks.json(outcomes) : ProxyChecks.text(outcomes), terminator: "")
        if outcomes.contains(where: { $0.status == .error }) { throw ExitCode(1) }
    }
}
