import HTTPWire
import MeshTap
import NIOCore
import NIOHTTP1

/// The upstream half of `ProxyHandler`: response heads found and parsed in place, framed for the
/// client, and their bodies relayed as the slices they were read in (chunks read and framed
/// again); retries, protocol switches, and the proxy's own error responses.
extension ProxyHandler {
    func upstreamRead(_ bytes: ByteBuffer, from channel: any Channel) {
        guard link.carries(channel), exchange != nil else {
            link.setReusable(false)  // bytes nobody asked for: the connection is not used again
            return
        }
        var bytes = bytes
        if var held = upstreamInbound, held.readableBytes > 0 {
            held.writeBuffer(&bytes)
            bytes = held
        }
        upstreamInbound = nil
        takeResponse(&bytes, from: channel)
        if bytes.readableBytes > 0, link.carries(channel) { upstreamInbound = bytes }
    }

    /// Takes the upstream's bytes for the current exchange's response, as far as they go.
    private func takeResponse(_ bytes: inout ByteBuffer, from channel: any Channel) {
        while bytes.readableBytes > 0, let exchange, link.carries(channel) {
            do {
                switch exchange.response {
                case .waiting(var scan):
                    guard let length = try bytes.withUnsafeReadableBytes({ try ResponseHeadParser.headLength($0, &scan) }) else {
                        exchange.response = .waiting(scan)
                        return
                    }
                    heads.read(length, from: &bytes)
                    // An outbound's upstream is often another proxy, which may have added fields.
                    let maxFields = ResponseHeadParser.maxFields + (direction == "outbound" ? RequestHeadParser.proxyAddedFields : 0)
                    try responseHead(ResponseHeadParser.parse(heads.read, maxFields: maxFields, reusing: &heads.fields), rest: &bytes, from: channel)
                    heads.trim()
                case .discardingAttempt(var body):
                    let ended = try relay(&body, &bytes, forwarding: false)
                    exchange.response = .discardingAttempt(body)
                    if ended { retry() }
                case .streaming(var body):
                    let ended = try relay(&body, &bytes, forwarding: true)
                    exchange.response = .streaming(body)
                    if ended { responseEnded(body, upstreamSentMore: bytes.readableBytes > 0) }
                }
            } catch {
                badResponse(error)
                return
            }
        }
    }

    /// A response head arrived: a retry begins, the protocol switches, or it goes to the client.
    private func responseHead(_ head: ResponseHead, rest: inout ByteBuffer, from channel: any Channel) throws {
        guard let exchange, let context else { return }
        if head.status == 101 {
            guard exchange.upgrade else {
                link.setReusable(false)
                failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: the upstream switched protocols unasked\n")
                return
            }
            switchProtocols(head, upstreamLeftover: rest, upstream: channel, context: context)
            rest.moveReaderIndex(to: rest.writerIndex)
            return
        }
        if head.status < 200 {
            // 100 Continue (the proxy sent its own) or 103: the final response follows.
            self.exchange?.response = .waiting(RequestHeadParser.Scan())
            return
        }
        let framing = try head.framing(requestWasHead: exchange.isHead)
        link.setReusable(head.keepAlive && framing != .untilClose)
        exchange.facts.status = head.status
        if head.status >= 500, exchange.retriesLeft > 0, exchange.retryHead != nil {
            if router.withdrawRetry(exchange.facts.route) {
                exchange.retriesLeft -= 1
                exchange.response = .discardingAttempt(ResponseBody(framing, relay: .none))
                registry.retry(authority: exchange.facts.route.authority ?? "", result: "retried")
                self.exchange = exchange
                if framing == .none { retry() }
                return
            }
            registry.retry(authority: exchange.facts.route.authority ?? "", result: "budget_exhausted")
            exchange.retriesLeft = 0
        }
        if exchange.facts.isGRPC, let code = head.first("grpc-status").flatMap(Int.init) { exchange.facts.grpcStatus = code }
        // Answered before the request's body was read: this connection's framing ends with this response.
        if !exchange.requestEnded { closingAfterEarlyResponse = true }
        heads.built.removeAll(keepingCapacity: true)
        let out = head.forwarded(framing, clientMinor: exchange.clientMinor,
                                 keepAlive: exchange.keepAlive && !draining && !closingAfterEarlyResponse, into: &heads.built)
        if out.close { exchange.keepAlive = false }
        var body = ResponseBody(framing, relay: out.relay)
        // A small body that came with its head goes out with it: one write, not two.
        var inline: ByteBuffer?
        if case .length(let n) = framing, n <= Int64(Self.inlineBodyBytes), rest.readableBytes >= Int(n) {
            inline = rest.readSlice(length: Int(n))
            body.reader = .length(remaining: 0)
        }
        let written = HeadBuffers.refill(&heads.downstream, with: heads.built, then: inline)
        let bodyBytes = inline?.readableBytes ?? 0
        exchange.response = .streaming(body)
        exchange.deadline?.cancel()
        exchange.deadline = nil
        recorder.responseBegan(&exchange.facts, status: head.status, headers: tapHeaders(head))
        self.exchange = exchange
        writeDown(written, counting: bodyBytes)
        if framing == .none || bodyBytes > 0 || framing == .length(0) {
            responseEnded(body, upstreamSentMore: rest.readableBytes > 0)
        }
    }

    /// The most body bytes written in the same buffer as the response head.
    static var inlineBodyBytes: Int { 4096 }

    /// Reads the body's bytes from `bytes`, passing them on when `forwarding`; true once it ended.
    private func relay(_ body: inout ResponseBody, _ bytes: inout ByteBuffer, forwarding: Bool) throws -> Bool {
        guard let context else { return false }
        switch body.reader {
        case .none:
            return true
        case .length(let remaining):
            let take = Int(min(Int64(bytes.readableBytes), remaining))
            let slice = bytes.readSlice(length: take)!
            body.reader = .length(remaining: remaining - Int64(take))
            if forwarding { writeDown(slice) }
            return remaining == Int64(take)
        case .untilClose:
            let slice = bytes.readSlice(length: bytes.readableBytes)!
            guard forwarding else { return false }
            if body.relay == .untilClose(chunked: true) {
                var framed: ByteBuffer?
                slice.withUnsafeReadableBytes { appendChunk(&framed, $0, 0..<$0.count, allocator: context.channel.allocator) }
                if let framed { writeDown(framed, counting: slice.readableBytes) }
            } else {
                writeDown(slice)
            }
            return false
        case .chunked(var reader):
            var out: ByteBuffer?
            let rechunk = body.relay == .chunked
            let used = try bytes.withUnsafeReadableBytes { raw in
                try reader.read(raw) { range in
                    guard forwarding else { return }
                    if rechunk {
                        appendChunk(&out, raw, range, allocator: context.channel.allocator)
                    } else {
                        var data = out ?? context.channel.allocator.buffer(capacity: range.count)
                        data.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range]))
                        out = data
                    }
                }
            }
            bytes.moveReaderIndex(forwardBy: used)
            let counted = reader.dataBytes - (body.chunkedBytesCounted)
            body.chunkedBytesCounted = reader.dataBytes
            if reader.isDone, forwarding, rechunk { appendLastChunk(&out, trailers: reader.trailers, allocator: context.channel.allocator) }
            body.reader = .chunked(reader)
            if let out { writeDown(out, counting: Int(counted)) }
            return reader.isDone
        }
    }

    /// Writes response bytes to the client (flushed when the upstream's read is done). While the
    /// client cannot take more, the upstream is not read.
    private func writeDown(_ bytes: ByteBuffer, counting: Int? = nil) {
        guard let context else { return }
        exchange?.facts.responseBytes += UInt64(counting ?? bytes.readableBytes)
        counter?.wrote(bytes.readableBytes)
        context.write(wrapOutboundOut(bytes), promise: nil)
        downstreamUnflushed = true
        if !context.channel.isWritable { link.read(false) }
    }

    /// The response ended: counted, the upstream connection pooled or closed, and the client's
    /// connection goes on to its next request, or closes.
    private func responseEnded(_ body: ResponseBody, upstreamSentMore: Bool) {
        guard let exchange, let context else { return }
        exchange.deadline?.cancel()
        var facts = exchange.facts
        var trailers: [TapHeader] = []
        if case .chunked(let reader) = body.reader, !reader.trailers.isEmpty {
            let fields = reader.trailerFields
            if facts.isGRPC, facts.grpcStatus == nil, let code = fields.first(where: { $0.name.lowercased() == "grpc-status" }).flatMap({ Int($0.value) }) {
                facts.grpcStatus = code
            }
            trailers = fields.map { TapHeader(name: $0.name, value: $0.value) }
        }
        let status = facts.status ?? 0
        let now = NIODeadline.now()
        recorder.ended(facts, facts.isGRPC ? .grpc(status: status, grpcStatus: facts.grpcStatus) : .http(status: status), trailers: trailers, at: now)
        self.exchange = nil
        upstreamInbound = nil
        lastActive = now
        let keepAlive = exchange.keepAlive && !draining && !closingAfterEarlyResponse
        // The upstream connection is used again only when both messages ended cleanly on it;
        // then it goes back to the loop's pool at once, so an idle keep-alive client holds
        // no upstream connection (nor its buffers) between requests.
        if !link.isReusable || !exchange.requestEnded || upstreamSentMore { link.close() } else { link.release(at: now) }
        downstreamUnflushed = false
        if closingAfterEarlyResponse {
            discardingBody = true  // the rest of the request is read and dropped
            writeClient(context, ByteBuffer(), flush: true).assumeIsolated().whenComplete { _ in self.lingerThenClose(context) }
        } else if !keepAlive {
            reading = .lingering
            writeClient(context, ByteBuffer(), flush: true).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            flushClient(context)
            nextRequest()
        }
    }

    /// The attempt that answered 5xx has ended: count it, then send the request again, routed
    /// afresh (P2C may well pick another endpoint).
    private func retry() {
        guard let exchange, let head = exchange.retryHead else { return }
        var attempt = exchange.facts
        attempt.tapped = nil  // tap sees the request once, with its final response
        recorder.ended(attempt, .http(status: exchange.facts.status ?? 500))
        if !link.isReusable { link.close() }
        upstreamInbound = nil
        let line = retryLine(head)
        guard case .forward(let next) = router.route(line, peer: peerIdentity) else {
            failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: no route left for a retry\n")
            return
        }
        registry.requestStarted(next.http)
        exchange.facts.route = next
        exchange.facts.status = nil
        exchange.facts.latencyRecorded = false
        exchange.response = .waiting(RequestHeadParser.Scan())
        self.exchange = exchange
        dispatch(head, route: next)
        if upstreamUnflushed {
            upstreamUnflushed = false
            link.flush()
        }
    }

    /// What routing reads, from the head kept for a retry (the forwarded one: it has a Host).
    private func retryLine(_ head: ByteBuffer) -> RequestLine {
        let bytes = head.readableBytesView
        let parsed = try? RequestHeadParser.parse(Array(bytes), maxFields: .max)
        return RequestLine(method: parsed?.methodText ?? "GET", uri: parsed?.targetText ?? "/", host: parsed?.first("host"))
    }

    /// The upstream's `101`: from here the two connections are a tunnel of opaque bytes, and
    /// this handler leaves the pipeline.
    private func switchProtocols(_ head: ResponseHead, upstreamLeftover: ByteBuffer, upstream channel: any Channel,
                                 context: ChannelHandlerContext) {
        guard let exchange else { return }
        exchange.deadline?.cancel()
        recorder.responseBegan(&exchange.facts, status: 101, headers: [])
        recorder.ended(exchange.facts, .http(status: 101))
        self.exchange = nil
        link.detach()
        let upgrade = head.first("upgrade") ?? "websocket"
        let out = head.forwarded(.none, clientMinor: 1, keepAlive: true, extra: [("connection", "upgrade"), ("upgrade", upgrade)])
        let clientLeftover = inbound
        inbound = nil
        reading = .lingering
        do {
            // The tunnel's handlers count nothing: the connections' counting goes back in front.
            try ConnectionMetricsHandler.restore(counter, on: context.channel)
            counter = nil
            let upstream = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
            try ConnectionMetricsHandler.restore(upstream.counter, on: channel)
            upstream.counter = nil
            try startTunnel(client: context.channel, upstream: channel, response: ByteBuffer(bytes: out.head),
                            clientLeftover: clientLeftover, upstreamLeftover: upstreamLeftover)
        } catch {
            channel.close(promise: nil)
            context.close(promise: nil)
        }
    }

    /// The upstream's response cannot be read: 502 (or, once it began, the connection is cut).
    private func badResponse(_ error: any Error) {
        link.setReusable(false)
        link.close()
        let reason = (error as? WireRefusal)?.reason ?? "\(error)"
        failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: \(reason)\n")
    }

    /// The upstream's read is done: what it brought goes to the client now.
    func upstreamReadComplete(_ channel: any Channel) {
        guard link.carries(channel), downstreamUnflushed, let context else { return }
        downstreamUnflushed = false
        flushClient(context)
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

    /// The upstream closed: the end of a body read until then, or a failed exchange.
    func upstreamClosed(_ channel: any Channel) {
        guard link.carries(channel) else { return }
        link.detach()
        guard let exchange else { return }
        switch exchange.response {
        case .streaming(let body) where body.reader.isUntilClose:
            if body.relay == .untilClose(chunked: true), let context {
                var last: ByteBuffer?
                appendLastChunk(&last, trailers: [], allocator: context.channel.allocator)
                if let last { writeDown(last, counting: 0) }
            }
            responseEnded(body, upstreamSentMore: false)
        case .discardingAttempt(let body) where body.reader.isUntilClose:
            retry()
        default:
            failExchange(error: .unclassified, status: .badGateway, message: "meshproxy: upstream closed the connection before responding\n")
        }
    }

    /// Ends the current exchange with a proxy-made error response (or, when the response had
    /// already begun, by closing the connection), counted as a failed stream.
    func failExchange(error: StreamError, status: HTTPResponseStatus, message: String) {
        guard let exchange, let context else { return }
        exchange.deadline?.cancel()
        self.exchange = nil
        upstreamInbound = nil
        recorder.failed(exchange.facts, error: error, localStatus: exchange.responseBegan ? nil : Int(status.code), endpointFailed: true)
        if exchange.responseBegan {
            context.flush()  // what did arrive goes out before the cut
            reading = .lingering
            context.close(promise: nil)
        } else {
            // The request's body may not have been read to its end: then the connection closes.
            let keepAlive = exchange.keepAlive && exchange.requestEnded && !draining
            respondLocally(status: status, message: message, keepAlive: keepAlive)
            if keepAlive {
                lastActive = .now()  // a pipelined request starts now, not when the failed one did
                nextRequest()
            }
        }
    }

    func respondLocally(status: HTTPResponseStatus, message: String, keepAlive: Bool) {
        guard let context else { return }
        // The reason goes in a header too: one line of printable characters.
        let reason = String(message.trimmingTrailingNewline().unicodeScalars.map { $0.value < 32 || $0.value == 127 ? " " : Character($0) })
        var out = context.channel.allocator.buffer(capacity: 160 + message.utf8.count + reason.utf8.count)
        out.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\ncontent-type: text/plain; charset=utf-8\r\n")
        out.writeString("content-length: \(message.utf8.count)\r\nl5d-proxy-error: \(reason)\r\n")
        if !keepAlive { out.writeStaticString("connection: close\r\n") }
        out.writeStaticString("\r\n")
        out.writeString(message)
        writeClient(context, out, flush: true).assumeIsolated().whenComplete { _ in
            if !keepAlive { self.lingerThenClose(context) }
        }
    }
}

extension ResponseBody.Reader {
    var isUntilClose: Bool {
        if case .untilClose = self { return true }
        return false
    }
}
