import MeshTesting
import Foundation
import Testing
import NIOCore
import NIOPosix
import MeshDemo
import MeshIdentity
import MeshProxy
import MeshTap
import MeshSources
import PromText

/// mTLS between meshproxies: identities proven and counted, a proxy from another trust anchor
/// refused, certificates rotated without dropping connections, keys written 0600.
@Suite(.serialized) struct MutualTLS {
    let loopback = HostPort(host: "127.0.0.1", port: 0)

    func proxy(_ authority: IdentityAuthority, _ name: String, app: AppServer? = nil, to destination: MeshProxyServer? = nil,
               identityOf expected: IdentityAuthority? = nil, lifetime: TimeInterval = 3600, tap: Bool = false,
               group: any EventLoopGroup) async throws -> MeshProxyServer {
        var table = DestinationTable()
        if let destination, let inbound = destination.inboundAddress {
            let id = (expected ?? authority).identityName(serviceAccount: "web", namespace: "ns")
            table = DestinationTable([Destination(authority: "web-svc.ns.svc.cluster.local:8080", backends: [
                Backend(name: "web", weight: 100, endpoints: [Endpoint(host: inbound.host, port: inbound.port,
                                                                       labels: ["deployment": "web", "namespace": "ns"], identity: id)]),
            ])])
        }
        var config = ProxyConfiguration(inbound: app.map { (loopback, $0.address) }, outbound: destination == nil ? nil : (loopback, table), admin: loopback)
        config.workloadLabels = ["deployment": name, "namespace": "ns"]
        if tap { config.tap = loopback }
        let identityName = authority.identityName(serviceAccount: name, namespace: "ns")
        config.identity = try ProxyIdentity { try authority.issue(identityName, validFor: lifetime) }
        return try await MeshProxyServer.start(config, group: group)
    }

    @Test func tapSaysWhatTheMetricsSayAboutTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "ok\n")) }
        let mesh = try IdentityAuthority.create()
        let web = try await proxy(mesh, "web", app: app, tap: true, group: group)
        let bot = try await proxy(mesh, "bot", to: web, group: group)
        let recorder = TapRecorder()
        let sub = TapSubscription(address: try #require(web.tapAddress).description, filter: TapFilter())
        sub.start { recorder.deliver($0) }
        eventually { web.tapHub.subscriberCount > 0 }
        let client = HTTPClient(group: group)
        let r = try await client.send(.GET, "/", host: "web-svc.ns.svc.cluster.local:8080", to: bot.outboundAddress!).get()
        #expect(r.status == 200)
        try await recorder.waitFor(3)
        let first = try #require(recorder.events.withLock { $0.first })
        let bots = mesh.identityName(serviceAccount: "bot", namespace: "ns")
        #expect(first.source.metadata?["tls"] == "true" && first.source.metadata?["client_id"] == bots, "\(String(describing: first.source.metadata))")
        #expect(TapText.line(first).contains("tls=true"), "\(TapText.line(first))")
        let (webMetrics, _) = try scrape(web)
        #expect(value(webMetrics, "response_total", ["direction": "inbound", "tls": "true", "client_id": bots]) == 1)
        sub.stop()
        client.shutdown()
        for p in [web, bot] { await p.stop() }
        await app.stop()
        try await group.shutdownGracefully()
    }

    @Test func meshedProxiesProveIdentitiesAndAWrongTrustAnchorIsRefused() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "ok\n")) }
        let mesh = try IdentityAuthority.create()
        let rogue = try IdentityAuthority.create()
        let web = try await proxy(mesh, "web", app: app, group: group)
        let impostor = try await proxy(rogue, "web", app: app, group: group)  // web's name, another anchor
        let bot = try await proxy(mesh, "bot", to: web, group: group)
        let lost = try await proxy(mesh, "lost", to: impostor, identityOf: mesh, group: group)
        let client = HTTPClient(group: group)
        for _ in 0..<5 {
            let r = try await client.send(.GET, "/", host: "web-svc.ns.svc.cluster.local:8080", to: bot.outboundAddress!).get()
            #expect(r.status == 200)
        }
        let refused = try await client.send(.GET, "/", host: "web-svc.ns.svc.cluster.local:8080", to: lost.outboundAddress!).get()
        #expect(refused.status == 502)
        let reason = refused.headers.first { $0.0 == "l5d-proxy-error" }?.1 ?? ""
        #expect(reason.contains("does not chain to this proxy's trust anchor"), "\(reason)")

        // Both sides of the good edge carry the identities.
        let (webMetrics, _) = try scrape(web)
        #expect(value(webMetrics, "response_total", ["direction": "inbound", "tls": "true", "classification": "success",
                                                     "client_id": mesh.identityName(serviceAccount: "bot", namespace: "ns")]) == 5)
        let (botMetrics, _) = try scrape(bot)
        #expect(value(botMetrics, "response_total", ["direction": "outbound", "tls": "true", "classification": "success",
                                                     "server_id": mesh.identityName(serviceAccount: "web", namespace: "ns")]) == 5)
        #expect((value(botMetrics, "identity_cert_expiration_timestamp_seconds", [:]) ?? 0) > Date().timeIntervalSince1970 + 3000)
        // The refused one is a failure with error="tls" and a handshake error, on both sides.
        let (lostMetrics, _) = try scrape(lost)
        #expect(value(lostMetrics, "response_total", ["direction": "outbound", "classification": "failure", "error": "tls"]) == 1)
        #expect(value(lostMetrics, "meshproxy_tls_handshake_errors_total", ["direction": "outbound"]) == 1)
        let (impostorMetrics, _) = try scrape(impostor)
        #expect((value(impostorMetrics, "meshproxy_tls_handshake_errors_total", ["direction": "inbound"]) ?? 0) >= 1)
        #expect(value(impostorMetrics, "response_total", ["direction": "inbound"]) == nil, "nothing reached the impostor's app")

        // meshtop check names the split trust and the failed handshakes.
        let scrapes = [("web", web), ("impostor", impostor), ("bot", bot), ("lost", lost)].flatMap { ["--scrape", "\($0.1.adminAddress);deployment=\($0.0)"] }
        let check = try meshtop(["check"] + scrapes)
        #expect(check.status == 1, "\(check.stdout)")
        #expect(check.stdout.contains("× proxies trust the same trust anchor"), "\(check.stdout)")
        #expect(check.stdout.contains("‼ mTLS handshakes succeed"), "\(check.stdout)")
        let healthy = try meshtop(["check", "--scrape", "\(web.adminAddress);deployment=web", "--scrape", "\(bot.adminAddress);deployment=bot"])
        #expect(healthy.status == 0 && healthy.stdout.contains("√ 2 proxies trust the same trust anchor"), "\(healthy.stdout)")

        client.shutdown()
        for p in [web, impostor, bot, lost] { await p.stop() }
        await app.stop()
        try await group.shutdownGracefully()
    }

    @Test func certificatesRotateWithoutDroppingConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "ok\n")) }
        let mesh = try IdentityAuthority.create()
        // Three-second certificates: renewed every two seconds.
        let web = try await proxy(mesh, "web", app: app, lifetime: 3, group: group)
        let bot = try await proxy(mesh, "bot", to: web, lifetime: 3, group: group)
        let client = HTTPClient(group: group)
        let first = try scrape(bot).0
        var statuses: [Int] = []
        for _ in 0..<25 {
            statuses.append(try await client.send(.GET, "/", host: "web-svc.ns.svc.cluster.local:8080", to: bot.outboundAddress!).get().status)
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        let after = try scrape(bot).0
        #expect((value(after, "identity_cert_refresh_count", [:]) ?? 0) >= 1)
        #expect((value(after, "identity_cert_expiration_timestamp_seconds", [:]) ?? 0) > (value(first, "identity_cert_expiration_timestamp_seconds", [:]) ?? 0))
        // The open upstream connection outlived the rotation: no new TLS connection per request.
        #expect((value(after, "tcp_open_total", ["direction": "outbound", "peer": "dst"]) ?? 99) <= 2)
        client.shutdown()
        for p in [web, bot] { await p.stop() }
        await app.stop()
        try await group.shutdownGracefully()
    }

    @Test func identityInitWritesKeysOnlyTheOwnerCanRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-ca-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshproxy")
        let p = Process()
        p.executableURL = binary
        p.arguments = ["identity", "init", "--dir", dir, "--anchor-days", "30", "--issuer-days", "10"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for (file, mode) in [("ca.crt", 0o644), ("issuer.crt", 0o644), ("ca.key", 0o600), ("issuer.key", 0o600)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/" + file)
            #expect((attributes[.posixPermissions] as? Int) == mode, "\(file)")
        }
        let authority = try IdentityAuthority.load(from: dir)
        let leaf = try authority.issue(authority.identityName(serviceAccount: "web", namespace: "ns"), validFor: 60)
        #expect(leaf.name == "web.ns.serviceaccount.identity.linkerd.cluster.local")
        #expect(leaf.trustAnchorNotValidAfter.timeIntervalSinceNow < 31 * 86_400)
        // Refuses to overwrite an authority.
        let again = Process()
        again.executableURL = binary
        again.arguments = ["identity", "init", "--dir", dir]
        again.standardError = FileHandle.nullDevice
        try again.run()
        again.waitUntilExit()
        #expect(again.terminationStatus == 2)
    }
}
