import HTTPWire
import MeshTap
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import MeshIdentity

/// One downstream HTTP/1 connection of a proxy listener, handled as bytes. Each request head is
/// found and parsed in place (`HTTPWire`, the request-smuggling boundary), its framing decided
/// by the proxy, and the head forwarded as the bytes it came as, with the few rewrites a proxy
/// makes; its body follows as the slices it was read in (chunks framed again), on a keep-alive
/// upstream connection taken from the event loop's pool (or opened). The response comes back the
/// same way (`ProxyResponses.swift`), framed for the client's HTTP version. Each side is read only
/// while the other can take what is read; a pipelined request waits, unread, for the response
/// before it. An upstream connection goes back to the pool only after its request and response
/// both ended.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let router: any Router
    let registry: MetricsRegistry
    let recorder: ExchangeRecorder
    let connectTimeout: TimeAmount
    var context: ChannelHandlerContext?
    var exchange: HTTP1Exchange?
    /// The client's bytes read and not yet taken.
    var inbound: ByteBuffer?
    var reading = RequestReader.head(RequestHeadParser.Scan())
    /// Reading from the client is stopped (backpressure, or a pipelined request waits).
    private var clientReadStopped = false
    /// `takeInbound` is running.
    private var taking = false
    /// The body being read is dropped, not forwarded (a refused request's, or one answered early).
    var discardingBody = false
    /// The upstream's bytes read and not yet taken.
    var upstreamInbound: ByteBuffer?
    let pools: PerEventLoop<UpstreamPool>?
    /// The upstream connection (set up with the event loop's pool once the handler is added).
    var link = UpstreamLink(pool: nil)
    /// The event loop's batched flushes (`TickFlusher`); without one, flushes go at once.
    var flusher: TickFlusher?
    /// The response went out before the request's body was read: the connection closes once the
    /// response is flushed.
    var closingAfterEarlyResponse = false
    /// Exchanges started on this connection.
    var exchanges = 0
    /// Bytes written downstream, or upstream, since the last flush.
    var downstreamUnflushed = false
    var upstreamUnflushed = false
    /// The client's identity, once it proved one over mTLS.
    var peerIdentity: String?
    /// The proxy is shutting down: this connection closes after the response in flight.
    var draining = false
    let identity: ProxyIdentity?
    /// The listener takes mTLS: the client's identity is read from its TLS handler.
    let acceptsMTLS: Bool
    /// A keep-alive connection idle this long between requests is closed.
    let idleTimeout: TimeAmount
    /// A request's head must have all arrived this long after its first bytes (slowloris).
    let headerTimeout: TimeAmount
    let direction: String
    var idleTimer: Scheduled<Void>?
    var headerTimer: Scheduled<Void>?
    /// When the last exchange ended (or the connection began): the idle timer checks it, so a busy
    /// connection is not rescheduled on every request.
    var lastActive = NIODeadline.now()
    /// Buffers used again for each exchange's heads.
    var heads = HeadBuffers()
    /// The connection's `tcp_*` counting, once this handler took it over from
    /// `ConnectionMetricsHandler` (plaintext: the bytes read here are the socket's).
    var counter: ConnectionCounter?
    private var countingSettled = false

    init(router: any Router, registry: MetricsRegistry, tap: TapHub? = nil, pools: PerEventLoop<UpstreamPool>? = nil,
         connectTimeout: TimeAmount = .seconds(1), identity: ProxyIdentity? = nil, acceptsMTLS: Bool = false,
         idleTimeout: TimeAmount = .seconds(60), headerTimeout: TimeAmount = .seconds(10), direction: String = "inbound") {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
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
        let pool = pools?.value(on: context.eventLoop)
        link = UpstreamLink(pool: pool)
        flusher = pool?.flusher
        armIdleTimer(context, in: idleTimeout)
        // Added once the first bytes arrived, after any TLS handshake: read the peer's identity now.
        if acceptsMTLS { peerIdentity = peerIdentityName(of: context.channel) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        headerTimer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if countingSettled {
            counter?.read(bytes.readableBytes)
        } else {
            // These first bytes were counted on their way here.
            countingSettled = true
            if (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) == nil {
                counter = ConnectionMetricsHandler.takeOver(on: context.channel)
            }
        }
        lastActive = .now()
        if var held = inbound, held.readableBytes > 0 {
            held.writeBuffer(&bytes)
            inbound = held
        } else {
            inbound = bytes
        }
        takeInbound()
    }

    /// The client can take more: read from the upstream again.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.read(true) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter?.closed()
        if let exchange {
            exchange.deadline?.cancel()
            // The client went away before its response ended: the stream failed, but not
            // through any fault of the endpoint's.
            recorder.failed(exchange.facts, error: .unclassified, localStatus: nil, endpointFailed: false)
        }
        let idle = exchange == nil && betweenRequests
        exchange = nil
        reading = .lingering
        inbound = nil
        if idle { link.release() } else { link.close() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // (a refused handshake is counted by HTTPVersionDetector, before this joins)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainEvent {
            draining = true
            if exchange == nil {
                context.flush()  // a response that ended this tick may still wait for its flush (TickFlusher)
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// No request is being read: the next head (if any of it came) is searched for.
    var betweenRequests: Bool {
        if case .head = reading { return true }
        return false
    }

    // MARK: Requests

    /// Takes what the client sent, as far as the connection's state allows: a head starts an
    /// exchange, body bytes go upstream (or are dropped), and a pipelined request waits.
    func takeInbound() {
        // Called again from within (an exchange that ended at once): the loop already running goes on.
        guard !taking else { return }
        taking = true
        defer {
            taking = false
            if inbound?.readableBytes == 0 { inbound = nil }
            if upstreamUnflushed {
                upstreamUnflushed = false
                link.flush()
            }
        }
        while let context, var bytes = inbound, bytes.readableBytes > 0 {
            switch reading {
            case .lingering:
                inbound = nil
                return
            case .awaitingResponse:
                // A pipelined request: it waits, and so does reading, until the response ended.
                readClient(false)
                return
            case .head(var scan):
                let length: Int?
                do {
                    length = try bytes.withUnsafeReadableBytes { try RequestHeadParser.headLength($0, &scan) }
                } catch {
                    refuse(error as? WireRefusal ?? WireRefusal(400, "\(error)"))
                    return
                }
                guard let length else {
                    reading = .head(scan)
                    armHeaderTimer(context)
                    return
                }
                heads.read(length, from: &bytes)
                inbound = bytes
                headerTimer?.cancel()
                headerTimer = nil
                startExchange(heads.read)
                heads.trim()
            case .length(let remaining):
                let take = Int(min(Int64(bytes.readableBytes), remaining))
                let slice = bytes.readSlice(length: take)!
                inbound = bytes
                reading = .length(remaining: remaining - Int64(take))
                if !discardingBody { forward(slice) }
                if remaining == Int64(take) { requestEnded() }
            case .chunked(var reader):
                var framed: ByteBuffer?
                let dropping = discardingBody
                let used: Int
                do {
                    used = try bytes.withUnsafeReadableBytes { raw in
                        try reader.read(raw) { range in
                            if !dropping { appendChunk(&framed, raw, range, allocator: context.channel.allocator) }
                        }
                    }
                } catch {
                    refuseBody(error as? WireRefusal ?? WireRefusal(400, "\(error)"))
                    return
                }
                bytes.moveReaderIndex(forwardBy: used)
                inbound = bytes
                if reader.isDone, !dropping { appendLastChunk(&framed, trailers: reader.trailers, allocator: context.channel.allocator) }
                reading = reader.isDone ? .awaitingResponse : .chunked(reader)
                if let framed { forward(framed) }
                if reader.isDone { requestEnded() }
            }
        }
    }

    /// A request head arrived: parsed, planned, routed, and sent upstream.
    private func startExchange(_ bytes: [UInt8]) {
        let head: RequestHead
        let plan: RequestPlan
        do {
            // An inbound listener takes requests from other proxies, which may have added fields.
            let maxFields = RequestHeadParser.maxFields + (direction == "inbound" ? RequestHeadParser.proxyAddedFields : 0)
            head = try RequestHeadParser.parse(bytes, maxFields: maxFields, reusing: &heads.fields)
            plan = try head.plan()
        } catch {
            refuse(error as? WireRefusal ?? WireRefusal(400, "\(error)"))
            return
        }
        let line = RequestLine(method: head.methodText, uri: head.targetText, host: plan.host)
        let route: Route
        switch router.route(line, peer: peerIdentity) {
        case .reject(let status, let message):
            // The body is read and dropped; the connection goes on if the client wants it to.
            startBody(plan.framing, discarding: true)
            respondLocally(status: status, message: message, keepAlive: plan.keepAlive)
            if case .awaitingResponse = reading { requestEnded() }
            return
        case .forward(let r):
            route = r
        }
        // One request seen by two proxies is told apart by the id the outbound stamps; an inbound
        // proxy shows it to tap but does not pass it on.
        let tapID = route.direction == .outbound ? TapIDs.next() : nil
        heads.built.removeAll(keepingCapacity: true)
        head.forwarded(plan, authority: route.authority ?? "\(route.endpoint)", extra: tapID.map { [(tapIDField, $0)] } ?? [],
                       dropping: tapID == nil ? [tapIDField] : [], into: &heads.built)
        let channel = context?.channel
        let facts = recorder.begin(
            route, profile: router.profileRoute(line), isGRPC: head.first("content-type", hasPrefix: "application/grpc"),
            request: TappedRequest(method: line.method, scheme: "HTTP", authority: plan.host ?? "", path: line.uri,
                                   headers: tapHeaders(head, tapID: tapID)),
            source: TapPeer(ip: channel?.remoteAddress?.ipAddress ?? "0.0.0.0", port: channel?.remoteAddress?.port ?? 0,
                            metadata: route.tapSource ?? router.tapSourceMetadata),
            at: lastActive)  // when the head's last bytes were read
        exchanges += 1
        let exchange = HTTP1Exchange(facts: facts, number: exchanges, keepAlive: plan.keepAlive, clientMinor: head.minorVersion,
                                     isHead: line.method == "HEAD")
        exchange.upgrade = plan.upgrade != nil
        if let timeout = route.timeout, let context {
            let number = exchanges
            exchange.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { self.timedOut(number, after: timeout) }
        }
        if plan.expectsContinue, let context {
            // The proxy reads the body as it forwards it: the client may send it now.
            writeClient(context, context.channel.allocator.buffer(string: "HTTP/1.1 100 Continue\r\n\r\n"), flush: true)
        }
        let buffer = HeadBuffers.refill(&heads.upstream, with: heads.built)
        // A bodiless idempotent request may be tried again on a 5xx: keep its head.
        let bodiless = plan.framing == .none || plan.framing == .length(0)
        if route.retries > 0, bodiless, ["GET", "HEAD", "OPTIONS", "DELETE"].contains(line.method) {
            exchange.retryHead = buffer
            exchange.retriesLeft = route.retries
            router.deposit(route)
        }
        self.exchange = exchange
        startBody(plan.framing, discarding: false)
        dispatch(buffer, route: route)
        if case .awaitingResponse = reading { requestEnded() }
    }

    /// Reads the body framed as `framing` next (a bodiless request has ended at once).
    private func startBody(_ framing: WireFraming, discarding: Bool) {
        discardingBody = discarding
        switch framing {
        case .none, .length(0): reading = .awaitingResponse
        case .length(let n): reading = .length(remaining: n)
        case .chunked: reading = .chunked(ChunkedBodyReader())
        }
    }

    /// The client's request has all been read.
    func requestEnded() {
        let dropped = discardingBody
        discardingBody = false
        if closingAfterEarlyResponse {
            reading = .lingering
            context?.close(promise: nil)
            return
        }
        if !dropped, exchange != nil {
            exchange?.requestEnded = true
            reading = .awaitingResponse
        } else {
            reading = .awaitingResponse
            nextRequest()
        }
    }

    /// The exchange is over and the connection goes on: a pipelined request that waited is taken
    /// now, and the client read from again.
    func nextRequest() {
        guard case .awaitingResponse = reading, let context else { return }
        reading = .head(RequestHeadParser.Scan())
        takeInbound()
        if case .head = reading { readClient(true) }
    }

    /// Sends a request head to `route`'s endpoint: on the connection this client already has to
    /// it, a pooled one, or a new one (the head waits meanwhile).
    func dispatch(_ head: ByteBuffer, route: Route) {
        // A meshed peer's connection was made with a certificate of this proxy's that is no
        // longer valid: no more requests on it (the peer reconnects, and is refused TLS until
        // a new certificate arrives).
        if peerIdentity != nil, let identity, identity.usable == nil {
            draining = true
            failExchange(error: .tls, status: .serviceUnavailable,
                         message: "meshproxy: this proxy's certificate is not valid now: \(identity.notReadyReason ?? "none")\n")
            return
        }
        let key = route.upstreamKey(mtls: identity != nil)
        // Without a valid certificate no mTLS connection is reused; the new one fails as TLS.
        let reuse = key.identity == nil || identity?.usable != nil
        if link.send(head, to: key, owner: self, reuse: reuse) { upstreamUnflushed = true } else { connect(to: route, key: key) }
    }

    /// Sends bytes of the client's request upstream. While the upstream cannot take more (or is
    /// still connecting), the client is not read from: at most a socket buffer's worth waits.
    private func forward(_ bytes: ByteBuffer) {
        guard exchange != nil else { return }
        upstreamUnflushed = true
        if !link.forward(bytes) { readClient(false) }
    }

    /// The upstream can take more of the request: read from the client again.
    func upstreamWritabilityChanged(_ channel: any Channel) {
        guard link.carries(channel), channel.isWritable else { return }
        if case .awaitingResponse = reading, inbound != nil { return }  // a pipelined request waits
        readClient(true)
    }

    /// Starts or stops reading from the client; only a change costs anything (most exchanges
    /// never stop it).
    func readClient(_ on: Bool) {
        guard clientReadStopped == on, let context else { return }
        clientReadStopped = !on
        setAutoRead(context.channel, on)
    }

    private func connect(to route: Route, key: UpstreamKey) {
        guard let context else { return }
        upstreamBootstrap(route: route, key: key, group: context.eventLoop, registry: registry, identity: identity,
                          connectTimeout: connectTimeout) { _ in }
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
            if channel.isWritable { upstreamWritabilityChanged(channel) } else { readClient(false) }
        case .failure(let error):
            guard link.isConnecting(to: key) else { return }
            link.detach()
            let timedOut = isConnectTimeout(error)
            if isTLSError(error) {
                registry.tlsHandshakeFailed(direction: "outbound", peer: key.identity ?? "")
                failExchange(error: .tls, status: .badGateway, message: "meshproxy: mTLS with \(key.identity ?? "the upstream") failed: \(describeTLS(error))\n")
                return
            }
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

    /// A head the proxy will not forward: nothing of it goes upstream, it is answered, and the
    /// connection closes (its framing cannot be trusted).
    private func refuse(_ refusal: WireRefusal) {
        reading = .lingering
        inbound = nil
        headerTimer?.cancel()
        headerTimer = nil
        registry.requestRefused(reason: refusal.status == 431 ? "headers" : "framing")
        respondLocally(status: HTTPResponseStatus(statusCode: refusal.status), message: "meshproxy: \(refusal.reason)\n", keepAlive: false)
    }

    /// A malformed chunked body, after its head went upstream: the exchange fails and the
    /// connection closes.
    private func refuseBody(_ refusal: WireRefusal) {
        reading = .lingering
        inbound = nil
        registry.requestRefused(reason: "framing")
        if exchange != nil {
            link.close()
            failExchange(error: .unclassified, status: HTTPResponseStatus(statusCode: refusal.status), message: "meshproxy: \(refusal.reason)\n")
        } else if let context {
            lingerThenClose(context)  // a body being dropped: its answer went out already
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
            var waitingForResponse = false
            if exchange != nil, case .awaitingResponse = reading { waitingForResponse = true }
            guard !waitingForResponse, idle >= idleTimeout else {
                armIdleTimer(context, in: waitingForResponse ? idleTimeout : idleTimeout - idle)
                return
            }
            if exchange == nil, betweenRequests {
                registry.connectionTimedOut(direction: direction, reason: "idle")
                context.close(promise: nil)
            } else {
                registry.connectionTimedOut(direction: direction, reason: "body")
                link.close()
                guard exchange != nil else {
                    context.close(promise: nil)  // a refused request's body, being dropped
                    return
                }
                reading = .lingering
                failExchange(error: .timeout, status: .requestTimeout,
                             message: "meshproxy: the request's body stalled for \(idleTimeout.nanoseconds / 1_000_000) ms\n")
            }
        }
    }

    /// Cuts a client that takes longer than `headerTimeout` to send a request's head once it has
    /// sent some of it (a slowloris): 408 and close. An idle keep-alive connection is left alone.
    private func armHeaderTimer(_ context: ChannelHandlerContext) {
        guard headerTimer == nil else { return }
        headerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: headerTimeout) { [self] in
            headerTimer = nil
            guard betweenRequests, (inbound?.readableBytes ?? 0) > 0, context.channel.isActive else { return }
            reading = .lingering
            inbound = nil
            let response = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
            writeClient(context, context.channel.allocator.buffer(string: response), flush: true)
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Flushes the client's connection at the end of this tick (`TickFlusher`).
    func flushClient(_ context: ChannelHandlerContext) {
        if let flusher { flusher.flush(context.channel) } else { context.flush() }
    }

    /// Writes to the client, counted when this handler does the counting.
    @discardableResult
    func writeClient(_ context: ChannelHandlerContext, _ bytes: ByteBuffer, flush: Bool = false) -> EventLoopFuture<Void> {
        counter?.wrote(bytes.readableBytes)
        return flush ? context.writeAndFlush(wrapOutboundOut(bytes)) : context.write(wrapOutboundOut(bytes))
    }

    /// The client may still be sending a body the proxy will not forward. Closing now would
    /// reset the connection and could lose the response on its way, so the proxy closes its side
    /// only (the client sees the response end, and closes), and reads and drops the rest for a
    /// moment at most (as servers linger), then closes.
    func lingerThenClose(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        switch reading {
        case .head, .awaitingResponse:
            if (inbound?.readableBytes ?? 0) == 0 {
                context.close(promise: nil)
                return
            }
        case .length, .chunked, .lingering:
            break
        }
        reading = .lingering
        inbound = nil
        closingAfterEarlyResponse = true
        readClient(true)
        context.close(mode: .output, promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
    }
}

/// The buffers one connection uses again for each exchange's heads: the head as read (parsed in
/// place), the head as built to forward, and the buffers written with it. Once NIO has written a
/// buffer it holds the only reference, so clearing it reuses its storage: a request through the
/// proxy then allocates nothing for its heads. A buffer grown past `keptCapacity` (a huge head)
/// is let go after use, so an idle connection holds little.
struct HeadBuffers {
    var read: [UInt8] = []
    var fields: [WireField] = []
    var built: [UInt8] = []
    var upstream: ByteBuffer?
    var downstream: ByteBuffer?
    static let keptCapacity = 4096

    /// Moves the head of `length` bytes at the start of `bytes` into `read`.
    mutating func read(_ length: Int, from bytes: inout ByteBuffer) {
        read.removeAll(keepingCapacity: true)
        bytes.withUnsafeReadableBytes { read.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<length])) }
        bytes.moveReaderIndex(forwardBy: length)
    }

    /// `buffer` emptied (its storage reused when nothing else holds it) and filled with
    /// `bytes`, then `more`.
    static func refill(_ buffer: inout ByteBuffer?, with bytes: [UInt8], then more: ByteBuffer? = nil) -> ByteBuffer {
        var b = buffer ?? ByteBuffer()
        buffer = nil  // the only reference while it is cleared, when NIO let go of it
        b.clear(minimumCapacity: bytes.count + (more?.readableBytes ?? 0))
        b.writeBytes(bytes)
        if let more { b.writeImmutableBuffer(more) }
        if b.capacity <= keptCapacity { buffer = b }
        return b
    }

    /// Lets go of the arrays a huge head grew.
    mutating func trim() {
        if read.capacity > Self.keptCapacity { read = [] }
        if built.capacity > Self.keptCapacity { built = [] }
        if fields.capacity > 64 { fields = [] }
    }
}

/// The field the outbound proxy stamps on each request for tap (`MeshTap.tapIDHeader`).
let tapIDField: StaticString = "l5d-tap-id"

/// Appends one chunk (`size CRLF data CRLF`) holding `raw[range]` to `framed`.
func appendChunk(_ framed: inout ByteBuffer?, _ raw: UnsafeRawBufferPointer, _ range: Range<Int>, allocator: ByteBufferAllocator) {
    guard !range.isEmpty else { return }
    var out = framed ?? allocator.buffer(capacity: range.count + 24)
    out.writeString(String(range.count, radix: 16))
    out.writeStaticString("\r\n")
    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range]))
    out.writeStaticString("\r\n")
    framed = out
}

/// Appends the last chunk and the trailers (each line ending in CRLF) to `framed`.
func appendLastChunk(_ framed: inout ByteBuffer?, trailers: [UInt8], allocator: ByteBufferAllocator) {
    var out = framed ?? allocator.buffer(capacity: trailers.count + 8)
    out.writeStaticString("0\r\n")
    out.writeBytes(trailers)
    out.writeStaticString("\r\n")
    framed = out
}

/// A head's fields as tap shows them; `tapID` replaces any id the request came with.
func tapHeaders(_ head: some WireHead, tapID: String? = nil) -> [TapHeader] {
    var out: [TapHeader] = []
    out.reserveCapacity(head.fields.count + 1)
    for f in head.fields where tapID == nil || !head.field(f, isNamed: tapIDField) {
        out.append(TapHeader(name: head.name(f), value: head.value(f)))
    }
    if let tapID { out.append(TapHeader(name: tapIDHeader, value: tapID)) }
    return out
}
