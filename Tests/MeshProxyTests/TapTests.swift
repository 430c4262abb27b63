import MeshTesting
import Foundation
import Testing
import NIOCore
import NIOPosix
import Synchronization
@testable import MeshProxy
import MeshDemo
import MeshSources
import MeshTap

/// Collects what a tap subscription delivers.
final class TapRecorder: Sendable {
    let events = Mutex<[TapEvent]>([])
    let problems = Mutex<[String]>([])

    func deliver(_ u: TapSubscription.Update) {
        switch u {
        case .event(let e): events.withLock { $0.append(e) }
        case .problem(let p): problems.withLock { $0.append(p) }
        case .closed: break
        }
    }

    func waitFor(_ count: Int, seconds: Double = 5) async throws {
        eventually(within: seconds) { events.withLock { $0.count } >= count }
    }
}

@Suite(.serialized) struct ProxyTap {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    func start(_ configure: (inout ProxyConfiguration) -> Void = { _ in }) async throws -> (AppServer, MeshProxyServer, HTTPClient) {
        let app = try await statusApp(group: group)
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        var config = ProxyConfiguration(inbound: (loopback, app.address), admin: loopback)
        config.tap = loopback
        config.workloadLabels = ["namespace": "test", "deployment": "app", "pod": "app-0"]
        configure(&config)
        let proxy = try await MeshProxyServer.start(config, group: group)
        return (app, proxy, HTTPClient(group: group))
    }

    @Test func subscriberSeesRequestResponseAndEndWithCredentialsRedacted() async throws {
        let (app, proxy, client) = try await start()
        defer { client.shutdown() }
        let tapAddress = try #require(proxy.tapAddress)
        let recorder = TapRecorder()
        let sub = TapSubscription(address: tapAddress.description, filter: TapFilter(path: "/status"))
        sub.start { recorder.deliver($0) }
        defer { sub.stop() }
        eventually { proxy.tapHub.subscriberCount > 0 }
        let inbound = try #require(proxy.inboundAddress)
        _ = try await client.send(.GET, "/ok", host: "app", to: inbound).get()  // filtered out by path
        _ = try await client.send(.GET, "/status/503", host: "app", to: inbound,
                                  headers: [("Authorization", "Bearer s3cret"), ("Cookie", "session=abc"), ("X-Trace", "t1")]).get()
        try await recorder.waitFor(3)
        let events = recorder.events.withLock { $0 }
        #expect(events.count == 3)
        guard events.count == 3 else { return }
        guard case let .requestInit(id, method, _, authority, path, headers) = events[0].http else {
            Issue.record("first event is not a request")
            return
        }
        #expect(method == "GET" && authority == "app" && path == "/status/503")
        #expect(headers.first { $0.name.lowercased() == "authorization" }?.value == redactedValue)
        #expect(headers.first { $0.name.lowercased() == "cookie" }?.value == redactedValue)
        #expect(headers.first { $0.name.lowercased() == "x-trace" }?.value == "t1")
        #expect(!events.map { TapJSON.encode($0) }.joined().contains("s3cret"))
        #expect(events[0].direction == .inbound)
        #expect(events[0].destination.metadata?["deployment"] == "app")
        guard case let .responseInit(id2, _, status, _) = events[1].http, case let .responseEnd(id3, since, _, bytes, _, _, _) = events[2].http else {
            Issue.record("expected rsp then end")
            return
        }
        #expect(id == id2 && id2 == id3)
        #expect(status == 503)
        #expect(bytes == UInt64("status 503\n".utf8.count))  // counted, never carried
        #expect(since > 0)
        await proxy.stop()
        await app.stop()
    }

    @Test func maxRpsLimitsTappedRequests() async throws {
        let (app, proxy, client) = try await start()
        defer { client.shutdown() }
        let recorder = TapRecorder()
        let sub = TapSubscription(address: try #require(proxy.tapAddress).description, filter: TapFilter(maxRps: 5))
        sub.start { recorder.deliver($0) }
        defer { sub.stop() }
        eventually { proxy.tapHub.subscriberCount > 0 }
        let inbound = try #require(proxy.inboundAddress)
        let started = Date()
        for _ in 0..<60 { _ = try await client.send(.GET, "/ok", host: "app", to: inbound).get() }
        let elapsed = Date().timeIntervalSince(started)
        try await Task.sleep(nanoseconds: 200_000_000)
        let requests = recorder.events.withLock { $0.filter { if case .requestInit = $0.http { true } else { false } }.count }
        // A burst of 5, then 5 per second: never more than that, and some.
        #expect(requests >= 5)
        #expect(Double(requests) <= 5 + 5 * elapsed + 1, "\(requests) requests tapped in \(elapsed) s")
        await proxy.stop()
        await app.stop()
    }

    @Test func aStalledSubscriberNeitherSlowsNorBlocksTheProxy() async throws {
        let (app, proxy, client) = try await start()
        defer { client.shutdown() }
        // A subscriber that asks for everything and then never reads.
        let tapAddress = try #require(proxy.tapAddress)
        let fd = try #require(try? TapSubscription.connect(tapAddress.description).get())
        defer { close(fd) }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let line = Array((TapFilter(maxRps: 1_000).json + "\n").utf8)  // the most a proxy grants
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        eventually { proxy.tapHub.subscriberCount > 0 }

        let inbound = try #require(proxy.inboundAddress)
        var slowest = 0.0
        let started = Date()
        for _ in 0..<3000 {
            let t0 = Date()
            let r = try await client.send(.GET, "/ok", host: "app", to: inbound, headers: [("x-padding", String(repeating: "p", count: 400))]).get()
            #expect(r.status == 200)
            slowest = max(slowest, Date().timeIntervalSince(t0))
        }
        let total = Date().timeIntervalSince(started)
        // The proxy kept answering (no request waited on the tap socket) and dropped what it could not send.
        #expect(slowest < 1.0, "slowest request took \(slowest) s")
        #expect(total < 30)
        #expect(proxy.tapHub.droppedEvents > 0)
        let (exposition, _) = try scrape(proxy)
        #expect((value(exposition, "tap_events_dropped_total", [:]) ?? 0) > 0, "drops are visible in /metrics")
        #expect(value(exposition, "tap_subscribers", [:]) == 1)
        await proxy.stop()
        await app.stop()
    }

    @Test func aTapTokenIsRequiredWhenConfigured() async throws {
        let (app, proxy, client) = try await start { $0.tapToken = "t0ken" }
        client.shutdown()
        let address = try #require(proxy.tapAddress).description
        let refused = TapRecorder()
        let without = TapSubscription(address: address, filter: TapFilter())
        without.start { refused.deliver($0) }
        let allowed = TapRecorder()
        let with = TapSubscription(address: address, filter: TapFilter(token: "t0ken"))
        with.start { allowed.deliver($0) }
        defer { without.stop(); with.stop() }
        eventually(within: 5) { !refused.problems.withLock { $0.isEmpty } && proxy.tapHub.subscriberCount > 0 }
        #expect(refused.problems.withLock { $0.contains { $0.contains("needs a token") } })
        #expect(proxy.tapHub.subscriberCount == 1)
        await proxy.stop()
        await app.stop()
    }

    @Test func queryValuesNamedLikeSecretsAndConfiguredHeadersAreRedacted() async throws {
        let (app, proxy, client) = try await start { $0.tapRedaction = TapRedaction(extraHeaders: ["X-Internal"]) }
        defer { client.shutdown() }
        let recorder = TapRecorder()
        let sub = TapSubscription(address: try #require(proxy.tapAddress).description, filter: TapFilter())
        sub.start { recorder.deliver($0) }
        defer { sub.stop() }
        eventually { proxy.tapHub.subscriberCount > 0 }
        _ = try await client.send(.GET, "/ok?page=2&access_token=abc123&api%5Fkey=k9&sig=zz", host: "app", to: try #require(proxy.inboundAddress),
                                  headers: [("X-Api-Key", "key-1"), ("X-Internal", "inside-1"), ("X-Vault-Token", "vault-1"), ("X-Trace", "t1")]).get()
        try await recorder.waitFor(3)
        let events = recorder.events.withLock { $0 }
        guard case let .requestInit(_, _, _, _, path, headers)? = events.first?.http else {
            Issue.record("no request event")
            return
        }
        #expect(path == "/ok?page=2&access_token=[REDACTED]&api%5Fkey=[REDACTED]&sig=[REDACTED]")
        for name in ["x-api-key", "x-internal", "x-vault-token"] {
            #expect(headers.first { $0.name.lowercased() == name }?.value == redactedValue, "\(name)")
        }
        #expect(headers.first { $0.name.lowercased() == "x-trace" }?.value == "t1")
        let json = events.map { TapJSON.encode($0) }.joined()
        for secret in ["abc123", "k9", "zz", "key-1", "inside-1", "vault-1"] { #expect(!json.contains(secret), "\(secret)") }
        await proxy.stop()
        await app.stop()
    }

    @Test func subscribersAndTheirRatesAreCapped() async throws {
        let (app, proxy, client) = try await start { $0.tapMaxSubscribers = 2 }
        client.shutdown()
        let address = try #require(proxy.tapAddress).description
        let greedy = TapRecorder()
        let fast = TapSubscription(address: address, filter: TapFilter(maxRps: 5_000))
        fast.start { greedy.deliver($0) }
        eventually(within: 5) { !greedy.problems.withLock { $0.isEmpty } }
        #expect(greedy.problems.withLock { $0.first?.contains("maxRps may be at most 1000") } == true)
        let recorders = (0..<3).map { _ in TapRecorder() }
        var subs: [TapSubscription] = []
        for r in recorders {
            let s = TapSubscription(address: address, filter: TapFilter())
            s.start { r.deliver($0) }
            subs.append(s)
            eventually(within: 5) { proxy.tapHub.subscriberCount == min(2, subs.count) && (subs.count < 3 || !r.problems.withLock { $0.isEmpty }) }
        }
        defer { fast.stop(); subs.forEach { $0.stop() } }
        #expect(proxy.tapHub.subscriberCount == 2)
        #expect(recorders[2].problems.withLock { $0.contains { $0.contains("at most 2 tap subscribers") } })
        await proxy.stop()
        await app.stop()
    }

    @Test func tokensAreComparedWholeWhateverTheirLength() {
        #expect(constantTimeEqual("Bearer t0ken", "Bearer t0ken"))
        #expect(!constantTimeEqual("Bearer t0ke", "Bearer t0ken"))
        #expect(!constantTimeEqual("Bearer t0kenX", "Bearer t0ken"))
        #expect(!constantTimeEqual("", "Bearer t0ken"))
        #expect(!constantTimeEqual("Bearer t0keN", "Bearer t0ken"))
        // Lengths that differ by a multiple of 256 still differ.
        #expect(!constantTimeEqual(String(repeating: "a", count: 256), ""))
        #expect(constantTimeEqual("", ""))
    }

    @Test func aBadFilterIsRefusedWithAReason() async throws {
        let (app, proxy, client) = try await start()
        defer { client.shutdown() }
        let recorder = TapRecorder()
        let sub = TapSubscription(address: try #require(proxy.tapAddress).description, filter: TapFilter(maxRps: -1))
        sub.start { recorder.deliver($0) }
        defer { sub.stop() }
        eventually(within: 5) { !recorder.problems.withLock { $0.isEmpty } }
        #expect(recorder.problems.withLock { $0.first?.contains("maxRps must be a positive number") } == true)
        await proxy.stop()
        await app.stop()
    }
}
