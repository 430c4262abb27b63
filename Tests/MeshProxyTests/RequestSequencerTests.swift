import Testing
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import MeshProxy

/// Counts the reads the channel asks for, as the socket would see them (below the sequencer).
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Keeps what the sequencer hands on (above it).
final class Received: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var parts: [String] = []
    var errors = 0
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): parts.append("head \(h.uri)")
        case .body(let b): parts.append("body \(String(buffer: b))")
        case .end: parts.append("end")
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors += 1 }
}

@Suite struct RequestSequencing {
    let counter = ReadCounter()
    let received = Received()

    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, RequestSequencer(), received])
        return channel
    }

    func request(_ channel: EmbeddedChannel, _ uri: String, body: String? = nil, end: Bool = true) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: body == nil ? .GET : .POST, uri: uri)))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(channel.allocator.buffer(string: body))) }
        if end { try channel.writeInbound(HTTPServerRequestPart.end(nil)) }
    }

    func respond(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    /// A client that waits for each answer: reading never stops, so no syscalls to stop and
    /// start it around each exchange.
    @Test func aClientThatWaitsForEachAnswerIsReadWithoutPauses() throws {
        let channel = try channel()
        for i in 0..<3 {
            try request(channel, "/\(i)")
            let before = counter.reads
            channel.read()
            #expect(counter.reads == before + 1, "a read was held while request \(i) was answered")
            try respond(channel)
        }
        #expect(received.parts == ["head /0", "end", "head /1", "end", "head /2", "end"])
    }

    /// Pipelined requests: the second waits until the first's response ended; reading stops
    /// while it waits, and starts again once it is handed on.
    @Test func aPipelinedRequestWaitsForTheAnswerBeforeIt() throws {
        let channel = try channel()
        try request(channel, "/1")
        try request(channel, "/2")
        #expect(received.parts == ["head /1", "end"])
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "reading went on with a pipelined request waiting")
        try respond(channel)
        #expect(received.parts == ["head /1", "end", "head /2", "end"])
        #expect(counter.reads == before + 1, "the held read was not released")
        try respond(channel)
        channel.read()
        #expect(counter.reads == before + 2)
    }

    /// An early answer (before the request's body ended): the rest of the body and the next
    /// request flow on without waiting for another response.
    @Test func afterAnEarlyAnswerTheRestOfTheRequestFlows() throws {
        let channel = try channel()
        try request(channel, "/upload", body: "a", end: false)
        try respond(channel)
        try channel.writeInbound(HTTPServerRequestPart.body(channel.allocator.buffer(string: "b")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        try request(channel, "/next")
        #expect(received.parts == ["head /upload", "body a", "body b", "end", "head /next", "end"])
    }

    /// A malformed request behind one still being answered is reported after that answer.
    @Test func aParseErrorWaitsForTheAnswerBeforeIt() throws {
        let channel = try channel()
        try request(channel, "/1")
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidHeaderToken)
        #expect(received.errors == 0)
        try respond(channel)
        #expect(received.errors == 1)
    }
}
