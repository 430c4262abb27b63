import MeshtopApp
import LinkerdViz
import MeshMetrics
import ArgumentParser
import Foundation
import MeshSources

struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Golden metrics per workload, as `linkerd viz stat` prints them.",
        discussion: """
        Scrapes the proxies twice, --sample apart, and reports success rate, requests per second \
        and p50/p95/p99 latency of each workload's inbound traffic over that span (the same PromQL \
        linkerd viz sends to Prometheus, evaluated on the samples taken).
        """)

    @Argument(help: "Resource kind: deploy, pod, ns, sts or ds.")
    var kind: String

    @Argument(help: "Only this resource.")
    var name: String?

    @OptionGroup var options: OneShotOptions

    func run() throws {
        let label = try kindLabel(kind)
        let format = try options.format
        let (source, windowMs) = try options.resolve()
        let namespace = options.namespace
        let rows = try source.stat(kindLabel: label, namespace: namespace, name: name, windowMs: windowMs)
        switch format {
        case .json: print(StatView.json(rows, kind: label), terminator: "")
        case .table, .wide:
            if rows.isEmpty {
                warn("No traffic found.")
            } else {
                print(StatView.table(rows, showNamespace: namespace == nil, wide: format == .wide), terminator: "")
            }
        }
    }
}
