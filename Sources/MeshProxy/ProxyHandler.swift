import MeshTap
import NIOCore
import NIOPosix
import NIOHTTP1

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1).
private let hopByHopHeaders = ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authenticate", "proxy-authorization"]

private func stripHopByHop(_ headers: inout HTTPHeaders) {
    // Headers named by Connection are hop-by-hop too.
    for named in headers[canonicalForm: "connection"] where !["close", "keep-alive"].contains(named.lowercased()) {
        headers.remove(name: String(named))
    }
    for name in hopByHopHeaders { headers.remove(name: name) }
}

/// One downstream HTTP/1.1 connection of a proxy listener. Each request is routed, forwarded on
/// an upstream connection owned by this downstream connection (kept alive and reused while the
/// route's endpoint stays the same), and its response streamed back, counted as Linkerd counts:
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
    private var upstreamEndpoint: HostPort?
    private var upstreamReady = false
    private var upstreamReusable = true
    /// Request parts of a rejected request are read and dropped.
    private var discarding = false

    init(router: any Router, registry: MetricsRegistry, tap: TapHub? = nil, connectTimeout: TimeAmount = .seconds(1)) {
        self.router = router
        self.registry = registry
        self.tap = tap
        self.connectTimeout = connectTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
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
            forward(.end(trailers))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            // The client went away before its response ended: the stream failed.
            responseEnded(exchange, .failed("unclassified"))
        }
        exchange = nil
        pending.removeAll()
        closeUpstream()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Requests

    private func startExchange(_ head: HTTPRequestHead) {
        switch router.route(head) {
        case .reject(let status, let message):
            discarding = true
            respondLocally(status: status, message: message, keepAlive: head.isKeepAlive)
        case .forward(let route):
            let profileRoute = router.profileRoute(head)
            registry.requestStarted(route.http)
            if let profileRoute { registry.requestStarted(profileRoute.target) }
            let contentType = head.headers.first(name: "content-type") ?? ""
            exchange = Exchange(route: route, profileRoute: profileRoute?.target, started: .now(), keepAlive: head.isKeepAlive,
                                isGRPC: contentType.hasPrefix("application/grpc"))
            if let tap, tap.hasSubscribers { tapRequest(head, route: route, routeName: profileRoute?.name, hub: tap) }
            var upstreamHead = head
            upstreamHead.version = .http1_1
            stripHopByHop(&upstreamHead.headers)
            pending.removeAll(keepingCapacity: true)
            if let upstream, upstream.isActive, upstreamReady, upstreamReusable, upstreamEndpoint == route.endpoint {
                upstream.write(HTTPClientRequestPart.head(upstreamHead), promise: nil)
            } else {
                closeUpstream()
                pending.append(.head(upstreamHead))
                connect(to: route)
            }
        }
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
        upstreamEndpoint = route.endpoint
        upstreamReady = false
        upstreamReusable = true
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(registry: registry, target: connection))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
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
            do {
                try channel.pipeline.syncOperations.addHandler(UpstreamHandler(owner: self))
            } catch {
                channel.close(promise: nil)
                failExchange(error: "unclassified", status: .badGateway, message: "meshproxy: upstream \(endpoint) failed: \(error)\n")
                return
            }
            upstream = channel
            upstreamReady = true
            let parts = pending
            pending.removeAll()
            for part in parts { channel.write(part, promise: nil) }
            channel.flush()
        case .failure(let error):
            guard upstreamEndpoint == endpoint, upstream == nil else { return }
            upstreamEndpoint = nil
            let timedOut = "\(error)".lowercased().contains("timeout") || error is ChannelError && (error as! ChannelError) == .connectTimeout(connectTimeout)
            failExchange(error: timedOut ? "timeout" : "unclassified",
                         status: timedOut ? .gatewayTimeout : .badGateway,
                         message: "meshproxy: cannot connect to \(endpoint): \(error)\n")
        }
    }

    // MARK: Responses

    fileprivate func upstreamRead(_ part: HTTPClientResponsePart, from channel: any Channel) {
        guard channel === upstream, var exchange, let context else { return }
        switch part {
        case .head(var head):
            exchange.status = Int(head.status.code)
            if exchange.isGRPC, let code = head.headers.first(name: "grpc-status").flatMap(Int.init) {
                exchange.grpcStatus = code
            }
            upstreamReusable = head.isKeepAlive
            stripHopByHop(&head.headers)
            head.version = .http1_1
            if !exchange.keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
            exchange.responseHeadSent = true
            exchange.responseStarted = .now()
            if let tapped = exchange.tapped { tapResponseInit(exchange, tapped, head) }
            self.exchange = exchange
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body):
            exchange.responseBytes += UInt64(body.readableBytes)
            if !exchange.latencyRecorded {
                exchange.latencyRecorded = true
                recordLatency(exchange)
            }
            self.exchange = exchange
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers):
            if !exchange.latencyRecorded { recordLatency(exchange) }
            if exchange.isGRPC, exchange.grpcStatus == nil, let code = trailers?.first(name: "grpc-status").flatMap(Int.init) {
                exchange.grpcStatus = code
            }
            let status = exchange.status ?? 0
            responseEnded(exchange, exchange.isGRPC ? .grpc(status: status, grpcStatus: exchange.grpcStatus) : .http(status: status))
            if let tapped = exchange.tapped { tapResponseEnd(exchange, tapped, trailers: trailers, reset: nil) }
            self.exchange = nil
            let keepAlive = exchange.keepAlive
            if !upstreamReusable { closeUpstream() }
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
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
        upstreamReady = false
        upstreamEndpoint = nil
    }
}

/// The upstream side of a `ProxyHandler`: hands response parts and closure back to it.
/// Both channels share one event loop, so no locking is needed.
private final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private weak var owner: ProxyHandler?

    init(owner: ProxyHandler) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.upstreamRead(unwrapInboundIn(data), from: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension String {
    func trimmingTrailingNewline() -> String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
