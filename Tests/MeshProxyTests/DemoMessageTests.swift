import MeshDemo
import Testing

/// The demo's protobuf coder: what Google's runtime writes for emojivoto's messages decodes, and
/// bytes that are not a message are an error, never a trap (grpcio's side is
/// Tests/Peers/demo_grpc_peer.py).
@Suite struct DemoMessages {
    @Test func emojivotosMessagesRoundTripAndMatchProtobufsBytes() throws {
        let list = Emojivoto.ListAllResponse(list: Array(Emojivoto.catalogue.prefix(2)))
        let bytes = list.wire.encoded
        // As protobuf writes it: field 1 (length-delimited) per Emoji, each with fields 1 and 2.
        let joy: [UInt8] = [0x0A, 4] + Array("😂".utf8) + [0x12, 5] + Array(":joy:".utf8)
        #expect(Array(bytes.prefix(2 + joy.count)) == [0x0A, UInt8(joy.count)] + joy)
        #expect(try Emojivoto.ListAllResponse(wire: ProtoFields(decoding: bytes)) == list)
        #expect(try Emojivoto.VoteRequest(wire: ProtoFields(decoding: Emojivoto.VoteRequest(shortcode: ":100:").wire.encoded)).shortcode == ":100:")
        #expect(Emojivoto.VoteResponse().wire.encoded.isEmpty)
    }

    @Test func unknownFieldsAreSkippedAndTheLastValueWins() throws {
        // field 3 varint 150, field 4 fixed64, field 5 fixed32, then field 1 twice.
        let bytes: [UInt8] = [0x18, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2D, 1, 2, 3, 4,
                              0x0A, 1, UInt8(ascii: "a"), 0x0A, 1, UInt8(ascii: "b")]
        #expect(try Emojivoto.VoteRequest(wire: ProtoFields(decoding: bytes)).shortcode == "b")
    }

    @Test(arguments: [
        ([0x0A, 0x7F, 0x61], "runs past"),                 // a length longer than the message
        ([0x0A, 0x80], "truncated varint"),
        ([0x0B], "wire type 3"),                           // groups are not supported
        ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "past 64 bits"),
        ([0x00], "field number 0"),
        ([0x0A, 0x02, 0xC3, 0x28], "not UTF-8"),
    ] as [([UInt8], String)])
    func malformedBytesAreAnError(bytes: [UInt8], problem: String) {
        #expect {
            _ = try Emojivoto.VoteRequest(wire: ProtoFields(decoding: bytes))
        } throws: { error in
            "\(error)".contains(problem)
        }
    }
}
