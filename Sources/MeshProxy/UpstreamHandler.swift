import NIOCore
import NIOPosix
import NIOSSL

/// The upstream side of a `ProxyHandler`: hands response parts, writability and closure back to
/// it. Both channels share one event loop, so no locking is needed. While pooled it has no
/// owner: anything the upstream sends then is unexpected, and the connection is closed.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    weak var owner: ProxyHandler?
    /// The connection's `tcp_*` counting, once taken over from `ConnectionMetricsHandler`
    /// (plaintext); the link counts what it writes with it.
    var counter: ConnectionCounter?
    private var countingSettled = false

    init(owner: ProxyHandler) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if countingSettled {
            counter?.read(unwrapInboundIn(data).readableBytes)
        } else {
            // These first bytes were counted on their way here.
            countingSettled = true
            if (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)) == nil {
                counter = ConnectionMetricsHandler.takeOver(on: context.channel)
            }
        }
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.upstreamWritabilityChanged(context.channel)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter?.closed()
        owner?.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        owner?.upstreamFailed(context.channel, error)
        context.close(promise: nil)
    }
}

/// A client bootstrap for an upstream connection: TCP metrics, mTLS when `key` has an identity
/// (this proxy's certificate, the identity checked as the host name), then `protocolHandlers`.
func upstreamBootstrap(route: Route, key: UpstreamKey, group: any EventLoop, registry: MetricsRegistry, identity: ProxyIdentity?,
                       connectTimeout: TimeAmount,
                       protocolHandlers: @escaping @Sendable (any Channel) throws -> Void) -> ClientBootstrap {
    let connection = route.connection
    // An endpoint with an identity is reached over mTLS when this proxy has one; while its
    // certificate is missing or expired, the connection fails as a TLS failure (never plaintext).
    let tls: (NIOSSLContext?, String)? = key.identity.flatMap { name in identity.map { ($0.usable?.client, name) } }
    let missing = tls.map { $0.0 == nil } == true ? identity?.notReadyReason : nil
    return ClientBootstrap(group: group)
        .connectTimeout(connectTimeout)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(registry: registry, target: connection))
                if let (context, name) = tls {
                    guard let context else { throw NoCertificateError(reason: missing ?? "none yet") }
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: name))
                }
                try protocolHandlers(channel)
            }
        }
}
