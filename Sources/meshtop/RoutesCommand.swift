import ArgumentParser
import Dashboard
import MeshMetrics

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A workload's inbound routes, as `linkerd viz routes` prints them.",
        discussion: """
        Routes come from the proxies' service profiles (meshproxy --profile, or a Linkerd
        ServiceProfile): Linkerd's route_* metrics, labelled rt_route and dst. Requests no route
        matched show as [DEFAULT].
        """)

    @Argument(help: ArgumentHelp("The workload: KIND/NAME (deploy/web) or KIND NAME.", valueName: "resource"))
    var resource: [String]

    @Option(name: .shortAndLong, help: "The workload's namespace.")
    var namespace: String?

    @Option(name: .shortAndLong, help: "Output format: table, wide or json.")
    var output = "table"

    @Option(help: "Time between the two scrapes a live command takes.")
    var sample = "2s"

    @OptionGroup var window: WindowOption
    @OptionGroup var sources: SourceOptions

    func run() throws {
        let parts = resource.count == 1 ? resource[0].split(separator: "/").map(String.init) : resource
        guard parts.count == 2 else { throw Exit.input("routes takes one resource: deploy/NAME (or deploy NAME)") }
        let label = try kindLabel(parts[0])
        guard let format = OutputFormat(rawValue: output) else { throw Exit.input("-o \(output): use table, wide or json") }
        let source = try sources.source(sampleMs: try parseDuration(sample, flag: "--sample"))
        let routes = try source.routes(kindLabel: label, name: parts[1], namespace: namespace, windowMs: try window.milliseconds)
        switch format {
        case .json: print(RoutesView.json(routes, resource: "\(parts[0])/\(parts[1])"), terminator: "")
        case .table, .wide:
            if routes.isEmpty {
                warn("No routes found for \(parts[0])/\(parts[1]): its proxies report no route_* metrics (give meshproxy a --profile).")
            } else {
                print(RoutesView.table(routes, wide: format == .wide), terminator: "")
            }
        }
    }
}
