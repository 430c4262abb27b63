import MeshtopApp
import LinkerdViz
import ArgumentParser

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A workload's inbound routes, as `linkerd viz routes` prints them.",
        discussion: """
        Routes come from the proxies' service profiles (meshproxy --profile, or a Linkerd \
        ServiceProfile): Linkerd's route_* metrics, labelled rt_route and dst. Requests no route \
        matched show as [DEFAULT].
        """)

    @Argument(help: ArgumentHelp("The workload: KIND/NAME (deploy/web) or KIND NAME.", valueName: "resource"))
    var resource: [String]

    @OptionGroup var options: OneShotOptions

    func run() throws {
        let parts = resource.count == 1 ? resource[0].split(separator: "/").map(String.init) : resource
        guard parts.count == 2 else { throw Exit.input("routes takes one resource: deploy/NAME (or deploy NAME)") }
        let label = try kindLabel(parts[0])
        let format = try options.format
        let (source, windowMs) = try options.resolve()
        let routes = try source.routes(kindLabel: label, name: parts[1], namespace: options.namespace, windowMs: windowMs)
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
