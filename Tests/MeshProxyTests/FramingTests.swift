import Testing
import NIOHTTP1
@testable import MeshProxy

/// The proxy's own framing decisions (RFC 9112 §6), as pure functions. The same cases go through
/// a real meshproxy to a logging nginx in Tests/Peers/smuggling.py.
@Suite struct RequestFraming {
    func head(_ method: HTTPMethod, version: HTTPVersion = .http1_1, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: "/x", headers: HTTPHeaders(headers))
    }

    func refusal(_ h: HTTPRequestHead) -> HTTPResponseStatus? {
        if case .failure(let r) = forwardedRequest(h) { return r.status }
        return nil
    }

    @Test func ambiguousFramingIsRefusedBeforeAnythingIsForwarded() {
        let host = ("Host", "app")
        #expect(refusal(head(.POST, [host, ("Transfer-Encoding", "chunked"), ("Content-Length", "5")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Content-Length", "5"), ("Content-Length", "6")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Content-Length", "+5")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Content-Length", "0x5")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Content-Length", "99999999999999999999999")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Transfer-Encoding", "chunked, chunked")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Transfer-Encoding", "chunked, identity")])) == .badRequest)
        #expect(refusal(head(.POST, [host, ("Transfer-Encoding", "gzip, chunked")])) == .notImplemented)
        #expect(refusal(head(.POST, [host, ("Transfer-Encoding", "\"chunked\"")])) == .badRequest)
        #expect(refusal(head(.POST, version: .http1_0, [("Transfer-Encoding", "chunked")])) == .badRequest)
        #expect(refusal(head(.GET, [host, ("Connection", "close, Content-Length"), ("Content-Length", "5")])) == .badRequest)
        #expect(refusal(head(.GET, [host, ("Connection", "transfer-encoding")])) == .badRequest)
        #expect(refusal(head(.GET, [host, ("Connection", "host")])) == .badRequest)
        #expect(refusal(head(.GET, [host, ("Host", "other")])) == .badRequest)
        #expect(refusal(head(.GET, [])) == .badRequest)  // HTTP/1.1 without Host
        #expect(refusal(head(.TRACE, [host, ("Content-Length", "3")])) == .badRequest)
        #expect(refusal(head(.GET, [host, ("Expect", "something-else")])) == .expectationFailed)
        #expect(refusal(head(.CONNECT, [host])) == .methodNotAllowed)
        #expect(refusal(head(.GET, [host] + (0..<100).map { ("X-\($0)", "v") })) == .requestHeaderFieldsTooLarge)
    }

    @Test func theForwardedHeadCarriesExactlyOneFramingHeaderSpelledCanonically() throws {
        let chunked = try forwardedRequest(head(.POST, [("Host", "app"), ("Transfer-Encoding", "Chunked")])).get()
        #expect(chunked.framing == .chunked)
        #expect(chunked.head.headers[canonicalForm: "transfer-encoding"] == ["chunked"])
        #expect(!chunked.head.headers.contains(name: "content-length"))
        let sized = try forwardedRequest(head(.POST, [("Host", "app"), ("Content-Length", "7"), ("content-length", "7")])).get()
        #expect(sized.framing == .length(7))
        #expect(sized.head.headers[canonicalForm: "content-length"] == ["7"])
        // A body-less POST says so; hop-by-hop headers go, te: trailers stays; HTTP/1.0 goes up as 1.1.
        let empty = try forwardedRequest(head(.POST, version: .http1_0, [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("TE", "trailers")])).get()
        #expect(empty.head.version == .http1_1)
        #expect(empty.head.headers[canonicalForm: "content-length"] == ["0"])
        #expect(!empty.head.headers.contains(name: "x-hop") && !empty.head.headers.contains(name: "connection"))
        #expect(empty.head.headers[canonicalForm: "te"] == ["trailers"])
        let continued = try forwardedRequest(head(.POST, [("Host", "app"), ("Expect", "100-continue"), ("Content-Length", "3")])).get()
        #expect(continued.expectsContinue && !continued.head.headers.contains(name: "expect"))
    }

    @Test func onlyWebSocketUpgradesAreForwarded() throws {
        let ws = try forwardedRequest(head(.GET, [("Host", "app"), ("Connection", "Upgrade"), ("Upgrade", "websocket")])).get()
        #expect(ws.upgrade == "websocket")
        #expect(ws.head.headers[canonicalForm: "upgrade"] == ["websocket"] && ws.head.headers[canonicalForm: "connection"] == ["upgrade"])
        let h2c = try forwardedRequest(head(.GET, [("Host", "app"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c")])).get()
        #expect(h2c.upgrade == nil && !h2c.head.headers.contains(name: "upgrade"))
    }

    @Test func responsesAreFramedForTheClientsVersion() {
        var upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked", "Connection": "keep-alive"])
        let old = forwardedResponse(upstream, requestVersion: .http1_0, keepAlive: true)
        #expect(old.head.version == .http1_0 && old.close)  // no length: an HTTP/1.0 body ends with the connection
        #expect(!old.head.headers.contains(name: "transfer-encoding"))
        let new = forwardedResponse(upstream, requestVersion: .http1_1, keepAlive: true)
        #expect(new.head.version == .http1_1 && !new.close && !new.head.headers.contains(name: "connection"))
        upstream.headers = ["Content-Length": "12"]
        let sized = forwardedResponse(upstream, requestVersion: .http1_0, keepAlive: true)
        #expect(!sized.close && sized.head.headers[canonicalForm: "connection"] == ["keep-alive"])
        #expect(sized.head.headers[canonicalForm: "content-length"] == ["12"])
    }
}

@Suite struct GRPCClassification {
    @Test func aGRPCCallAnswered5xxWithoutGRPCStatusIsAFailure() {
        #expect(ResponseClass.grpc(status: 503, grpcStatus: nil).isFailure)
        #expect(!ResponseClass.grpc(status: 200, grpcStatus: nil).isFailure)
        #expect(ResponseClass.grpc(status: 200, grpcStatus: 14).isFailure)
        #expect(!ResponseClass.grpc(status: 200, grpcStatus: 5).isFailure)
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
        guard case .forward(let before) = router.route(request, peer: nil) else { Issue.record("no route"); return }
        #expect(before.serverIdentity == nil)
        router.replace(DestinationTable([Destination(authority: "web:80", backends: [Backend(name: "web", endpoints: [
            Endpoint(host: "127.0.0.1", port: 9, identity: "web.ns.serviceaccount.identity.linkerd.cluster.local"),
        ])])]))
        guard case .forward(let after) = router.route(request, peer: nil) else { Issue.record("no route"); return }
        #expect(after.serverIdentity == "web.ns.serviceaccount.identity.linkerd.cluster.local")
        #expect(before.upstreamKey(mtls: true) != after.upstreamKey(mtls: true))
    }
}
