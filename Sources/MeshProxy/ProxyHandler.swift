import MeshTap
import NIOCore
import NIOPosix
import NIOHTTP1
import NIOSSL
import MeshIdentity
import NIOConcurrencyHelpers

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1).
private let hopByHopHeaders = ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authenticate", "proxy-authorization"]

private func stripHopByHop(_ headers: inout HTTPHeaders) {
    // `te: trailers` is end to end in practice: gRPC servers require it.
    let trailers = headers[canonicalForm: "te"].contains { $0.lowercased() == "trailers" }
    // Headers named by Connection are hop-by-hop too.
    for named in headers[canonicalForm: "connection"] where !["close", "keep-alive"].contains(named.lowercased()) {
        headers.remove(name: String(named))
    }
    for name in hopByHopHeaders { headers.remove(name: name) }
    if trailers { headers.add(name: "te", value: "trailers") }
}

/// One downstream HTTP/1.1 connection of a proxy listener. Each request is routed, forwarded on a
/// keep-alive upstream connection (kept while the route's endpoint stays the same, else taken
/// from and given back to the event loop's pool), and its response streamed back, counted as Linkerd counts:
/// `request_total` when the request starts, latency at the first response byte, `response_total`
/// at the end of the response stream.
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request and its response.
    private struct Exchange {
        var route: Route
        /// The ServiceProfile route it is also counted under.
        var profileRoute: HTTPTarget?
        /// Tap subscribers that took this request, and what their events need.
        var tapped: TapHub.Tapped?
        var tapSource: TapPeer?
        var routeName: String?
        var responseStarted: NIODeadline?
        var responseBytes: UInt64 = 0
        var started: NIODeadline
        var keepAlive: Bool
        var isGRPC: Bool
        var status: Int?
        var grpcStatus: Int?
        var latencyRecorded = false
        var responseHeadSent = false
        /// Fires the 504 when the route has a timeout and the response has not begun.
        var deadline: Scheduled<Void>?
        /// The request again, for retries; how many are left; whether the response being read is
        /// a failed attempt that is not passed on.
        var retryHead: HTTPRequestHead?
        var retriesLeft = 0
        var discardingAttempt = false
        /// The client's request has ended (its end was forwarded).
        var requestEnded = false
        var number = 0
    }

    private let router: any Router
    private let registry: MetricsRegistry
    private let tap: TapHub?
    private let connectTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// Request parts waiting for the upstream connection.
    private var pending: [HTTPClientRequestPart] = []
    private var upstream: (any Channel)?
    private var upstreamHandler: UpstreamHandler?
    private let pools: UpstreamPools?
    private var pool: UpstreamPool?
    private var upstreamEndpoint: HostPort?
    private var upstreamReady = false
    private var upstreamReusable = true
    /// Request parts of a rejected request are read and dropped.
    private var discarding = false

    /// Exchanges started on this connection (so a late timer knows whether its request is still current).
    private var exchanges = 0
    /// Response parts written downstream since the last flush.
    private var downstreamUnflushed = false
    /// The client's identity, once it proved one over mTLS.
    private var peerIdentity: String?
    /// The proxy is shutting down: this connection closes after the response in flight.
    private var draining = false
    private let identity: ProxyIdentity?

    /// This handler serves one HTTP/2 stream: the upstream is HTTP/2 too (one stream on its own
    /// connection), and HTTP/1's connection header never goes downstream.
    private let http2: Bool
    /// The listener takes mTLS: the client's identity is read from its TLS handler.
    private let acceptsMTLS: Bool
    /// Under an HTTP/2 upstream stream, the connection that carries it.
    private var upstreamConnection: (any Channel)?

    init(router: any Router, registry: MetricsRegistry, tap: TapHub? = nil, pools: UpstreamPools? = nil, connectTimeout: TimeAmount = .seconds(1),
         identity: ProxyIdentity? = nil, acceptsMTLS: Bool = false, http2: Bool = false) {
        self.router = router
        self.acceptsMTLS = acceptsMTLS
        self.http2 = http2
        self.identity = identity
        self.pools = pools
        self.registry = registry
        self.tap = tap
        self.connectTimeout = connectTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = pools?.pool(for: context.eventLoop)
        // Added once the first bytes arrived, after any TLS handshake: read the peer's identity
        // now (an HTTP/2 stream finds the TLS handler on its connection). Only a listener that
        // takes mTLS has one to look for.
        guard acceptsMTLS else { return }
        let connection = http2 ? (context.channel.parent ?? context.channel) : context.channel
        if let tls = try? connection.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
           let name = tls.peerCertificate?.identityNames.first {
            peerIdentity = name
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            startExchange(head)
        case .body(let body):
            guard !discarding else { return }
            forward(.body(.byteBuffer(body)))
        case .end(let trailers):
            guard !discarding else {
                discarding = false
                return
            }
            exchange?.requestEnded = true
            forward(.end(trailers))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.deadline?.cancel()
        if let exchange {
            // The client went away before its response ended: the stream failed.
            responseEnded(exchange, .failed("unclassified"))
        }
        let idle = exchange == nil
        exchange = nil
        pending.removeAll()
        if idle { releaseUpstream() } else { closeUpstream() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // (a refused handshake is counted by HTTPVersionDetector, before this joins)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainEvent {
            draining = true
            if exchange == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Requests

    private func startExchange(_ head: HTTPRequestHead) {
        switch router.route(head, peer: peerIdentity) {
        case .reject(let status, let message):
            discarding = true
            respondLocally(status: status, message: message, keepAlive: head.isKeepAlive)
        case .forward(let route):
            let profileRoute = router.profileRoute(head)
            registry.requestStarted(route.http)
            if let profileRoute { registry.requestStarted(profileRoute.target) }
            let contentType = head.headers.first(name: "content-type") ?? ""
            exchanges += 1
            exchange = Exchange(route: route, profileRoute: profileRoute?.target, started: .now(), keepAlive: head.isKeepAlive,
                                isGRPC: contentType.hasPrefix("application/grpc"))
            exchange?.number = exchanges
            if let timeout = route.timeout, let context {
                let number = exchanges
                exchange?.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { self.timedOut(number, after: timeout) }
            }
            if let tap, tap.hasSubscribers { tapRequest(head, route: route, routeName: profileRoute?.name, hub: tap) }
            var upstreamHead = head
            upstreamHead.version = .http1_1
            stripHopByHop(&upstreamHead.headers)
            // A bodiless idempotent request may be tried again on a 5xx: keep its head.
            let bodiless = (head.headers.first(name: "content-length").map { $0 == "0" } ?? true) && !head.headers.contains(name: "transfer-encoding")
            if route.retries > 0, bodiless, [.GET, .HEAD, .OPTIONS, .DELETE].contains(head.method) {
                exchange?.retryHead = upstreamHead
                exchange?.retriesLeft = route.retries
                router.deposit(route)
            }
            dispatch(upstreamHead, route: route)
        }
    }

    /// Sends a request head to `route`'s endpoint: on the connection this client already has to
    /// it, a pooled one, or a new one (the head waits in `pending` meanwhile).
    private func dispatch(_ upstreamHead: HTTPRequestHead, route: Route) {
        pending.removeAll(keepingCapacity: true)
        if let upstream, upstream.isActive, upstreamReady, upstreamReusable, upstreamEndpoint == route.endpoint {
            upstream.write(HTTPClientRequestPart.head(upstreamHead), promise: nil)
        } else {
            releaseUpstream()
            if let pooled = pool?.take(route.endpoint) {
                adopt(pooled, endpoint: route.endpoint)
                pooled.channel.write(HTTPClientRequestPart.head(upstreamHead), promise: nil)
            } else {
                pending.append(.head(upstreamHead))
                connect(to: route)
            }
        }
    }

    /// The attempt that answered 5xx has ended: count it, then send the request again, routed
    /// afresh (P2C may well pick another endpoint).
    private func retry(_ exchange: Exchange) {
        guard var exchange = Optional(exchange), let head = exchange.retryHead else { return }
        responseEnded(exchange, .http(status: exchange.status ?? 500))
        if !upstreamReusable { closeUpstream() }
        guard case .forward(let next) = router.route(head, peer: peerIdentity) else {
            self.exchange = exchange
            failExchange(error: "unclassified", status: .badGateway, message: "meshproxy: no route left for a retry\n")
            return
        }
        registry.requestStarted(next.http)
        exchange.route = next
        exchange.status = nil
        exchange.discardingAttempt = false
        self.exchange = exchange
        dispatch(head, route: next)
        if exchange.requestEnded { forward(.end(nil)) }  // else the client's own end follows
    }

    private func forward(_ part: HTTPClientRequestPart) {
        guard exchange != nil else { return }
        if upstreamReady, let upstream {
            if case .end = part {
                upstream.writeAndFlush(part, promise: nil)
            } else {
                upstream.write(part, promise: nil)
            }
        } else {
            pending.append(part)
        }
    }

    private func connect(to route: Route) {
        guard let context else { return }
        let registry = self.registry
        let connection = route.connection
        // A meshed endpoint is reached over mTLS: our certificate, its identity checked as the host name.
        let tls: (NIOSSLContext, String)? = route.serverIdentity.flatMap { name in identity.map { ($0.current.client, name) } }
        upstreamEndpoint = route.endpoint
        upstreamReady = false
        upstreamReusable = true
        let http2 = self.http2
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(registry: registry, target: connection))
                    if let (context, name) = tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: name))
                    }
                    if !http2 { try channel.pipeline.syncOperations.addHTTPClientHandlers() }
                }
            }
        bootstrap.connect(host: route.endpoint.host, port: route.endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                self.connected(result, endpoint: route.endpoint)
            }
    }

    private func connected(_ result: Result<any Channel, any Error>, endpoint: HostPort) {
        switch result {
        case .success(let channel):
            guard self.context != nil, upstreamEndpoint == endpoint, upstream == nil else {
                channel.close(promise: nil)
                return
            }
            let handler = UpstreamHandler(owner: self)
            if http2 {
                // One request stream on the new HTTP/2 connection; it stands for the connection from here on.
                upstreamConnection = channel
                HTTP2Upstream.openStream(on: channel, handler: handler).assumeIsolated().whenComplete { result in
                    switch result {
                    case .success(let stream): self.adoptStream(stream, handler: handler, endpoint: endpoint)
                    case .failure(let error):
                        channel.close(promise: nil)
                        self.upstreamConnection = nil
                        self.upstreamEndpoint = nil
                        self.failExchange(error: "unclassified", status: .badGateway, message: "meshproxy: HTTP/2 to \(endpoint) failed: \(error)\n")
                    }
                }
                return
            }
            do {
                try channel.pipeline.syncOperations.addHandler(handler)
            } catch {
                channel.close(promise: nil)
                failExchange(error: "unclassified", status: .badGateway, message: "meshproxy: upstream \(endpoint) failed: \(error)\n")
                return
            }
            attach(channel, handler: handler)
        case .failure(let error):
            guard upstreamEndpoint == endpoint, upstream == nil else { return }
            upstreamEndpoint = nil
            let timedOut = "\(error)".lowercased().contains("timeout") || error is ChannelError && (error as! ChannelError) == .connectTimeout(connectTimeout)
            failExchange(error: timedOut ? "timeout" : "unclassified",
                         status: timedOut ? .gatewayTimeout : .badGateway,
                         message: "meshproxy: cannot connect to \(endpoint): \(error)\n")
        }
    }

    /// The route's timeout passed before the response began: 504, and the upstream connection,
    /// which may still answer, is closed rather than reused.
    private func timedOut(_ number: Int, after timeout: TimeAmount) {
        guard let exchange, exchange.number == number, !exchange.responseHeadSent else { return }
        closeUpstream()
        failExchange(error: "timeout", status: .gatewayTimeout,
                     message: "meshproxy: request timed out after \(timeout.nanoseconds / 1_000_000) ms\n")
    }

    private func adoptStream(_ stream: any Channel, handler: UpstreamHandler, endpoint: HostPort) {
        guard context != nil, upstreamEndpoint == endpoint, upstream == nil else {
            stream.close(promise: nil)
            upstreamConnection?.close(promise: nil)
            upstreamConnection = nil
            return
        }
        attach(stream, handler: handler)
    }

    /// `channel` (a connection, or an HTTP/2 stream) is this client's upstream now: what waited
    /// for it goes out.
    private func attach(_ channel: any Channel, handler: UpstreamHandler) {
        upstream = channel
        upstreamHandler = handler
        upstreamReady = true
        let parts = pending
        pending.removeAll()
        for part in parts { channel.write(part, promise: nil) }
        channel.flush()
    }

    // MARK: Responses

    fileprivate func upstreamRead(_ part: HTTPClientResponsePart, from channel: any Channel) {
        guard channel === upstream, var exchange, let context else { return }
        switch part {
        case .head(var head):
            exchange.status = Int(head.status.code)
            if head.status.code >= 500, exchange.retriesLeft > 0, exchange.retryHead != nil {
                if router.withdrawRetry(exchange.route) {
                    exchange.retriesLeft -= 1
                    exchange.discardingAttempt = true
                    upstreamReusable = head.isKeepAlive
                    registry.retry(authority: exchange.route.authority ?? "", result: "retried")
                    self.exchange = exchange
                    return
                }
                registry.retry(authority: exchange.route.authority ?? "", result: "budget_exhausted")
                exchange.retriesLeft = 0
            }
            if exchange.isGRPC, let code = head.headers.first(name: "grpc-status").flatMap(Int.init) {
                exchange.grpcStatus = code
            }
            upstreamReusable = head.isKeepAlive
            stripHopByHop(&head.headers)
            head.version = .http1_1
            if !http2, !exchange.keepAlive || draining { head.headers.replaceOrAdd(name: "connection", value: "close") }
            exchange.responseHeadSent = true
            exchange.responseStarted = .now()
            exchange.deadline?.cancel()
            exchange.deadline = nil
            if let tapped = exchange.tapped { tapResponseInit(exchange, tapped, head) }
            self.exchange = exchange
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body):
            guard !exchange.discardingAttempt else { return }
            exchange.responseBytes += UInt64(body.readableBytes)
            if !exchange.latencyRecorded {
                exchange.latencyRecorded = true
                recordLatency(exchange)
            }
            self.exchange = exchange
            // Flushed when this read from the upstream is done (or at the end): one syscall for
            // what one read brought, rather than one per body part.
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            downstreamUnflushed = true
        case .end(let trailers):
            if exchange.discardingAttempt {
                retry(exchange)
                return
            }
            if !exchange.latencyRecorded { recordLatency(exchange) }
            if exchange.isGRPC, exchange.grpcStatus == nil, let code = trailers?.first(name: "grpc-status").flatMap(Int.init) {
                exchange.grpcStatus = code
            }
            let status = exchange.status ?? 0
            responseEnded(exchange, exchange.isGRPC ? .grpc(status: status, grpcStatus: exchange.grpcStatus) : .http(status: status))
            if let tapped = exchange.tapped { tapResponseEnd(exchange, tapped, trailers: trailers, reset: nil) }
            self.exchange = nil
            let keepAlive = exchange.keepAlive && !draining
            downstreamUnflushed = false  // the end's flush takes everything
            if !upstreamReusable { closeUpstream() }
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    /// The upstream's read is done: what it brought goes to the client now.
    fileprivate func upstreamReadComplete(_ channel: any Channel) {
        guard channel === upstream, downstreamUnflushed, let context else { return }
        downstreamUnflushed = false
        context.flush()
    }

    /// The upstream connection failed (a TLS handshake refused, a reset): the request fails with
    /// 502 and its cause, rather than as a bare close.
    fileprivate func upstreamFailed(_ channel: any Channel, _ error: any Error) {
        guard channel === upstream, let exchange else { return }
        let tls = error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
        if tls { registry.tlsHandshakeFailed(direction: "outbound", peer: exchange.route.serverIdentity ?? "") }
        upstream = nil
        upstreamReady = false
        upstreamEndpoint = nil
        channel.close(promise: nil)
        failExchange(error: tls ? "tls" : "unclassified", status: .badGateway,
                     message: tls ? "meshproxy: mTLS with \(exchange.route.serverIdentity ?? "the upstream") failed: \(Self.describeTLS(error))\n"
                                  : "meshproxy: upstream failed: \(error)\n")
    }

    /// A TLS failure in a sentence (BoringSSL's error stacks are long).
    static func describeTLS(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("hostname") || text.contains("Hostname") { return "its certificate is not for the identity expected" }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("BAD_SIGNATURE") {
            return "its certificate does not chain to this proxy's trust anchor"
        }
        if text.contains("ALERT") || text.contains("alert") { return "the peer refused this proxy's certificate" }
        return String(text.prefix(160))
    }

    fileprivate func upstreamClosed(_ channel: any Channel) {
        guard channel === upstream else { return }
        upstream = nil
        upstreamReady = false
        upstreamEndpoint = nil
        if exchange != nil {
            failExchange(error: "unclassified", status: .badGateway, message: "meshproxy: upstream closed the connection before responding\n")
        }
    }

    /// Ends the current exchange with a proxy-made error response (or, when the response had
    /// already begun, by closing the connection), counted as a failed stream.
    private func failExchange(error: String, status: HTTPResponseStatus, message: String) {
        guard let exchange, let context else { return }
        exchange.deadline?.cancel()
        self.exchange = nil
        pending.removeAll()
        responseEnded(exchange, .failed(error))
        if let tapped = exchange.tapped {
            if !exchange.responseHeadSent {
                var e = exchange
                e.responseStarted = .now()
                tapResponseInit(e, tapped, HTTPResponseHead(version: .http1_1, status: status))
                tapResponseEnd(e, tapped, trailers: nil, reset: nil)
            } else {
                tapResponseEnd(exchange, tapped, trailers: nil, reset: 2)  // the stream was cut: INTERNAL_ERROR
            }
        }
        if exchange.responseHeadSent {
            context.flush()  // what did arrive goes out before the cut
            context.close(promise: nil)
        } else {
            respondLocally(status: status, message: message, keepAlive: exchange.keepAlive)
        }
    }

    // MARK: Tap

    private func tapRequest(_ head: HTTPRequestHead, route: Route, routeName: String?, hub: TapHub) {
        guard var exchange, let context else { return }
        let remote = context.channel.remoteAddress
        let source = TapPeer(ip: remote?.ipAddress ?? "0.0.0.0", port: remote?.port ?? 0, metadata: router.tapSourceMetadata)
        let headers = redact(head.headers.map { TapHeader(name: $0.name, value: $0.value) })
        let authority = head.headers.first(name: "host") ?? ""
        exchange.tapSource = source
        exchange.routeName = routeName
        exchange.tapped = hub.requestStarted { id in
            TapEvent(source: source, destination: route.tapDestination, routeMeta: routeName.map { ["route": $0] }, direction: route.direction,
                     http: .requestInit(id: id, method: head.method.rawValue, scheme: "HTTP", authority: authority, path: head.uri, headers: headers))
        }
        self.exchange = exchange
    }

    private func tapEvent(_ exchange: Exchange, _ http: TapHTTPEvent) -> TapEvent {
        TapEvent(source: exchange.tapSource ?? TapPeer(ip: "0.0.0.0", port: 0), destination: exchange.route.tapDestination,
                 routeMeta: exchange.routeName.map { ["route": $0] }, direction: exchange.route.direction, http: http)
    }

    private func tapResponseInit(_ exchange: Exchange, _ tapped: TapHub.Tapped, _ head: HTTPResponseHead) {
        let since = (NIODeadline.now() - exchange.started).nanoseconds
        let headers = redact(head.headers.map { TapHeader(name: $0.name, value: $0.value) })
        tap?.emit(tapped) { id in
            self.tapEvent(exchange, .responseInit(id: id, sinceRequestInitNanos: since, httpStatus: Int(head.status.code), headers: headers))
        }
    }

    private func tapResponseEnd(_ exchange: Exchange, _ tapped: TapHub.Tapped, trailers: HTTPHeaders?, reset: Int?) {
        let now = NIODeadline.now()
        let sinceRequest = (now - exchange.started).nanoseconds
        let sinceResponse = (now - (exchange.responseStarted ?? now)).nanoseconds
        let trailerList = redact((trailers ?? HTTPHeaders()).map { TapHeader(name: $0.name, value: $0.value) })
        tap?.emit(tapped) { id in
            self.tapEvent(exchange, .responseEnd(id: id, sinceRequestInitNanos: sinceRequest, sinceResponseInitNanos: sinceResponse,
                                                 responseBytes: exchange.responseBytes, grpcStatus: exchange.isGRPC ? exchange.grpcStatus : nil,
                                                 resetErrorCode: reset, trailers: trailerList))
        }
    }

    private func recordLatency(_ exchange: Exchange) {
        let elapsed = (NIODeadline.now() - exchange.started).nanoseconds
        registry.recordLatency(exchange.route.http, status: exchange.status, nanoseconds: elapsed)
        if let r = exchange.profileRoute { registry.recordLatency(r, status: exchange.status, nanoseconds: elapsed) }
    }

    private func responseEnded(_ exchange: Exchange, _ c: ResponseClass) {
        router.finished(exchange.route, nanoseconds: (NIODeadline.now() - exchange.started).nanoseconds, failed: c.isFailure)
        registry.responseEnded(exchange.route.http, c)
        if let r = exchange.profileRoute { registry.responseEnded(r, c) }
    }

    private func respondLocally(status: HTTPResponseStatus, message: String, keepAlive: Bool) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(message.utf8.count))
        headers.add(name: "l5d-proxy-error", value: message.trimmingTrailingNewline())
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: message)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    private func closeUpstream() {
        if let upstream {
            self.upstream = nil
            upstream.close(promise: nil)
        }
        upstreamConnection?.close(promise: nil)
        upstreamConnection = nil
        upstreamHandler = nil
        upstreamReady = false
        upstreamEndpoint = nil
    }

    /// Gives the upstream connection back to the pool when it is open and kept alive, else closes
    /// it. Callers know it is idle: HTTP/1.1 pipelining assistance hands this handler the next
    /// request only after the last response ended, and a closing client with nothing in flight.
    private func releaseUpstream() {
        guard !http2 else {
            closeUpstream()  // an HTTP/2 stream is not reused: the next request gets its own
            return
        }
        guard let upstream, let handler = upstreamHandler, let endpoint = upstreamEndpoint,
              let pool, upstream.isActive, upstreamReady, upstreamReusable else {
            closeUpstream()
            return
        }
        handler.owner = nil
        pool.put(endpoint, UpstreamPool.Idle(channel: upstream, handler: handler))
        self.upstream = nil
        upstreamHandler = nil
        upstreamReady = false
        upstreamEndpoint = nil
    }

    private func adopt(_ pooled: UpstreamPool.Idle, endpoint: HostPort) {
        pooled.handler.owner = self
        upstream = pooled.channel
        upstreamHandler = pooled.handler
        upstreamEndpoint = endpoint
        upstreamReady = true
        upstreamReusable = true
    }
}

/// The upstream side of a `ProxyHandler`: hands response parts and closure back to it.
/// Both channels share one event loop, so no locking is needed. While pooled it has no owner:
/// anything the upstream sends then is unexpected, and the connection is closed.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    weak var owner: ProxyHandler?

    init(owner: ProxyHandler) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            context.close(promise: nil)
            return
        }
        owner.upstreamRead(unwrapInboundIn(data), from: context.channel)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete(context.channel)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        owner?.upstreamFailed(context.channel, error)
        context.close(promise: nil)
    }
}

/// Idle keep-alive upstream connections of one event loop, per endpoint. Only touched on its loop.
final class UpstreamPool {
    struct Idle {
        let channel: any Channel
        let handler: UpstreamHandler
        var since: NIODeadline = .now()
    }

    private var idle: [HostPort: [Idle]] = [:]
    let maxIdlePerEndpoint: Int
    /// Idle connections older than this are closed (a burst's extra connections do not stay forever).
    let idleTimeout: TimeAmount

    init(maxIdlePerEndpoint: Int = 64, idleTimeout: TimeAmount = .seconds(10)) {
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.idleTimeout = idleTimeout
    }

    /// Closes connections idle for longer than `idleTimeout`; returns how many.
    @discardableResult
    func evictExpired(now: NIODeadline = .now()) -> Int {
        var closed = 0
        for (endpoint, list) in idle {
            let keep = list.filter { $0.channel.isActive && now - $0.since < idleTimeout }
            for c in list where c.channel.isActive && now - c.since >= idleTimeout {
                c.channel.close(promise: nil)
                closed += 1
            }
            idle[endpoint] = keep.isEmpty ? nil : keep
        }
        return closed
    }

    /// An open idle connection to `endpoint`, if there is one (closed ones are dropped on the way).
    func take(_ endpoint: HostPort) -> Idle? {
        while let c = idle[endpoint]?.popLast() {
            if c.channel.isActive { return c }
        }
        return nil
    }

    func put(_ endpoint: HostPort, _ c: Idle) {
        var list = idle[endpoint, default: []].filter { $0.channel.isActive }
        if list.count >= maxIdlePerEndpoint {
            c.channel.close(promise: nil)
        } else {
            list.append(c)
        }
        idle[endpoint] = list
    }
}

/// One upstream pool per event loop, for a proxy's handlers (each uses its own loop's pool).
final class UpstreamPools: Sendable {
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])

    /// The pool of `loop`; call on that loop.
    func pool(for loop: any EventLoop) -> UpstreamPool {
        pools.withLockedValue { p in
            let key = ObjectIdentifier(loop)
            if let existing = p[key] { return existing.value }
            let pool = NIOLoopBound(UpstreamPool(), eventLoop: loop)
            p[key] = pool
            let sweep = pool.value.idleTimeout.nanoseconds / 2
            loop.scheduleRepeatedTask(initialDelay: .nanoseconds(sweep), delay: .nanoseconds(sweep)) { _ in
                pool.value.evictExpired()
            }
            return pool.value
        }
    }
}

extension String {
    func trimmingTrailingNewline() -> String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
