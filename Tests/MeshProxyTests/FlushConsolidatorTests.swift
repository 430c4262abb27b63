import Testing
import NIOCore
import NIOEmbedded
@testable import MeshProxy

@Suite struct FlushConsolidation {
    /// Three streams' frames flushed in one tick reach the socket together, after the tick's
    /// reads; what was flushed just before a close (a GOAWAY) still goes out.
    @Test func flushesOfOneTickGoOutTogetherAndBeforeAClose() throws {
        let channel = EmbeddedChannel(handler: FlushConsolidator())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for text in ["a", "b", "c"] { channel.writeAndFlush(channel.allocator.buffer(string: text), promise: nil) }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing is written before the tick ends")
        channel.embeddedEventLoop.run()
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        #expect(out == "abc")

        channel.writeAndFlush(channel.allocator.buffer(string: "goaway"), promise: nil)
        try channel.close().wait()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "goaway", "the close lost what was flushed before it")
    }
}
