import ArgumentParser
import LinkerdViz
import MeshMetrics
import MeshSources
import MeshTimeline
import MeshtopApp

struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What broke first: each workload's and edge's success, p99 and RPS leaving its recent baseline, and coming back.",
        discussion: """
        Replays a recording round by round; each round, every workload's and edge's golden metrics \
        (over -t, default three scrape intervals) are compared with their baseline, the median of \
        their last 5 minutes. A change is listed when success falls (errors at least doubled and \
        2 points up), p99 rises (1.5x and 20 ms up) or RPS moves by half, and again when it comes \
        back. Changes seen in the same round list a callee before its callers, as failures travel \
        up a call chain. Oldest first.
        """)

    @Argument(help: "Resource kind: deploy, pod, ns, sts or ds.")
    var kind = "deploy"

    @Option(help: ArgumentHelp("The recording to read (meshtop record, meshtop demo --record).", valueName: "FILE"))
    var replay: String

    @Option(name: .shortAndLong, help: "Only this namespace (all namespaces by default).")
    var namespace: String?

    @Option(name: [.customShort("t"), .customLong("time-window")], help: "The window each round's metrics are computed over (default: three scrape intervals).")
    var timeWindow: String?

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output = "table"

    func run() throws {
        let label = try kindLabel(kind)
        guard let format = OutputFormat(rawValue: output), format != .wide else { throw Exit.input("-o \(output): use table or json") }
        let windowMs = try timeWindow.map { try parseDuration($0, flag: "-t") }
        let result = try TimelineReplay.run(path: replay, kindLabel: label, namespace: namespace, windowMs: windowMs) { warn("meshtop: \($0)") }
        let short = TimelineSubject.shortKind(label)
        switch format {
        case .json: print(TimelineView.json(result.events, kind: short), terminator: "")
        case .table, .wide:
            if result.events.isEmpty {
                warn("meshtop: no changes in \(DurationText.format(result.endMs - result.startMs)) of \(replay) (window \(DurationText.format(result.windowMs)))")
            } else {
                print(TimelineView.table(result.events, kind: short, startMs: result.startMs, showNamespace: namespace == nil), terminator: "")
            }
        }
    }
}
