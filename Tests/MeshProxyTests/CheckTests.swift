import MeshTesting
import Foundation
import Testing
import NIOPosix
import MeshDemo
import MeshProxy

@Suite(.serialized) struct MeshCheck {
    func scrapeArguments(_ mesh: DemoMesh) -> [String] {
        mesh.targets.flatMap { t in ["--scrape", "\(t.admin);" + t.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")] }
    }

    @Test func demoPassesAStoppedProxyFailsWithAHint() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let mesh = try await DemoMesh.start(DemoMesh.Options(votingFailureRate: 0.1, rate: 30), group: group)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let taps = mesh.targets.compactMap(\.tap).flatMap { ["--tap", $0.description] }
        let ok = try meshtop(["check"] + scrapeArguments(mesh) + taps)
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("√ 6 proxies are reachable") && ok.stdout.contains("√ metrics parse"))
        #expect(ok.stdout.contains("√ proxy versions are consistent"))
        #expect(!ok.stdout.contains("×"))
        #expect(ok.stdout.contains("√ proxy clocks agree with this machine and each other"), "\(ok.stdout)")
        await mesh.stop()
        try await group.shutdownGracefully()

        let stopped = try meshtop(["check", "--scrape", "127.0.0.1:1;deployment=web", "-o", "json"])
        #expect(stopped.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(stopped.stdout.utf8)) as? [String: Any])
        #expect(report["success"] as? Bool == false)
        let failed = (report["checks"] as? [[String: Any]] ?? []).filter { $0["result"] as? String == "error" }
        #expect(failed.contains { ($0["hint"] as? String)?.contains("is the proxy running") == true })
        // Nothing reads as passed that was never looked at (as linkerd check stops a category).
        #expect(!stopped.stdout.contains("metrics parse"), "\(stopped.stdout)")
        #expect(!((report["checks"] as? [[String: Any]] ?? []).contains { $0["result"] as? String == "ok" }), "\(stopped.stdout)")
    }

    @Test func aLiveStatOverAWindowLongerThanItsSampleSaysSo() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let proxyLike = try await AppServer.start(group: group) { _, loop in
            loop.makeSucceededFuture(AppResponse(status: 200, body: "response_total{direction=\"inbound\",classification=\"success\"} 7\n"))
        }
        let r = try meshtop(["stat", "deploy", "--scrape", "\(proxyLike.address);deployment=web", "-t", "10m", "--sample", "300ms"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("-t 10m is longer than the data: reporting over the 3"), "\(r.stderr)")
        #expect(r.stderr.contains("ms between the two scrapes (--sample)"), "\(r.stderr)")
        await proxyLike.stop()
        try await group.shutdownGracefully()
    }

    @Test func certificatesExpiringSoonWarnAndExpiredOnesFail() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let now = Date().timeIntervalSince1970
        // A proxy's own certificate is short-lived and renewed: 10 days left is fine, half an hour
        // means renewal is stuck, expired fails. The trust anchor is warned about 60 days ahead.
        let expiry = Mutex((leaf: now + 10 * 86_400, anchor: now + 400 * 86_400))
        let proxyLike = try await AppServer.start(group: group) { _, loop in
            let e = expiry.withLock { $0 }
            return loop.makeSucceededFuture(AppResponse(status: 200, body: """
            # TYPE identity_cert_expiration_timestamp_seconds gauge
            identity_cert_expiration_timestamp_seconds \(Int(e.leaf))
            meshproxy_trust_anchor_expiration_timestamp_seconds \(Int(e.anchor))
            proxy_build_info{git_version="2.14.0"} 1

            """))
        }
        func check() throws -> (status: Int32, stdout: String, stderr: String) { try meshtop(["check", "--scrape", "\(proxyLike.address);deployment=web"]) }
        let fine = try check()
        #expect(fine.status == 0 && fine.stdout.contains("√ 1 proxy identity certificates are valid") && fine.stdout.contains("√ the trust anchor is valid for 399 days"), "\(fine.stdout)")
        expiry.withLock { $0 = (now + 1800, now + 20 * 86_400) }
        let soon = try check()
        #expect(soon.status == 0, "warnings do not fail the check")
        #expect(soon.stdout.contains("‼ proxy identity certificates are being renewed") && soon.stdout.contains("29 minutes left"), "\(soon.stdout)")
        #expect(soon.stdout.contains("‼ the trust anchor is not expiring soon") && soon.stdout.contains("expires in 19 days"), "\(soon.stdout)")
        expiry.withLock { $0 = (now - 86_400 * 3, now - 86_400) }
        let expired = try check()
        #expect(expired.status == 1)
        #expect(expired.stdout.contains("× proxy identity certificates are valid") && expired.stdout.contains("expired 3 days ago"), "\(expired.stdout)")
        #expect(expired.stdout.contains("× the trust anchor is valid"), "\(expired.stdout)")
        await proxyLike.stop()
        try await group.shutdownGracefully()
    }

    @Test func aProxyWhoseClockIsOffIsReported() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A server whose Date header is 2 minutes ahead of this machine.
        let ahead = try await AppServer.start(group: group) { _, loop in
            var t = time(nil) + 120
            var parts = tm()
            gmtime_r(&t, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            strftime(&buffer, 64, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            return loop.makeSucceededFuture(AppResponse(status: 200, body: "proxy_build_info{git_version=\"1\"} 1\n",
                                                        headers: [("date", String(cString: buffer))]))
        }
        let r = try meshtop(["check", "--scrape", "\(ahead.address);deployment=web"])
        #expect(r.status == 0, "a skewed clock warns, it does not fail: \(r.stdout)")
        #expect(r.stdout.contains("‼ proxy clocks are not skewed"), "\(r.stdout)")
        #expect(r.stdout.contains("+120s") || r.stdout.contains("+119s") || r.stdout.contains("+121s"), "\(r.stdout)")
        let tolerant = try meshtop(["check", "--scrape", "\(ahead.address);deployment=web", "--max-clock-skew", "5m"])
        #expect(tolerant.stdout.contains("√ proxy clocks agree"), "\(tolerant.stdout)")
        await ahead.stop()
        try await group.shutdownGracefully()
    }
}

@Suite struct MeshproxyProcess {
    var binary: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshproxy") }

    @Test func sigtermStopsItCleanly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let err = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = binary
        p.arguments = ["--inbound", "127.0.0.1:0", "--app", "127.0.0.1:9", "--admin", "127.0.0.1:0"]
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        var admin: String?
        eventually {
            let text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            admin = text.firstMatch(of: /admin (127\.0\.0\.1:\d+)/).map { String($0.1) }
            return admin != nil
        }
        let address = try #require(admin, "meshproxy never said where it listens")
        let ready = try meshtop(["check", "--scrape", "\(address);deployment=x"])
        #expect(ready.stdout.contains("√ 1 proxies are reachable"))
        p.terminate()  // SIGTERM
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        let after = try meshtop(["check", "--scrape", "\(address);deployment=x"])
        #expect(after.status == 1, "the admin port is still open after SIGTERM")
    }

    /// Starts the meshproxy binary; returns it, its stderr file and the addresses it printed.
    func launch(_ arguments: [String], in dir: URL) throws -> (Process, URL, [String: String]) {
        let err = dir.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        var text = ""
        guard eventually({ text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""; return text.contains("listening:") }) else {
            p.terminate()
            throw CancellationError()
        }
        var found: [String: String] = [:]
        for m in text.matches(of: /(admin|inbound|outbound) (127\.0\.0\.1:\d+)/) { found[String(m.1)] = String(m.2) }
        return (p, err, found)
    }

    @Test func shutdownDrainsInFlightRequestsAndRefusesNewOnes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let arrived = Mutex(false)
        let slow = try await AppServer.start(group: group) { _, loop in
            arrived.withLock { $0 = true }
            return loop.scheduleTask(in: .seconds(4)) { AppResponse(status: 200, body: "late but whole\n") }.futureResult
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, err, addresses) = try launch(["--inbound", "127.0.0.1:0", "--app", "\(slow.address)", "--admin", "127.0.0.1:0"], in: dir)
        let inbound = try #require(addresses["inbound"].flatMap(HostPort.init))
        let admin = try #require(addresses["admin"].flatMap(HostPort.init))
        let client = HTTPClient(group: group)
        let inFlight = client.send(.GET, "/", host: "app", to: inbound)
        eventually { arrived.withLock { $0 } }  // the request is in flight
        let shutdown = try await client.send(.POST, "/shutdown", host: "admin", to: admin).get()
        #expect(shutdown.status == 200)
        // The drain starts at once (the request in flight keeps it going for seconds).
        var readyStatus = 200
        try await eventuallyAwaiting(within: 2) {
            readyStatus = try await client.send(.GET, "/ready", host: "admin", to: admin).get().status
            return readyStatus != 200
        }
        #expect(readyStatus == 503, "a draining proxy is not ready")
        let refused = try? await HTTPClient(group: group).send(.GET, "/", host: "app", to: inbound).get()
        #expect(refused == nil, "new connections are refused while draining")
        let answer = try await inFlight.get()
        #expect(answer.status == 200 && answer.body == "late but whole\n", "the request in flight finished")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let log = try String(contentsOf: err, encoding: .utf8)
        #expect(log.contains("draining") && log.contains("drained; stopping"), "\(log)")
        client.shutdown()
        await slow.stop()
        try await group.shutdownGracefully()
    }

    @Test func sighupReloadsTheDestinationsAndABadFileChangesNothing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let one = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "one\n")) }
        let two = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "two\n")) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("destinations.yaml")
        func write(_ app: AppServer) throws {
            try """
            destinations:
              - authority: svc:80
                backends:
                  - name: b
                    weight: 100
                    endpoints: [{address: "\(app.address)"}]

            """.write(to: file, atomically: true, encoding: .utf8)
        }
        try write(one)
        let (p, err, addresses) = try launch(["--outbound", "127.0.0.1:0", "--destinations", file.path, "--admin", "127.0.0.1:0"], in: dir)
        let outbound = try #require(addresses["outbound"].flatMap(HostPort.init))
        let client = HTTPClient(group: group)
        #expect(try await client.send(.GET, "/", host: "svc:80", to: outbound).get().body == "one\n")
        try write(two)
        kill(p.processIdentifier, SIGHUP)
        eventually { ((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("SIGHUP: reloaded") }
        #expect(try await client.send(.GET, "/", host: "svc:80", to: outbound).get().body == "two\n")
        try "destinations: [unclosed\n".write(to: file, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        eventually { ((try? String(contentsOf: err, encoding: .utf8)) ?? "").contains("SIGHUP: kept the destinations in use") }
        #expect(try await client.send(.GET, "/", host: "svc:80", to: outbound).get().body == "two\n")
        let log = try String(contentsOf: err, encoding: .utf8)
        #expect(log.contains("SIGHUP: reloaded") && log.contains("SIGHUP: kept the destinations in use"), "\(log)")
        p.terminate()
        p.waitUntilExit()
        client.shutdown()
        await one.stop()
        await two.stop()
        try await group.shutdownGracefully()
    }
}

import Synchronization
