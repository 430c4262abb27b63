import LinkerdViz
import MeshMetrics
import ArgumentParser
import Dashboard
import Foundation
import MeshSources
import MeshTap
import Synchronization

/// Where tap events come from, and which ones.
struct TapOptions: ParsableArguments {
    @Option(name: .customLong("tap"), help: ArgumentHelp("A proxy's tap listener (repeatable); streams are merged.", valueName: "host:port"))
    var taps: [String] = []

    @Option(name: .customLong("tap-import"), help: ArgumentHelp("Read what `linkerd viz tap -o json` printed, from FILE or - (standard input).", valueName: "FILE"))
    var tapImport: String?

    @Option(help: "Only requests to or from this namespace.") var namespace: String?
    @Option(help: "Only requests to or from this deployment.") var deployment: String?
    @Option(help: "Only requests with this authority (Host).") var authority: String?
    @Option(help: "Only requests whose path starts with this.") var path: String?
    @Option(help: "Only requests with this method.") var method: String?
    @Option(help: "Only inbound or outbound requests.") var direction: String?
    @Option(help: "Requests per second each proxy sends at most.") var maxRps: Double = 100
    @Option(help: "The tap listener's token, when it needs one.") var token: String?

    func filter() throws -> TapFilter {
        var d: TapDirection?
        if let direction {
            guard let parsed = TapDirection(rawValue: direction.uppercased()) else { throw Exit.input("--direction \(direction): use inbound or outbound") }
            d = parsed
        }
        guard maxRps > 0 else { throw Exit.input("--max-rps must be above 0") }
        return TapFilter(namespace: namespace, deployment: deployment, authority: authority, path: path, method: method,
                         direction: d, maxRps: maxRps, token: token)
    }

    /// Streams events to `onEvent` until the sources end, `stopAfter` passes, or SIGINT/SIGTERM.
    /// Imports are filtered here; live proxies filter at the source.
    func stream(stopAfterMs: Int64?, maxEvents: Int?, onEvent: @escaping (TapEvent) -> Bool) throws {
        let filter = try self.filter()
        if let file = tapImport {
            guard taps.isEmpty else { throw Exit.input("--tap-import reads a file: leave out --tap") }
            // Requests the filter turned away, so their responses are left out too.
            var rejected = Set<String>()
            var stop = false
            var seen = 0
            let problems: [String]
            do {
                problems = try TapImport.read(file) { e in
                    guard !stop else { return }
                    if let maxEvents, seen >= maxEvents {
                        stop = true
                        return
                    }
                    let key = e.requestKey
                    if case .requestInit = e.http, !filter.matches(e) {
                        rejected.insert(key)
                        return
                    }
                    if rejected.contains(key) { return }
                    seen += 1
                    if !onEvent(e) { stop = true }
                }
            } catch {
                throw Exit.input(error.description)
            }
            for p in problems { warn("meshtop: \(p)") }
            return
        }
        guard !taps.isEmpty else { throw Exit.input("no tap source: give --tap host:port (a proxy's tap listener) or --tap-import FILE|-") }
        let queue = Mutex<[TapSubscription.Update]>([])
        let subscriptions = taps.map { TapSubscription(address: $0, filter: filter) }
        for s in subscriptions { s.start { u in queue.withLock { $0.append(u) } } }
        defer { for s in subscriptions { s.stop() } }
        let stop = StopFlag.install()
        let started = WallClock().nowMs()
        var closed = 0
        var seen = 0
        var problems: [String] = []
        while !stop.isSet {
            if let stopAfterMs, WallClock().nowMs() - started >= stopAfterMs { break }
            let batch = queue.withLock { q in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            for u in batch {
                switch u {
                case .event(let e):
                    seen += 1
                    if !onEvent(e) { return }
                    if let maxEvents, seen >= maxEvents { return }
                case .problem(let p):
                    problems.append(p)
                    warn("meshtop: \(p)")
                case .closed: closed += 1
                }
            }
            if closed == subscriptions.count {
                if seen == 0 { throw Exit.unreachable("no tap source delivered anything: " + problems.joined(separator: "; ")) }
                break
            }
            if batch.isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}

struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream requests live, as `linkerd viz tap` prints them (\"HTTP-level tcpdump\").",
        discussion: """
        Never shows bodies; credential headers (authorization, cookie, set-cookie, \
        proxy-authorization) are redacted by the proxy. -o json prints linkerd's JSON.
        """)

    @OptionGroup var source: TapOptions
    @Option(name: .shortAndLong, help: "Output: text (default), wide or json.") var output = "text"
    @Option(help: "Stop after this long.") var duration: String?
    @Option(help: "Stop after this many events.") var maxEvents: Int?

    func run() throws {
        guard ["text", "wide", "json"].contains(output) else { throw Exit.input("-o \(output): use text, wide or json") }
        let stopAfter = try duration.map { try parseDuration($0, flag: "--duration") }
        let out = FileHandle.standardOutput
        try source.stream(stopAfterMs: stopAfter, maxEvents: maxEvents) { e in
            let text = output == "json" ? TapJSON.encode(e, pretty: true) : TapText.line(e, wide: output == "wide")
            out.write(Data((text + "\n").utf8))
            return true
        }
    }
}

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Requests grouped by source, destination and path, as `linkerd viz top` shows them.",
        discussion: """
        With --tap-import the table is printed once the input ends, e.g.
          linkerd viz tap deploy/web -o json | meshtop top --tap-import -
        With --tap it is printed after --duration (default 10s) or Ctrl-C.
        """)

    @OptionGroup var source: TapOptions
    @Option(name: .shortAndLong, help: "Output: table (default), wide (adds P50, P99) or json.") var output = "table"
    @Option(help: "How long to watch live proxies.") var duration = "10s"
    @Option(help: "Stop after this many events (each request gives three per proxy that sees it).") var maxEvents: Int?
    @Flag(help: "Group by route (routeMeta) instead of path.") var routes = false
    @Flag(help: "Leave out the Source column.") var hideSources = false

    func run() throws {
        guard let format = OutputFormat(rawValue: output) else { throw Exit.input("-o \(output): use table, wide or json") }
        var top = TopAggregator(byRoute: routes)
        let clock = WallClock()
        if let maxEvents, maxEvents < 1 { throw Exit.input("--max-events \(maxEvents): give at least 1") }
        try source.stream(stopAfterMs: try parseDuration(duration, flag: "--duration"), maxEvents: maxEvents) { e in
            if source.tapImport == nil { top.add(e, atMs: clock.nowMs()) } else { top.add(e) }
            return true
        }
        top.finish()
        let rows = top.sortedRows
        if format == .json {
            print(TopView.json(rows), terminator: "")
        } else if rows.isEmpty {
            warn("No requests seen\(top.unmatched > 0 ? " (\(top.unmatched) responses whose requests began before the stream)" : "").")
        } else {
            print(TopView.table(rows, wide: format == .wide, hideSources: hideSources), terminator: "")
        }
    }
}
