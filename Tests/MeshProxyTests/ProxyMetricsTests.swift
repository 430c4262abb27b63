import MeshMetrics
import Foundation
import Testing
import NIOCore
import NIOPosix
@testable import MeshProxy
import MeshDemo
import MeshSources
import PromText
import Gzip

/// An upstream that answers `/status/NNN` with that status and anything else with 200.
func statusApp(group: any EventLoopGroup) async throws -> AppServer {
    try await AppServer.start(group: group) { request, loop in
        if request.path.hasPrefix("/status/"), let code = Int(request.path.dropFirst("/status/".count)) {
            return loop.makeSucceededFuture(AppResponse(status: code, body: "status \(code)\n"))
        }
        return loop.makeSucceededFuture(AppResponse(status: 200, body: "ok\n"))
    }
}

func scrape(_ proxy: MeshProxyServer) throws -> (Exposition, String) {
    let result = Scraper(timeoutSeconds: 5).scrape([ScrapeTarget(url: "http://\(proxy.adminAddress)/metrics")]) { 0 }[0]
    let body = try #require(result.body, "scrape failed: \(result.error ?? "?")")
    let text = String(decoding: body, as: UTF8.self)
    return (try PromTextParser.parse(text), text)
}

/// `clients` concurrent clients, each sending its next GET when the last is answered; how many
/// responses carried each body.
func countBodies(clients: Int, each: Int, _ client: HTTPClient, host: String, to address: HostPort) async throws -> [String: Int] {
    try await withThrowingTaskGroup(of: [String: Int].self) { tasks in
        for _ in 0..<clients {
            tasks.addTask {
                var mine: [String: Int] = [:]
                for _ in 0..<each { mine[try await client.send(.GET, "/", host: host, to: address).get().body, default: 0] += 1 }
                return mine
            }
        }
        var all: [String: Int] = [:]
        for try await part in tasks { all.merge(part, uniquingKeysWith: +) }
        return all
    }
}

func value(_ e: Exposition, _ name: String, _ labels: [String: String]) -> Double? {
    let matching = e.samples.filter { s in s.name == name && labels.allSatisfy { s[label: $0.key] == $0.value } }
    return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
}

@Suite(.serialized) struct ProxyMetrics {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let authority = "app.test.svc.cluster.local:80"

    func startMesh() async throws -> (app: AppServer, proxy: MeshProxyServer, client: HTTPClient) {
        let app = try await statusApp(group: group)
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        // One proxy plays both sides: its outbound routes the authority to its own inbound (set
        // once the inbound port is known, so no port is given up and taken again).
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(inbound: (loopback, app.address), outbound: (loopback, DestinationTable()), admin: loopback),
                                                    group: group)
        let inbound = try #require(proxy.inboundAddress)
        proxy.updateDestinations(DestinationTable([Destination(authority: authority, backends: [Backend(name: "app", endpoints: [
            Endpoint(host: inbound.host, port: inbound.port, labels: ["namespace": "test", "deployment": "app", "pod": "app-0", "service": "app"]),
        ])])]))
        return (app, proxy, HTTPClient(group: group))
    }

    /// Status codes become labels, and upstreams choose them: 200 distinct codes outside HTTP's
    /// classes are refused as a broken answer (502, RFC 9110 §15) and add one series, not 200.
    /// (HTTP/2's `:status` and gRPC's codes are bounded where they are classified: see
    /// `GRPCClassification`.)
    @Test func statusLabelsAreBoundedWhateverTheUpstreamAnswers() async throws {
        let (app, proxy, client) = try await startMesh()
        defer { client.shutdown() }
        let outbound = try #require(proxy.outboundAddress)
        var answered: [Int: Int] = [:]
        for code in 600..<800 { answered[try await client.send(.GET, "/status/\(code)", host: authority, to: outbound).get().status, default: 0] += 1 }
        #expect(answered == [502: 200])
        let (e, _) = try scrape(proxy)
        let codes = Set(e.samples.filter { $0.name == "response_total" && $0[label: "direction"] == "outbound" }.compactMap { $0[label: "status_code"] })
        #expect(codes == ["502"], "\(codes.sorted())")
        await proxy.stop()
        await app.stop()
    }

    @Test func countsClassifiesAndBucketsLikeLinkerd() async throws {
        let (app, proxy, client) = try await startMesh()
        defer { client.shutdown() }
        let outbound = try #require(proxy.outboundAddress)
        var seen: [Int: Int] = [:]
        for path in Array(repeating: "/ok", count: 30) + Array(repeating: "/status/503", count: 7) + Array(repeating: "/status/404", count: 3) {
            let response = try await client.send(.GET, path, host: authority, to: outbound).get()
            seen[response.status, default: 0] += 1
        }
        #expect(seen == [200: 30, 503: 7, 404: 3])

        let (e, text) = try scrape(proxy)
        for direction in ["inbound", "outbound"] {
            #expect(value(e, "request_total", ["direction": direction]) == 40)
            #expect(value(e, "response_total", ["direction": direction, "status_code": "503", "classification": "failure"]) == 7)
            #expect(value(e, "response_total", ["direction": direction, "status_code": "404", "classification": "success"]) == 3)
            #expect(value(e, "response_total", ["direction": direction, "status_code": "200", "classification": "success"]) == 30)
            #expect(value(e, "response_total", ["direction": direction, "classification": "failure"]) == 7)
            #expect(value(e, "response_latency_ms_bucket", ["direction": direction, "status_code": "200", "le": "50000"]) == 30)
            #expect(value(e, "response_latency_ms_bucket", ["direction": direction, "status_code": "503", "le": "+Inf"]) == 7)
            #expect(value(e, "response_latency_ms_count", ["direction": direction]) == 40)
        }
        // Outbound metrics name the destination as linkerd-destination's labels do.
        #expect(value(e, "response_total", ["direction": "outbound", "authority": authority, "dst_deployment": "app",
                                             "dst_namespace": "test", "dst_pod": "app-0", "status_code": "503"]) == 7)
        // The label layout Linkerd prints: target labels, then status, then class.
        #expect(text.contains(#",status_code="503",classification="failure",grpc_status="",error=""} 7"#))
        #expect(text.contains(#"response_latency_ms_bucket{direction="inbound",target_addr="\#(app.address)","#))
        // Connections: keep-alive means one client connection carried all 40 requests.
        #expect(value(e, "tcp_open_total", ["direction": "outbound", "peer": "src"]) == 1)
        #expect(value(e, "tcp_open_connections", ["direction": "inbound", "peer": "dst"]) == 1)
        #expect((value(e, "tcp_read_bytes_total", ["direction": "inbound", "peer": "src"]) ?? 0) > 40 * 40)
        // The outbound → inbound connection counted at both of its ends: what one side wrote the
        // other read, byte for byte (the proxies count at the socket, whichever handler does it).
        let up = value(e, "tcp_write_bytes_total", ["direction": "outbound", "peer": "dst"])
        #expect(up != nil && up == value(e, "tcp_read_bytes_total", ["direction": "inbound", "peer": "src"]))
        let down = value(e, "tcp_write_bytes_total", ["direction": "inbound", "peer": "src"])
        #expect(down != nil && down == value(e, "tcp_read_bytes_total", ["direction": "outbound", "peer": "dst"]))
        #expect(e.families["response_latency_ms"]?.type == .histogram)
        #expect(value(e, "process_start_time_seconds", [:]) != nil)
        #expect(value(e, "proxy_build_info", [:]) == 1)
        await proxy.stop()
        await app.stop()
    }

    @Test func upstreamFailuresAreFailedStreams() async throws {
        let (app, proxy, client) = try await startMesh()
        defer { client.shutdown() }
        let outbound = try #require(proxy.outboundAddress)
        await app.stop()  // the app is gone: the inbound side cannot connect
        let response = try await client.send(.GET, "/ok", host: authority, to: outbound).get()
        #expect(response.status == 502)
        let unknown = try await client.send(.GET, "/ok", host: "nowhere.test:80", to: outbound).get()
        #expect(unknown.status == 502)
        #expect(unknown.body.contains("no destination for authority nowhere.test:80"))

        let (e, _) = try scrape(proxy)
        #expect(value(e, "response_total", ["direction": "inbound", "classification": "failure", "error": "unclassified"]) == 1)
        #expect(value(e, "response_total", ["direction": "outbound", "classification": "failure", "status_code": "502"]) == 1)
        await proxy.stop()
    }

    @Test func metricsAreGzippedWhenAskedAndPlainOtherwise() async throws {
        let (app, proxy, client) = try await startMesh()
        defer { client.shutdown() }
        let url = "http://\(proxy.adminAddress)/metrics"
        func curl(_ args: [String]) throws -> (headers: String, body: [UInt8]) {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            p.arguments = ["-s", "-D", dir.path + "/h", "-o", dir.path + "/b"] + args + [url]
            try p.run()
            p.waitUntilExit()
            return (try String(contentsOfFile: dir.path + "/h", encoding: .utf8), Array(try Data(contentsOf: dir.appendingPathComponent("b"))))
        }
        let plain = try curl([])
        #expect(!plain.headers.lowercased().contains("content-encoding"))
        let zipped = try curl(["-H", "Accept-Encoding: gzip"])
        #expect(zipped.headers.lowercased().contains("content-encoding: gzip"))
        #expect(zipped.body.count * 3 < plain.body.count, "\(zipped.body.count) vs \(plain.body.count) bytes")
        let inflated = try #require(GzipInflater()).inflate(zipped.body)
        #expect(try PromTextParser.parse(inflated).samples.count == (try PromTextParser.parse(plain.body)).samples.count)
        await proxy.stop()
        await app.stop()
    }

    @Test func adminEndpoints() async throws {
        let (app, proxy, client) = try await startMesh()
        defer { client.shutdown() }
        for (path, status, body) in [("/ready", 200, "ready\n"), ("/live", 200, "live\n"), ("/nope", 404, "not found\n")] {
            let r = try await client.send(.GET, path, host: "localhost", to: proxy.adminAddress).get()
            #expect(r.status == status)
            #expect(r.body == body)
        }
        await proxy.stop()
        await app.stop()
    }

    @Test func splitWeightsAreExactOverACycle() {
        var rr = SmoothWeightedRoundRobin(weights: [90, 10])
        var counts = [0, 0]
        for _ in 0..<1000 { counts[rr.next()!] += 1 }
        #expect(counts == [900, 100])
    }
}

@Suite struct ServiceProfileRoutes {
    @Test func requestsAreCountedPerRouteAndUnmatchedOnesWithoutRtRoute() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await statusApp(group: group)
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        var config = ProxyConfiguration(inbound: (loopback, app.address), admin: loopback)
        config.inboundProfile = ServiceProfile(authority: "app.test.svc.cluster.local:80", routes: [
            try ProfileRoute(name: "GET /ok", method: "GET", pathRegex: "/ok"),
            try ProfileRoute(name: "GET /status/{code}", method: "GET", pathRegex: "/status/[0-9]+"),
        ])
        let proxy = try await MeshProxyServer.start(config, group: group)
        let client = HTTPClient(group: group)
        defer { client.shutdown() }
        let inbound = try #require(proxy.inboundAddress)
        for path in ["/ok", "/ok?x=1", "/ok", "/status/503", "/status/503", "/elsewhere", "/okay"] {
            _ = try await client.send(.GET, path, host: "app", to: inbound).get()
        }
        let (e, _) = try scrape(proxy)
        let dst = "app.test.svc.cluster.local:80"
        #expect(value(e, "route_request_total", ["rt_route": "GET /ok", "dst": dst, "direction": "inbound"]) == 3)
        #expect(value(e, "route_response_total", ["rt_route": "GET /status/{code}", "status_code": "503", "classification": "failure"]) == 2)
        #expect(value(e, "route_actual_response_total", ["rt_route": "GET /status/{code}", "status_code": "503"]) == 2)
        #expect(value(e, "route_response_latency_ms_bucket", ["rt_route": "GET /ok", "le": "+Inf"]) == 3)
        // Unmatched requests: the route series without rt_route ([DEFAULT]).
        let unmatched = e.samples.filter { $0.name == "route_request_total" && $0[label: "rt_route"] == nil }
        #expect(unmatched.map(\.value) == [2])
        // Endpoint metrics still count every request once.
        #expect(value(e, "request_total", ["direction": "inbound"]) == 7)
        #expect(throws: ConfigError.self) { try ProfileRoute(name: "bad", pathRegex: "(unclosed") }
        await proxy.stop()
        await app.stop()
        try await group.shutdownGracefully()
    }
}

@Suite struct UpstreamPooling {
    /// Ten keep-alive clients taking turns (each idle while the others ask) share one upstream
    /// connection: an idle client holds none, so 10,000 idle clients don't hold 10,000 upstreams.
    @Test func idleKeepAliveClientsHoldNoUpstreamConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await statusApp(group: group)
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(inbound: (loopback, app.address), admin: loopback), group: group)
        let inbound = try #require(proxy.inboundAddress)
        let clients = (0..<10).map { _ in HTTPClient(group: group) }
        for round in 0..<3 {
            for c in clients { #expect(try await c.send(.GET, "/ok?round=\(round)", host: "app", to: inbound).get().status == 200) }
        }
        let (e, _) = try scrape(proxy)
        #expect(value(e, "tcp_open_connections", ["direction": "inbound", "peer": "src"]) == 10, "ten client connections stay open")
        #expect(value(e, "tcp_open_total", ["direction": "inbound", "peer": "dst"]) == 1, "one upstream connection carried all 30 requests")
        #expect(value(e, "tcp_open_connections", ["direction": "inbound", "peer": "dst"]) == 1)
        for c in clients { c.shutdown() }
        await proxy.stop()
        await app.stop()
        try await group.shutdownGracefully()
    }

    @Test func upstreamConnectionsAreReusedAcrossAuthoritiesAndClientConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await statusApp(group: group)
        let b = try await statusApp(group: group)
        let table = DestinationTable([
            Destination(authority: "a.test:80", backends: [Backend(name: "a", endpoints: [Endpoint(host: a.address.host, port: a.address.port)])]),
            Destination(authority: "b.test:80", backends: [Backend(name: "b", endpoints: [Endpoint(host: b.address.host, port: b.address.port)])]),
        ])
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group)
        let out = try #require(proxy.outboundAddress)
        // One client connection alternating between two authorities.
        let client = HTTPClient(group: group)
        for i in 0..<40 { #expect(try await client.send(.GET, "/ok", host: i % 2 == 0 ? "a.test" : "b.test", to: out).get().status == 200) }
        client.shutdown()
        // Then many short-lived client connections.
        for _ in 0..<20 {
            let once = HTTPClient(group: group)
            #expect(try await once.send(.GET, "/ok", host: "a.test", to: out).get().status == 200)
            once.shutdown()
        }
        let (e, _) = try scrape(proxy)
        let opened = value(e, "tcp_open_total", ["direction": "outbound", "peer": "dst"]) ?? 0
        // 60 requests; without pooling that was about 60 upstream connections.
        #expect(opened <= 4, "\(opened) upstream connections opened for 60 requests")
        #expect(value(e, "response_total", ["direction": "outbound", "classification": "success"]) == 60)
        await proxy.stop()
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }
}
