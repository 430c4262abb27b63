import NIOCore

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
/// upstream answered `101`: the proxy's handlers leave both pipelines, `response` goes to the
/// client as the tunnel's first bytes, and the bytes either side sent past the handshake are
/// passed on.
func startTunnel(client: any Channel, upstream: any Channel, response: ByteBuffer, clientLeftover: ByteBuffer?,
                 upstreamLeftover: ByteBuffer?) throws {
    let clientEnd = TunnelHandler()
    let upstreamEnd = TunnelHandler()
    clientEnd.partner = upstreamEnd
    upstreamEnd.partner = clientEnd

    let c = client.pipeline.syncOperations
    try c.addHandler(clientEnd)
    c.removeHandler(try c.handler(type: ProxyHandler.self), promise: nil)
    let u = upstream.pipeline.syncOperations
    try u.addHandler(upstreamEnd)
    u.removeHandler(try u.handler(type: UpstreamHandler.self), promise: nil)

    // The 101, then what the upstream sent after it; what the client sent after its request goes up.
    clientEnd.sendFirst(response)
    if let upstreamLeftover, upstreamLeftover.readableBytes > 0 { clientEnd.sendFirst(upstreamLeftover) }
    if let clientLeftover, clientLeftover.readableBytes > 0 { upstreamEnd.sendFirst(clientLeftover) }
    setAutoRead(client, true)
    setAutoRead(upstream, true)
    client.read()
}
