import NIOCore
import NIOPosix
import NIOHTTP2

/// Upstream HTTP/2 connections of one event loop, per endpoint and identity. A stream goes on
/// the connection with the fewest streams given to it, among those below the limit the peer
/// advertised (`SETTINGS_MAX_CONCURRENT_STREAMS`, 100 until it says); when every connection is
/// full another is opened, up to `maxConnectionsPerKey`. So clients that hold streams open fill
/// connections of their own rather than leave the next client's stream waiting, unbounded, in
/// NIOHTTP2's buffer behind theirs. A connection that sent GOAWAY, closed, failed, or has used
/// most of its stream ids takes no new streams; one idle for `idleTimeout` is closed.
final class HTTP2Upstreams {
    private final class Connection {
        let channel: any Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
        let watch: HTTP2ConnectionWatch
        /// Streams given to this connection and not yet closed (opened, or waiting for room).
        var assigned = 0
        /// Streams ever given to it: client stream ids are odd and end at 2³¹, so a connection
        /// is retired long before NIOHTTP2 would run out of them.
        var given = 0
        init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, watch: HTTP2ConnectionWatch) {
            self.channel = channel
            self.multiplexer = multiplexer
            self.watch = watch
        }

        var takesStreams: Bool { channel.isActive && !watch.goingAway && given < HTTP2Upstreams.streamsPerConnection }
        var hasRoom: Bool { takesStreams && assigned < watch.peerMaxConcurrentStreams }
    }

    /// The connections to one endpoint, and those being opened with the streams waiting for them.
    private final class Pool {
        var ready: [Connection] = []
        var connecting: [[EventLoopPromise<Connection>]] = []
    }

    private var pools: [UpstreamKey: Pool] = [:]
    private let loop: any EventLoop
    private let registry: MetricsRegistry
    private let identity: ProxyIdentity?
    private let connectTimeout: TimeAmount
    let idleTimeout: TimeAmount
    /// The most connections to one endpoint from one event loop.
    let maxConnectionsPerKey: Int
    /// How many streams one connection carries before it is retired (about half the ids).
    static let streamsPerConnection = 1 << 29

    init(loop: any EventLoop, registry: MetricsRegistry, identity: ProxyIdentity?, connectTimeout: TimeAmount,
         idleTimeout: TimeAmount = .seconds(60), maxConnectionsPerKey: Int = 16) {
        self.loop = loop
        self.registry = registry
        self.identity = identity
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.maxConnectionsPerKey = maxConnectionsPerKey
    }

    static func make(on loop: any EventLoop, registry: MetricsRegistry, identity: ProxyIdentity?, connectTimeout: TimeAmount) -> HTTP2Upstreams {
        let pool = HTTP2Upstreams(loop: loop, registry: registry, identity: identity, connectTimeout: connectTimeout)
        let bound = NIOLoopBound(pool, eventLoop: loop)
        let sweep = TimeAmount.nanoseconds(pool.idleTimeout.nanoseconds / 2)
        loop.scheduleRepeatedTask(initialDelay: sweep, delay: sweep) { _ in bound.value.closeIdle() }
        return pool
    }

    /// How many upstream HTTP/2 connections are open (for tests).
    var connectionCount: Int {
        pools.values.reduce(0) { $0 + $1.ready.filter { $0.channel.isActive }.count }
    }

    /// Opens a stream to `route`'s endpoint with `handler` at its end.
    func openStream(route: Route, key: UpstreamKey, handler: HTTP2UpstreamStream) -> EventLoopFuture<any Channel> {
        connection(route: route, key: key).flatMap { connection in
            let promise = self.loop.makePromise(of: (any Channel).self)
            connection.assigned += 1
            connection.given += 1
            promise.futureResult.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let stream): stream.closeFuture.assumeIsolated().whenComplete { _ in connection.assigned -= 1 }
                case .failure: connection.assigned -= 1
                }
            }
            connection.multiplexer.createStreamChannel(promise: promise) { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(handler) }
            }
            return promise.futureResult
        }
    }

    private func connection(route: Route, key: UpstreamKey) -> EventLoopFuture<Connection> {
        // Without a valid certificate, no stream rides an mTLS connection made with an old one.
        if key.identity != nil, let identity, identity.usable == nil {
            return loop.makeFailedFuture(NoCertificateError(reason: identity.notReadyReason ?? "none yet"))
        }
        let pool = pools[key] ?? {
            let p = Pool()
            pools[key] = p
            return p
        }()
        pool.ready.removeAll { !$0.channel.isActive }
        if let best = pool.ready.lazy.filter(\.hasRoom).min(by: { $0.assigned < $1.assigned }) {
            return loop.makeSucceededFuture(best)
        }
        let promise = loop.makePromise(of: Connection.self)
        let limit = pool.ready.first?.watch.peerMaxConcurrentStreams ?? HTTP2ConnectionWatch.assumedMaxConcurrentStreams
        // A connection being opened takes as many streams as one would carry.
        if let i = pool.connecting.firstIndex(where: { $0.count < limit }) {
            pool.connecting[i].append(promise)
        } else if pool.ready.filter(\.takesStreams).count + pool.connecting.count < maxConnectionsPerKey {
            pool.connecting.append([promise])
            connect(route: route, key: key, pool: pool, slot: pool.connecting.count - 1)
        } else if let fullest = pool.ready.lazy.filter(\.takesStreams).min(by: { $0.assigned < $1.assigned }) {
            // Every connection allowed is full: the stream waits in NIOHTTP2's buffer for room.
            return loop.makeSucceededFuture(fullest)
        } else {
            pool.connecting[pool.connecting.count - 1].append(promise)
        }
        return promise.futureResult
    }

    private func connect(route: Route, key: UpstreamKey, pool: Pool, slot: Int) {
        let registry = self.registry
        // The waiters of this attempt are found again by identity (other attempts may end first).
        let marker = pool.connecting[slot][0]
        upstreamBootstrap(route: route, key: key, group: loop, registry: registry, identity: identity, connectTimeout: connectTimeout) { _ in }
            .connect(host: route.endpoint.host, port: route.endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                guard let i = pool.connecting.firstIndex(where: { $0.first?.futureResult === marker.futureResult }) else { return }
                let waiters = pool.connecting.remove(at: i)
                do {
                    let channel = try result.get()
                    let tally = HTTP2StreamTally()
                    let watch = HTTP2ConnectionWatch(streams: tally, onTLSError: {
                        registry.tlsHandshakeFailed(direction: "outbound", peer: key.identity ?? "")
                    })
                    try channel.pipeline.syncOperations.addHandler(FlushConsolidator())
                    let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: .init(), streamConfiguration: .init(), streamDelegate: tally,
                        inboundStreamInitializer: { $0.close() })  // no server push expected
                    try channel.pipeline.syncOperations.addHandler(watch)
                    let connection = Connection(channel: channel, multiplexer: multiplexer, watch: watch)
                    pool.ready.append(connection)
                    channel.closeFuture.assumeIsolated().whenComplete { _ in pool.ready.removeAll { $0 === connection } }
                    for w in waiters { w.succeed(connection) }
                } catch {
                    if let channel = try? result.get() { channel.close(promise: nil) }
                    for w in waiters { w.fail(error) }
                }
                if pool.ready.isEmpty, pool.connecting.isEmpty, self.pools[key] === pool { self.pools[key] = nil }
            }
    }

    /// Closes connections with no open stream for `idleTimeout`, and those that were told to go
    /// away (or retired) once their last stream ended.
    func closeIdle(now: NIODeadline = .now()) {
        for (key, pool) in pools {
            for c in pool.ready where c.watch.streams.open == 0 && c.assigned == 0 {
                if !c.takesStreams || now - c.watch.streams.idleSince >= idleTimeout { c.channel.close(promise: nil) }
            }
            pool.ready.removeAll { !$0.channel.isActive || ($0.watch.streams.open == 0 && $0.assigned == 0 && (!$0.takesStreams || now - $0.watch.streams.idleSince >= idleTimeout)) }
            if pool.ready.isEmpty, pool.connecting.isEmpty { pools[key] = nil }
        }
    }
}

/// Counts an HTTP/2 connection's open streams; NIOHTTP2 calls it on the connection's event loop only.
final class HTTP2StreamTally: NIOHTTP2StreamDelegate, @unchecked Sendable {
    private(set) var open = 0
    private(set) var idleSince = NIODeadline.now()
    /// Called when the last open stream closed.
    var onIdle: (() -> Void)?

    func streamCreated(_ id: HTTP2StreamID, channel: any Channel) {
        open += 1
    }

    func streamClosed(_ id: HTTP2StreamID, channel: any Channel) {
        open -= 1
        if open == 0 {
            idleSince = .now()
            onIdle?()
        }
    }
}

/// Watches an HTTP/2 connection: sees GOAWAY, counts failed TLS handshakes, and on the server
/// side answers a drain with GOAWAY, closing once the streams in flight have ended.
final class HTTP2ConnectionWatch: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let streams: HTTP2StreamTally
    /// The peer sent GOAWAY, or this side is draining: no new streams.
    private(set) var goingAway = false
    /// The last stream the peer's GOAWAY said it will process.
    private(set) var lastStreamID: HTTP2StreamID?
    /// The most streams the peer takes at once, as its SETTINGS said (until then, what
    /// nginx, grpc and NIOHTTP2 servers advertise).
    private(set) var peerMaxConcurrentStreams = HTTP2ConnectionWatch.assumedMaxConcurrentStreams
    static let assumedMaxConcurrentStreams = 100
    private let onTLSError: () -> Void
    /// On a server connection: with no open stream for this long, GOAWAY and close.
    private let idleTimeout: TimeAmount?
    private let onIdleClose: () -> Void
    private var idleCheck: Scheduled<Void>?

    init(streams: HTTP2StreamTally, idleTimeout: TimeAmount? = nil, onIdleClose: @escaping () -> Void = {},
         onTLSError: @escaping () -> Void = {}) {
        self.streams = streams
        self.idleTimeout = idleTimeout
        self.onIdleClose = onIdleClose
        self.onTLSError = onTLSError
    }

    func handlerAdded(context: ChannelHandlerContext) {
        scheduleIdleCheck(context)
    }

    /// Every quarter idle timeout: a connection with no open stream for the whole timeout goes away.
    private func scheduleIdleCheck(_ context: ChannelHandlerContext) {
        guard let idleTimeout, !goingAway else { return }
        let every = TimeAmount.nanoseconds(max(idleTimeout.nanoseconds / 4, 1_000_000))
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: every) { [self] in
            guard context.channel.isActive else { return }
            if streams.open == 0, .now() - streams.idleSince >= idleTimeout {
                onIdleClose()
                goAway(context)
            } else {
                scheduleIdleCheck(context)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data).payload {
        case .goAway(let last, _, _):
            goingAway = true
            lastStreamID = min(last, lastStreamID ?? last)
        case .settings(.settings(let settings)):
            if let limit = settings.last(where: { $0.parameter == .maxConcurrentStreams }) { peerMaxConcurrentStreams = limit.value }
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is DrainEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        goAway(context)
    }

    /// Tells the client to open no more streams; closes once those in flight are done.
    private func goAway(_ context: ChannelHandlerContext) {
        goingAway = true
        idleCheck?.cancel()
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        streams.onIdle = { context.close(promise: nil) }
        if streams.open == 0 { context.close(promise: nil) }
    }

    /// Errors of one stream arrive here too, and must not end the others: NIOHTTP2 itself ends
    /// the connection (with GOAWAY) when an error is the connection's. A failed TLS handshake
    /// is counted; its handler closes the connection.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if isTLSError(error) { onTLSError() }
    }
}
