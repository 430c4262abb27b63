import ArgumentParser
import Foundation
import Dashboard
import MeshSources

struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Golden metrics per workload, as `linkerd viz stat` prints them.",
        discussion: """
        Scrapes the proxies twice, --sample apart, and reports success rate, requests per second
        and p50/p95/p99 latency of each workload's inbound traffic over that span (the same PromQL
        linkerd viz sends to Prometheus, evaluated on the samples taken).
        """)

    @Argument(help: "Resource kind: deploy, pod, ns, sts or ds.")
    var kind: String

    @Argument(help: "Only this resource.")
    var name: String?

    @Option(name: .shortAndLong, help: "Only this namespace (all namespaces by default, with a NAMESPACE column).")
    var namespace: String?

    @Option(name: .shortAndLong, help: "Output format: table, wide or json.")
    var output = "table"

    @Option(help: "Time between the two scrapes a live stat takes.")
    var sample = "2s"

    @OptionGroup var window: WindowOption
    @OptionGroup var sources: SourceOptions

    func run() throws {
        let label = try kindLabel(kind)
        guard let format = OutputFormat(rawValue: output) else {
            throw Exit.input("-o \(output): use table, wide or json")
        }
        let windowMs = try window.milliseconds
        let sampleMs = try parseDuration(sample, flag: "--sample")
        let source = try sources.source(sampleMs: sampleMs)
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

func unreachableMessage(_ collector: Collector) -> String {
    let messages = collector.health.values.compactMap(\.message).sorted()
    return "no target answered: " + messages.joined(separator: "; ")
}
