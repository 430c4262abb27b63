import MeshTap
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOCore

/// Where one request goes, with the metric handles resolved for it. Made once per endpoint and
/// destinations table and shared by every request routed there: a class, so a request holds it
/// with one reference (each exchange's facts are copied several times).
final class Route: Sendable {
    let endpoint: HostPort
    let http: HTTPTarget
    /// The `peer="dst"` TCP label set of connections to the endpoint.
    let connection: TCPTarget
    /// How tap shows the destination of requests on this route, and which side of the proxy it is.
    let tapDestination: TapPeer
    /// How tap shows the source when the route knows more than the router does (an inbound
    /// request over mTLS: `tls=true` and the client's identity, as its metrics say).
    let tapSource: [String: String]?
    let direction: TapDirection
    /// The identity the endpoint must prove over mTLS (outbound to a meshed endpoint), if any.
    let serverIdentity: String?
    /// How long the response may take to begin (then 504).
    let timeout: TimeAmount?
    /// The outbound authority (its retry budget), and how many retries a request may have.
    let authority: String?
    let retries: Int
    /// Chosen by P2C among several endpoints, whose loads its end then updates.
    let balanced: Bool

    init(endpoint: HostPort, http: HTTPTarget, connection: TCPTarget, tapDestination: TapPeer, tapSource: [String: String]? = nil,
         direction: TapDirection, serverIdentity: String? = nil, timeout: TimeAmount? = nil, authority: String? = nil,
         retries: Int = 0, balanced: Bool = false) {
        self.endpoint = endpoint
        self.http = http
        self.connection = connection
        self.tapDestination = tapDestination
        self.tapSource = tapSource
        self.direction = direction
        self.serverIdentity = serverIdentity
        self.timeout = timeout
        self.authority = authority
        self.retries = retries
        self.balanced = balanced
    }
}

/// The ServiceProfile route a request matched, or the default route.
struct ProfileMatch {
    var target: HTTPTarget
    var name: String?
}

/// What routing reads of a request: its method, target and authority.
struct RequestLine {
    var method: String
    var uri: String
    var host: String?
}

extension RequestLine {
    init(_ head: HTTPRequestHead) {
        self.init(method: head.method.rawValue, uri: head.uri, host: head.headers.first(name: "host"))
    }
}

enum RouteDecision {
    case forward(Route)
    case reject(HTTPResponseStatus, String)
}

/// Picks where a request goes.
protocol Router: Sendable {
    /// `peer`: the client's identity when it connected over mTLS.
    func route(_ request: RequestLine, peer: String?) -> RouteDecision
    /// Every forwarded request ends here once, with its response time and whether it failed.
    func finished(_ route: Route, nanoseconds: Int64, failed: Bool)
    /// Takes a retry from the route's budget, if one is left; `deposit` adds each new request.
    func withdrawRetry(_ route: Route) -> Bool
    func deposit(_ route: Route)
    /// The ServiceProfile route the request is counted under, if the listener has a profile.
    func profileRoute(_ request: RequestLine) -> ProfileMatch?
    /// What tap shows of the peer that sent requests to this listener.
    var tapSourceMetadata: [String: String] { get }
}

extension Router {
    func profileRoute(_ request: RequestLine) -> ProfileMatch? { nil }
    func finished(_ route: Route, nanoseconds: Int64, failed: Bool) {}
    func withdrawRetry(_ route: Route) -> Bool { false }
    func deposit(_ route: Route) {}
}

/// Inbound: every request goes to the local app. Requests from meshed peers (mTLS) are counted
/// with `tls="true"` and the peer's `client_id`.
struct InboundRouter: Router {
    let route: Route
    private let meshed: NIOLockedValueBox<[String: Route]> = NIOLockedValueBox([:])
    private let registry: MetricsRegistry
    private let profile: ServiceProfile?
    /// One handle per profile route, and one for requests no route matches (`[DEFAULT]`).
    private let routeTargets: [HTTPTarget]
    private let defaultRouteTarget: HTTPTarget?

    let tapSourceMetadata: [String: String] = ["tls": "no_tls_from_remote"]

    init(app: HostPort, profile: ServiceProfile? = nil, workload: [String: String] = [:], registry: MetricsRegistry) {
        self.profile = profile
        self.registry = registry
        if let profile {
            let base: [(String, String)] = [("direction", "inbound"), ("dst", profile.authority)]
            routeTargets = profile.routes.map { registry.routeTarget(LabelSet(base + [("rt_route", $0.name)])) }
            defaultRouteTarget = registry.routeTarget(LabelSet(base))
        } else {
            routeTargets = []
            defaultRouteTarget = nil
        }
        let target = targetLabels(app)
        let http = LabelSet([("direction", "inbound")] + target + [
            ("tls", "no_identity"), ("no_tls_reason", "no_tls_from_remote"),
            ("srv_kind", "default"), ("srv_name", "all-unauthenticated"),
        ])
        let toApp = LabelSet([("direction", "inbound"), ("peer", "dst")] + target + [("tls", "no_identity"), ("no_tls_reason", "loopback")])
        route = Route(endpoint: app, http: registry.httpTarget(http), connection: registry.tcpTarget(toApp),
                      tapDestination: TapPeer(ip: app.host, port: app.port, metadata: workload.merging(["tls": "no_tls_from_remote"]) { $1 }),
                      direction: .inbound)
    }

    func route(_ request: RequestLine, peer: String?) -> RouteDecision {
        guard let peer else { return .forward(route) }
        return .forward(meshed.withLockedValue { routes in
            if let r = routes[peer] { return r }
            let target = targetLabels(route.endpoint)
            var destination = route.tapDestination
            destination.metadata?["tls"] = "true"
            // Tap reads an inbound request's TLS from its source, as linkerd's does: the same
            // facts as the metrics' labels, so the two never disagree.
            let r = Route(endpoint: route.endpoint, http: registry.httpTarget(LabelSet([("direction", "inbound")] + target + [
                              ("tls", "true"), ("client_id", peer), ("srv_kind", "default"), ("srv_name", "all-authenticated"),
                          ])),
                          connection: route.connection, tapDestination: destination, tapSource: ["tls": "true", "client_id": peer],
                          direction: route.direction)
            routes[peer] = r
            return r
        })
    }

    func profileRoute(_ request: RequestLine) -> ProfileMatch? {
        guard let profile, let defaultRouteTarget else { return nil }
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? request.uri
        if let i = profile.routes.firstIndex(where: { $0.matches(method: request.method, path: path) }) {
            return ProfileMatch(target: routeTargets[i], name: profile.routes[i].name)
        }
        return ProfileMatch(target: defaultRouteTarget, name: nil)
    }
}

/// Which requests share one outbound `Route`: one authority's, to one endpoint, chosen alone
/// or among several (P2C).
private struct RouteKey: Hashable {
    var authority: String
    var endpoint: HostPort
    var balanced: Bool
}

/// Outbound: by authority through the destinations table, weighted across backends and
/// round-robin across a backend's endpoints.
final class OutboundRouter: Router {
    private struct State {
        var table: DestinationTable
        var routes: [RouteKey: Route] = [:]
        var split: [String: SmoothWeightedRoundRobin] = [:]  // authority → backend choice
        var turn: UInt64 = 0
        var loads: [HostPort: EndpointLoad] = [:]  // for P2C over PeakEWMA and failure accrual
        var budgets: [String: RetryBudget] = [:]  // authority → retry budget
        var rng = SystemRandomNumberGenerator()
    }

    private let state: NIOLockedValueBox<State>
    private let registry: MetricsRegistry
    let tapSourceMetadata: [String: String]
    /// Whether this proxy has an identity, so meshed endpoints are reached over mTLS.
    private let mtls: Bool

    init(table: DestinationTable, workload: [String: String] = [:], registry: MetricsRegistry, mtls: Bool = false) {
        self.state = NIOLockedValueBox(State(table: table))
        self.registry = registry
        self.mtls = mtls
        self.tapSourceMetadata = workload.merging(["tls": "loopback"]) { $1 }
    }

    /// A new destinations table (SIGHUP): the routes made from the old one go with it, so an
    /// endpoint that gained an identity is reached over mTLS from the next request on.
    func replace(_ table: DestinationTable) {
        state.withLockedValue {
            $0.table = table
            $0.routes = [:]
            $0.split = [:]
        }
    }

    /// Every authority's backends and their weights, for `GET /split` and the weight gauge.
    func weights() -> [(authority: String, backend: String, weight: Int)] {
        state.withLockedValue { s in
            s.table.destinations.values.sorted { $0.authority < $1.authority }.flatMap { d in
                d.backends.map { (DestinationTable.normalize(d.authority), $0.name, $0.weight) }
            }
        }
    }

    /// Sets backend weights of one authority (a traffic split step). Unknown authorities or
    /// backends are refused; backends not named keep their weight.
    func setWeights(authority: String, _ weights: [String: Int]) -> String? {
        state.withLockedValue { s in
            let key = DestinationTable.normalize(authority)
            guard var d = s.table.destinations[key] else { return "no destination for authority \(authority)" }
            let names = Set(d.backends.map(\.name))
            if let unknown = weights.keys.first(where: { !names.contains($0) }) {
                return "\(authority) has no backend \(unknown) (backends: \(names.sorted().joined(separator: ", ")))"
            }
            if let bad = weights.first(where: { $0.value < 0 }) { return "weight of \(bad.key) must be 0 or more" }
            for i in d.backends.indices { if let w = weights[d.backends[i].name] { d.backends[i].weight = w } }
            guard d.backends.contains(where: { $0.weight > 0 }) else { return "at least one backend needs a weight above 0" }
            s.table.destinations[key] = d
            return nil
        }
    }

    /// A new request (not a retry) on `route`: it adds to its authority's retry budget.
    func deposit(_ route: Route) {
        guard let authority = route.authority else { return }
        state.withLockedValue { s in s.budgets[authority, default: RetryBudget()].recordRequest(at: .now()) }
    }

    /// Whether `route`'s authority has a retry left in its budget (taking it if so).
    func withdrawRetry(_ route: Route) -> Bool {
        guard let authority = route.authority else { return false }
        return state.withLockedValue { s in s.budgets[authority, default: RetryBudget()].withdraw(at: .now()) }
    }

    /// A request routed by `route` finished: its response time feeds the endpoint's load.
    func finished(_ route: Route, nanoseconds: Int64, failed: Bool) {
        guard route.balanced else { return }  // a single endpoint has nothing to be weighed against
        state.withLockedValue { s in
            let now = NIODeadline.now()
            var load = s.loads[route.endpoint] ?? EndpointLoad()
            load.pending = max(0, load.pending - 1)
            load.observe(rttNanos: nanoseconds, failed: failed, at: now)
            s.loads[route.endpoint] = load
        }
    }

    func route(_ request: RequestLine, peer: String?) -> RouteDecision {
        guard let authority = request.host, !authority.isEmpty else {
            return .reject(.badRequest, "meshproxy: the request has no Host header, so no destination can be chosen\n")
        }
        return state.withLockedValue { s in
            guard let destination = s.table.lookup(authority) else {
                return .reject(.badGateway, "meshproxy: no destination for authority \(authority)\n")
            }
            s.turn &+= 1
            let key = DestinationTable.normalize(destination.authority)
            let weights = destination.backends.map(\.weight)
            if s.split[key]?.weights != weights { s.split[key] = SmoothWeightedRoundRobin(weights: weights) }
            guard let chosen = s.split[key]!.next(), !destination.backends[chosen].endpoints.isEmpty else {
                return .reject(.serviceUnavailable, "meshproxy: every backend of \(authority) has weight 0\n")
            }
            let backend = destination.backends[chosen]
            var endpoint = backend.endpoints[0]
            var balanced = false
            if backend.endpoints.count > 1 {
                // P2C over PeakEWMA; endpoints start at the default RTT, decaying from when first seen.
                let keys = backend.endpoints.map { HostPort(host: $0.host, port: $0.port) }
                for k in keys where s.loads[k] == nil { s.loads[k] = EndpointLoad() }
                let loads = keys.map { s.loads[$0] }
                let index = PowerOfTwoChoices.pick(keys.count, load: { loads[$0] }, now: .now(), using: &s.rng)
                endpoint = backend.endpoints[index]
                s.loads[keys[index]]?.pending += 1
                balanced = true
            }
            // Made once per endpoint and table: what it holds of the destination (timeout,
            // retries, its endpoint count) changes only with the table, which empties the cache.
            let cacheKey = RouteKey(authority: key, endpoint: HostPort(host: endpoint.host, port: endpoint.port), balanced: balanced)
            if let cached = s.routes[cacheKey] { return .forward(cached) }
            let route = makeRoute(authority: key, endpoint: endpoint, timeout: destination.timeoutMs.map { TimeAmount.milliseconds($0) },
                                  retries: destination.retries, balanced: balanced)
            s.routes[cacheKey] = route
            return .forward(route)
        }
    }

    private func makeRoute(authority: String, endpoint: Endpoint, timeout: TimeAmount?, retries: Int, balanced: Bool) -> Route {
        let target = targetLabels(HostPort(host: endpoint.host, port: endpoint.port))
        let identity = mtls ? endpoint.identity : nil
        let tls: [(String, String)] = identity.map { [("tls", "true"), ("server_id", $0)] }
            ?? [("tls", "no_identity"), ("no_tls_reason", endpoint.identity == nil ? "not_provided_by_service_discovery" : "no_identity")]
        let dst = endpoint.labels.sorted { $0.key < $1.key }.map { ("dst_" + $0.key, $0.value) }
        let http = LabelSet([("direction", "outbound"), ("authority", authority)] + target + tls + dst)
        let tcp = LabelSet([("direction", "outbound"), ("peer", "dst"), ("authority", authority)] + target + tls + dst)
        return Route(endpoint: HostPort(host: endpoint.host, port: endpoint.port),
                     http: registry.httpTarget(http), connection: registry.tcpTarget(tcp),
                     tapDestination: TapPeer(ip: endpoint.host, port: endpoint.port,
                                             metadata: endpoint.labels.merging(["tls": identity == nil ? "not_provided_by_service_discovery" : "true"]) { $1 }),
                     direction: .outbound, serverIdentity: identity, timeout: timeout, authority: authority, retries: retries,
                     balanced: balanced)
    }
}

/// Smooth weighted round-robin (as nginx balances upstreams): in every run of `sum(weights)`
/// choices each index is chosen exactly `weight` times, interleaved rather than in blocks.
struct SmoothWeightedRoundRobin: Sendable {
    let weights: [Int]
    private var current: [Int]

    init(weights: [Int]) {
        self.weights = weights
        self.current = Array(repeating: 0, count: weights.count)
    }

    /// The next index, or nil when every weight is 0.
    mutating func next() -> Int? {
        let total = weights.reduce(0) { $0 + max(0, $1) }
        guard total > 0 else { return nil }
        var best = -1
        for i in weights.indices where weights[i] > 0 {
            current[i] += weights[i]
            if best < 0 || current[i] > current[best] { best = i }
        }
        current[best] -= total
        return best
    }
}

func targetLabels(_ address: HostPort) -> [(String, String)] {
    [("target_addr", address.description), ("target_ip", address.host), ("target_port", String(address.port))]
}
