import ArgumentParser
import Foundation
import MeshSources
import MeshDemo
import NIOPosix
import Synchronization
import MeshMetrics
import PromText
import MeshTesting
import Dashboard
import TerminalUI

/// Benchmark helpers for scripts/bench-*: payloads and timed runs of meshtop's hot paths.
/// Figures are printed, never asserted: see Benchmarks/ and scripts/.
@main
struct Meshbench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate benchmark payloads and time meshtop's parser and aggregation.",
        subcommands: [Payload.self, Parse.self, Aggregate.self, Render.self, Serve.self, MakeRecording.self])
}

/// Many linkerd-shaped proxies behind one loopback port: target N is /proxy/N/metrics. Each
/// answer's counters grow with time, as a live proxy's do.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve --targets linkerd-shaped /metrics endpoints on loopback until killed.")
    @Option var targets = 1000
    @Option(help: "Outbound destinations per proxy (27 gives about 1,700 series).") var destinations = 27
    @Option var port = 0
    @Option var threads = 2
    @Option(help: ArgumentHelp("Write the targets as a Prometheus file_sd file (with __metrics_path__ per target).", valueName: "FILE"))
    var targetsOut: String

    func run() async throws {
        // A few variants (different pod labels); counters move every second by a whole offset.
        let variants = (0..<4).map { LinkerdPayload.exposition(destinations: destinations, pod: $0) }
        let series = try PromTextParser.parse(variants[0]).samples.count
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let bumped = Mutex<(second: Int, bodies: [String])>((-1, variants))
        let server = try await AppServer.start(port: port, group: group) { request, loop in
            let parts = request.path.split(separator: "/")
            guard parts.count == 3, parts[0] == "proxy", let n = Int(parts[1]), n >= 0, n < targets else {
                return loop.makeSucceededFuture(AppResponse(status: 404, body: "no such target\n"))
            }
            let second = Int(Date().timeIntervalSince1970)
            let body = bumped.withLock { state -> String in
                if state.second != second {
                    // A new second: every counter line ends in a number; grow each by the clock.
                    state = (second, variants.map { grow($0, times: second % 100_000 + 1) })
                }
                return state.bodies[n % state.bodies.count]
            }
            return loop.makeSucceededFuture(AppResponse(status: 200, body: body))
        }
        let address = "127.0.0.1:\(server.address.port)"
        let groups = (0..<targets).map { n in
            "  {\"targets\": [\"\(address)\"], \"labels\": {\"__metrics_path__\": \"/proxy/\(n)/metrics\", \"namespace\": \"prod-\(n % 17)\", \"deployment\": \"app-\(n / 3)\", \"pod\": \"app-\(n)\"}}"
        }
        try ("[\n" + groups.joined(separator: ",\n") + "\n]\n").write(toFile: targetsOut, atomically: true, encoding: .utf8)
        FileHandle.standardError.write(Data("serving \(targets) targets × \(series) series (\(variants[0].utf8.count / 1024) KiB each) at http://\(address)/proxy/N/metrics\n".utf8))
        while true { try await Task.sleep(nanoseconds: 3_600_000_000_000) }
    }
}

/// A long recording for the replay benchmark: the demo fixture's proxies copied to many targets,
/// their counters growing round by round.
struct MakeRecording: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "recording", abstract: "Write a synthetic meshrec recording of --targets proxies over --minutes.")
    @Option var targets = 50
    @Option var minutes = 60
    @Option(help: "Seconds between scrape rounds.") var interval = 10
    @Option(help: "A recording whose last round of bodies to copy.") var from: String
    @Option(name: .shortAndLong) var output: String

    func run() throws {
        var latest: [String: ScrapeResult] = [:]
        let reader = try RecordingReader(path: from)
        while let e = try reader.next() { if case .scrape(let r) = e, r.body != nil { latest[r.target.url] = r } }
        let bodies = latest.values.sorted { $0.target.url < $1.target.url }.compactMap { $0.body.map { String(decoding: $0, as: UTF8.self) } }
        guard !bodies.isEmpty else { throw ValidationError("\(from) has no scrape bodies") }
        let start: Int64 = 1_790_000_000_000
        let writer = try RecordingWriter(path: output, startedMs: start, meta: ["source": "meshbench recording"])
        let rounds = minutes * 60 / interval
        for round in 0..<rounds {
            let grown = bodies.map { grow($0, times: round + 1) }
            let at = start + Int64(round * interval * 1000)
            let results = (0..<targets).map { n in
                ScrapeResult(target: ScrapeTarget(url: "http://10.1.\(n / 256).\(n % 256):4191/metrics",
                                                  labels: [Label("namespace", "bench"), Label("deployment", "app-\(n / 2)"), Label("pod", "app-\(n)")]),
                             startedMs: at + Int64(n), durationSeconds: 0.002, body: Array(grown[n % grown.count].utf8), error: nil)
            }
            try writer.append(results)
            if round % 60 == 0 { FileHandle.standardError.write(Data("recording: round \(round) of \(rounds)\n".utf8)) }
        }
        print("wrote \(output): \(rounds) rounds × \(targets) targets (\(minutes) minutes every \(interval) s), \(writer.events) events")
    }
}

/// Counters (`_total`, `_bucket`, `_count`, `_sum`) times `times`: as if the traffic so far had
/// gone on `times` times as long, so every rate and ratio stays what it was; gauges stay.
func grow(_ text: String, times: Int) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count + text.utf8.count / 10)
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let name = line.prefix { $0 != "{" && $0 != " " }
        if line.first != "#", name.hasSuffix("_total") || name.hasSuffix("_bucket") || name.hasSuffix("_count") || name.hasSuffix("_sum"),
           let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) {
            out += line[...space]
            let grown = v * Double(times)
            out += grown == grown.rounded() && grown < 1e15 ? String(Int64(grown)) : String(grown)
        } else {
            out += line
        }
        out += "\n"
    }
    return out
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
        var data = MeshSnapshot()
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
