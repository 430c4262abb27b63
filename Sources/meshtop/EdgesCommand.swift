import MeshtopApp
import LinkerdViz
import ArgumentParser

struct Edges: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edges between workloads, as `linkerd viz edges` prints them, with each edge's traffic.",
        discussion: """
        An edge is a source workload calling a destination, seen from the source's outbound proxy:
        linkerd viz edges' columns (SRC, DST, SRC_NS, DST_NS, CLIENT_ID, SERVER_ID, SECURED), then the \
        edge's SUCCESS, RPS and LATENCY_P50/P95/P99 over the window.
        """)

    @Argument(help: "Resource kind: deploy, pod, sts or ds.")
    var kind: String

    @OptionGroup var options: OneShotOptions

    func run() throws {
        let label = try kindLabel(kind)
        let format = try options.format
        let (source, windowMs) = try options.resolve()
        let edges = try source.edges(kindLabel: label, namespace: options.namespace, windowMs: windowMs)
        switch format {
        case .json: print(EdgesView.json(edges), terminator: "")
        case .table, .wide:
            if edges.isEmpty { warn("No edges found.") } else { print(EdgesView.table(edges, wide: format == .wide), terminator: "") }
        }
    }
}
