import Foundation
import MeshDemo
import MeshIdentity
import MeshMetrics
import MeshSources
import MeshTap
import MeshTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PromText
import Testing
@testable import MeshProxy

/// The identity bootstrap as a network sees it: the token only inside TLS to a service that
/// proves its name, every bad answer an error and a retry, a proxy that waits for its first
/// certificate and stops using one whose dates have passed; and the limits on what a peer of the
/// tap and admin listeners can hold or do.
@Suite(.serialized) struct IdentityBootstrap {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let token = "web-token-0123456789abcdef-SECRET"
    let loopback = HostPort(host: "127.0.0.1", port: 0)

    func service(_ authority: IdentityAuthority) async throws -> (IdentityService, HostPort) {
        let service = IdentityService(authority: authority, tokens: IdentityTokens([("ns", "web", Self.token)]), certificateLifetime: 3600)
        let channel = try await service.bind(loopback, group: group)
        return (service, try #require(channel.localHostPort))
    }

    // MARK: the channel

    /// What the proxy sends, as a tap on the path between it and the service records it: TLS
    /// records only, no token, no CSR, no HTTP. The same capture of a request sent in clear does
    /// show the token (so the capture can see it), and the service refuses that request.
    @Test func theTokenIsNotOnTheWire() async throws {
        let authority = try IdentityAuthority.create()
        let (service, address) = try await service(authority)
        let relay = try CapturingRelay(to: address)
        defer { relay.stop() }
        let name = authority.identityName(serviceAccount: "web", namespace: "ns")
        let client = IdentityClient(service: relay.address, name: name, token: Self.token, trustAnchorPEM: try authority.trustAnchorPEM())
        #expect(client.serviceName == "identity.linkerd.cluster.local")
        let identity = try client.fetch()
        #expect(identity.name == name)
        let sent = relay.captured()
        #expect(sent.count > 500, "the capture holds the exchange (\(sent.count) bytes)")
        #expect(sent.first == 0x16, "a TLS handshake record comes first")
        #expect(!contains(sent, Array(Self.token.utf8)), "the token is on the wire in clear")
        #expect(!contains(sent, Array("POST".utf8)) && !contains(sent, Array("CERTIFICATE REQUEST".utf8)))

        // The control: the same capture of a plaintext request sees the token; the service refuses it.
        let clear = try CapturingRelay(to: address)
        defer { clear.stop() }
        let body = "{\"identity\":\"\(name)\",\"token\":\"\(Self.token)\",\"csr\":\"x\"}"
        let answer = try rawExchange(clear.address, Array("POST /v1/certify HTTP/1.1\r\nHost: identity\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8))
        #expect(contains(clear.captured(), Array(Self.token.utf8)))
        #expect(answer.hasPrefix("HTTP/1.1 403") && answer.contains("over TLS only"), "\(answer)")
        #expect(service.count("refused_plaintext") == 1 && service.count("issued") == 1)
        // Plaintext still serves what Prometheus and meshtop check read.
        #expect(try rawExchange(address, Array("GET /metrics HTTP/1.1\r\nHost: identity\r\nConnection: close\r\n\r\n".utf8))
            .contains("identity_certify_total{result=\"refused_plaintext\"} 1"))
    }

    /// A service whose certificate chains to the anchor but names someone else (any workload's
    /// certificate does) is not the identity service: the token is not sent to it.
    @Test func aWorkloadCertificateCannotPassForTheIdentityService() async throws {
        let authority = try IdentityAuthority.create()
        let impostor = try authority.issue(authority.identityName(serviceAccount: "evil", namespace: "ns"), validFor: 3600)
        let fake = try await FakeIdentityService.start(tls: try impostor.listenerContext(), answer: [(0, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".utf8))], group: group)
        defer { fake.stop() }
        let client = IdentityClient(service: fake.address, name: authority.identityName(serviceAccount: "web", namespace: "ns"),
                                    token: Self.token, trustAnchorPEM: try authority.trustAnchorPEM())
        #expect { try client.fetch() } throws: { "\($0)".contains("not for the identity expected") }
        #expect(fake.requestsRead == 0, "the impostor read a request")
    }

    /// Answers nobody should send: each one an `IdentityError` within the client's deadline,
    /// never a trap (the test process would die), and a proxy that meets them keeps asking.
    @Test(arguments: [
        ("garbage", [(Int64(0), "THIS IS NOT HTTP AT ALL\r\n\r\n")], "malformed"),
        ("Content-Length: -1", [(0, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}")], "malformed"),
        ("a huge body", [(0, "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + String(repeating: "a", count: 300_000))], "longer than 64 KiB"),
        ("a huge chunked body", [(0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "10000\r\n" + String(repeating: "b", count: 65_536) + "\r\n", count: 3))], "longer than 64 KiB"),
        ("a slow body", [(0, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")] + (1...20).map { _ in (Int64(300), " ") }, "no whole answer within 1 s"),
        ("no answer", [], "no whole answer within 1 s"),
        ("not JSON", [(0, ok("hello"))], "something other than a certificate"),
        ("JSON without a certificate", [(0, ok("{\"certificate\":\"x\",\"chain\":[],\"extra\":\"y\"}\n"))], "certificate"),
        ("a close mid-answer", [(0, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"), (50, "")], "closed|malformed"),
    ] as [(String, [(Int64, String)], String)])
    func aBadAnswerIsAnErrorAndARetry(what: String, answer: [(Int64, String)], says: String) async throws {
        let authority = try IdentityAuthority.create()
        let serving = try authority.issue(authority.identityServiceName, validFor: 3600)
        let fake = try await FakeIdentityService.start(tls: try serving.listenerContext(), answer: answer.map { ($0.0, Array($0.1.utf8)) },
                                                       closeAfterEmpty: true, group: group)
        defer { fake.stop() }
        let name = authority.identityName(serviceAccount: "web", namespace: "ns")
        let client = IdentityClient(service: fake.address, name: name, token: Self.token, trustAnchorPEM: try authority.trustAnchorPEM(), timeoutSeconds: 1)
        let started = Date()
        do {
            _ = try client.fetch()
            Issue.record("\(what): taken as a certificate")
        } catch {
            #expect(says.split(separator: "|").contains { "\(error)".contains($0) }, "\(what): \(error)")
        }
        #expect(Date().timeIntervalSince(started) < 3, "\(what): the error took \(Date().timeIntervalSince(started)) s")

        // A proxy meeting that service: not ready, saying why, and trying again with backoff.
        let said = NIOLockedValueBox<[String]>([])
        let identity = ProxyIdentity(client: client, backoff: .init(first: .milliseconds(20), cap: .milliseconds(100)),
                                     say: { line in said.withLockedValue { $0.append(line) } })
        identity.start(on: group.next())
        #expect(eventually(within: 15) { fake.connections >= 3 }, "\(what): \(fake.connections) attempt(s)")
        let reason = try #require(identity.notReadyReason)
        #expect(reason.hasPrefix("no certificate for \(name) yet (") && reason.contains("attempt(s) failed"), "\(reason)")
        #expect(said.withLockedValue { $0.first?.contains("trying again in") == true }, "\(said.withLockedValue { $0 })")
        #expect(identity.usable == nil)
        identity.stop()
    }

    /// A plaintext server on the service's port, or one with another anchor: TLS errors, not answers.
    @Test func aServiceWithoutTheAnchorsTLSIsNotBelieved() async throws {
        let authority = try IdentityAuthority.create()
        let name = authority.identityName(serviceAccount: "web", namespace: "ns")
        let plain = try await FakeIdentityService.start(tls: nil, answer: [(0, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".utf8))], group: group)
        defer { plain.stop() }
        let client = IdentityClient(service: plain.address, name: name, token: Self.token, trustAnchorPEM: try authority.trustAnchorPEM(), timeoutSeconds: 1)
        #expect(throws: IdentityError.self) { try client.fetch() }
        let other = try IdentityAuthority.create()
        let rogue = try await FakeIdentityService.start(tls: try other.issue(other.identityServiceName, validFor: 3600).listenerContext(),
                                                        answer: [(0, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".utf8))], group: group)
        defer { rogue.stop() }
        let fooled = IdentityClient(service: rogue.address, name: name, token: Self.token, trustAnchorPEM: try authority.trustAnchorPEM(), timeoutSeconds: 1)
        #expect { try fooled.fetch() } throws: { "\($0)".contains("TLS") }
        #expect(rogue.requestsRead == 0)
    }

    // MARK: start and expiry

    /// Real processes: a meshproxy whose identity service is not there yet starts, serves, says
    /// why it is not ready, and becomes ready once `meshproxy identity serve` comes up.
    @Test func aProxyStartedBeforeTheIdentityServiceBecomesReadyWhenItAppears() async throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("meshtop-bootstrap-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: dir) }
        #expect(try meshproxy(["identity", "init", "--dir", dir + "/ca"]).waitForExit() == 0)
        try "ns/web \(Self.token)\n".write(toFile: dir + "/tokens", atomically: true, encoding: .utf8)
        try Self.token.write(toFile: dir + "/web.token", atomically: true, encoding: .utf8)
        let port = try #require(freePort())
        let app = try await statusApp(group: group)
        defer { Task { await app.stop() } }
        let proxy = try meshproxy(["--inbound", "127.0.0.1:0", "--app", app.address.description, "--admin", "127.0.0.1:0",
                                   "--label", "namespace=ns", "--label", "deployment=web", "--identity-token-file", dir + "/web.token",
                                   "--identity-service", "127.0.0.1:\(port)", "--trust-anchor", dir + "/ca/ca.crt"])
        defer { proxy.stop() }
        let admin = try #require(HostPort(try proxy.waitFor(/admin (127\.0\.0\.1:\d+)/)))
        let inbound = try #require(HostPort(try proxy.waitFor(/inbound (127\.0\.0\.1:\d+)/)))
        let http = HTTPClient(group: group)
        defer { http.shutdown() }

        // Serving, not ready, saying why; plaintext traffic goes on meanwhile.
        var ready = try await http.send(.GET, "/ready", host: "admin", to: admin).get()
        #expect(ready.status == 503 && ready.body.contains("no certificate for web.ns.serviceaccount.identity.linkerd.cluster.local yet"), "\(ready.body)")
        #expect(try await http.send(.GET, "/", host: "app", to: inbound).get().status == 200)
        _ = try proxy.waitFor(/identity: (cannot reach the identity service)/)
        #expect(try scrapeText(admin).contains("meshproxy_identity_ready 0"))
        #expect(proxy.process.isRunning)

        let service = try meshproxy(["identity", "serve", "--dir", dir + "/ca", "--tokens", dir + "/tokens", "--listen", "127.0.0.1:\(port)"])
        defer { service.stop() }
        _ = try service.waitFor(/signing CSRs on (127\.0\.0\.1:\d+)/)
        let certified = await eventuallyAwaiting(within: 20, pollMs: 100) {
            (try? await http.send(.GET, "/ready", host: "admin", to: admin).get().status) == 200
        }
        ready = try await http.send(.GET, "/ready", host: "admin", to: admin).get()
        #expect(certified, "\(ready.body)")
        _ = try proxy.waitFor(/identity: certified as (\S+)/)
        #expect(try scrapeText(admin).contains("meshproxy_identity_ready 1"))
    }

    /// A certificate whose `notAfter` has passed (on the proxy's clock, moved forward here) is
    /// used for nothing: `/ready` says so, the gauge reads 0, stderr says it once, outbound mTLS
    /// fails as TLS (also on kept-alive connections made before), inbound TLS is refused, and
    /// plaintext goes on.
    @Test func anExpiredCertificateTurnsReadyNotReadyAndIsNeverUsed() async throws {
        let authority = try IdentityAuthority.create()
        let app = try await statusApp(group: group)
        let clock = NIOLockedValueBox<TimeInterval>(0)
        let said = NIOLockedValueBox<[String]>([])
        func ageing(_ account: String) throws -> ProxyIdentity {
            let name = authority.identityName(serviceAccount: account, namespace: "ns")
            return ProxyIdentity(name: name, first: try authority.issue(name, validFor: 3600), backoff: .init(first: .milliseconds(50), cap: .milliseconds(200)),
                                 now: { Date().addingTimeInterval(clock.withLockedValue { $0 }) },
                                 say: { line in said.withLockedValue { $0.append(line) } }) { loop in
                loop.makeFailedFuture(IdentityError("the identity service is away"))
            }
        }
        var webConfig = ProxyConfiguration(inbound: (loopback, app.address), admin: loopback)
        webConfig.identity = try ageing("web")
        let web = try await MeshProxyServer.start(webConfig, group: group)
        let webInbound = try #require(web.inboundAddress)
        let webName = authority.identityName(serviceAccount: "web", namespace: "ns")
        func client(_ identity: ProxyIdentity) async throws -> MeshProxyServer {
            let table = DestinationTable([Destination(authority: "web-svc:8080", backends: [
                Backend(name: "web", weight: 100, endpoints: [Endpoint(host: webInbound.host, port: webInbound.port, labels: [:], identity: webName)]),
            ])])
            var config = ProxyConfiguration(outbound: (loopback, table), admin: loopback)
            config.identity = identity
            return try await MeshProxyServer.start(config, group: group)
        }
        let bot = try await client(try ageing("bot"))
        let ops = try await client(try ProxyIdentity { try authority.issue(authority.identityName(serviceAccount: "ops", namespace: "ns"), validFor: 3600) })
        let http = HTTPClient(group: group)
        func get(_ proxy: MeshProxyServer) async throws -> ClientResponse {
            try await http.send(.GET, "/", host: "web-svc:8080", to: try #require(proxy.outboundAddress)).get()
        }
        #expect(try await get(bot).status == 200)
        #expect(try await get(ops).status == 200)
        #expect(try await http.send(.GET, "/ready", host: "admin", to: bot.adminAddress).get().status == 200)

        clock.withLockedValue { $0 = 3700 }
        let ready = try await http.send(.GET, "/ready", host: "admin", to: bot.adminAddress).get()
        #expect(ready.status == 503 && ready.body.contains("the certificate for bot.ns.serviceaccount.identity.linkerd.cluster.local expired at"), "\(ready.body)")
        let (metrics, text) = try scrape(bot)
        #expect(text.contains("meshproxy_identity_ready 0"))
        let expiry = try #require(value(metrics, "identity_cert_expiration_timestamp_seconds", [:]))
        #expect(expiry < Date().addingTimeInterval(3700).timeIntervalSince1970, "the gauge shows the date that passed")
        #expect(said.withLockedValue { $0 }.filter { $0.contains("bot") && $0.contains("expired at") && $0.contains("mTLS is off") }.count == 1,
                "\(said.withLockedValue { $0 })")

        // bot's outbound: its kept-alive mTLS connection is not reused, a new one is not made.
        let refused = try await get(bot)
        #expect(refused.status == 502, "\(refused.status) \(refused.body)")
        #expect(refused.headers.contains { $0.0 == "l5d-proxy-error" } && refused.body.contains("no valid certificate"), "\(refused.body)")
        #expect(value(try scrape(bot).0, "response_total", ["direction": "outbound", "error": "tls"]) == 1, "the refusal is counted as a TLS failure")
        // web's inbound (expired too) refuses ops' fresh mTLS handshake; plaintext to web goes on.
        // Its kept-alive connection from before is answered 503 and closed; the next one is refused TLS.
        let opsAfter = try await get(ops)
        #expect([502, 503].contains(opsAfter.status), "\(opsAfter.status) \(opsAfter.body)")
        let opsNext = try await get(ops)
        #expect(opsNext.status == 502 && opsNext.body.contains("mTLS"), "\(opsNext.status) \(opsNext.body)")
        #expect(try await http.send(.GET, "/", host: "app", to: webInbound).get().status == 200)

        http.shutdown()
        for p in [web, bot, ops] { await p.stop() }
        await app.stop()
    }

    // MARK: operator numbers that trapped

    @Test func aDrainOfAHundredBillionYearsIsAnInputErrorNotATrap() throws {
        let run = try meshproxy(["--inbound", "127.0.0.1:0", "--app", "127.0.0.1:9", "--admin", "127.0.0.1:0", "--drain-seconds", "1e17"])
        defer { run.stop() }
        _ = run.exit(within: 10)
        #expect(run.process.terminationReason == .exit && run.process.terminationStatus != 0, "a trap, or taken")
        #expect(run.stderr.contains("--drain-seconds") && run.stderr.contains("3600"), "\(run.stderr)")
        #expect(throws: SettingsError.self) { try ProxySettings.checkDrain(seconds: .infinity) }
        #expect(throws: SettingsError.self) { try ProxySettings.checkDrain(seconds: -1) }
        #expect(throws: Never.self) { try ProxySettings.checkDrain(seconds: 30) }
    }

    @Test func certificateHoursBeyondAYearAreAnInputErrorAndTheServiceClampsToItsIssuer() async throws {
        let run = try meshproxy(["identity", "serve", "--dir", "/nonexistent", "--tokens", "/nonexistent", "--cert-hours", "1e16"])
        defer { run.stop() }
        _ = run.exit(within: 10)
        #expect(run.process.terminationReason == .exit && run.process.terminationStatus != 0)
        #expect(run.stderr.contains("--cert-hours") && run.stderr.contains("8760"), "\(run.stderr)")

        // A service made with a lifetime past anything (a library caller): certificates end with the issuer.
        let authority = try IdentityAuthority.create()
        let service = IdentityService(authority: authority, tokens: IdentityTokens([("ns", "web", Self.token)]), certificateLifetime: 1e16 * 3600)
        let channel = try await service.bind(loopback, group: group)
        let name = authority.identityName(serviceAccount: "web", namespace: "ns")
        let identity = try IdentityClient(service: try #require(channel.localHostPort), name: name, token: Self.token,
                                          trustAnchorPEM: try authority.trustAnchorPEM()).fetch()
        #expect(identity.notValidAfter <= authority.issuer.notValidAfter)
        try await channel.close()
    }

    @Test(arguments: [
        ("--connect-timeout-ms", "0"), ("--connect-timeout-ms", "100000000000"), ("--idle-timeout-ms", "-5"),
        ("--header-timeout-ms", "9223372036854775807"), ("--detect-timeout-ms", "86400001"), ("--max-connections", "0"),
        ("--max-connections", "9999999999"), ("--tap-max-subscribers", "5000"), ("--tap-max-connections", "4"), ("--threads", "1000"),
    ])
    func anOperatorNumberOutOfRangeNamesItsFlag(flag: String, value: String) throws {
        let run = try meshproxy(["--inbound", "127.0.0.1:0", "--app", "127.0.0.1:9", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0", flag, value])
        defer { run.stop() }
        _ = run.exit(within: 10)
        #expect(run.process.terminationReason == .exit && run.process.terminationStatus != 0, "\(flag) \(value) was taken")
        #expect(run.stderr.contains(flag), "\(flag) \(value): \(run.stderr)")
    }

    // MARK: tap and admin limits

    /// 200 connections that never send a filter line: the tap listener holds at most its cap,
    /// closes the rest at once, and closes the held ones at the filter deadline, all counted; a
    /// polite subscriber afterwards gets its events.
    @Test func tapHoldsAtMostItsCapAndClosesSilentConnections() async throws {
        let app = try await statusApp(group: group)
        var config = ProxyConfiguration(inbound: (loopback, app.address), admin: loopback)
        config.tap = loopback
        config.headerTimeout = .seconds(3)  // all 200 connect well within it
        let proxy = try await MeshProxyServer.start(config, group: group)
        let tap = try #require(proxy.tapAddress)
        let fds = try (0..<200).map { _ in try TapSubscription.connect(tap.description).get() }
        defer { fds.forEach { close($0) } }
        func refused() throws -> Double { value(try scrape(proxy).0, "meshproxy_connections_refused_total", ["direction": "tap"]) ?? 0 }
        func timedOut() throws -> Double {
            value(try scrape(proxy).0, "meshproxy_connections_timed_out_total", ["direction": "tap", "reason": "filter"]) ?? 0
        }
        let allRefused = try eventually(within: 10) { try refused() == 136 }
        #expect(allRefused, "refused \((try? refused()) ?? -1)")
        let allTimedOut = try eventually(within: 10) { try timedOut() == 64 }
        #expect(allTimedOut, "timed out \((try? timedOut()) ?? -1)")
        // Every one of the 200 is closed by the proxy (EOF or the refusal line, then EOF).
        #expect(eventually(within: 10) { fds.allSatisfy(isClosedByPeer) }, "\(fds.filter { !isClosedByPeer($0) }.count) still open")

        let recorder = TapRecorder()
        let polite = TapSubscription(address: tap.description, filter: TapFilter())
        polite.start { recorder.deliver($0) }
        defer { polite.stop() }
        #expect(eventually { proxy.tapHub.subscriberCount == 1 })
        let http = HTTPClient(group: group)
        #expect(try await http.send(.GET, "/", host: "app", to: try #require(proxy.inboundAddress)).get().status == 200)
        try await recorder.waitFor(3)
        http.shutdown()
        await proxy.stop()
        await app.stop()
    }

    /// The admin POSTs a web page could send through a browser on this machine are refused; the
    /// command-line ones (meshtop's own, curl's) go on.
    @Test func adminPostsFromWebPagesAreRefused() async throws {
        let app = try await statusApp(group: group)
        let table = DestinationTable([Destination(authority: "web-svc:8080", backends: [
            Backend(name: "web", weight: 100, endpoints: [Endpoint(host: app.address.host, port: app.address.port, labels: [:])]),
        ])])
        let stopped = NIOLockedValueBox(false)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(outbound: (loopback, table), admin: loopback), group: group) {
            stopped.withLockedValue { $0 = true }
        }
        func post(_ path: String, _ headers: [String], body: String = "{\"authority\":\"web-svc:8080\",\"weights\":{\"web\":100}}") throws -> String {
            try rawExchange(proxy.adminAddress, Array(([ "POST \(path) HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                                                         "Content-Length: \(body.utf8.count)"] + headers).joined(separator: "\r\n").utf8) + Array("\r\n\r\n\(body)".utf8))
        }
        let json = "Content-Type: application/json"
        #expect(try post("/split", [json, "Origin: http://evil.example"]).hasPrefix("HTTP/1.1 403"))
        #expect(try post("/split", [json, "Sec-Fetch-Site: cross-site"]).hasPrefix("HTTP/1.1 403"))
        #expect(try post("/split", ["Content-Type: text/plain"]).hasPrefix("HTTP/1.1 403"))
        #expect(try post("/split", ["Content-Type: application/x-www-form-urlencoded"]).hasPrefix("HTTP/1.1 403"))
        #expect(try post("/split", ["Content-Type: multipart/form-data; boundary=x"]).hasPrefix("HTTP/1.1 403"))
        #expect(try post("/split", []).hasPrefix("HTTP/1.1 415"))
        #expect(try post("/shutdown", ["Origin: null"], body: "").hasPrefix("HTTP/1.1 403"))
        #expect(!stopped.withLockedValue { $0 }, "a page's POST /shutdown stopped the proxy")
        let ok = try post("/split", [json, "Sec-Fetch-Site: none"])
        #expect(ok.hasPrefix("HTTP/1.1 200"), "\(ok)")
        #expect(try post("/shutdown", [], body: "").hasPrefix("HTTP/1.1 200"))
        #expect(eventually { stopped.withLockedValue { $0 } })
        await proxy.stop()
        await app.stop()
    }

    func meshproxy(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshproxy"), arguments)
    }

    func scrapeText(_ admin: HostPort) throws -> String {
        let result = Scraper(timeoutSeconds: 5).scrape([ScrapeTarget(url: "http://\(admin)/metrics")]) { 0 }[0]
        return String(decoding: try #require(result.body, "\(result.error ?? "")"), as: UTF8.self)
    }
}

/// A 200 answer carrying `body`, framed right.
func ok(_ body: String) -> String { "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body }

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    return (0...(haystack.count - needle.count)).contains { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
}

/// Whether the peer has closed `fd` (reads what is there without waiting; EOF or an error).
func isClosedByPeer(_ fd: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n > 0 { continue }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
    }
}


/// A TCP relay on loopback for one connection, keeping every byte the client sent (a tap on
/// the wire between a proxy and its identity service).
final class CapturingRelay: @unchecked Sendable {
    let address: HostPort
    private let listener: Int32
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var fds: [Int32] = []

    init(to target: HostPort) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard listening else { throw IdentityError("the relay cannot listen: errno \(errno)") }
        address = HostPort(host: "127.0.0.1", port: Int(UInt16(bigEndian: a.sin_port)))
        Thread.detachNewThread { [self] in
            let client = accept(fd, nil, nil)
            guard client >= 0, let upstream = try? TapSubscription.connect(target.description).get() else { return }
            lock.withLock { fds += [client, upstream] }
            Thread.detachNewThread { self.copy(from: upstream, to: client, keep: false) }
            copy(from: client, to: upstream, keep: true)
        }
    }

    private func copy(from: Int32, to: Int32, keep: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            if keep { lock.withLock { bytes += buffer[0..<n] } }
            guard buffer.withUnsafeBytes({ send(to, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }) == n else { break }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    func captured() -> [UInt8] { lock.withLock { bytes } }

    func stop() {
        close(listener)
        lock.withLock { fds.forEach { shutdown($0, Int32(SHUT_RDWR)) } }
    }
}

/// A stand-in identity service: TLS with the context given (or none), and to every connection
/// the same answer, written in timed pieces after the first bytes of the request arrive.
final class FakeIdentityService: Sendable {
    let address: HostPort
    private let channel: any Channel
    private let counts: NIOLockedValueBox<(connections: Int, requests: Int)>

    var connections: Int { counts.withLockedValue { $0.connections } }
    /// How many connections got as far as sending request bytes (inside TLS, when TLS is on).
    var requestsRead: Int { counts.withLockedValue { $0.requests } }

    private init(address: HostPort, channel: any Channel, counts: NIOLockedValueBox<(connections: Int, requests: Int)>) {
        self.address = address
        self.channel = channel
        self.counts = counts
    }

    /// `answer`: (milliseconds after the previous piece, bytes); an empty piece with
    /// `closeAfterEmpty` closes the connection there.
    static func start(tls: NIOSSLContext?, answer: [(Int64, [UInt8])], closeAfterEmpty: Bool = false,
                      group: any EventLoopGroup) async throws -> FakeIdentityService {
        let counts = NIOLockedValueBox((connections: 0, requests: 0))
        let pieces = answer.map { Piece(delayMs: $0.0, bytes: $0.1) }
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                counts.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(CannedAnswer(pieces: pieces, closeAfterEmpty: closeAfterEmpty) {
                        counts.withLockedValue { $0.requests += 1 }
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeIdentityService(address: try #require(channel.localHostPort), channel: channel, counts: counts)
    }

    func stop() { channel.close(promise: nil) }

    struct Piece: Sendable {
        let delayMs: Int64
        let bytes: [UInt8]
    }

    final class CannedAnswer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let pieces: [Piece]
        let closeAfterEmpty: Bool
        let onRequest: @Sendable () -> Void
        var answered = false

        init(pieces: [Piece], closeAfterEmpty: Bool, onRequest: @escaping @Sendable () -> Void) {
            self.pieces = pieces
            self.closeAfterEmpty = closeAfterEmpty
            self.onRequest = onRequest
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            onRequest()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            var at: Int64 = 0
            for piece in pieces {
                at += piece.delayMs
                let (bytes, close) = (piece.bytes, piece.bytes.isEmpty && closeAfterEmpty)
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(at)) {
                    let context = bound.value
                    if close { context.close(promise: nil) } else {
                        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                    }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
