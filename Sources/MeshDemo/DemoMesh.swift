public import NIOCore
import NIOPosix
public import MeshProxy
import NIOConcurrencyHelpers
import NIOHTTP1
import MeshIdentity
import GRPCCore
import Foundation

/// What web's app calls emoji and voting through: its proxy's outbound listener and a gRPC client per service.
typealias WebCalls = (out: HostPort, emoji: DemoGRPCClient, voting: DemoGRPCClient)

/// An emojivoto-like mesh in one process: `web`, `emoji`, `voting`, `auth` and `store`, each
/// behind its own meshproxy on loopback, calls between them going through the proxies (web →
/// auth, emoji, voting; emoji and voting → store), and a `vote-bot` (itself meshed) sending
/// open-loop traffic to `web`. `voting` fails a steady share of votes.
///
/// As in Linkerd's emojivoto, web calls emoji and voting over gRPC (h2c to its proxy, HTTP/2 over
/// mTLS between the proxies); a failed vote is `grpc-status: 14` (UNAVAILABLE) in an HTTP 200
/// answer, which the proxies count by its gRPC status. The vote-bot, auth and store speak HTTP/1.1.
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
    /// The gRPC apps and web's clients; `stop()` lets go of them while the event loops still run
    /// (grpc-swift's server transport completes a promise on its loop when it is freed).
    private let grpc: NIOLockedValueBox<(apps: [DemoGRPCServer], clients: [DemoGRPCClient])>
    /// What web's logic calls through (its proxy's outbound listener and the two gRPC clients);
    /// emptied by `stop()`, so the clients are freed with the rest of the gRPC objects.
    private let webCalls: NIOLockedValueBox<WebCalls?>
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

    private init(namespace: String, targets: [Target], apps: [AppServer], grpcApps: [DemoGRPCServer], grpcClients: [DemoGRPCClient],
                 webCalls: NIOLockedValueBox<WebCalls?>, proxies: [MeshProxyServer], identityService: (any Channel)?,
                 client: HTTPClient, generator: OpenLoopGenerator,
                 botOutbound: HostPort, webAuthority: String, splitAdmin: HostPort, votingAuthority: String) {
        self.botOutbound = botOutbound
        self.webAuthority = webAuthority
        self.splitAdmin = splitAdmin
        self.votingAuthority = votingAuthority
        self.namespace = namespace
        self.targets = targets
        self.apps = apps
        grpc = NIOLockedValueBox((grpcApps, grpcClients))
        self.webCalls = webCalls
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
        var grpcApps: [DemoGRPCServer] = []
        var grpcClients: [DemoGRPCClient] = []
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

        func mesh(_ name: String, app: HostPort?, outbound: Bool, routes: [(String, String, String)] = []) async throws -> MeshProxyServer {
            // voting-svc splits between voting and, in canary scenarios, voting-canary (weight 0 to start).
            let table = DestinationTable(endpoints.filter { $0.key != "voting-canary" }.map { service, endpoint in
                var backends = [Backend(name: service, weight: 100, endpoints: [endpoint])]
                if service == "voting", let canary = endpoints["voting-canary"] {
                    backends.append(Backend(name: "voting-canary", weight: 0, endpoints: [canary]))
                }
                return Destination(authority: authority(service), backends: backends)
            })
            var config = ProxyConfiguration(inbound: app.map { (loopback, $0) },
                                            outbound: outbound ? (loopback, table) : nil,
                                            admin: loopback)
            let podName = pod(name)
            if let identities, let service = identityChannel?.localHostPort, let anchorPEM {
                guard let token = tokens[name] else { throw DemoError("no identity token for the service account \(name)") }
                let client = IdentityClient(service: service, name: identities.identityName(serviceAccount: name, namespace: ns), token: token,
                                            trustAnchorPEM: anchorPEM)
                config.identity = ProxyIdentity(client: client)
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
            // As a pod's containers wait for its proxy to be ready: traffic starts once it is certified.
            if let identity = config.identity, !(await identity.waitUntilUsable(timeout: .seconds(10))) {
                throw DemoError("\(name)'s proxy got no certificate: \(identity.notReadyReason ?? "")")
            }
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
            _ = try await mesh("store", app: store.address, outbound: false, routes: [("GET", "/get", "/get"), ("PUT", "/put", "/put")])
            let auth = try await AppServer.start(group: group) { _, loop in
                loop.scheduleTask(in: .microseconds(Int64.random(in: 300...1_000))) { AppResponse(status: 200, body: "{\"user\":\"bot\"}\n") }.futureResult
            }
            apps.append(auth)
            _ = try await mesh("auth", app: auth.address, outbound: false, routes: [("GET", "/session", "/session")])

            /// A gRPC app that calls store (HTTP/1.1) through its own proxy's outbound listener,
            /// then answers; a store that fails or cannot be reached is UNAVAILABLE.
            func storeBacked<Request: DemoMessage, Response: DemoMessage>(
                _ method: MethodDescriptor, store path: String, _ storeMethod: HTTPMethod,
                answer: @escaping @Sendable (Request) async throws -> Response
            ) -> (NIOLockedValueBox<HostPort?>, UnaryMethod<Request, Response>) {
                let outbound = NIOLockedValueBox<HostPort?>(nil)
                return (outbound, UnaryMethod(method) { request in
                    guard let out = outbound.withLockedValue({ $0 }) else { throw RPCError(code: .unavailable, message: "starting") }
                    let stored = try? await client.send(storeMethod, path, host: authority("store"), to: out).get()
                    guard let stored, stored.status < 500 else { throw RPCError(code: .unavailable, message: "store failed") }
                    return try await answer(request)
                })
            }
            /// Waits `delay` on one of the mesh's event loops.
            @Sendable func pause(_ delay: TimeAmount) async throws {
                try await group.next().scheduleTask(in: delay) {}.futureResult.get()
            }
            /// A gRPC app behind its own proxy; the routes are its methods.
            func meshGRPC(_ name: String, _ services: [any RegistrableRPCService], methods: [MethodDescriptor], outbound: Bool) async throws -> MeshProxyServer {
                let app = try await DemoGRPCServer.start(services: services, group: group)
                grpcApps.append(app)
                return try await mesh(name, app: app.address, outbound: outbound, routes: methods.map { method in
                    ("POST", "/\(method.fullyQualifiedMethod)", "/" + method.fullyQualifiedMethod.replacingOccurrences(of: ".", with: "\\."))
                })
            }

            let (emojiOut, listAll) = storeBacked(Emojivoto.listAll, store: "/get", .GET) { (_: Emojivoto.ListAllRequest) in
                try await pause(.microseconds(Int64.random(in: 500...3_000)))
                return Emojivoto.ListAllResponse(list: Emojivoto.catalogue)
            }
            let emojiProxy = try await meshGRPC("emoji", [listAll], methods: [Emojivoto.listAll], outbound: true)
            emojiOut.withLockedValue { $0 = emojiProxy.outboundAddress }

            /// A vote, after the store: fails (UNAVAILABLE) or slows as told.
            @Sendable func vote(failure: Double, slowdown: Int64) async throws -> Emojivoto.VoteResponse {
                let fail = Double.random(in: 0..<1) < failure
                try await pause(.microseconds(Int64.random(in: 2_000...12_000) * slowdown))
                if fail { throw RPCError(code: .unavailable, message: "vote store unavailable") }
                return Emojivoto.VoteResponse()
            }
            let (votingOut, castVote) = storeBacked(Emojivoto.vote, store: "/put", .PUT) { (_: Emojivoto.VoteRequest) in
                let (failure, slowdown) = votingBehaviour()
                return try await vote(failure: failure, slowdown: slowdown)
            }
            let votingProxy = try await meshGRPC("voting", [castVote], methods: [Emojivoto.vote], outbound: true)
            votingOut.withLockedValue { $0 = votingProxy.outboundAddress }

            if scenario.hasCanary {
                let canaryFailure = scenario == .canary ? 0.3 : 0.0
                let canaryVote = UnaryMethod(Emojivoto.vote) { (_: Emojivoto.VoteRequest) in try await vote(failure: canaryFailure, slowdown: 1) }
                _ = try await meshGRPC("voting-canary", [canaryVote], methods: [Emojivoto.vote], outbound: false)
            }

            // web calls auth (HTTP/1.1), then emoji and voting (gRPC), through its own outbound listener.
            let webOutbound = NIOLockedValueBox<WebCalls?>(nil)
            let web = try await AppServer.start(group: group) { request, loop in
                guard let calls = webOutbound.withLockedValue({ $0 }) else {
                    return loop.makeSucceededFuture(AppResponse(status: 503, body: "starting\n"))
                }
                let shortcode = request.path.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ":joy:"
                let isVote = request.path.hasPrefix("/api/vote")
                return client.send(.GET, "/session", host: authority("auth"), to: calls.out).flatMap { _ in
                    loop.makeFutureWithTask {
                        let list = try await calls.emoji.call(Emojivoto.listAll, Emojivoto.ListAllRequest(), as: Emojivoto.ListAllResponse.self)
                        guard isVote else { return AppResponse(status: 200, body: list.list.map(\.shortcode).joined(separator: " ") + "\n") }
                        do {
                            _ = try await calls.voting.call(Emojivoto.vote, Emojivoto.VoteRequest(shortcode: shortcode), as: Emojivoto.VoteResponse.self)
                            return AppResponse(status: 200, body: "ok\n")
                        } catch let error as RPCError where error.code == .unavailable {
                            return AppResponse(status: 500, body: "vote failed\n")
                        }
                    }
                }.recover { _ in AppResponse(status: 502, body: "upstream failed\n") }
            }
            apps.append(web)
            let webProxy = try await mesh("web", app: web.address, outbound: true, routes: [
                ("GET", "/api/list", "/api/list"), ("GET", "/api/vote", "/api/vote"), ("GET", "/api/leaderboard", "/api/leaderboard"),
            ])
            guard let webOut = webProxy.outboundAddress else { throw DemoError("web's proxy has no outbound listener") }
            let emojiClient = try DemoGRPCClient(proxy: webOut, authority: authority("emoji"), group: group)
            grpcClients.append(emojiClient)
            let votingClient = try DemoGRPCClient(proxy: webOut, authority: authority("voting"), group: group)
            grpcClients.append(votingClient)
            webOutbound.withLockedValue { $0 = (webOut, emojiClient, votingClient) }

            // vote-bot: meshed, outbound only.
            let botProxy = try await mesh("vote-bot", app: nil, outbound: true)
            guard let botOut = botProxy.outboundAddress else { throw DemoError("vote-bot proxy has no outbound listener") }
            let choices = [":joy:", ":sunglasses:", ":doughnut:", ":rocket:", ":100:"]
            let generator = OpenLoopGenerator(rate: options.rate, on: group.next()) { n in
                let path = n % 3 == 0 ? "/api/list" : "/api/vote?choice=\(choices[Int(n % UInt64(choices.count))])"
                return client.send(.GET, path, host: authority("web"), to: botOut)
            }
            return DemoMesh(namespace: ns, targets: targets, apps: apps, grpcApps: grpcApps, grpcClients: grpcClients, webCalls: webOutbound, proxies: proxies, identityService: identityChannel, client: client, generator: generator,
                            botOutbound: botOut, webAuthority: authority("web"), splitAdmin: webProxy.adminAddress, votingAuthority: authority("voting"))
        } catch {
            for c in grpcClients { await c.stop() }
            for p in proxies { await p.stop() }
            for a in apps { await a.stop() }
            for a in grpcApps { await a.stop() }
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
        // The vote-bot's requests in flight finish first (each has a 5 s timeout), so no app's
        // task answers on an event loop that is gone.
        let patience = ContinuousClock.now + .seconds(6)
        while generator.snapshot.inFlight > 0, ContinuousClock.now < patience { try? await Task.sleep(for: .milliseconds(20)) }
        client.shutdown()
        webCalls.withLockedValue { $0 = nil }
        let (grpcApps, grpcClients) = grpc.withLockedValue { grpc in
            defer { grpc = ([], []) }
            return grpc
        }
        for c in grpcClients { await c.stop() }
        for p in proxies { await p.stop() }
        for a in apps { await a.stop() }
        for a in grpcApps { await a.stop() }
        try? await identityService?.close()
    }
}
