public import NIOCore
import NIOPosix
import NIOHTTP1
public import MeshProxy

/// A request as a demo app sees it (bodies are not kept).
public struct AppRequest: Sendable {
    public var method: String
    public var path: String
    public var headers: [(String, String)]
}

/// A demo app's answer.
public struct AppResponse: Sendable {
    public var status: Int
    public var body: String
    public var headers: [(String, String)]

    public init(status: Int = 200, body: String = "", headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.headers = headers
    }
}

/// What a demo app does with a request: answer now or later, on the given event loop.
public typealias AppLogic = @Sendable (AppRequest, any EventLoop) -> EventLoopFuture<AppResponse>

/// A small HTTP/1.1 server for the demo's workloads and for tests' upstreams.
public final class AppServer: Sendable {
    public let address: HostPort
    private let channel: any Channel

    private init(address: HostPort, channel: any Channel) {
        self.address = address
        self.channel = channel
    }

    public static func start(host: String = "127.0.0.1", port: Int = 0, group: any EventLoopGroup,
                             logic: @escaping AppLogic) async throws -> AppServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AppHandler(logic: logic))
                }
            }
            .bind(host: host, port: port)
            .get()
        guard let ip = channel.localAddress?.ipAddress, let boundPort = channel.localAddress?.port else {
            throw DemoError("app server did not report its address")
        }
        return AppServer(address: HostPort(host: ip, port: boundPort), channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

private final class AppHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let logic: AppLogic
    private var head: HTTPRequestHead?

    init(logic: @escaping AppLogic) {
        self.logic = logic
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let h = head else { return }
            head = nil
            let request = AppRequest(method: h.method.rawValue, path: h.uri, headers: h.headers.map { ($0.name, $0.value) })
            let keepAlive = h.isKeepAlive
            logic(request, context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                let response = (try? result.get()) ?? AppResponse(status: 500, body: "app failed\n")
                var headers = HTTPHeaders(response.headers)
                headers.replaceOrAdd(name: "content-length", value: String(response.body.utf8.count))
                if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
                let status = HTTPResponseStatus(statusCode: response.status)
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                if !response.body.isEmpty {
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
                }
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

public struct DemoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
