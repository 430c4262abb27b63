import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// The first bytes of a connection say which HTTP it speaks: HTTP/2 with prior knowledge (h2c,
/// as gRPC clients send it) starts with the connection preface; anything else is HTTP/1. The
/// detector buffers until it can tell, sets up the matching pipeline behind itself, hands the
/// bytes on and leaves.
final class HTTPVersionDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?
    private let http1: (ChannelPipeline.SynchronousOperations) throws -> Void
    private let http2: (ChannelPipeline.SynchronousOperations, any Channel) throws -> Void

    /// Errors before the protocol is known (a refused TLS handshake): counted, then the connection closes.
    private let failed: (any Error) -> Void
    /// A connection that shows no protocol in this time (TLS handshake included) is closed.
    private let timeout: TimeAmount
    private let onTimeout: () -> Void
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount = .seconds(10), onTimeout: @escaping () -> Void = {},
         http1: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void,
         http2: @escaping (ChannelPipeline.SynchronousOperations, any Channel) throws -> Void,
         failed: @escaping (any Error) -> Void = { _ in }) {
        self.timeout = timeout
        self.onTimeout = onTimeout
        self.http1 = http1
        self.http2 = http2
        self.failed = failed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard context.channel.isActive else { return }
            onTimeout()
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var b = buffered {
            b.writeBuffer(&incoming)
            buffered = b
        } else {
            buffered = incoming
        }
        guard let bytes = buffered else { return }
        let seen = Array(bytes.readableBytesView.prefix(Self.preface.count))
        let isPrefix = Array(Self.preface.prefix(seen.count)) == seen
        if isPrefix, seen.count < Self.preface.count { return }  // not enough yet to tell
        do {
            if isPrefix {
                try http2(context.pipeline.syncOperations, context.channel)
            } else {
                try http1(context.pipeline.syncOperations)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

extension HTTPVersionDetector {
    typealias InboundOut = ByteBuffer
}
