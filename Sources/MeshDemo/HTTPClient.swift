public import NIOCore
import NIOPosix
public import NIOHTTP1
public import MeshProxy
import NIOConcurrencyHelpers

/// A response as the client saw it.
public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: String
}

/// A small keep-alive HTTP/1.1 client: one request at a time per connection, idle connections
/// pooled per address. Safe to use from any thread.
public final class HTTPClient: Sendable {
    private let group: any EventLoopGroup
    private let idle = NIOLockedValueBox<[HostPort: [any Channel]]>([:])
    private let timeout: TimeAmount

    public init(group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) {
        self.group = group
        self.timeout = timeout
    }

    /// Sends a request with no body and collects the whole response.
    public func send(_ method: HTTPMethod = .GET, _ path: String, host: String, to address: HostPort,
                     headers extra: [(String, String)] = []) -> EventLoopFuture<ClientResponse> {
        var headers = HTTPHeaders(extra)
        headers.replaceOrAdd(name: "host", value: host)
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let eventLoop = group.next()
        let channel: EventLoopFuture<any Channel>
        if let pooled = takeIdle(address) {
            channel = pooled.eventLoop.makeSucceededFuture(pooled)
        } else {
            channel = connect(address, on: eventLoop)
        }
        let timeout = self.timeout
        return channel.flatMap { channel in
            let promise = channel.eventLoop.makePromise(of: ClientResponse.self)
            let deadline = channel.eventLoop.scheduleTask(in: timeout) {
                promise.fail(DemoError("request to \(address) timed out"))
                channel.close(promise: nil)
            }
            channel.writeAndFlush(ClientExchange(head: head, promise: promise)).whenFailure { promise.fail($0) }
            return promise.futureResult.always { result in
                deadline.cancel()
                if case .success(let r) = result, channel.isActive,
                   !r.headers.contains(where: { $0.0.lowercased() == "connection" && $0.1.lowercased() == "close" }) {
                    self.putIdle(address, channel)
                } else {
                    channel.close(promise: nil)
                }
            }
        }
    }

    /// Closes every idle connection.
    public func shutdown() {
        let all = idle.withLockedValue { pool in
            defer { pool.removeAll() }
            return pool.values.flatMap { $0 }
        }
        for c in all { c.close(promise: nil) }
    }

    private func takeIdle(_ address: HostPort) -> (any Channel)? {
        idle.withLockedValue { pool in
            while let c = pool[address]?.popLast() {
                if c.isActive { return c }
            }
            return nil
        }
    }

    private func putIdle(_ address: HostPort, _ channel: any Channel) {
        idle.withLockedValue { $0[address, default: []].append(channel) }
    }

    private func connect(_ address: HostPort, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ClientHandler())
                }
            }
            .connect(host: address.host, port: address.port)
    }
}

struct ClientExchange {
    var head: HTTPRequestHead
    var promise: EventLoopPromise<ClientResponse>
}

private final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = ClientExchange
    typealias OutboundOut = HTTPClientRequestPart

    private var promise: EventLoopPromise<ClientResponse>?
    private var head: HTTPResponseHead?
    private var body = ""

    func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        promise = exchange.promise
        head = nil
        body = ""
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: writePromise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var b):
            body += b.readString(length: b.readableBytes) ?? ""
        case .end:
            guard let h = head, let p = promise else { return }
            promise = nil
            p.succeed(ClientResponse(status: Int(h.status.code), headers: h.headers.map { ($0.name, $0.value) }, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.fail(DemoError("connection closed before the response ended"))
        promise = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise?.fail(error)
        promise = nil
        context.close(promise: nil)
    }
}
