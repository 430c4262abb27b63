public import MeshTap
public import NIOCore
public import NIOPosix
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// What a meshproxy listens on and where it sends traffic.
public struct ProxyConfiguration: Sendable {
    /// The inbound listener (other proxies and clients → the local app), and the app's address.
    public var inbound: (listen: HostPort, app: HostPort)?
    /// The inbound service profile: requests are also counted per route (`route_*` families).
    public var inboundProfile: ServiceProfile?
    /// The outbound listener (the local app → the mesh) and its destinations.
    public var outbound: (listen: HostPort, destinations: DestinationTable)?
    /// The tap listener (loopback by default, as Linkerd's 4190), and a token subscribers must send.
    public var tap: HostPort?
    public var tapToken: String?
    /// What tap hides, and how many subscribers it serves at once.
    public var tapRedaction = TapRedaction()
    public var tapMaxSubscribers = 16
    /// The most connections the tap listener holds at once (subscribers and those still to
    /// send their filter line); more are closed at once and counted.
    public var tapMaxConnections = 64
    /// A token `POST /split` must carry (`Authorization: Bearer …`).
    public var adminToken: String?
    /// This workload's own labels (`namespace`, `deployment`, `pod`…), shown by tap for this side.
    public var workloadLabels: [String: String] = [:]
    /// The admin listener: `/metrics`, `/ready`, `/live`. Loopback by default, as Linkerd's 4191.
    public var admin: HostPort
    /// How long connecting to an upstream may take before the request fails with 504.
    public var connectTimeout: TimeAmount
    /// How long a client may take to send a request's headers once it began (then 408).
    public var headerTimeout: TimeAmount = .seconds(10)
    /// How long a new connection may take to show its protocol (TLS handshake included) before
    /// it is closed, as Linkerd's protocol detection does (10 s).
    public var detectTimeout: TimeAmount = .seconds(10)
    /// How long a connection may sit idle between requests (HTTP/1 keep-alive, or HTTP/2 with no
    /// open stream) before the proxy closes it.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// The most connections each proxy listener holds open; more are closed at once and counted
    /// in `meshproxy_connections_refused_total`.
    public var maxConnections = 10_000
    /// The workload identity for mTLS: inbound accepts TLS from meshed peers (and plaintext from
    /// others), outbound reaches endpoints that have an identity over mTLS. Nil: plaintext only.
    public var identity: ProxyIdentity?

    public init(inbound: (listen: HostPort, app: HostPort)? = nil,
                outbound: (listen: HostPort, destinations: DestinationTable)? = nil,
                admin: HostPort = HostPort(host: "127.0.0.1", port: 4191),
                connectTimeout: TimeAmount = .seconds(1)) {
        self.inbound = inbound
        self.outbound = outbound
        self.admin = admin
        self.connectTimeout = connectTimeout
    }
}

/// A running meshproxy: its listeners, bound, and its metrics.
///
/// ```swift
/// let proxy = try await MeshProxyServer.start(ProxyConfiguration(
///     inbound: (listen: HostPort(host: "127.0.0.1", port: 4143), app: HostPort(host: "127.0.0.1", port: 8080))))
/// print(proxy.adminAddress)   // where /metrics is served
/// ```
public final class MeshProxyServer: Sendable {
    public let registry: MetricsRegistry
    /// The addresses actually bound (a port 0 in the configuration becomes a real one).
    public let inboundAddress: HostPort?
    public let outboundAddress: HostPort?
    public let adminAddress: HostPort
    public let tapAddress: HostPort?
    /// The tap emitter, for its counters.
    public let tapHub: TapHub
    private let channels: [any Channel]
    private let outboundRouter: OutboundRouter?
    private let connections: ConnectionTracker

    private init(registry: MetricsRegistry, channels: [any Channel], inbound: HostPort?, outbound: HostPort?, admin: HostPort,
                 tap: HostPort?, tapHub: TapHub, outboundRouter: OutboundRouter?, connections: ConnectionTracker) {
        self.registry = registry
        self.connections = connections
        self.tapAddress = tap
        self.tapHub = tapHub
        self.channels = channels
        self.inboundAddress = inbound
        self.outboundAddress = outbound
        self.adminAddress = admin
        self.outboundRouter = outboundRouter
    }

    /// Binds every configured listener on `group` and returns once they accept connections.
    public static func start(_ config: ProxyConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             onShutdownRequest: (@Sendable () -> Void)? = nil) async throws -> MeshProxyServer {
        let registry = MetricsRegistry()
        let connections = ConnectionTracker()
        let hub = TapHub(redaction: config.tapRedaction, maxSubscribers: config.tapMaxSubscribers)
        registry.tapHub = hub
        registry.identity = config.identity
        config.identity?.start(on: group.next())
        var channels: [any Channel] = []
        do {
            var inboundAddress: HostPort?
            var outboundAddress: HostPort?
            var outboundRouter: OutboundRouter?
            if let (listen, app) = config.inbound {
                let router = InboundRouter(app: app, profile: config.inboundProfile, workload: config.workloadLabels, registry: registry)
                let accept = registry.tcpTarget(LabelSet([("direction", "inbound"), ("peer", "src")] + targetLabels(app) + [
                    ("tls", "no_identity"), ("no_tls_reason", "no_tls_from_remote"), ("srv_kind", "default"), ("srv_name", "all-unauthenticated"),
                ]))
                let channel = try await bindProxy(listen, router: router, accept: accept, registry: registry, tap: hub, config: config,
                                                  connections: connections, group: group)
                channels.append(channel)
                inboundAddress = channel.localHostPort
            }
            if let (listen, destinations) = config.outbound {
                let router = OutboundRouter(table: destinations, workload: config.workloadLabels, registry: registry, mtls: config.identity != nil)
                let accept = registry.tcpTarget(LabelSet([("direction", "outbound"), ("peer", "src")] + targetLabels(listen) + [
                    ("tls", "no_identity"), ("no_tls_reason", "loopback"),
                ]))
                let channel = try await bindProxy(listen, router: router, accept: accept, registry: registry, tap: hub, config: config,
                                                  connections: connections, group: group)
                channels.append(channel)
                outboundAddress = channel.localHostPort
                outboundRouter = router
            }
            var tapAddress: HostPort?
            if let tap = config.tap {
                let token = config.tapToken
                let cap = ConnectionCap(limit: config.tapMaxConnections, direction: "tap", registry: registry, flag: "--tap-max-connections")
                let (filterDeadline, stallTimeout) = (config.headerTimeout, config.idleTimeout)
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        guard cap.admit(channel) else { return channel.close() }
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TapServerHandler(
                                hub: hub, token: token, filterDeadline: filterDeadline, stallTimeout: stallTimeout, registry: registry))
                        }
                    }
                    .bind(host: tap.host, port: tap.port)
                    .get()
                channels.append(channel)
                tapAddress = channel.localHostPort
            }
            let adminToken = config.adminToken
            let splitRouter = outboundRouter
            if let splitRouter { registry.splitWeights = { splitRouter.weights() } }
            let admin = try await bindHTTP(config.admin, group: group) {
                AdminHandler(registry: registry, router: splitRouter, token: adminToken, identity: config.identity,
                             draining: { connections.isDraining }, onShutdown: onShutdownRequest)
            }
            channels.append(admin)
            return MeshProxyServer(registry: registry, channels: channels, inbound: inboundAddress, outbound: outboundAddress,
                                   admin: admin.localHostPort ?? config.admin, tap: tapAddress, tapHub: hub, outboundRouter: outboundRouter,
                                   connections: connections)
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
    }

    /// Replaces the outbound destinations; requests already routed finish where they were going.
    public func updateDestinations(_ table: DestinationTable) {
        outboundRouter?.replace(table)
    }

    /// Closes every listener.
    public func stop() async {
        registry.identity?.stop()
        for channel in channels { try? await channel.close() }
    }

    /// Graceful shutdown: `/ready` turns 503 and new connections are refused; idle connections
    /// close now and busy ones after their response; returns when all are gone or after
    /// `timeout` (what is left is then cut). The admin listener stays up until `stop`.
    /// Returns how many connections were still open at the deadline.
    @discardableResult
    public func drain(timeout: TimeAmount) async -> Int {
        connections.startDrain()
        for channel in channels.dropLast() { try? await channel.close() }  // the proxy and tap listeners; admin is last
        let deadline = NIODeadline.now() + timeout
        while connections.count > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return connections.count
    }

    /// Open proxied connections (for tests and the drain).
    public var openConnections: Int { connections.count }

    private static func bindProxy(_ address: HostPort, router: any Router, accept: TCPTarget, registry: MetricsRegistry, tap: TapHub,
                                  config: ProxyConfiguration, connections: ConnectionTracker, group: any EventLoopGroup) async throws -> any Channel {
        let connectTimeout = config.connectTimeout
        let headerTimeout = config.headerTimeout
        // Only the inbound listener takes mTLS (outbound's clients are the local app, on loopback).
        let identity = config.identity
        let detectTLS = router is InboundRouter ? identity : nil
        let direction = router is InboundRouter ? "inbound" : "outbound"
        let detectTimeout = config.detectTimeout
        let idleTimeout = config.idleTimeout
        let cap = ConnectionCap(limit: config.maxConnections, direction: direction, registry: registry)
        let pools = PerEventLoop { UpstreamPool.make(on: $0) }
        let h2Upstreams = PerEventLoop { HTTP2Upstreams.make(on: $0, registry: registry, identity: identity, connectTimeout: connectTimeout) }
        let recorder = ExchangeRecorder(registry: registry, router: router, tap: tap)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Each connection keeps its read buffer between reads: a request head fits in 512
            // bytes, and the buffer grows for bodies and HTTP/2 bursts (memory per idle connection).
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536))
            .childChannelInitializer { channel in
                guard cap.admit(channel) else { return channel.close() }
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ConnectionMetricsHandler(registry: registry, target: accept))
                    if let detectTLS {
                        try sync.addHandler(TLSDetector(identity: detectTLS, onRefused: { registry.tlsHandshakeFailed(direction: "inbound", peer: "") }))
                    }
                    try sync.addHandler(HTTPVersionDetector(timeout: detectTimeout, onTimeout: {
                        registry.connectionTimedOut(direction: direction, reason: "detect")
                    }, http1: { sync in
                        try sync.addHandler(ProxyHandler(router: router, registry: registry, tap: tap, pools: pools, connectTimeout: connectTimeout,
                                                         identity: identity, acceptsMTLS: detectTLS != nil,
                                                         idleTimeout: idleTimeout, headerTimeout: headerTimeout, direction: direction))
                    }, http2: { sync, _ in
                        // h2c (prior knowledge), as gRPC speaks it: each stream is proxied frame for
                        // frame onto a stream of a pooled HTTP/2 upstream connection.
                        let tally = HTTP2StreamTally()
                        try sync.addHandler(FlushConsolidator())
                        _ = try sync.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init(),
                                                            streamDelegate: tally) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                try stream.pipeline.syncOperations.addHandler(HTTP2StreamProxy(
                                    router: router, recorder: recorder, upstreams: h2Upstreams, mtls: identity != nil,
                                    acceptsMTLS: detectTLS != nil))
                            }
                        }
                        try sync.addHandler(HTTP2ConnectionWatch(streams: tally, idleTimeout: idleTimeout, onIdleClose: {
                            registry.connectionTimedOut(direction: direction, reason: "idle")
                        }))
                    }, failed: { error in
                        if error is NIOSSLError || error is BoringSSLError { registry.tlsHandshakeFailed(direction: "inbound", peer: "") }
                    }))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    static func bindHTTP(_ address: HostPort, group: any EventLoopGroup,
                         handler: @escaping @Sendable () -> some ChannelHandler) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(handler())
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

extension Channel {
    public var localHostPort: HostPort? {
        guard let address = localAddress, let ip = address.ipAddress, let port = address.port else { return nil }
        return HostPort(host: ip, port: port)
    }
}
