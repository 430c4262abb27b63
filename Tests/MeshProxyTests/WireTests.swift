import Foundation
@testable import HTTPWire
import MeshTesting
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import MeshProxy

/// HTTPWire reads request heads and chunked bodies itself, for the byte-level data path: it must
/// refuse every request the proxy refuses today (NIOHTTP1's parser, then `forwardedRequest`) and
/// the hostile framings from the smuggling research, and agree on the framing of everything else.
@Suite struct WireTests {
    /// The head at the start of `raw`, parsed and planned, or the refusal.
    static func wire(_ raw: [UInt8]) -> Result<(RequestHead, RequestPlan), WireRefusal> {
        do {
            var scan = RequestHeadParser.Scan()
            guard let length = try raw.withUnsafeBytes({ b throws in try RequestHeadParser.headLength(b, &scan) }) else {
                return .failure(WireRefusal(0, "incomplete"))
            }
            let head = try RequestHeadParser.parse(Array(raw[0..<length]))
            return .success((head, try head.plan()))
        } catch let refusal as WireRefusal {
            return .failure(refusal)
        } catch {
            return .failure(WireRefusal(0, "\(error)"))
        }
    }

    /// The proxy's path today: NIOHTTP1's decoder, then `forwardedRequest`. nil when refused.
    static func today(_ raw: [UInt8]) -> ForwardedRequest? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        guard (try? channel.writeInbound(ByteBuffer(bytes: raw))) != nil,
              case .head(let head)? = try? channel.readInbound(as: HTTPServerRequestPart.self) else { return nil }
        return try? forwardedRequest(head).get()
    }

    static func request(_ lines: [String], body: String = "") -> [UInt8] {
        Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    /// Requests whose framing is odd, ambiguous or invalid, and a few plain ones.
    static let corpus: [(String, [UInt8])] = [
        ("GET", request(["GET /a HTTP/1.1", "Host: x"])),
        ("POST length", request(["POST /a HTTP/1.1", "Host: x", "Content-Length: 5"], body: "hello")),
        ("POST chunked", request(["POST /a HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"], body: "5\r\nhello\r\n0\r\n\r\n")),
        ("HTTP/1.0 no host", request(["GET / HTTP/1.0"])),
        ("CL.TE", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 6", "Transfer-Encoding: chunked"])),
        ("TE.CL", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Content-Length: 6"])),
        ("two lengths", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 5", "Content-Length: 6"])),
        ("same two lengths", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 5", "Content-Length: 5"])),
        ("length list", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 5, 5"])),
        ("signed length", request(["POST / HTTP/1.1", "Host: x", "Content-Length: +5"])),
        ("hex length", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 0x5"])),
        ("huge length", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 99999999999999999999"])),
        ("TE chunked, identity", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked, identity"])),
        ("TE identity, chunked", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: identity, chunked"])),
        ("TE x-chunked", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: x-chunked"])),
        ("TE Chunked", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: Chunked"])),
        ("TE space before colon", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding : chunked"])),
        ("TE obs-fold", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding:", " chunked"])),
        ("TE vertical tab", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: \u{0B}chunked"])),
        ("TE NUL", request(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked\u{0}"])),
        ("TE underscore", request(["POST / HTTP/1.1", "Host: x", "Transfer_Encoding: chunked"])),
        ("TE in HTTP/1.0", request(["POST / HTTP/1.0", "Transfer-Encoding: chunked"])),
        ("two hosts", request(["GET / HTTP/1.1", "Host: a", "Host: b"])),
        ("no host", request(["GET / HTTP/1.1"])),
        ("Connection names CL", request(["POST / HTTP/1.1", "Host: x", "Content-Length: 1", "Connection: content-length"])),
        ("TRACE with body", request(["TRACE / HTTP/1.1", "Host: x", "Content-Length: 3"])),
        ("Expect other", request(["POST / HTTP/1.1", "Host: x", "Expect: 200-ok", "Content-Length: 1"])),
        ("Expect continue", request(["POST / HTTP/1.1", "Host: x", "Expect: 100-continue", "Content-Length: 1"])),
        ("CONNECT", request(["CONNECT x:443 HTTP/1.1", "Host: x:443"])),
        ("websocket", request(["GET /ws HTTP/1.1", "Host: x", "Connection: Upgrade", "Upgrade: websocket"])),
        ("h2c upgrade", request(["GET / HTTP/1.1", "Host: x", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c"])),
        ("bare LF header", Array("POST / HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n".utf8)),
        ("bare CR header", Array("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n".utf8)),
        ("two spaces in request line", request(["GET  / HTTP/1.1", "Host: x"])),
        ("space in target", request(["GET /a b HTTP/1.1", "Host: x"])),
        ("HTTP/1.2", request(["GET / HTTP/1.2", "Host: x"])),
        ("HTTP/2.0", request(["GET / HTTP/2.0", "Host: x"])),
        ("lowercase version", request(["GET / http/1.1", "Host: x"])),
        ("empty header name", request(["GET / HTTP/1.1", "Host: x", ": v"])),
        ("leading empty line", Array("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
        ("header with tab", request(["GET / HTTP/1.1", "Host: x", "X-A:\tb\tc\t"])),
        ("obs-text value", request(["GET / HTTP/1.1", "Host: x", "X-A: caf\u{E9}"])),
        ("DEL in value", request(["GET / HTTP/1.1", "Host: x", "X-A: a\u{7F}"])),
        ("non-ASCII target", request(["GET /caf\u{E9} HTTP/1.1", "Host: x"])),
    ]

    @Test func refusesEverythingTheProxyRefusesTodayAndAgreesOnTheRest() throws {
        for (name, raw) in Self.corpus {
            let old = Self.today(raw)
            switch Self.wire(raw) {
            case .failure(let refusal):
                #expect(refusal.status >= 400, "\(name): \(refusal)")
            case .success(let (head, plan)):
                let old = try #require(old, "\(name): refused today, accepted by HTTPWire (\(plan.framing))")
                let framing: WireFraming = switch old.framing {
                case .none: .none
                case .length(let n): .length(n)
                case .chunked: .chunked
                }
                #expect(plan.framing == framing, "\(name)")
                #expect(plan.expectsContinue == old.expectsContinue, "\(name)")
                #expect(plan.upgrade == old.upgrade, "\(name)")
                // The head forwarded upstream says the same as today's, field for field.
                // (Today's path forwards an HTTP/1.0 request without Host as HTTP/1.1 without one,
                // which an HTTP/1.1 server refuses; HTTPWire adds the upstream's authority.)
                let forwarded = head.forwarded(plan, authority: "x")
                let reparsed = try #require(Self.today(forwarded), "\(name): the forwarded head does not parse: \(String(decoding: forwarded, as: UTF8.self))")
                #expect(reparsed.head.method == old.head.method && reparsed.head.uri == old.head.uri, "\(name)")
                // (Surrounding whitespace is not part of a value, RFC 9110 §5.5: NIOHTTP1 keeps a trailing tab.)
                func fields(_ h: HTTPHeaders) -> [String] {
                    h.map { "\($0.name.lowercased()): \($0.value.trimmingCharacters(in: [" ", "\t"]))" }.sorted()
                }
                var expected = fields(old.head.headers)
                if plan.host == nil { expected = (expected + ["host: x"]).sorted() }
                #expect(fields(reparsed.head.headers) == expected, "\(name)")
            }
        }
    }

    /// The scans that read eight bytes at a time say what reading them one by one says.
    @Test func wordAtATimeScansAgreeWithByteAtATime() {
        #expect((UInt8.min...UInt8.max).allSatisfy { isTokenByteMasked($0) == isTokenByte($0) })
        var rng = SplitMix64(state: 9112)
        let alphabet: [UInt8] = [0, 9, 10, 13, 31, 32, 33, 58, 65, 97, 126, 127, 128, 200, 255]
        var wrong = 0
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
                Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 32...126, using: &rng)
            }
            if bytes.count >= 8 {
                let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                if hasControlByte(w) != bytes.prefix(8).contains(where: { $0 < 32 || $0 == 127 }) { wrong += 1 }
                if hasByte(w, 13) != bytes.prefix(8).contains(13) { wrong += 1 }
            }
            let start = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            let naive = bytes[start...].firstIndex { $0 == 13 || $0 == 10 } ?? bytes.count
            if bytes.withUnsafeBytes({ firstLineEnd($0, from: start) }) != naive { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    @Test func refusalsSayWhyWithTheStatusToAnswer() {
        func status(_ name: String) -> Int? {
            guard case .failure(let r) = Self.wire(Self.corpus.first { $0.0 == name }!.1) else { return nil }
            return r.status
        }
        #expect(status("CL.TE") == 400)
        #expect(status("TE identity, chunked") == 501)
        #expect(status("TE space before colon") == 400)
        #expect(status("TE obs-fold") == 400)
        #expect(status("bare LF header") == 400)
        #expect(status("HTTP/1.2") == 505)
        #expect(status("CONNECT") == 405)
        #expect(status("Expect other") == 417)
        #expect(status("GET") == nil && status("POST chunked") == nil && status("leading empty line") == nil)
        let many = Self.request(["GET / HTTP/1.1", "Host: x"] + (0..<101).map { "X-\($0): v" })
        guard case .failure(let r) = Self.wire(many) else { Issue.record("101 headers were taken"); return }
        #expect(r.status == 431)
    }

    @Test func theHeadIsFoundAcrossReadsOfAnySizeAndABareLFIsRefusedAtOnce() throws {
        let raw = Array("\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".utf8)
        let end = raw.count - 2
        for step in 1...7 {
            var scan = RequestHeadParser.Scan()
            var found: Int?
            var have = 0
            while found == nil, have < raw.count {
                have = min(raw.count, have + step)
                found = try raw[0..<have].withUnsafeBytes { b throws in try RequestHeadParser.headLength(b, &scan) }
            }
            #expect(found == end, "reads of \(step) bytes")
        }
        var scan = RequestHeadParser.Scan()
        let lf = Array("GET / HTTP/1.1\nHost: x".utf8)
        #expect(throws: WireRefusal.self) { try lf.withUnsafeBytes { b throws in try RequestHeadParser.headLength(b, &scan) } }
        scan = RequestHeadParser.Scan()
        let endless = Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: RequestHeadParser.maxHeadBytes)).utf8)
        do {
            _ = try endless.withUnsafeBytes { b throws in try RequestHeadParser.headLength(b, &scan) }
            Issue.record("a head longer than the limit was waited for")
        } catch {
            #expect((error as? WireRefusal)?.status == 431)
        }
    }

    /// Found by fuzzing (Fuzz/corpus/httpwire): a head with as many fields as a client may send
    /// still parses at the next hop once the proxy added its own, and a bodiless POST is
    /// forwarded as plainly bodiless.
    @Test func aForwardedHeadParsesAtTheNextHop() throws {
        let full = Self.request(["POST /a HTTP/1.0"] + (0..<RequestHeadParser.maxFields).map { "X-\($0): v" })
        guard case .success(let (head, plan)) = Self.wire(full) else { Issue.record("a head of \(RequestHeadParser.maxFields) fields was refused"); return }
        #expect(plan.framing == WireFraming.none && plan.host == nil)
        let forwarded = head.forwarded(plan, authority: "web:8080", extra: [("l5d-tap-id", "a.1")])
        #expect(throws: WireRefusal.self, "a client may not send this many") { try RequestHeadParser.parse(forwarded) }
        let next = try RequestHeadParser.parse(forwarded, maxFields: RequestHeadParser.maxFields + RequestHeadParser.proxyAddedFields)
        let replan = try next.plan()
        #expect(replan.framing == .length(0) && replan.host == "web:8080")
        #expect(next.fields.count == RequestHeadParser.maxFields + 3, "host, content-length and the tap id were added")
        // An Upgrade value with obs-text is forwarded as its bytes, not re-spelled through String.
        var ws = Array("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket".utf8) + [0xFF, 0xAC]
        ws += Array("\r\n\r\n".utf8)
        guard case .success(let (wsHead, wsPlan)) = Self.wire(ws) else { Issue.record("the upgrade was refused"); return }
        let out = wsHead.forwarded(wsPlan, authority: "x")
        #expect(out.firstRange(of: Array("upgrade: websocket".utf8) + [0xFF, 0xAC, 13, 10]) != nil)
    }

    /// The body's data and where it ends, read in pieces of `step` bytes.
    static func chunked(_ text: String, step: Int) throws -> (data: String, taken: Int, trailers: String) {
        let raw = Array(text.utf8)
        var reader = ChunkedBodyReader()
        var data: [UInt8] = []
        var at = 0
        while at < raw.count, !reader.isDone {
            let piece = Array(raw[at..<min(raw.count, at + step)])
            let taken = try piece.withUnsafeBytes { b throws in try reader.read(b) { data += piece[$0] } }
            at += taken
        }
        return (String(decoding: data, as: UTF8.self), reader.isDone ? at : -1, String(decoding: reader.trailers, as: UTF8.self))
    }

    @Test func aChunkedBodyReadsTheSameInPiecesOfAnySize() throws {
        let body = "5;name=value\r\nhello\r\n6 ;a=b\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nX-B: 2\r\n\r\n"
        for step in 1...9 {
            let r = try Self.chunked(body + "GET /next", step: step)
            #expect(r.data == "hello world0123456789", "pieces of \(step)")
            #expect(r.taken == body.utf8.count, "the next request is not part of the body (pieces of \(step))")
            #expect(r.trailers == "X-Trailer: 1\r\nX-B: 2\r\n")
        }
    }

    @Test func hostileChunkFramingsAreRefused() {
        let hostile = [
            "0x5\r\nhello\r\n0\r\n\r\n",  // a 0x prefix
            "-5\r\nhello\r\n0\r\n\r\n",
            " 5\r\nhello\r\n0\r\n\r\n",
            "ffffffffffffffff1\r\nhello\r\n0\r\n\r\n",  // 17 digits
            "8000000000000000\r\nhello\r\n0\r\n\r\n",  // past Int64
            "5\nhello\r\n0\r\n\r\n",  // bare LF after the size
            "5\r\nhello\n0\r\n\r\n",  // bare LF after the data
            "5\r\nhelloXY0\r\n\r\n",  // data longer than its size
            "3\r\nhello\r\n0\r\n\r\n",
            "5\u{0}\r\nhello\r\n0\r\n\r\n",  // NUL after the size
            "5 \r\nhello\r\n0\r\n\r\n",  // whitespace not before ';'
            "5;a\u{0}b\r\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n0\r\nno colon\r\n\r\n",
            "5\r\nhello\r\n0\r\nX: a\u{1}\r\n\r\n",
            "5\r\nhello\r\n0\r\n X: folded\r\n\r\n",
            "5\r\nhello\r\n0\r\n\n",
        ]
        for body in hostile {
            #expect(throws: WireRefusal.self, "\(body.debugDescription)") { _ = try Self.chunked(body, step: 3) }
        }
        let long = "5;" + String(repeating: "x", count: ChunkedBodyReader.maxExtensionBytes + 1) + "\r\nhello\r\n0\r\n\r\n"
        #expect(throws: WireRefusal.self) { _ = try Self.chunked(long, step: 4096) }
    }
}
