import MeshTap
import NIOCore
import NIOPosix
import NIOHTTP1
import NIOSSL
import MeshIdentity

/// One downstream HTTP/1 connection of a proxy listener. Each request's framing is decided by the
/// proxy (`forwardedRequest`), the request routed and forwarded on a keep-alive upstream
/// connection taken from the event loop's pool (or opened), and its response streamed back in
/// the client's HTTP version. Each side is read only while the other can take what is read. An
/// upstream connection goes back to the pool only after its request and response both ended.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: any Router
    private let registry: MetricsRegistry
    private let recorder: ExchangeRecorder
    private let connectTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var exchange: HTTP1Exchange?
    private var request = HTTP1RequestPhase.complete
    private let pools: PerEventLoop<UpstreamPool>?
    /// The upstream connection (set up with the event loop's pool once the handler is added).
    private var link = UpstreamLink(pool: nil)
    /// The response went out before the request's body was read: the connection closes once the
    /// response is flushed.
    private var closingAfterEarlyResponse = false
    /// Exchanges started on this connection.
    private var exchanges = 0
    /// Response parts written downstream since the last flush.
    private var downstreamUnflushed = false
    /// The client's identity, once it proved one over mTLS.
    private var peerIdentity: String?
    /// The proxy is shutting down: this connection closes after the response in flight.
    private var draining = false
    private let identity: ProxyIdentity?
    /// The listener takes mTLS: the client's identity is read from its TLS handler.
    private let acceptsMTLS: Bool
    /// A keep-alive connection idle this long between requests is closed.
    private let idleTimeout: TimeAmount
    private let direction: String
    private var idleTimer: Scheduled<Void>?
    /// When the last exchange ended (or the connection began): the idle timer checks it, so a busy
    /// connection is not rescheduled on every request.
    private var lastActive = NIODeadline.now()

    init(router: any Router, registry: MetricsRegistry, tap: TapHub? = nil, pools: PerEventLoop<UpstreamPool>? = nil,
         connectTimeout: TimeAmount = .seconds(1), identity: ProxyIdentity? = nil, acceptsMTLS: Bool = false,
         idleTimeout: TimeAmount = .seconds(60), direction: String = "inbound") {
        self.idleTimeout = idleTimeout
        self.direction = direction
        self.router = router
        self.acceptsMTLS = acceptsMTLS
        self.identity = identity
        self.pools = pools
        self.registry = registry
        self.recorder = ExchangeRecorder(registry: registry, router: router, tap: tap)
        self.connectTimeout = connectTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        link = UpstreamLink(pool: pools?.value(on: context.eventLoop))
        armIdleTimer(context, in: idleTimeout)
        // Added once the first bytes arrived, after any TLS handshake: read the peer's identity now.
        if acceptsMTLS { peerIdentity = peerIdentityName(of: context.channel) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = .forwarding
            lastActive = .now()
            startExchange(head)
        case .body(let body):
            lastActive = .now()
            guard request != .discarding else { return }
            forward(.body(.byteBuffer(body)))
        case .end(let trailers):
            let dropped = request == .discarding
            request = .complete
            guard !dropped else {
                if closingAfterEarlyResponse { context.close(promise: nil) }
                return
            }
            exchange?.requestEnded = true
            forward(.end(trailers))
        }
    }

    /// The client can take more: read from the upstream again.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { setAutoRead(link.channel, true) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            exchange.deadline?.cancel()
            // The client went away before its response ended: the stream failed, but not
            // through any fault of the endpoint's.
            recorder.failed(exchange.facts, error: .unclassified, localStatus: nil, endpointFailed: false)
        }
        let idle = exchange == nil && request == .complete
        exchange = nil
        if idle { link.release() } else { link.close() }
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
        var head = head
        var forwarded: ForwardedRequest
        switch forwardedRequest(head) {
        case .failure(let refusal):
            // Its framing cannot be trusted: nothing of it goes upstream, and the connection closes.
            request = .discarding
            registry.requestRefused(reason: refusal.status == .requestHeaderFieldsTooLarge ? "headers" : "framing")
            respondLocally(status: refusal.status, message: "meshproxy: \(refusal.reason)\n", keepAlive: false)
            return
        case .success(let f):
            forwarded = f
        }
        let route: Route
        switch router.route(head, peer: peerIdentity) {
        case .reject(let status, let message):
            request = .discarding
            respondLocally(status: status, message: message, keepAlive: head.isKeepAlive)
            return
        case .forward(let r):
            route = r
        }
        // HTTP/1.0 may leave Host out; the HTTP/1.1 request sent upstream must carry one (RFC 9112 §3.2).
        if headerCount(forwarded.head.headers, "host") == 0 { forwarded.head.headers.add(name: "host", value: route.authority ?? "\(route.endpoint)") }
        // One request seen by two proxies is told apart by the id the outbound stamps.
        if route.direction == .outbound {
            let id = TapIDs.next()
            head.headers.replaceOrAdd(name: tapIDHeader, value: id)
            forwarded.head.headers.replaceOrAdd(name: tapIDHeader, value: id)
        } else if headerCount(forwarded.head.headers, tapIDHeader) > 0 {
            forwarded.head.headers.remove(name: tapIDHeader)
        }
        let remote = context?.channel.remoteAddress
        let facts = recorder.begin(
            route, profile: router.profileRoute(head),
            isGRPC: (head.headers.first(name: "content-type") ?? "").hasPrefix("application/grpc"),
            request: TappedRequest(method: head.method.rawValue, scheme: "HTTP", authority: head.headers.first(name: "host") ?? "",
                                   path: head.uri, headers: head.headers.map { TapHeader(name: $0.name, value: $0.value) }),
            source: TapPeer(ip: remote?.ipAddress ?? "0.0.0.0", port: remote?.port ?? 0, metadata: route.tapSource ?? router.tapSourceMetadata))
        exchanges += 1
        exchange = HTTP1Exchange(facts: facts, number: exchanges, keepAlive: head.isKeepAlive, clientVersion: head.version,
                            upgrade: forwarded.upgrade != nil)
        if let timeout = route.timeout, let context {
            let number = exchanges
            exchange?.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { self.timedOut(number, after: timeout) }
        }
        if forwarded.expectsContinue, let context {
            // The proxy reads the body as it forwards it: the client may send it now.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        // A bodiless idempotent request may be tried again on a 5xx: keep its head.
        let bodiless = forwarded.framing == .none || forwarded.framing == .length(0)
        if route.retries > 0, bodiless, [.GET, .HEAD, .OPTIONS, .DELETE].contains(head.method) {
            exchange?.retryHead = forwarded.head
            exchange?.retriesLeft = route.retries
            router.deposit(route)
        }
        dispatch(forwarded.head, route: route)
    }

    /// Sends a request head to `route`'s endpoint: on the connection this client already has to
    /// it, a pooled one, or a new one (the head waits meanwhile).
    private func dispatch(_ upstreamHead: HTTPRequestHead, route: Route) {
        let key = route.upstreamKey(mtls: identity != nil)
        if !link.send(upstreamHead, to: key, owner: self) { connect(to: route, key: key) }
    }

    /// The attempt that answered 5xx has ended: count it, then send the request again, routed
    /// afresh (P2C may well pick another endpoint).
    private func retry(_ exchange: HTTP1Exchange) {
        guard var exchange = Optional(exchange), let head = exchange.retryHead else { return }
        var attempt = exchange.facts
        attempt.tapped = nil  // tap sees the request once, with its final response
        recorder.ended(attempt, .http(status: exchange.facts.status ?? 500))
        if !link.isReusable { link.close() }
        guard case .forward(let next) = router.route(head, peer: peerIdentity) else {
            self.exchange = exchange
            failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: no route left for a retry\n")
            return
        }
        registry.requestStarted(next.http)
        exchange.facts.route = next
        exchange.facts.status = nil
        exchange.facts.latencyRecorded = false
        exchange.response = .waiting
        self.exchange = exchange
        dispatch(head, route: next)
        if exchange.requestEnded { forward(.end(nil)) }  // else the client's own end follows
    }

    /// Sends a part of the client's request upstream. While the upstream cannot take more (or
    /// is still connecting), the client is not read from: at most a socket buffer's worth waits.
    private func forward(_ part: HTTPClientRequestPart) {
        guard exchange != nil else { return }
        if !link.forward(part), let context { setAutoRead(context.channel, false) }
    }

    /// The upstream can take more of the request: read from the client again.
    func upstreamWritabilityChanged(_ channel: any Channel) {
        guard link.carries(channel), let context else { return }
        if channel.isWritable { setAutoRead(context.channel, true) }
    }

    private func connect(to route: Route, key: UpstreamKey) {
        guard let context else { return }
        upstreamBootstrap(route: route, key: key, group: context.eventLoop, registry: registry, identity: identity,
                          connectTimeout: connectTimeout) { channel in
            // Bytes an upstream sends right after a `101` are kept for the tunnel.
            try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
        }
        .connect(host: route.endpoint.host, port: route.endpoint.port)
        .assumeIsolated()
        .whenComplete { result in
            self.connected(result, key: key)
        }
    }

    private func connected(_ result: Result<any Channel, any Error>, key: UpstreamKey) {
        switch result {
        case .success(let channel):
            guard context != nil, link.isConnecting(to: key) else {
                channel.close(promise: nil)
                return
            }
            let handler = UpstreamHandler(owner: self)
            do {
                try channel.pipeline.syncOperations.addHandler(handler)
            } catch {
                channel.close(promise: nil)
                link.detach()
                failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: upstream \(key.endpoint) failed: \(error)\n")
                return
            }
            _ = link.attach(channel, handler: handler, key: key)
            if let context { setAutoRead(context.channel, channel.isWritable) }
        case .failure(let error):
            guard link.isConnecting(to: key) else { return }
            link.detach()
            let timedOut = isConnectTimeout(error)
            failExchange(error: timedOut ? .timeout : .unclassified, status: timedOut ? .gatewayTimeout : .badGateway,
                         message: "meshproxy: cannot connect to \(key.endpoint): \(error)\n")
        }
    }

    /// The route's timeout passed before the response began: 504, and the upstream connection,
    /// which may still answer, is closed rather than reused.
    private func timedOut(_ number: Int, after timeout: TimeAmount) {
        guard let exchange, exchange.number == number, !exchange.responseBegan else { return }
        link.close()
        failExchange(error: .timeout, status: .gatewayTimeout, message: "meshproxy: request timed out after \(timeout.nanoseconds / 1_000_000) ms\n")
    }

    // MARK: Responses

    func upstreamRead(_ part: HTTPClientResponsePart, from channel: any Channel) {
        guard link.carries(channel), var exchange, let context else { return }
        switch part {
        case .head(let upstreamHead):
            exchange.facts.status = Int(upstreamHead.status.code)
            if upstreamHead.status.code >= 500, exchange.retriesLeft > 0, exchange.retryHead != nil {
                if router.withdrawRetry(exchange.facts.route) {
                    exchange.retriesLeft -= 1
                    exchange.response = .discardingAttempt
                    link.setReusable(upstreamHead.isKeepAlive)
                    registry.retry(authority: exchange.facts.route.authority ?? "", result: "retried")
                    self.exchange = exchange
                    return
                }
                registry.retry(authority: exchange.facts.route.authority ?? "", result: "budget_exhausted")
                exchange.retriesLeft = 0
            }
            if exchange.facts.isGRPC, let code = upstreamHead.headers.first(name: "grpc-status").flatMap(Int.init) {
                exchange.facts.grpcStatus = code
            }
            if upstreamHead.status == .switchingProtocols {
                guard exchange.upgrade else {
                    link.setReusable(false)
                    self.exchange = exchange
                    failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: the upstream switched protocols unasked\n")
                    return
                }
                var switching = upstreamHead
                stripHopByHop(&switching.headers)
                switching.headers.add(name: "connection", value: "upgrade")
                switching.headers.add(name: "upgrade", value: upstreamHead.headers.first(name: "upgrade") ?? "websocket")
                exchange.response = .switching(switching)
                exchange.deadline?.cancel()
                recorder.responseBegan(&exchange.facts, status: 101, headers: [])
                self.exchange = exchange
                return
            }
            link.setReusable(upstreamHead.isKeepAlive)
            // Answered before the request's body was read: this connection's framing ends with
            // this response.
            if !exchange.requestEnded { closingAfterEarlyResponse = true }
            let (head, close) = forwardedResponse(upstreamHead, requestVersion: exchange.clientVersion,
                                                  keepAlive: exchange.keepAlive && !draining && !closingAfterEarlyResponse)
            if close { exchange.keepAlive = false }
            exchange.response = .streaming
            exchange.deadline?.cancel()
            exchange.deadline = nil
            recorder.responseBegan(&exchange.facts, status: Int(head.status.code),
                                   headers: head.headers.map { TapHeader(name: $0.name, value: $0.value) })
            self.exchange = exchange
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body):
            guard case .streaming = exchange.response else { return }
            exchange.facts.responseBytes += UInt64(body.readableBytes)
            self.exchange = exchange
            // Flushed when this read from the upstream is done (or at the end): one syscall for
            // what one read brought. While the client cannot take more, the upstream is not read.
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            downstreamUnflushed = true
            if !context.channel.isWritable { setAutoRead(channel, false) }
        case .end(let trailers):
            switch exchange.response {
            case .discardingAttempt:
                retry(exchange)
                return
            case .switching(let switching):
                switchProtocols(exchange, switching, upstream: channel, context: context)
                return
            case .waiting, .streaming:
                break
            }
            exchange.deadline?.cancel()
            if exchange.facts.isGRPC, exchange.facts.grpcStatus == nil, let code = trailers?.first(name: "grpc-status").flatMap(Int.init) {
                exchange.facts.grpcStatus = code
            }
            let status = exchange.facts.status ?? 0
            recorder.ended(exchange.facts, exchange.facts.isGRPC ? .grpc(status: status, grpcStatus: exchange.facts.grpcStatus) : .http(status: status),
                           trailers: (trailers ?? HTTPHeaders()).map { TapHeader(name: $0.name, value: $0.value) })
            self.exchange = nil
            lastActive = .now()
            let keepAlive = exchange.keepAlive && !draining && !closingAfterEarlyResponse
            downstreamUnflushed = false  // the end's flush takes everything
            // The upstream connection is used again only when both messages ended cleanly on it;
            // then it goes back to the loop's pool at once, so an idle keep-alive client holds
            // no upstream connection (nor its buffers) between requests.
            if !link.isReusable || !exchange.requestEnded { link.close() } else { link.release() }
            let early = closingAfterEarlyResponse
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                if early {
                    self.lingerThenClose(context)
                } else if !keepAlive {
                    context.close(promise: nil)
                }
            }
        }
    }

    /// The upstream's `101` ended: from here the two connections are a tunnel of opaque bytes,
    /// and this handler leaves the pipeline.
    private func switchProtocols(_ exchange: HTTP1Exchange, _ switching: HTTPResponseHead, upstream channel: any Channel,
                                 context: ChannelHandlerContext) {
        recorder.ended(exchange.facts, .http(status: 101))
        self.exchange = nil
        link.detach()
        do {
            try startTunnel(client: context.channel, upstream: channel, response: switching)
        } catch {
            channel.close(promise: nil)
            context.close(promise: nil)
        }
    }

    /// The upstream's read is done: what it brought goes to the client now.
    func upstreamReadComplete(_ channel: any Channel) {
        guard link.carries(channel), downstreamUnflushed, let context else { return }
        downstreamUnflushed = false
        context.flush()
    }

    /// The upstream connection failed (a TLS handshake refused, a reset): the request fails with
    /// 502 and its cause, rather than as a bare close.
    func upstreamFailed(_ channel: any Channel, _ error: any Error) {
        guard link.carries(channel), let exchange else { return }
        let tls = isTLSError(error)
        if tls { registry.tlsHandshakeFailed(direction: "outbound", peer: exchange.facts.route.serverIdentity ?? "") }
        link.detach()
        channel.close(promise: nil)
        failExchange(error: tls ? .tls : .unclassified, status: .badGateway,
                     message: tls ? "meshproxy: mTLS with \(exchange.facts.route.serverIdentity ?? "the upstream") failed: \(describeTLS(error))\n"
                                  : "meshproxy: upstream failed: \(error)\n")
    }

    func upstreamClosed(_ channel: any Channel) {
        guard link.carries(channel) else { return }
        link.detach()
        if exchange != nil {
            failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: upstream closed the connection before responding\n")
        }
    }

    /// Ends the current exchange with a proxy-made error response (or, when the response had
    /// already begun, by closing the connection), counted as a failed stream.
    private func failExchange(error: StreamError, status: HTTPResponseStatus, message: String) {
        guard let exchange, let context else { return }
        exchange.deadline?.cancel()
        self.exchange = nil
        recorder.failed(exchange.facts, error: error, localStatus: exchange.responseBegan ? nil : Int(status.code), endpointFailed: true)
        if exchange.responseBegan {
            context.flush()  // what did arrive goes out before the cut
            context.close(promise: nil)
        } else {
            // The request's body may not have been read to its end: then the connection closes.
            respondLocally(status: status, message: message, keepAlive: exchange.keepAlive && exchange.requestEnded)
        }
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
            if !keepAlive { self.lingerThenClose(context) }
        }
    }

    /// A kept-alive connection with no next request within `idleTimeout` of the last one's end
    /// is closed, and so is one whose client stopped sending a request's body for as long (a slow
    /// upload attack); a request waiting for its response is left alone (the route's timeout is
    /// for that). One timer per connection, moved on only when it fires.
    private func armIdleTimer(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            guard context.channel.isActive else { return }
            let idle = NIODeadline.now() - lastActive
            let waitingForResponse = exchange != nil && request == .complete
            guard !waitingForResponse, idle >= idleTimeout else {
                armIdleTimer(context, in: waitingForResponse ? idleTimeout : idleTimeout - idle)
                return
            }
            if exchange == nil, request == .complete {
                registry.connectionTimedOut(direction: direction, reason: "idle")
                context.close(promise: nil)
            } else {
                registry.connectionTimedOut(direction: direction, reason: "body")
                link.close()
                guard exchange != nil else {
                    context.close(promise: nil)  // a refused request's body, being dropped
                    return
                }
                failExchange(error: .timeout, status: .requestTimeout,
                             message: "meshproxy: the request's body stalled for \(idleTimeout.nanoseconds / 1_000_000) ms\n")
            }
        }
    }

    /// The client may still be sending a body the proxy will not forward. Closing now would
    /// reset the connection and could lose the response on its way, so the rest is read and
    /// dropped for a moment (as servers linger), then the connection closes.
    private func lingerThenClose(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if request == .complete {
            context.close(promise: nil)
            return
        }
        request = .discarding
        closingAfterEarlyResponse = true
        setAutoRead(context.channel, true)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
    }
}
