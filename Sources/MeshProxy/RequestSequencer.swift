import NIOCore
import NIOHTTP1

/// One request at a time on an HTTP/1 connection, as pipelining needs: parts of a request that
/// arrive while the previous one's response is still being written wait here, in order, and are
/// handed on when that response ended. A response may also end first (an early answer): then
/// the rest of its request still flows.
///
/// Unlike NIOHTTP1's `HTTPServerPipelineHandler`, reading is paused only once a pipelined request
/// actually arrived, not after every request: the usual client, which waits for each answer,
/// costs no `epoll_ctl` calls to stop and start reading around each exchange (two per request,
/// measured). What can wait is bounded the same way: one read's worth before reading stops.
final class RequestSequencer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Waiting {
        case part(NIOAny)
        case error(any Error)
    }

    /// A request was handed on and has not ended.
    private var requestOpen = false
    /// The open request's response ended before it did (an early answer).
    private var answeredEarly = false
    /// A request ended and its response has not: what arrives now waits.
    private var awaitingResponse = false
    /// Empty (and unallocated) unless a client pipelines: most connections never hold anything here.
    private var waiting: [Waiting] = []
    /// The channel asked to read while parts were waiting: it reads again once they are handed on.
    private var readPending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if awaitingResponse || !waiting.isEmpty {
            waiting.append(.part(data))
        } else {
            deliver(data, context: context)
        }
    }

    private func deliver(_ data: NIOAny, context: ChannelHandlerContext) {
        switch unwrapInboundIn(data) {
        case .head:
            requestOpen = true
            answeredEarly = false
        case .body:
            break
        case .end:
            requestOpen = false
            awaitingResponse = !answeredEarly
            answeredEarly = false
        }
        context.fireChannelRead(data)
    }

    /// A malformed request after one still being answered is reported after that answer, so the
    /// answer is not cut by the error response.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if awaitingResponse || !waiting.isEmpty {
            waiting.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ended: Bool
        if case .end = unwrapOutboundIn(data) { ended = true } else { ended = false }
        context.write(data, promise: promise)
        guard ended else { return }
        if requestOpen {
            answeredEarly = true
            return
        }
        awaitingResponse = false
        handOnWaiting(context: context)
    }

    /// Hands on what waited, up to the end of the next request (whose response it then awaits).
    private func handOnWaiting(context: ChannelHandlerContext) {
        while !awaitingResponse, !waiting.isEmpty {
            let next = waiting.removeFirst()
            switch next {
            case .part(let data): deliver(data, context: context)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        if waiting.isEmpty, readPending {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        // A pipelined request is waiting: read no more until it is handed on.
        if awaitingResponse, !waiting.isEmpty {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Leaving the pipeline (a protocol switch): what waited goes on, and a held read is released.
    func handlerRemoved(context: ChannelHandlerContext) {
        let left = waiting
        waiting.removeAll()
        for event in left {
            switch event {
            case .part(let data): context.fireChannelRead(data)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        if readPending {
            readPending = false
            context.read()
        }
    }
}
