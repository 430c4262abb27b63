import NIOCore

/// Turns the flushes asked of a connection during one event-loop tick into one write to the
/// socket, done once the tick's reads have been handled (as Netty's FlushConsolidationHandler).
/// An HTTP/2 connection carries many streams, and each proxied stream flushes its own frames:
/// without this, ten streams answered by one upstream read cost ten `writev`s instead of one.
/// The flush waits for nothing but the rest of the tick.
final class FlushConsolidator: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var scheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute {
            guard self.scheduled else { return }  // a close flushed already
            self.scheduled = false
            context.flush()
        }
    }

    /// What was asked to be flushed goes out before the connection closes (a GOAWAY, an error
    /// response).
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if scheduled {
            scheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}
