import MeshtopApp
import LinkerdViz
import ArgumentParser
import Foundation
import MeshDemo

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

        let code = try await DemoRun.run(DemoSettings(
            scenario: scenario, failureRate: failureRate, rate: rate, headless: headless, durationMs: durationMs, durationGiven: duration != nil,
            format: format, windowMs: windowMs, record: record, targetsOut: targetsOut, display: display.settings))
        if code != 0 { throw ExitCode(code) }
    }
}
