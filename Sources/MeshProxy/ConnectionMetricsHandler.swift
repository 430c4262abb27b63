import NIOCore

/// One connection's part of the `tcp_*` families: opened and closed once, and the bytes that
/// cross its socket. Held by whichever handler is nearest the socket and sees the bytes as they
/// cross it: `ConnectionMetricsHandler` at first; on a plaintext HTTP/1 connection the proxy's
/// own handler takes it over, which saves every read and write a trip through one more handler.
final class ConnectionCounter {
    private let registry: MetricsRegistry
    private let target: TCPTarget
    private var isOpen = false

    init(registry: MetricsRegistry, target: TCPTarget) {
        self.registry = registry
        self.target = target
    }

    func opened() {
        guard !isOpen else { return }
        isOpen = true
        registry.connectionOpened(target)
    }

    func closed() {
        guard isOpen else { return }
        isOpen = false
        registry.connectionClosed(target)
    }

    func read(_ n: Int) { registry.bytesRead(target, n) }
    func wrote(_ n: Int) { registry.bytesWritten(target, n) }
}

/// The first handler of every proxy connection: counts it open and closed and the bytes that
/// cross it, for the `tcp_*` families, until a handler that sees the same bytes takes the
/// counting over (`takeOver`).
final class ConnectionMetricsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let counter: ConnectionCounter

    init(registry: MetricsRegistry, target: TCPTarget) {
        self.counter = ConnectionCounter(registry: registry, target: target)
    }

    /// Counts with `counter` again (a connection that became a tunnel).
    init(counter: ConnectionCounter) {
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        counter.opened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.closed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        counter.read(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        counter.wrote(unwrapOutboundIn(data).readableBytes)
        context.write(data, promise: promise)
    }

    /// Removes the handler from `channel`'s pipeline and returns its counter, for a handler that
    /// sees the socket's bytes unchanged (no TLS between: the caller checks) to count with from
    /// now on; nil when there is none. Call on the event loop, from a read: the bytes being
    /// delivered were counted already.
    static func takeOver(on channel: any Channel) -> ConnectionCounter? {
        let sync = channel.pipeline.syncOperations
        guard let handler = try? sync.handler(type: ConnectionMetricsHandler.self) else { return nil }
        sync.removeHandler(handler, promise: nil)
        return handler.counter
    }

    /// Puts a handler counting with `counter` back in front of `channel`'s pipeline (before the
    /// handler that took the counting over leaves it).
    static func restore(_ counter: ConnectionCounter?, on channel: any Channel) throws {
        guard let counter else { return }
        try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(counter: counter), position: .first)
    }
}
