import NIOCore
import NIOPosix
import NIOHTTP2

/// Upstream HTTP/2 connections of one event loop: one per endpoint and identity, with every
/// request's stream opened on it. A connection that sent GOAWAY, closed, or failed is replaced
/// by a new one for the next stream; one idle for `idleTimeout` is closed.
final class HTTP2Upstreams {
    private final class Connection {
        let channel: any Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
        let watch: HTTP2ConnectionWatch
        init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, watch: HTTP2ConnectionWatch) {
            self.channel = channel
            self.multiplexer = multiplexer
            self.watch = watch
        }
    }

    private enum Entry {
        case connecting([EventLoopPromise<NIOHTTP2Handler.StreamMultiplexer>])
        case ready(Connection)
    }

    private var entries: [UpstreamKey: Entry] = [:]
    private let loop: any EventLoop
    private let registry: MetricsRegistry
    private let identity: ProxyIdentity?
    private let connectTimeout: TimeAmount
    let idleTimeout: TimeAmount

    init(loop: any EventLoop, registry: MetricsRegistry, identity: ProxyIdentity?, connectTimeout: TimeAmount, idleTimeout: TimeAmount = .seconds(60)) {
        self.loop = loop
        self.registry = registry
        self.identity = identity
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
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
        entries.values.filter { if case .ready(let c) = $0 { return c.channel.isActive } else { return false } }.count
    }

    /// Opens a stream to `route`'s endpoint with `handler` at its end.
    func openStream(route: Route, key: UpstreamKey, handler: HTTP2UpstreamStream) -> EventLoopFuture<any Channel> {
        multiplexer(route: route, key: key).flatMap { multiplexer in
            let promise = self.loop.makePromise(of: (any Channel).self)
            multiplexer.createStreamChannel(promise: promise) { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(handler) }
            }
            return promise.futureResult
        }
    }

    private func multiplexer(route: Route, key: UpstreamKey) -> EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer> {
        // Without a valid certificate, no stream rides an mTLS connection made with an old one.
        if key.identity != nil, let identity, identity.usable == nil {
            return loop.makeFailedFuture(NoCertificateError(reason: identity.notReadyReason ?? "none yet"))
        }
        switch entries[key] {
        case .ready(let c) where c.channel.isActive && !c.watch.goingAway:
            return loop.makeSucceededFuture(c.multiplexer)
        case .connecting(var waiters):
            let promise = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
            waiters.append(promise)
            entries[key] = .connecting(waiters)
            return promise.futureResult
        default:
            let promise = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
            entries[key] = .connecting([promise])
            connect(route: route, key: key)
            return promise.futureResult
        }
    }

    private func connect(route: Route, key: UpstreamKey) {
        let registry = self.registry
        upstreamBootstrap(route: route, key: key, group: loop, registry: registry, identity: identity, connectTimeout: connectTimeout) { _ in }
            .connect(host: route.endpoint.host, port: route.endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                guard case .connecting(let waiters) = self.entries[key] else { return }
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
                    self.entries[key] = .ready(connection)
                    channel.closeFuture.assumeIsolated().whenComplete { _ in self.retire(key, connection) }
                    for w in waiters { w.succeed(multiplexer) }
                } catch {
                    if let channel = try? result.get() { channel.close(promise: nil) }
                    self.entries[key] = nil
                    for w in waiters { w.fail(error) }
                }
            }
    }

    private func retire(_ key: UpstreamKey, _ connection: Connection) {
        if case .ready(let c) = entries[key], c === connection { entries[key] = nil }
    }

    /// Closes connections with no open stream for `idleTimeout`, and those that were told to go
    /// away once their last stream ended.
    func closeIdle(now: NIODeadline = .now()) {
        for (key, entry) in entries {
            guard case .ready(let c) = entry, c.watch.streams.open == 0 else { continue }
            if c.watch.goingAway || now - c.watch.streams.idleSince >= idleTimeout {
                entries[key] = nil
                c.channel.close(promise: nil)
            }
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
        if case .goAway(let last, _, _) = unwrapInboundIn(data).payload {
            goingAway = true
            lastStreamID = min(last, lastStreamID ?? last)
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
