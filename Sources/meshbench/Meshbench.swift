import ArgumentParser
import Foundation
import MeshMetrics
import PromText
import MeshTesting
import Dashboard
import TerminalUI

/// Benchmark helpers for scripts/bench-*: payloads and timed runs of meshtop's hot paths.
/// Figures are printed, never asserted: see Benchmarks/ and scripts/.
@main
struct Meshbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate benchmark payloads and time meshtop's parser and aggregation.",
        subcommands: [Payload.self, Parse.self, Aggregate.self, Render.self])
}

struct Payload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a linkerd-shaped exposition of about --mb megabytes.")
    @Option var mb: Double = 20
    @Option(name: .shortAndLong) var output: String

    func run() throws {
        let probe = LinkerdPayload.exposition(destinations: 10)
        let destinations = max(1, Int(mb * 1_000_000 / (Double(probe.utf8.count) / 10)))
        let text = LinkerdPayload.exposition(destinations: destinations)
        try text.write(toFile: output, atomically: true, encoding: .utf8)
        let e = try PromTextParser.parse(text)
        print("wrote \(output): \(text.utf8.count) bytes, \(e.samples.count) series")
    }
}

struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Parse a file repeatedly and print the throughput.")
    @Argument var file: String
    @Option(name: .customLong("repeat"), help: "How many times to parse (the best time counts).") var repeatCount: Int = 5


    func run() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        var best = Double.infinity
        var samples = 0
        for _ in 0..<max(1, repeatCount) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let e = try PromTextParser.parse(bytes)
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples = e.samples.count
            best = min(best, t)
        }
        let mbps = Double(bytes.count) / 1e6 / best
        print("meshtop parser: \(bytes.count) bytes, \(samples) samples, best of \(repeatCount): \(String(format: "%.3f", best)) s, \(String(format: "%.1f", mbps)) MB/s")
    }
}

struct Aggregate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time golden metrics over many targets' scrapes (per refresh).")
    @Option var targets = 1000
    @Option var destinations = 27
    @Option(help: "Refreshes to time after ingest.") var refreshes = 3

    func run() throws {
        var store = MetricStore()
        let bodies = (0..<2).map { _ in try! PromTextParser.parse(LinkerdPayload.exposition(destinations: destinations)) }
        var roundTimes: [Double] = []
        for round in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for t in 0..<targets {
                store.ingest(bodies[round % 2], target: [Label("namespace", "prod-\(t % 17)"), Label("deployment", "app-\(t / 3)"),
                                                         Label("pod", "app-\(t)"), Label("instance", "10.0.\(t / 256).\(t % 256):4191")],
                             at: Int64(round) * 10_000)
            }
            roundTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        let ingest = roundTimes.map { String(format: "%.3f", $0) }.joined(separator: " / ")
        var refreshTimes: [Double] = []
        var rows = 0, edgeRows = 0
        for _ in 0..<refreshes {
            let t1 = DispatchTime.now().uptimeNanoseconds
            rows = store.stat(StatQuery(kindLabel: "deployment", windowMs: 60_000, atMs: 20_000)).count
            edgeRows = store.edges(kindLabel: "deployment", namespace: nil, windowMs: 60_000, atMs: 20_000).count
            refreshTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9)
        }
        let views = (refreshTimes.count > 4 ? [refreshTimes[0], refreshTimes.dropFirst().min()!] : refreshTimes).map { String(format: "%.3f", $0) }.joined(separator: " / ")
        print("aggregate: \(targets) targets × \(store.keys.count / targets) series")
        print("  ingest per round (the first creates the series): \(ingest) s")
        print("  stat (\(rows) rows) + edges (\(edgeRows)) per refresh (the first resolves selections): \(views) s")
    }
}

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time rendering a many-row view into the screen model.")
    @Option var rows = 10_000
    @Option var width = 160
    @Option var height = 48

    func run() throws {
        var data = DashboardData()
        data.targetsTotal = rows
        data.targetsUp = rows
        data.windowMs = 60_000
        for i in 0..<rows {
            var m = GoldenMetrics(workload: WorkloadID(namespace: "ns-\(i % 20)", name: "workload-\(i)"), meshedPods: 1, runningPods: 1)
            m.success = 1 - Double(i % 97) / 1000
            m.rps = Double(i % 300)
            m.latencyP50 = Double(i % 50)
            m.latencyP95 = Double(i % 90)
            m.latencyP99 = Double(i % 200)
            m.tcpOpenConnections = 2
            data.workloads.append(m)
        }
        var state = DashboardState(title: "render benchmark", source: "synthetic", windowMs: 60_000)
        update(&state, .data(data, clockText: "00:00:00Z"))
        var times: [Double] = []
        for _ in 0..<50 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let screen = DashboardScreen.render(state, width: width, height: height, unicode: true)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            precondition(screen.width == width)
        }
        times.sort()
        print("render: Overview of \(rows) workloads into \(width)x\(height): median \(String(format: "%.2f", times[times.count / 2])) ms, best \(String(format: "%.2f", times[0])) ms")
    }
}
