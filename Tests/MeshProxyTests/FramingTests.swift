import Testing
import HTTPWire
import NIOCore
import NIOHTTP1
@testable import MeshProxy

/// The proxy's own framing decisions (RFC 9112 §6), as pure functions on the bytes (HTTPWire).
/// The same cases go through a real meshproxy to a logging nginx in Tests/Peers/smuggling.py.
@Suite struct RequestFraming {
    func head(_ method: String, version: String = "HTTP/1.1", _ headers: [(String, String)]) -> [UInt8] {
        WireTests.request(["\(method) /x \(version)"] + headers.map { "\($0.0): \($0.1)" })
    }

    func refusal(_ raw: [UInt8]) -> Int? {
        if case .failure(let r) = WireTests.wire(raw) { return r.status }
        return nil
    }

    func forwarded(_ raw: [UInt8]) throws -> (plan: RequestPlan, head: String) {
        let (head, plan) = try WireTests.wire(raw).get()
        return (plan, String(decoding: head.forwarded(plan, authority: "app"), as: UTF8.self).lowercased())
    }

    @Test func ambiguousFramingIsRefusedBeforeAnythingIsForwarded() {
        let host = ("Host", "app")
        #expect(refusal(head("POST", [host, ("Transfer-Encoding", "chunked"), ("Content-Length", "5")])) == 400)
        #expect(refusal(head("POST", [host, ("Content-Length", "5"), ("Content-Length", "6")])) == 400)
        #expect(refusal(head("POST", [host, ("Content-Length", "+5")])) == 400)
        #expect(refusal(head("POST", [host, ("Content-Length", "0x5")])) == 400)
        #expect(refusal(head("POST", [host, ("Content-Length", "99999999999999999999999")])) == 400)
        #expect(refusal(head("POST", [host, ("Transfer-Encoding", "chunked, chunked")])) == 400)
        #expect(refusal(head("POST", [host, ("Transfer-Encoding", "chunked, identity")])) == 400)
        #expect(refusal(head("POST", [host, ("Transfer-Encoding", "gzip, chunked")])) == 501)
        #expect(refusal(head("POST", [host, ("Transfer-Encoding", "\"chunked\"")])) == 400)
        #expect(refusal(head("POST", version: "HTTP/1.0", [("Transfer-Encoding", "chunked")])) == 400)
        #expect(refusal(head("GET", [host, ("Connection", "close, Content-Length"), ("Content-Length", "5")])) == 400)
        #expect(refusal(head("GET", [host, ("Connection", "transfer-encoding")])) == 400)
        #expect(refusal(head("GET", [host, ("Connection", "host")])) == 400)
        #expect(refusal(head("GET", [host, ("Host", "other")])) == 400)
        #expect(refusal(head("GET", [])) == 400)  // HTTP/1.1 without Host
        #expect(refusal(head("TRACE", [host, ("Content-Length", "3")])) == 400)
        #expect(refusal(head("GET", [host, ("Expect", "something-else")])) == 417)
        #expect(refusal(head("CONNECT", [host])) == 405)
        #expect(refusal(head("GET", [host] + (0..<100).map { ("X-\($0)", "v") })) == 431)
    }

    @Test func theForwardedHeadCarriesExactlyOneFramingHeaderSpelledCanonically() throws {
        let chunked = try forwarded(head("POST", [("Host", "app"), ("Transfer-Encoding", "Chunked")]))
        #expect(chunked.plan.framing == .chunked)
        #expect(chunked.head.components(separatedBy: "transfer-encoding: chunked\r\n").count == 2)
        #expect(!chunked.head.contains("content-length"))
        let sized = try forwarded(head("POST", [("Host", "app"), ("Content-Length", "7")]))
        #expect(sized.plan.framing == .length(7))
        #expect(sized.head.components(separatedBy: "content-length: ").count == 2 && sized.head.contains("content-length: 7\r\n"))
        // A body-less POST says so; hop-by-hop headers go, te: trailers stays; HTTP/1.0 goes up as 1.1.
        let empty = try forwarded(head("POST", version: "HTTP/1.0", [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("TE", "trailers")]))
        #expect(empty.head.hasPrefix("post /x http/1.1\r\n"))
        #expect(empty.head.contains("content-length: 0\r\n"))
        #expect(!empty.head.contains("x-hop") && !empty.head.contains("connection"))
        #expect(empty.head.contains("te: trailers\r\n"))
        let continued = try forwarded(head("POST", [("Host", "app"), ("Expect", "100-continue"), ("Content-Length", "3")]))
        #expect(continued.plan.expectsContinue && !continued.head.contains("expect"))
    }

    @Test func contentLengthsAreForwardedDigitForDigit() throws {
        for n in ["0", "9", "10", "4096", "100000", "999999999999999999"] {
            let request = try forwarded(head("PUT", [("Host", "app"), ("Content-Length", n)]))
            #expect(request.head.contains("\r\ncontent-length: \(n)\r\n"), "request with \(n)")
            let (_, response) = try response(["HTTP/1.1 200 OK", "Content-Length: \(n)"], clientMinor: 1)
            #expect(response.contains("\r\ncontent-length: \(n)\r\n"), "response with \(n)")
        }
    }

    @Test func onlyWebSocketUpgradesAreForwarded() throws {
        let ws = try forwarded(head("GET", [("Host", "app"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        #expect(ws.plan.upgrade == "websocket")
        #expect(ws.head.contains("upgrade: websocket\r\n") && ws.head.contains("connection: upgrade\r\n"))
        let h2c = try forwarded(head("GET", [("Host", "app"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c")]))
        #expect(h2c.plan.upgrade == nil && !h2c.head.contains("upgrade"))
    }

    func response(_ lines: [String], clientMinor: Int, keepAlive: Bool = true, head: Bool = false) throws -> (ForwardedResponse, String) {
        let parsed = try ResponseHeadParser.parse(WireTests.request(lines))
        let out = parsed.forwarded(try parsed.framing(requestWasHead: head), clientMinor: clientMinor, keepAlive: keepAlive)
        return (out, String(decoding: out.head, as: UTF8.self).lowercased())
    }

    @Test func responsesAreFramedForTheClientsVersion() throws {
        let chunked = ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: keep-alive"]
        let (old, oldHead) = try response(chunked, clientMinor: 0)
        #expect(oldHead.hasPrefix("http/1.0 200 ok\r\n") && old.close && old.relay == .dechunked)  // an HTTP/1.0 body ends with the connection
        #expect(!oldHead.contains("transfer-encoding"))
        let (new, newHead) = try response(chunked, clientMinor: 1)
        #expect(newHead.hasPrefix("http/1.1 200 ok\r\n") && !new.close && !newHead.contains("connection") && new.relay == .chunked)
        let (sized, sizedHead) = try response(["HTTP/1.1 200 OK", "Content-Length: 12"], clientMinor: 0)
        #expect(!sized.close && sizedHead.contains("connection: keep-alive\r\n") && sizedHead.contains("content-length: 12\r\n"))
        // No length: an HTTP/1.1 client gets chunks and keeps its connection; a HEAD's length stays.
        let (open, openHead) = try response(["HTTP/1.1 200 OK"], clientMinor: 1)
        #expect(open.relay == .untilClose(chunked: true) && !open.close && openHead.contains("transfer-encoding: chunked\r\n"))
        let (headOnly, headHead) = try response(["HTTP/1.1 200 OK", "Content-Length: 12"], clientMinor: 1, head: true)
        #expect(headOnly.relay == .none && headHead.contains("content-length: 12\r\n"))
    }

    @Test func aResponseAtTheFieldLimitStillPassesTheNextProxy() throws {
        // 200 fields and no length: the proxy adds `transfer-encoding: chunked` for its client,
        // which, on an outbound's upstream connection, is the next proxy.
        let (out, head) = try response(["HTTP/1.1 200 OK"] + (0..<200).map { "X-F\($0): v" }, clientMinor: 1)
        #expect(head.contains("transfer-encoding: chunked\r\n"))
        #expect((try? ResponseHeadParser.parse(out.head)) == nil, "201 fields are past an app's limit")
        let outboundLimit = ResponseHeadParser.maxFields + RequestHeadParser.proxyAddedFields
        #expect(try ResponseHeadParser.parse(out.head, maxFields: outboundLimit).fields.count == 201)
    }

    @Test func upstreamResponsesWhoseFramingIsAmbiguousAre502() {
        func status(_ lines: [String]) -> Int? {
            do {
                _ = try ResponseHeadParser.parse(WireTests.request(lines)).framing(requestWasHead: false)
                return nil
            } catch { return (error as? WireRefusal)?.status }
        }
        #expect(status(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5"]) == 502)
        #expect(status(["HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"]) == 502)
        #expect(status(["HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"]) == 502)
        #expect(status(["HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5"]) == nil)
        #expect((try? ResponseHeadParser.parse(WireTests.request(["HTTP/1.1 2000 OK"]))) == nil)
        #expect((try? ResponseHeadParser.parse(WireTests.request(["HTTP/1.1 200 OK", "X : y"]))) == nil)
    }
}

/// The buffers a connection fills again for each exchange's heads.
@Suite struct HeadBufferReuse {
    @Test func aBufferStillHeldElsewhereIsNeverOverwritten() {
        // A retry keeps the forwarded head, and NIO holds a buffer until it is written.
        var slot: ByteBuffer?
        let first = HeadBuffers.refill(&slot, with: Array("GET /first HTTP/1.1\r\n\r\n".utf8))
        let second = HeadBuffers.refill(&slot, with: Array("GET /second HTTP/1.1\r\n\r\n".utf8), then: ByteBuffer(string: "body"))
        #expect(String(buffer: first) == "GET /first HTTP/1.1\r\n\r\n")
        #expect(String(buffer: second) == "GET /second HTTP/1.1\r\n\r\nbody")
    }

    @Test func aBufferLetGoIsFilledAgainInPlace() {
        var slot: ByteBuffer?
        var written: ByteBuffer? = HeadBuffers.refill(&slot, with: Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        let before = written?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        written = nil  // NIO wrote it and let go
        let again = HeadBuffers.refill(&slot, with: Array("HTTP/1.1 204 No Content\r\n\r\n".utf8))
        #expect(again.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == before)
        #expect(String(buffer: again) == "HTTP/1.1 204 No Content\r\n\r\n")
        // One grown past the kept size (a huge head) is let go after use.
        _ = HeadBuffers.refill(&slot, with: [UInt8](repeating: 65, count: HeadBuffers.keptCapacity + 1))
        #expect(slot == nil)
    }
}

@Suite struct GRPCClassification {
    @Test func aGRPCCallAnswered5xxWithoutGRPCStatusIsAFailure() {
        #expect(ResponseClass.grpc(status: 503, grpcStatus: nil).isFailure)
        #expect(!ResponseClass.grpc(status: 200, grpcStatus: nil).isFailure)
        #expect(ResponseClass.grpc(status: 200, grpcStatus: 14).isFailure)
        #expect(!ResponseClass.grpc(status: 200, grpcStatus: 5).isFailure)
        // A code gRPC does not define is UNKNOWN (2), as gRPC's clients read it: a bounded label.
        #expect(ResponseClass.grpc(status: 200, grpcStatus: 123_456).grpcStatus == 2)
        #expect(ResponseClass.grpc(status: 200, grpcStatus: -1).isFailure)
        #expect(ResponseClass.grpc(status: 200, grpcStatus: 16).grpcStatus == 16)
        // An HTTP/2 `:status` outside 1xx–5xx (HTTP/1's parser refuses one) counts as 500.
        #expect(ResponseClass.http(status: 987).status == 500 && ResponseClass.http(status: 987).isFailure)
        #expect(ResponseClass.grpc(status: 0, grpcStatus: nil).status == 500)
    }

    @Test func grpcMessagesArePercentEncodedAsTheSpecAsks() {
        #expect(percentEncodedGRPCMessage("café 100%") == "caf%C3%A9 100%25")
    }
}

@Suite struct DestinationReload {
    @Test func anEndpointThatGainsAnIdentityIsReachedOverMTLSAfterReload() {
        let registry = MetricsRegistry()
        let plain = DestinationTable([Destination(authority: "web:80", backends: [Backend(name: "web", endpoints: [Endpoint(host: "127.0.0.1", port: 9)])])])
        let router = OutboundRouter(table: plain, registry: registry, mtls: true)
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "web"])
        guard case .forward(let before) = router.route(RequestLine(request), peer: nil) else { Issue.record("no route"); return }
        #expect(before.serverIdentity == nil)
        router.replace(DestinationTable([Destination(authority: "web:80", backends: [Backend(name: "web", endpoints: [
            Endpoint(host: "127.0.0.1", port: 9, identity: "web.ns.serviceaccount.identity.linkerd.cluster.local"),
        ])])]))
        guard case .forward(let after) = router.route(RequestLine(request), peer: nil) else { Issue.record("no route"); return }
        #expect(after.serverIdentity == "web.ns.serviceaccount.identity.linkerd.cluster.local")
        #expect(before.upstreamKey(mtls: true) != after.upstreamKey(mtls: true))
    }
}
