import NIOCore
import NIOHTTP1

/// One end of a tunnel of opaque bytes between two connections, after a protocol switch
/// (`101 Switching Protocols` to WebSocket), as Linkerd forwards upgraded connections. What one
/// side reads goes to the other; a side is read only while the other can take more, so nothing
/// piles up in the proxy. When either side closes, both do.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The other end (the two share one event loop).
    var partner: TunnelHandler?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.send(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { setAutoRead(partner?.context?.channel, true) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        partner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Writes bytes the partner read; stops the partner reading while this side is full.
    fileprivate func send(_ bytes: ByteBuffer) {
        guard let context else { return }
        context.write(wrapOutboundOut(bytes), promise: nil)
        if !context.channel.isWritable { setAutoRead(partner?.context?.channel, false) }
    }

    /// Writes the first bytes of the tunnel (the `101` response to the client).
    func sendFirst(_ bytes: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }
}

/// Turns an HTTP/1 client connection and its upstream connection into a tunnel, once the
/// upstream answered `101` and that response ended: the HTTP handlers leave both pipelines
/// (bytes the upstream sent after its `101` are kept and passed on), and `response` goes to the
/// client as the tunnel's first bytes.
func startTunnel(client: any Channel, upstream: any Channel, response: HTTPResponseHead) throws {
    let clientEnd = TunnelHandler()
    let upstreamEnd = TunnelHandler()
    clientEnd.partner = upstreamEnd
    upstreamEnd.partner = clientEnd

    let c = client.pipeline.syncOperations
    try c.addHandler(clientEnd)
    try removeAll(c, [ProxyHandler.self, RequestSequencer.self, NIOHTTPResponseHeadersValidator.self, ProtocolErrorHandler.self,
                      RequestPhaseHandler.self, HeaderTimeoutHandler.self, HTTPResponseEncoder.self, ByteToMessageHandler<HTTPRequestDecoder>.self])

    let u = upstream.pipeline.syncOperations
    try u.addHandler(upstreamEnd)
    // The decoder goes last: what it holds past the 101 is handed to the tunnel as it leaves.
    try removeAll(u, [UpstreamHandler.self, NIOHTTPRequestHeadersValidator.self, HTTPRequestEncoder.self,
                      ByteToMessageHandler<HTTPResponseDecoder>.self])

    var head = client.allocator.buffer(capacity: 256)
    head.writeString("HTTP/1.1 101 Switching Protocols\r\n")
    for (name, value) in response.headers { head.writeString("\(name): \(value)\r\n") }
    head.writeString("\r\n")
    clientEnd.sendFirst(head)
    setAutoRead(client, true)
    setAutoRead(upstream, true)
    client.read()
}

private func removeAll(_ pipeline: ChannelPipeline.SynchronousOperations, _ types: [any RemovableChannelHandler.Type]) throws {
    for type in types {
        func remove<H: RemovableChannelHandler>(_: H.Type) {
            if let handler = try? pipeline.handler(type: H.self) { pipeline.removeHandler(handler, promise: nil) }
        }
        remove(type)
    }
}
