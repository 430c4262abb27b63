import MeshtopApp
import LinkerdViz
import MeshMetrics
import ArgumentParser
import Foundation
import MeshSources
import MeshTap

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
    @Option(help: "Requests per second each proxy sends at most (meshproxy grants up to 1,000).") var maxRps: Double = 100
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
        if tapImport != nil, !taps.isEmpty { throw Exit.input("--tap-import reads a file: leave out --tap") }
        if tapImport == nil, taps.isEmpty { throw Exit.input("no tap source: give --tap host:port (a proxy's tap listener) or --tap-import FILE|-") }
        try TapStream.run(addresses: taps, importing: tapImport, filter: filter, stopAfterMs: stopAfterMs, maxEvents: maxEvents,
                          warn: { warn("meshtop: \($0)") }, onEvent: onEvent)
    }
}

struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream requests live, as `linkerd viz tap` prints them (\"HTTP-level tcpdump\").",
        discussion: """
        Never shows bodies; meshproxy redacts credential headers (authorization, cookie, \
        set-cookie, x-api-key, names with token or secret, …) and query values named like \
        secrets. -o json prints linkerd's JSON.
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
