import MeshTap
import NIOCore
import NIOPosix
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One downstream HTTP/2 stream, proxied frame for frame onto a stream of a pooled upstream
/// HTTP/2 connection. Frames pass as they came: trailers-only answers, trailers (`grpc-status`,
/// `grpc-message`, binary metadata) and resets reach the client unchanged. Each side is read
/// only while the other can take more, so HTTP/2 flow-control windows are credited as data drains.
final class HTTP2StreamProxy: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let router: any Router
    private let recorder: ExchangeRecorder
    private let upstreams: PerEventLoop<HTTP2Upstreams>
    private let mtls: Bool
    private let acceptsMTLS: Bool
    private var context: ChannelHandlerContext?
    private var facts: ExchangeFacts?
    private var upstream: (any Channel)?
    /// Frames waiting for the upstream stream (reading from the client stops meanwhile).
    private var pending: [HTTP2Frame.FramePayload] = []
    private var pendingBytes = 0
    /// The request's frames so far, while they are few (nil past `replayLimit` bytes): a stream
    /// the upstream refused unprocessed (REFUSED_STREAM, or dropped by its GOAWAY) is sent again
    /// once, on a fresh connection, as Linkerd does.
    private var replay: [HTTP2Frame.FramePayload]? = []
    private var replayBytes = 0
    private static let replayLimit = 64 * 1024
    private var route: Route?
    private var responseBegun = false
    private var requestEnded = false
    private var finished = false
    private var deadline: Scheduled<Void>?

    init(router: any Router, recorder: ExchangeRecorder, upstreams: PerEventLoop<HTTP2Upstreams>, mtls: Bool, acceptsMTLS: Bool) {
        self.router = router
        self.recorder = recorder
        self.upstreams = upstreams
        self.mtls = mtls
        self.acceptsMTLS = acceptsMTLS
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The stream is gone: let go of its context (which holds this handler) and the upstream stream.
    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
        upstream = nil
        pending.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        if facts == nil, !finished, case .headers(let headers) = payload {
            start(headers, context: context)
            return
        }
        guard facts != nil else { return }
        switch payload {
        case .headers(let h): if h.endStream { requestEnded = true }
        case .data(let d): if d.endStream { requestEnded = true }
        default: break
        }
        toUpstream(payload)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { setAutoRead(upstream, true) }
        context.fireChannelWritabilityChanged()
    }

    /// The client reset its stream (a cancelled call): the upstream stream is reset too. Other
    /// errors are about a frame this side wrote (NIOHTTP2 may try a WINDOW_UPDATE on a stream
    /// the client has just ended): the frame is dropped and the stream carries on.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is NIOHTTP2Errors.StreamClosed else { return }
        finish(error: .unclassified, endpointFailed: false)
        upstream?.close(promise: nil)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { finish(error: .unclassified, endpointFailed: false) }
        upstream?.close(promise: nil)
        context.fireChannelInactive()
    }

    // MARK: Request

    private func start(_ headers: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        var headers = headers
        let head = requestHead(headers.headers)
        let peer = acceptsMTLS ? context.channel.parent.flatMap(peerIdentityName(of:)) : nil
        let isGRPC = (headers.headers.first(name: "content-type") ?? "").hasPrefix("application/grpc")
        guard case .forward(let route) = router.route(RequestLine(head), peer: peer) else {
            if case .reject(let status, let message) = router.route(RequestLine(head), peer: peer) {
                finished = true
                respondLocally(status: status, message: message, isGRPC: isGRPC)
            }
            return
        }
        // One request seen by two proxies is told apart by the id the outbound stamps.
        if route.direction == .outbound { headers.headers.replaceOrAdd(name: tapIDHeader, value: TapIDs.next()) }
        let remote = context.channel.parent?.remoteAddress
        facts = recorder.begin(
            route, profile: router.profileRoute(RequestLine(head)), isGRPC: isGRPC,
            request: TappedRequest(method: head.method.rawValue, scheme: headers.headers.first(name: ":scheme")?.uppercased() ?? "HTTP",
                                   authority: head.headers.first(name: "host") ?? "", path: head.uri,
                                   headers: headers.headers.filter { !$0.name.hasPrefix(":") }.map { TapHeader(name: $0.name, value: $0.value) }),
            source: TapPeer(ip: remote?.ipAddress ?? "0.0.0.0", port: remote?.port ?? 0, metadata: route.tapSource ?? router.tapSourceMetadata))
        if headers.endStream { requestEnded = true }
        if let timeout = route.timeout {
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                guard !self.responseBegun, !self.finished else { return }
                self.upstream?.close(promise: nil)
                self.fail(error: .timeout, status: .gatewayTimeout, grpcStatus: 4,
                          message: "meshproxy: request timed out after \(timeout.nanoseconds / 1_000_000) ms", endpointFailed: true)
            }
        }
        var forwarded = headers
        forwarded.headers = forwardedHTTP2Headers(headers.headers)
        if route.direction == .inbound { forwarded.headers.remove(name: tapIDHeader) }
        pending.append(.headers(forwarded))
        replay = [.headers(forwarded)]
        self.route = route
        openUpstream(route, on: context.eventLoop)
    }

    private func openUpstream(_ route: Route, on loop: any EventLoop) {
        let handler = HTTP2UpstreamStream(owner: self)
        upstreams.value(on: loop).openStream(route: route, key: route.upstreamKey(mtls: mtls), handler: handler)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let stream): self.attach(stream)
                case .failure(let error):
                    // A stream asked of a connection that was just told to go away (or closed)
                    // never reached the server: once, on a fresh connection.
                    if !(error is NIOConnectionError), !isConnectTimeout(error), !isTLSError(error), let frames = self.replay, !self.finished {
                        self.replay = nil
                        self.pending = frames
                        self.openUpstream(route, on: loop)
                        return
                    }
                    self.fail(error: isConnectTimeout(error) ? .timeout : (isTLSError(error) ? .tls : .unclassified),
                              status: isConnectTimeout(error) ? .gatewayTimeout : .badGateway, grpcStatus: 14,
                              message: "meshproxy: cannot reach \(route.endpoint): \(isTLSError(error) ? describeTLS(error) : "\(error)")",
                              endpointFailed: true)
                }
            }
    }

    private func attach(_ stream: any Channel) {
        guard let context, !finished else {
            stream.close(promise: nil)
            return
        }
        upstream = stream
        for payload in pending { stream.write(payload, promise: nil) }
        pending.removeAll()
        pendingBytes = 0
        stream.flush()
        if stream.isWritable { setAutoRead(context.channel, true) }
    }

    private func toUpstream(_ payload: HTTP2Frame.FramePayload) {
        if replay != nil {
            if case .data(let d) = payload { replayBytes += d.data.readableBytes }
            if replayBytes > Self.replayLimit { replay = nil } else { replay?.append(payload) }
        }
        guard let upstream else {
            // While the upstream stream is being opened: a window's worth waits, then the
            // client is not read from (it stops when its flow-control window runs out).
            pending.append(payload)
            if case .data(let d) = payload { pendingBytes += d.data.readableBytes }
            if pendingBytes > 65_535, let context { setAutoRead(context.channel, false) }
            return
        }
        upstream.writeAndFlush(payload, promise: nil)
        if !upstream.isWritable, let context { setAutoRead(context.channel, false) }
    }

    // MARK: Response

    fileprivate func upstreamWritabilityChanged(_ stream: any Channel) {
        guard stream === upstream, let context else { return }
        if stream.isWritable { setAutoRead(context.channel, true) }
    }

    fileprivate func upstreamRead(_ payload: HTTP2Frame.FramePayload, from stream: any Channel) {
        guard stream === upstream, let context, var facts, !finished else { return }
        var end = false
        switch payload {
        case .headers(let h):
            if !responseBegun {
                let status = h.headers.first(name: ":status").flatMap(Int.init) ?? 0
                if (100..<200).contains(status) { break }  // informational: passed on, the response is still to come
                responseBegun = true
                deadline?.cancel()
                if facts.isGRPC { facts.grpcStatus = h.headers.first(name: "grpc-status").flatMap(Int.init) }
                recorder.responseBegan(&facts, status: status, headers: tapHeaders(h.headers))
            } else if facts.isGRPC, let code = h.headers.first(name: "grpc-status").flatMap(Int.init) {
                facts.grpcStatus = code  // trailers
            }
            end = h.endStream
        case .data(let d):
            facts.responseBytes += UInt64(d.data.readableBytes)
            end = d.endStream
        default:
            break
        }
        self.facts = facts
        guard end else {
            context.write(wrapOutboundOut(payload), promise: nil)
            if !context.channel.isWritable { setAutoRead(stream, false) }
            return
        }
        // Counted before the last frame goes out: writing it may close the stream at once.
        finished = true
        let status = facts.status ?? 0
        var trailers: [TapHeader] = []
        if case .headers(let h) = payload, responseBegun { trailers = tapHeaders(h.headers) }
        recorder.ended(facts, facts.isGRPC ? .grpc(status: status, grpcStatus: facts.grpcStatus) : .http(status: status), trailers: trailers)
        context.writeAndFlush(wrapOutboundOut(payload), promise: nil)
    }

    fileprivate func upstreamReadComplete(_ stream: any Channel) {
        guard stream === upstream else { return }
        context?.flush()
    }

    /// The upstream stream was reset or its connection lost before the response ended: the client's
    /// stream is reset with the same code (a gRPC client maps it to its status), or answered by
    /// the proxy if nothing of the response had come.
    fileprivate func upstreamFailed(_ stream: any Channel, code: HTTP2ErrorCode?, unprocessed: Bool = false) {
        guard stream === upstream, !finished else { return }
        upstream = nil
        if unprocessed, !responseBegun, let frames = replay, let route, let context {
            replay = nil  // once
            pending = frames
            pendingBytes = replayBytes
            openUpstream(route, on: context.eventLoop)
            return
        }
        if !responseBegun, code == nil || code == .refusedStream {
            fail(error: .unclassified, status: .badGateway, grpcStatus: 14,
                 message: "meshproxy: the upstream stream closed before responding", endpointFailed: true)
            return
        }
        finish(error: .unclassified, endpointFailed: true)
        context?.writeAndFlush(wrapOutboundOut(.rstStream(code ?? .internalError)), promise: nil)
    }

    private func finish(error: StreamError, endpointFailed: Bool) {
        guard !finished else { return }
        finished = true
        deadline?.cancel()
        if let facts { recorder.failed(facts, error: error, localStatus: nil, endpointFailed: endpointFailed) }
    }

    /// Answers the client with a response the proxy made (gRPC calls get a trailers-only answer
    /// with `grpc-status`), counted as a failed stream.
    private func fail(error: StreamError, status: HTTPResponseStatus, grpcStatus: Int, message: String, endpointFailed: Bool) {
        guard !finished else { return }
        finished = true
        deadline?.cancel()
        pending.removeAll()
        if let facts { recorder.failed(facts, error: error, localStatus: facts.isGRPC ? 200 : Int(status.code), endpointFailed: endpointFailed) }
        respondLocally(status: status, message: message, isGRPC: facts?.isGRPC ?? false, grpcStatus: grpcStatus)
    }

    private func respondLocally(status: HTTPResponseStatus, message: String, isGRPC: Bool, grpcStatus: Int = 14) {
        guard let context else { return }
        let text = message.trimmingTrailingNewline()
        var headers = HPACKHeaders()
        if isGRPC {
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: "application/grpc")
            headers.add(name: "grpc-status", value: String(grpcStatus))
            headers.add(name: "grpc-message", value: percentEncodedGRPCMessage(text))
            headers.add(name: "l5d-proxy-error", value: text)
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
            return
        }
        headers.add(name: ":status", value: String(status.code))
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(text.utf8.count + 1))
        headers.add(name: "l5d-proxy-error", value: text)
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        let body = context.channel.allocator.buffer(string: text + "\n")
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
    }
}

/// The upstream end of an `HTTP2StreamProxy`: hands frames, writability and failure back.
final class HTTP2UpstreamStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload

    private weak var owner: HTTP2StreamProxy?

    init(owner: HTTP2StreamProxy) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.upstreamRead(unwrapInboundIn(data), from: context.channel)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete(context.channel)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.upstreamWritabilityChanged(context.channel)
        context.fireChannelWritabilityChanged()
    }

    /// A reset from the upstream ends the stream; other errors are about a frame this side
    /// wrote, and the stream carries on (as for the client's side).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let closed = error as? NIOHTTP2Errors.StreamClosed else { return }
        // Refused, or dropped because the connection's GOAWAY came before the server saw it: the
        // request was not processed and may go again.
        let unprocessed = closed.errorCode == .refusedStream || (closed.errorCode == .cancel && beyondGoAway(context.channel))
        owner?.upstreamFailed(context.channel, code: closed.errorCode, unprocessed: unprocessed)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamFailed(context.channel, code: nil, unprocessed: beyondGoAway(context.channel))
        context.fireChannelInactive()
    }

    /// The connection said GOAWAY and this stream is past the last one it will process (or never
    /// got an id): the server never saw it.
    private func beyondGoAway(_ stream: any Channel) -> Bool {
        guard let watch = stream.parent.flatMap({ try? $0.pipeline.syncOperations.handler(type: HTTP2ConnectionWatch.self) }),
              let last = watch.lastStreamID else { return false }
        guard let id = try? stream.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID) else { return true }
        return id > last
    }
}

/// An HTTP/2 request's pseudo-headers as an HTTP/1 head, for routing and profiles (`:authority` as `Host`).
func requestHead(_ headers: HPACKHeaders) -> HTTPRequestHead {
    var http1 = HTTPHeaders()
    var method = "GET"
    var path = "/"
    var authority: String?
    for (name, value, _) in headers {
        switch name {
        case ":method": method = value
        case ":path": path = value
        case ":authority": authority = value
        case _ where name.hasPrefix(":"): break
        default: http1.add(name: name, value: value)
        }
    }
    if let authority, !http1.contains(name: "host") { http1.add(name: "host", value: authority) }
    return HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: HTTPMethod(rawValue: method), uri: path, headers: http1)
}

/// A request's headers as sent upstream: connection-specific headers (which HTTP/2 forbids) gone,
/// `te: trailers` kept, everything else, pseudo-headers included, as it came.
func forwardedHTTP2Headers(_ headers: HPACKHeaders) -> HPACKHeaders {
    var out = HPACKHeaders()
    for (name, value, indexing) in headers {
        if ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].contains(name) { continue }
        if name == "te", value.lowercased() != "trailers" { continue }
        out.add(name: name, value: value, indexing: indexing)
    }
    return out
}

private func tapHeaders(_ headers: HPACKHeaders) -> [TapHeader] {
    headers.filter { !$0.name.hasPrefix(":") }.map { TapHeader(name: $0.name, value: $0.value) }
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, percent-encoded.
func percentEncodedGRPCMessage(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        if byte >= 0x20, byte <= 0x7E, byte != 0x25 {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return out
}

private extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
