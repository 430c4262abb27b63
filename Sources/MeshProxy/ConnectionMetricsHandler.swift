import NIOCore

/// The first handler of every proxy connection: counts it open and closed and the bytes that
/// cross it, for the `tcp_*` families.
final class ConnectionMetricsHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let registry: MetricsRegistry
    private let target: TCPTarget
    private var isOpen = false

    init(registry: MetricsRegistry, target: TCPTarget) {
        self.registry = registry
        self.target = target
    }

    func channelActive(context: ChannelHandlerContext) {
        isOpen = true
        registry.connectionOpened(target)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if isOpen {
            isOpen = false
            registry.connectionClosed(target)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        registry.bytesRead(target, unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        registry.bytesWritten(target, unwrapOutboundIn(data).readableBytes)
        context.write(data, promise: promise)
    }
}
