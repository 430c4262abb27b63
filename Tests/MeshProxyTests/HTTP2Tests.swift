import Foundation
import Testing
import NIOCore
import NIOPosix
import NIOHTTP1
import NIOHTTP2
import MeshProxy
import MeshIdentity
import MeshDemo
import PromText
import Synchronization

/// A gRPC-like server over h2c: answers `/svc.Emoji/Fail` with grpc-status 14 (UNAVAILABLE) in
/// the trailers and anything else with 0, and remembers what it was asked in.
final class SeenRequests: Sendable {
    let list = Mutex<[String]>([])
}

final class GRPCLikeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let seen: SeenRequests
    private var path = ""

    init(seen: SeenRequests) { self.seen = seen }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            seen.list.withLock { $0.append("\(head.version.major) \(head.uri) te=\(head.headers.first(name: "te") ?? "-")") }
        case .body:
            break
        case .end:
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/grpc")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: [0, 0, 0, 0, 0])))), promise: nil)
            let trailers: HTTPHeaders = ["grpc-status": path.hasSuffix("/Fail") ? "14" : "0"]
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }
}

@Suite(.serialized) struct HTTP2AndGRPC {
    let loopback = HostPort(host: "127.0.0.1", port: 0)

    func curl(_ address: HostPort, _ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                       "-H", "Host: emoji-svc:8080", "-H", "content-type: application/grpc", "-H", "te: trailers",
                       "--data-binary", "hello", "http://\(address)\(path)"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Plaintext, then with mTLS between the proxies (HTTP/2 inside TLS, identities checked).
    @Test(arguments: [false, true]) func grpcOverH2cThroughOutboundAndInboundIsClassifiedByItsTrailers(mtls: Bool) async throws {
        let authority = try IdentityAuthority.create()
        func identity(_ name: String) throws -> ProxyIdentity? {
            guard mtls else { return nil }
            return try ProxyIdentity { try authority.issue(authority.identityName(serviceAccount: name, namespace: "ns"), validFor: 3600) }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let seen = SeenRequests()
        let app = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.configureHTTP2Pipeline(mode: .server) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                        try stream.pipeline.syncOperations.addHandler(GRPCLikeHandler(seen: seen))
                    }
                }.map { _ in }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let appAddress = HostPort(host: "127.0.0.1", port: app.localAddress!.port!)
        // emoji's proxy (inbound → the gRPC app), and a client proxy whose outbound routes to it.
        var inboundConfig = ProxyConfiguration(inbound: (loopback, appAddress), admin: loopback)
        inboundConfig.workloadLabels = ["deployment": "emoji", "namespace": "ns"]
        inboundConfig.identity = try identity("emoji")
        let emoji = try await MeshProxyServer.start(inboundConfig, group: group)
        let table = DestinationTable([Destination(authority: "emoji-svc:8080", backends: [
            Backend(name: "emoji", weight: 100, endpoints: [Endpoint(host: "127.0.0.1", port: emoji.inboundAddress!.port,
                                                                     labels: ["deployment": "emoji", "namespace": "ns"],
                                                                     identity: mtls ? authority.identityName(serviceAccount: "emoji", namespace: "ns") : nil)]),
        ])])
        var webConfig = ProxyConfiguration(outbound: (loopback, table), admin: loopback)
        webConfig.identity = try identity("web")
        let web = try await MeshProxyServer.start(webConfig, group: group)

        for _ in 0..<3 { #expect(try curl(web.outboundAddress!, "/svc.Emoji/List") == "2 200") }
        for _ in 0..<2 { #expect(try curl(web.outboundAddress!, "/svc.Emoji/Fail") == "2 200") }
        // The app was spoken to in HTTP/2, with gRPC's te: trailers intact, by way of both proxies.
        let requests = seen.list.withLock { $0 }
        #expect(requests.count == 5 && requests.allSatisfy { $0.hasPrefix("2 /svc.Emoji/") && $0.hasSuffix("te=trailers") }, "\(requests)")
        // Both sides classify by grpc-status: 14 is a failure although HTTP said 200.
        for (proxy, direction) in [(web, "outbound"), (emoji, "inbound")] {
            let (m, _) = try scrape(proxy)
            #expect(value(m, "response_total", ["direction": direction, "grpc_status": "0", "classification": "success", "status_code": "200"]) == 3,
                    "\(direction)")
            #expect(value(m, "response_total", ["direction": direction, "grpc_status": "14", "classification": "failure", "status_code": "200"]) == 2,
                    "\(direction)")
        }
        if mtls {
            let (m, _) = try scrape(emoji)
            #expect(value(m, "response_total", ["direction": "inbound", "tls": "true", "client_id": "web.ns.serviceaccount.identity.linkerd.cluster.local"]) == 5)
        }
        await web.stop()
        await emoji.stop()
        try await app.close()
        try await group.shutdownGracefully()
    }
}
