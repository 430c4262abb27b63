public import NIOCore
import NIOPosix
public import MeshProxy
import NIOConcurrencyHelpers
import NIOHTTP1
import MeshIdentity

/// An emojivoto-like mesh in one process: `web`, `emoji`, `voting`, `auth` and `store`, each
/// behind its own meshproxy on loopback, calls between them going through the proxies (web →
/// auth, emoji, voting; emoji and voting → store), and a `vote-bot` (itself meshed) sending
/// open-loop traffic to `web`. `voting` fails a steady share of votes.
public final class DemoMesh: Sendable {
    /// A proxy's admin address and the labels Prometheus' relabelling would give it.
    public struct Target: Sendable {
        public var admin: HostPort
        public var labels: [String: String]
        /// The proxy's tap listener.
        public var tap: HostPort?
    }

    public let namespace: String
    public let targets: [Target]
    private let apps: [AppServer]
    private let proxies: [MeshProxyServer]
    /// The identity service's listener (with mTLS): it holds the issuer's key, the proxies do not.
    private let identityService: (any Channel)?
    private let client: HTTPClient
    private let generator: OpenLoopGenerator
    /// The vote-bot's outbound listener, and `web`'s authority.
    private let botOutbound: HostPort
    private let webAuthority: String

    /// The admin listener whose outbound split sends voting-svc's traffic (web's proxy), and that authority.
    public let splitAdmin: HostPort
    public let votingAuthority: String

    /// Where the identity service listens (POST /v1/certify, GET /metrics), with mTLS on.
    public var identityAddress: HostPort? { identityService?.localHostPort }

    private init(namespace: String, targets: [Target], apps: [AppServer], proxies: [MeshProxyServer], identityService: (any Channel)?,
                 client: HTTPClient, generator: OpenLoopGenerator,
                 botOutbound: HostPort, webAuthority: String, splitAdmin: HostPort, votingAuthority: String) {
        self.botOutbound = botOutbound
        self.webAuthority = webAuthority
        self.splitAdmin = splitAdmin
        self.votingAuthority = votingAuthority
        self.namespace = namespace
        self.targets = targets
        self.apps = apps
        self.proxies = proxies
        self.identityService = identityService
        self.client = client
        self.generator = generator
    }

    /// How the mesh behaves over time.
    public enum Scenario: String, Sendable, CaseIterable {
        /// voting fails a steady share of votes (`votingFailureRate`).
        case steady
        /// Everything succeeds.
        case healthy
        /// Healthy, then from 20 s to 50 s voting fails 40% of votes and answers 5x slower, then recovers.
        case incident
        /// A `voting-canary` beside a healthy voting, failing 30% of votes: a canary to roll back.
        case canary
        /// A `voting-canary` as healthy as voting: a canary to promote.
        case canaryGood = "canary-good"

        var hasCanary: Bool { self == .canary || self == .canaryGood }
    }

    public struct Options: Sendable {
        /// Share of `voting`'s requests that fail with 500.
        public var votingFailureRate: Double = 0.1
        public var scenario: Scenario = .steady
        /// Requests per second the vote-bot sends to `web` (0: none; `call` sends one at a time).
        public var rate: Double = 20
        public var namespace = "emojivoto"
        /// Proxy-to-proxy traffic over mTLS, each proxy with its own identity (on by default, as in Linkerd).
        public var mtls = true

        public init(votingFailureRate: Double = 0.1, rate: Double = 20) {
            self.votingFailureRate = votingFailureRate
            self.rate = rate
        }
    }

    /// Starts every app, proxy and the vote-bot; returns once all listen.
    public static func start(_ options: Options = Options(), group: any EventLoopGroup) async throws -> DemoMesh {
        let ns = options.namespace
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let client = HTTPClient(group: group, timeout: .seconds(5))
        let authority: @Sendable (String) -> String = { "\($0)-svc.\(ns).svc.cluster.local:8080" }
        // Pod names like Kubernetes' (name-hash), stable from run to run.
        func pod(_ name: String) -> String {
            let hash = name.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }
            return "\(name)-\(String(hash & 0xFFFFF, radix: 16))"
        }

        // The mesh's certificate authority, in memory: every proxy gets a day-long certificate from it.
        // The mesh's certificate authority lives in its identity service alone; each proxy makes
        // its own key and gets a day-long certificate by CSR, with its service account's token.
        let identities = options.mtls ? try IdentityAuthority.create(trustDomain: "cluster.local") : nil
        let accounts = ["web", "emoji", "voting", "voting-canary", "vote-bot", "auth", "store"]
        let tokens = Dictionary(uniqueKeysWithValues: accounts.map { ($0, String(UInt64.random(in: 1...UInt64.max), radix: 16) + String(UInt64.random(in: 1...UInt64.max), radix: 16)) })
        var identityChannel: (any Channel)?
        if let identities {
            let service = IdentityService(authority: identities, tokens: IdentityTokens(accounts.map { (ns, $0, tokens[$0]!) }))
            identityChannel = try await service.bind(loopback, group: group)
        }
        let anchorPEM = try identities?.trustAnchorPEM()
        var apps: [AppServer] = []
        var proxies: [MeshProxyServer] = []
        var targets: [Target] = []
        var endpoints: [String: Endpoint] = [:]  // service → its proxy's inbound
        let failureRate = options.votingFailureRate
        let scenario = options.scenario
        let startedAt = NIODeadline.now()
        /// voting's failure share and slowdown at this moment of the scenario.
        let votingBehaviour: @Sendable () -> (failure: Double, slowdown: Int64) = {
            let seconds = (NIODeadline.now() - startedAt).nanoseconds / 1_000_000_000
            switch scenario {
            case .steady: return (failureRate, 1)
            case .healthy, .canary, .canaryGood: return (0, 1)
            case .incident: return (20..<50).contains(seconds) ? (0.4, 5) : (0, 1)
            }
        }

        func mesh(_ name: String, app: AppServer?, outbound: Bool, routes: [(String, String, String)] = []) async throws -> MeshProxyServer {
            // voting-svc splits between voting and, in canary scenarios, voting-canary (weight 0 to start).
            let table = DestinationTable(endpoints.filter { $0.key != "voting-canary" }.map { service, endpoint in
                var backends = [Backend(name: service, weight: 100, endpoints: [endpoint])]
                if service == "voting", let canary = endpoints["voting-canary"] {
                    backends.append(Backend(name: "voting-canary", weight: 0, endpoints: [canary]))
                }
                return Destination(authority: authority(service), backends: backends)
            })
            var config = ProxyConfiguration(inbound: app.map { (loopback, $0.address) },
                                            outbound: outbound ? (loopback, table) : nil,
                                            admin: loopback)
            let podName = pod(name)
            if let identities, let service = identityChannel?.localHostPort, let anchorPEM {
                guard let token = tokens[name] else { throw DemoError("no identity token for the service account \(name)") }
                let client = IdentityClient(service: service, name: identities.identityName(serviceAccount: name, namespace: ns), token: token,
                                            trustAnchorPEM: anchorPEM)
                config.identity = try ProxyIdentity { try client.fetch() }
            }
            config.tap = loopback
            config.workloadLabels = ["namespace": ns, "deployment": name, "pod": podName]
            if !routes.isEmpty {
                config.inboundProfile = ServiceProfile(authority: authority(name), routes: try routes.map { method, path, regex in
                    try ProfileRoute(name: "\(method) \(path)", method: method, pathRegex: regex)
                })
            }
            let proxy = try await MeshProxyServer.start(config, group: group)
            proxies.append(proxy)
            targets.append(Target(admin: proxy.adminAddress, labels: ["namespace": ns, "deployment": name, "pod": podName], tap: proxy.tapAddress))
            if let inbound = proxy.inboundAddress {
                endpoints[name] = Endpoint(host: inbound.host, port: inbound.port, labels: [
                    "namespace": ns, "deployment": name, "pod": podName, "service": "\(name)-svc", "serviceaccount": name,
                ], identity: identities?.identityName(serviceAccount: name, namespace: ns))
            }
            return proxy
        }

        do {
            // Leaves first, so callers can route to them: store (votes and emoji data) and auth.
            let store = try await AppServer.start(group: group) { _, loop in
                loop.scheduleTask(in: .microseconds(Int64.random(in: 200...1_500))) { AppResponse(status: 200, body: "ok\n") }.futureResult
            }
            apps.append(store)
            _ = try await mesh("store", app: store, outbound: false, routes: [("GET", "/get", "/get"), ("PUT", "/put", "/put")])
            let auth = try await AppServer.start(group: group) { _, loop in
                loop.scheduleTask(in: .microseconds(Int64.random(in: 300...1_000))) { AppResponse(status: 200, body: "{\"user\":\"bot\"}\n") }.futureResult
            }
            apps.append(auth)
            _ = try await mesh("auth", app: auth, outbound: false, routes: [("GET", "/session", "/session")])

            /// An app that calls store through its own proxy's outbound listener, then answers.
            func storeBacked(_ method: HTTPMethod, _ path: String, answer: @escaping @Sendable (ClientResponse) -> EventLoopFuture<AppResponse>)
                -> (NIOLockedValueBox<HostPort?>, AppLogic) {
                let outbound = NIOLockedValueBox<HostPort?>(nil)
                let logic: AppLogic = { _, loop in
                    guard let out = outbound.withLockedValue({ $0 }) else {
                        return loop.makeSucceededFuture(AppResponse(status: 503, body: "starting\n"))
                    }
                    return client.send(method, path, host: authority("store"), to: out)
                        .flatMap(answer)
                        .recover { _ in AppResponse(status: 502, body: "store failed\n") }
                }
                return (outbound, logic)
            }

            let (emojiOut, emojiLogic) = storeBacked(.GET, "/get") { _ in
                let loop = group.next()
                return loop.scheduleTask(in: .microseconds(Int64.random(in: 500...3_000))) { AppResponse(status: 200, body: "{\"emoji\":\":joy:\"}\n") }.futureResult
            }
            let emoji = try await AppServer.start(group: group, logic: emojiLogic)
            apps.append(emoji)
            let emojiProxy = try await mesh("emoji", app: emoji, outbound: true, routes: [("GET", "/list", "/list"), ("GET", "/find", "/find")])
            emojiOut.withLockedValue { $0 = emojiProxy.outboundAddress }

            /// voting's answer after the store: fails or slows as the scenario says.
            let votingAnswer: @Sendable (ClientResponse) -> EventLoopFuture<AppResponse> = { _ in
                let (failure, slowdown) = votingBehaviour()
                let delay = TimeAmount.microseconds(Int64.random(in: 2_000...12_000) * slowdown)
                let fail = Double.random(in: 0..<1) < failure
                return group.next().scheduleTask(in: delay) {
                    fail ? AppResponse(status: 500, body: "vote store unavailable\n") : AppResponse(status: 200, body: "voted\n")
                }.futureResult
            }
            let (votingOut, votingLogic) = storeBacked(.PUT, "/put", answer: votingAnswer)
            let voting = try await AppServer.start(group: group, logic: votingLogic)
            apps.append(voting)
            let votingProxy = try await mesh("voting", app: voting, outbound: true, routes: [("POST", "/vote", "/vote")])
            votingOut.withLockedValue { $0 = votingProxy.outboundAddress }

            if scenario.hasCanary {
                let canaryFailure = scenario == .canary ? 0.3 : 0.0
                let canary = try await AppServer.start(group: group) { request, loop in
                    let delay = TimeAmount.microseconds(Int64.random(in: 2_000...12_000))
                    let fail = Double.random(in: 0..<1) < canaryFailure
                    return loop.scheduleTask(in: delay) {
                        fail ? AppResponse(status: 500, body: "canary: vote store unavailable\n") : AppResponse(status: 200, body: "voted\n")
                    }.futureResult
                }
                apps.append(canary)
                _ = try await mesh("voting-canary", app: canary, outbound: false, routes: [("POST", "/vote", "/vote")])
            }

            // web calls emoji and voting through its own outbound listener.
            let webOutbound = NIOLockedValueBox<HostPort?>(nil)
            let web = try await AppServer.start(group: group) { request, loop in
                guard let out = webOutbound.withLockedValue({ $0 }) else {
                    return loop.makeSucceededFuture(AppResponse(status: 503, body: "starting\n"))
                }
                let session = client.send(.GET, "/session", host: authority("auth"), to: out)
                let list = session.flatMap { _ in client.send(.GET, "/list", host: authority("emoji"), to: out) }
                if request.path.hasPrefix("/api/vote") {
                    let vote = client.send(.POST, "/vote", host: authority("voting"), to: out)
                    return list.and(vote).map { _, v in
                        AppResponse(status: v.status >= 500 ? 500 : 200, body: v.status >= 500 ? "vote failed\n" : "ok\n")
                    }.recover { _ in AppResponse(status: 502, body: "upstream failed\n") }
                }
                return list.map { AppResponse(status: $0.status, body: $0.body) }
                    .recover { _ in AppResponse(status: 502, body: "upstream failed\n") }
            }
            apps.append(web)
            let webProxy = try await mesh("web", app: web, outbound: true, routes: [
                ("GET", "/api/list", "/api/list"), ("GET", "/api/vote", "/api/vote"), ("GET", "/api/leaderboard", "/api/leaderboard"),
            ])
            webOutbound.withLockedValue { $0 = webProxy.outboundAddress }

            // vote-bot: meshed, outbound only.
            let botProxy = try await mesh("vote-bot", app: nil, outbound: true)
            guard let botOut = botProxy.outboundAddress else { throw DemoError("vote-bot proxy has no outbound listener") }
            let choices = [":joy:", ":sunglasses:", ":doughnut:", ":rocket:", ":100:"]
            let generator = OpenLoopGenerator(rate: options.rate, on: group.next()) { n in
                let path = n % 3 == 0 ? "/api/list" : "/api/vote?choice=\(choices[Int(n % UInt64(choices.count))])"
                return client.send(.GET, path, host: authority("web"), to: botOut)
            }
            return DemoMesh(namespace: ns, targets: targets, apps: apps, proxies: proxies, identityService: identityChannel, client: client, generator: generator,
                            botOutbound: botOut, webAuthority: authority("web"), splitAdmin: webProxy.adminAddress, votingAuthority: authority("voting"))
        } catch {
            for p in proxies { await p.stop() }
            for a in apps { await a.stop() }
            try? await identityChannel?.close()
            throw error
        }
    }

    /// Sends one request to `web` as the vote-bot does (through its proxy), e.g. `/api/vote?choice=:joy:`,
    /// and returns the status.
    public func call(_ path: String) async throws -> Int {
        try await client.send(.GET, path, host: webAuthority, to: botOutbound).get().status
    }

    /// What the vote-bot has sent and seen so far.
    public var traffic: OpenLoopGenerator.Totals { generator.snapshot }

    public func stop() async {
        generator.stop()
        client.shutdown()
        for p in proxies { await p.stop() }
        for a in apps { await a.stop() }
        try? await identityService?.close()
    }
}
