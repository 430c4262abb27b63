import Foundation
import Testing
import NIOCore
import NIOPosix
@testable import MeshProxy
import MeshDemo
import PromText
import Synchronization

/// Timeouts and load balancing on the outbound side.
@Suite(.serialized) struct Resilience {
    let loopback = HostPort(host: "127.0.0.1", port: 0)

    @Test func aDestinationTimeoutGives504AndTheConnectionStaysUsable() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await AppServer.start(group: group) { request, loop in
            let delay: TimeAmount = request.path == "/slow" ? .seconds(4) : .milliseconds(1)
            return loop.scheduleTask(in: delay) { AppResponse(status: 200, body: "done\n") }.futureResult
        }
        let yaml = """
        destinations:
          - authority: svc:80
            timeout: 200ms
            backends:
              - name: app
                endpoints: [{address: "\(app.address)"}]
        """
        let table = try DestinationTable.parse(yaml: yaml, file: "d.yaml")
        #expect(table.lookup("svc:80")?.timeoutMs == 200)
        #expect(throws: ConfigError.self) { try DestinationTable.parse(yaml: yaml.replacingOccurrences(of: "200ms", with: "soon"), file: "d.yaml") }
        // Numbers from a file that would trap a conversion or overflow the weights' sum, a key twice
        // in one map, an alias to nothing: input errors, not traps (found by scripts/fuzz destinations;
        // Yams traps on a repeated key and on a sexagesimal integer that overflows).
        for (from, to) in [("200ms", "99999999999999999999s"), ("200ms", "1e400ms"), ("200ms", "nanms"), ("name: app", "name: app\n        weight: 9223372036854775807"),
                           ("timeout: 200ms", "timeout: 200ms\n    timeout: 300ms"), ("name: app", "name: *nowhere"),
                           ("timeout: 200ms", "timeout: 200ms\n    retries: -551364444449444436:46")] {
            #expect(throws: ConfigError.self, "\(to)") { try DestinationTable.parse(yaml: yaml.replacingOccurrences(of: from, with: to), file: "d.yaml") }
        }
        // A key that is such an integer (found by the same fuzzer, session 10) is just a key.
        let oddKey = yaml.replacingOccurrences(of: "timeout: 200ms", with: "timeout: 200ms\n    -5131369223580855535:3: x")
        #expect(try DestinationTable.parse(yaml: oddKey, file: "d.yaml").lookup("svc:80")?.timeoutMs == 200)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group)
        let client = HTTPClient(group: group)
        let started = NIODeadline.now()
        let slow = try await client.send(.GET, "/slow", host: "svc:80", to: proxy.outboundAddress!).get()
        let waited = (NIODeadline.now() - started).nanoseconds / 1_000_000
        // 504 itself shows the proxy answered before the app did (at 4 s); not before the timeout either.
        #expect(slow.status == 504)
        #expect(waited >= 190, "answered after \(waited) ms")
        #expect(slow.headers.contains { $0.0 == "l5d-proxy-error" && $0.1.contains("timed out after 200 ms") })
        let fast = try await client.send(.GET, "/fast", host: "svc:80", to: proxy.outboundAddress!).get()
        #expect(fast.status == 200 && fast.body == "done\n", "the client's connection still works after a timeout")
        let (m, _) = try scrape(proxy)
        #expect(value(m, "response_total", ["direction": "outbound", "classification": "failure", "error": "timeout"]) == 1)
        #expect(value(m, "response_total", ["direction": "outbound", "classification": "success"]) == 1)
        client.shutdown()
        await proxy.stop()
        await app.stop()
        try await group.shutdownGracefully()
    }

    /// Two endpoints, one 100x slower, 16 requests in flight: P2C over PeakEWMA sends most to the
    /// fast one (the slow one's queue makes it costly), and still probes the slow one.
    @Test func p2cPrefersTheFastEndpointAndFailingOnesAreLeftOut() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        func app(_ name: String, delayMs: Int64, status: Int = 200) async throws -> AppServer {
            try await AppServer.start(group: group) { _, loop in
                loop.scheduleTask(in: .milliseconds(delayMs)) { AppResponse(status: status, body: name) }.futureResult
            }
        }
        let fast = try await app("fast", delayMs: 1), slow = try await app("slow", delayMs: 100), broken = try await app("broken", delayMs: 1, status: 500)
        func destination(_ authority: String, _ apps: [AppServer]) -> Destination {
            Destination(authority: authority, backends: [Backend(name: "b", weight: 100, endpoints: apps.map { Endpoint(host: $0.address.host, port: $0.address.port) })])
        }
        let table = DestinationTable([destination("speed:80", [fast, slow]), destination("health:80", [fast, broken])])
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group)
        let client = HTTPClient(group: group)
        // Sixteen clients, each sending its next request when the last one is answered.
        let out = proxy.outboundAddress!
        let seen = try await countBodies(clients: 16, each: 25, client, host: "speed:80", to: out)
        #expect((seen["fast"] ?? 0) >= 250, "P2C should prefer the fast endpoint (round robin would give 200): \(seen)")
        #expect((seen["slow"] ?? 0) >= 1, "the slow endpoint is still probed now and then: \(seen)")
        // An endpoint that always fails is left out after five failures in a row, for a backoff.
        var statuses: [Int: Int] = [:]
        for _ in 0..<100 { statuses[try await client.send(.GET, "/", host: "health:80", to: proxy.outboundAddress!).get().status, default: 0] += 1 }
        #expect((statuses[500] ?? 0) <= 15, "failure accrual should leave the broken endpoint out: \(statuses)")
        #expect((statuses[200] ?? 0) >= 85)
        client.shutdown()
        await proxy.stop()
        for a in [fast, slow, broken] { await a.stop() }
        try await group.shutdownGracefully()
    }

    /// An endpoint failing half its requests: retries (2 per request) turn most failures into
    /// successes; an endpoint failing all of them gets no more retries than the budget allows
    /// (10 a second plus 20% of the requests, over 10 s), and each refusal is counted.
    @Test func retriesHelpAndStopAtTheBudget() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = Mutex(0)
        let flaky = try await AppServer.start(group: group) { _, loop in
            let n = received.withLock { c in c += 1; return c }
            return loop.makeSucceededFuture(AppResponse(status: n % 2 == 0 ? 503 : 200, body: "x"))
        }
        let hits = Mutex(0)
        let dead = try await AppServer.start(group: group) { _, loop in
            hits.withLock { $0 += 1 }
            return loop.makeSucceededFuture(AppResponse(status: 500, body: "down"))
        }
        let yaml = """
        destinations:
          - authority: flaky:80
            retries: 2
            backends: [{name: a, endpoints: [{address: "\(flaky.address)"}]}]
          - authority: dead:80
            retries: 2
            backends: [{name: a, endpoints: [{address: "\(dead.address)"}]}]
        """
        let table = try DestinationTable.parse(yaml: yaml, file: "d.yaml")
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group)
        let client = HTTPClient(group: group)
        var ok = 0
        for _ in 0..<50 where try await client.send(.GET, "/", host: "flaky:80", to: proxy.outboundAddress!).get().status == 200 { ok += 1 }
        #expect(ok == 50, "every request had a retry after its 503")
        // POST is not retried: the next answer is a 503 (99 answers so far), and the client sees it.
        let post = try await client.send(.POST, "/", host: "flaky:80", to: proxy.outboundAddress!).get()
        #expect(post.status == 503)

        let requests = 300
        var failed = 0
        for _ in 0..<requests where try await client.send(.GET, "/", host: "dead:80", to: proxy.outboundAddress!).get().status == 500 { failed += 1 }
        #expect(failed == requests)
        let attempts = hits.withLock { $0 }
        // Without a budget: 900 attempts. With it: 300 + about 100 + 20% of the requests in the window.
        let budget = 100 + Int(0.2 * Double(requests))
        #expect(attempts > requests + 50 && attempts <= requests + budget + 1, "attempts: \(attempts) (budget \(budget))")
        let (m, _) = try scrape(proxy)
        #expect((value(m, "meshproxy_retries_total", ["authority": "dead:80", "result": "budget_exhausted"]) ?? 0) > 0)
        // Answers alternate 200/503, so after the first request each one is a 503 and then a 200.
        #expect(value(m, "meshproxy_retries_total", ["authority": "flaky:80", "result": "retried"]) == 49)
        client.shutdown()
        await proxy.stop()
        await flaky.stop()
        await dead.stop()
        try await group.shutdownGracefully()
    }
}
