import Foundation
import Testing
import NIOPosix
@testable import MeshProxy
import MeshDemo
import MeshSources
import PromText

@Suite(.serialized) struct TrafficSplit {
    @Test func splitIsSetLiveSeenInMetricsAndFollowedByTraffic() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let stable = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "stable\n")) }
        let canary = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "canary\n")) }
        let authority = "svc.test:80"
        let table = DestinationTable([Destination(authority: authority, backends: [
            Backend(name: "stable", weight: 100, endpoints: [Endpoint(host: stable.address.host, port: stable.address.port)]),
            Backend(name: "canary", weight: 0, endpoints: [Endpoint(host: canary.address.host, port: canary.address.port)]),
        ])])
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        var config = ProxyConfiguration(outbound: (loopback, table), admin: loopback)
        config.adminToken = "s3cret"
        let proxy = try await MeshProxyServer.start(config, group: group)
        let client = HTTPClient(group: group)
        defer { client.shutdown() }
        let out = try #require(proxy.outboundAddress)
        func bodies(_ n: Int) async throws -> [String: Int] {
            var seen: [String: Int] = [:]
            for _ in 0..<n { seen[try await client.send(.GET, "/", host: authority, to: out).get().body, default: 0] += 1 }
            return seen
        }
        #expect(try await bodies(20) == ["stable\n": 20])

        let split = SplitClient(adminURL: "http://\(proxy.adminAddress)", token: "s3cret")
        try split.set(authority: authority, weights: ["canary": 25, "stable": 75])
        #expect(try split.get()[authority] == ["canary": 25, "stable": 75])
        #expect(try await bodies(100) == ["stable\n": 75, "canary\n": 25])  // smooth weighted round-robin: exact per cycle
        let (e, _) = try scrape(proxy)
        #expect(value(e, "meshproxy_split_weight", ["authority": authority, "backend": "canary"]) == 25)

        // Refusals: no token, an unknown backend, all weights zero.
        #expect(throws: SourceError.self) { try SplitClient(adminURL: "http://\(proxy.adminAddress)").set(authority: authority, weights: ["canary": 50]) }
        #expect(throws: SourceError.self) { try split.set(authority: authority, weights: ["nope": 50]) }
        #expect(throws: SourceError.self) { try split.set(authority: authority, weights: ["canary": 0, "stable": 0]) }
        #expect(throws: SourceError.self) { try split.set(authority: "other:80", weights: ["canary": 50]) }
        // Weights from outside that are not whole numbers in range: 400, and the proxy lives on.
        for bad in ["1e300", "-1", "2.5", "1e7", "\"50\""] {
            let r = try runProcess("/usr/bin/curl", ["-s", "-w", "\\n%{http_code}", "-H", "Authorization: Bearer s3cret", "-H", "Content-Type: application/json",
                                                 "-d", "{\"authority\":\"\(authority)\",\"weights\":{\"canary\":\(bad),\"stable\":50}}",
                                                 "http://\(proxy.adminAddress)/split"])
            #expect(r.hasSuffix("\n400") && r.contains("weight of canary must be a whole number"), "weight \(bad): \(r)")
        }
        #expect(try split.get()[authority] == ["canary": 25, "stable": 75])
        await proxy.stop()
        await stable.stop()
        await canary.stop()
        try await group.shutdownGracefully()
    }

    /// 10,000 requests from eight clients over a 70/30 split: each backend's share within ±3%.
    @Test func tenThousandRequestsFollowTheWeights() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "a")) }
        let b = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "b")) }
        let table = DestinationTable([Destination(authority: "svc:80", backends: [
            Backend(name: "a", weight: 70, endpoints: [Endpoint(host: a.address.host, port: a.address.port)]),
            Backend(name: "b", weight: 30, endpoints: [Endpoint(host: b.address.host, port: b.address.port)]),
        ])])
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group)
        let out = try #require(proxy.outboundAddress)
        let client = HTTPClient(group: group)
        let counts = try await countBodies(clients: 8, each: 1250, client, host: "svc:80", to: out)
        #expect((counts["a"] ?? 0) + (counts["b"] ?? 0) == 10_000)
        #expect(abs(Double(counts["a"] ?? 0) / 10_000 - 0.7) <= 0.03, "\(counts)")
        #expect(abs(Double(counts["b"] ?? 0) / 10_000 - 0.3) <= 0.03, "\(counts)")
        client.shutdown()
        await proxy.stop()
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func demoCanaryIsRolledBackAndTheGoodOneIsPromoted() throws {
        let bad = try meshtop(["demo", "--scenario", "canary", "--headless"], timeout: 90)
        #expect(bad.status == 1, "\(bad.stdout)\n\(bad.stderr)")
        #expect(bad.stdout.contains("rolled back: 2 failed checks reached the threshold of 2"))
        let verdict = try #require(bad.stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(verdict["result"] as? String == "rolled back" && verdict["weight"] as? Int == 0)

        let good = try meshtop(["demo", "--scenario", "canary-good", "--headless"], timeout: 90)
        #expect(good.status == 0, "\(good.stdout)\n\(good.stderr)")
        #expect(good.stdout.contains("advance canary weight to 40") && good.stdout.contains("promote: canary at 100%"))
    }
}

/// Runs a program to its end and returns what it printed.
func runProcess(_ path: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
