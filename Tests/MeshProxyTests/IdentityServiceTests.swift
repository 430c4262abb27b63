import Crypto
import Foundation
import MeshDemo
import MeshIdentity
import MeshMetrics
import MeshSources
import MeshTesting
import NIOPosix
import Testing
@testable import MeshProxy

/// The identity service holds the issuer's key and signs proxies' CSRs for their own service
/// account's identity only; proxies make their own keys and never hold the issuer's.
@Suite(.serialized) struct IdentityServiceTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let webToken = "web-token-0123456789abcdef"
    static let votingToken = "voting-token-0123456789abcdef"

    func service() async throws -> (IdentityService, IdentityAuthority, HostPort) {
        let authority = try IdentityAuthority.create()
        let tokens = IdentityTokens([("emojivoto", "web", Self.webToken), ("emojivoto", "voting", Self.votingToken)])
        let service = IdentityService(authority: authority, tokens: tokens, certificateLifetime: 3600)
        let channel = try await service.bind(HostPort(host: "127.0.0.1", port: 0), group: group)
        return (service, authority, try #require(channel.localHostPort))
    }

    @Test func aProxyGetsItsOwnIdentityAndNoOtherAndRefusalsAreCounted() async throws {
        let (service, authority, address) = try await service()
        let anchor = try authority.trustAnchorPEM()
        let web = authority.identityName(serviceAccount: "web", namespace: "emojivoto")
        let voting = authority.identityName(serviceAccount: "voting", namespace: "emojivoto")

        let mine = try IdentityClient(service: address, name: web, token: Self.webToken, trustAnchorPEM: anchor).fetch()
        #expect(mine.name == web && mine.notValidAfter.timeIntervalSinceNow > 3000)
        #expect(service.count("issued") == 1)

        // web's token asking for voting's identity: a foreign CSR, refused and counted.
        do {
            _ = try IdentityClient(service: address, name: voting, token: Self.webToken, trustAnchorPEM: anchor).fetch()
            Issue.record("web's token got voting's identity")
        } catch {
            #expect(error.description.contains("HTTP 403") && error.description.contains("may ask for \(web) only"), "\(error)")
        }
        #expect(service.count("refused_foreign") == 1)
        do {
            _ = try IdentityClient(service: address, name: web, token: "not-a-token-of-anyone", trustAnchorPEM: anchor).fetch()
            Issue.record("an unknown token got an identity")
        } catch {
            #expect(error.description.contains("HTTP 403"), "\(error)")
        }
        #expect(service.count("refused_token") == 1)

        // A CSR for another name than the identity asked, and one whose signature was tampered with.
        let key = WorkloadKey()
        let forVoting = try key.csrPEM(for: voting)
        #expect(service.certify(body(web, Self.webToken, forVoting)).0 == .badRequest)
        let forWeb = try key.csrPEM(for: web)
        var lines = forWeb.split(separator: "\n").map(String.init)
        lines[lines.count - 2] = String(lines[lines.count - 2].reversed())
        #expect(service.certify(body(web, Self.webToken, lines.joined(separator: "\n"))).0 == .badRequest)
        #expect(service.count("invalid") == 2)

        // Counted where an operator looks: the service's /metrics.
        let metrics = try #require(Scraper(timeoutSeconds: 5).scrape([ScrapeTarget(url: "http://\(address)/metrics")]) { 0 }.first?.body)
        let text = String(decoding: metrics, as: UTF8.self)
        #expect(text.contains("identity_certify_total{result=\"refused_foreign\"} 1"))
        #expect(text.contains("identity_certify_total{result=\"issued\"} 1"))

        // A service that answers with another trust anchor is not believed.
        let other = try IdentityAuthority.create().trustAnchorPEM()
        #expect(throws: IdentityError.self) { try IdentityClient(service: address, name: web, token: Self.webToken, trustAnchorPEM: other).fetch() }
    }

    @Test func meshtopCheckReportsWhatTheIdentityServiceRefused() async throws {
        let (service, authority, address) = try await service()
        let anchor = try authority.trustAnchorPEM()
        let web = authority.identityName(serviceAccount: "web", namespace: "emojivoto")
        _ = try IdentityClient(service: address, name: web, token: Self.webToken, trustAnchorPEM: anchor).fetch()
        let clean = try meshtop(["check", "--scrape", "\(address)"])
        #expect(clean.stdout.contains("√ the identity service at \(address) signed 1 certificate(s), refused none"), "\(clean.stdout)")
        let voting = authority.identityName(serviceAccount: "voting", namespace: "emojivoto")
        _ = try? IdentityClient(service: address, name: voting, token: Self.webToken, trustAnchorPEM: anchor).fetch()
        #expect(service.count("refused_foreign") == 1)
        let after = try meshtop(["check", "--scrape", "\(address)"])
        #expect(after.stdout.contains("‼ the identity service at \(address) signs only what each service account may have"), "\(after.stdout)")
        #expect(after.stdout.contains("refused 1 CSR(s) for another account's identity"), "\(after.stdout)")
    }

    func body(_ identity: String, _ token: String, _ csr: String) -> [UInt8] {
        Array(try! JSONEncoder().encode(CertifyRequest(identity: identity, token: token, csr: csr)))
    }

    /// Real processes: `meshproxy identity serve` with the authority, two meshproxies given only
    /// the trust anchor and their tokens. Their requests go over mTLS with the identities the
    /// service signed, and neither proxy's memory holds the issuer's key, which the service's
    /// does (the check can tell).
    @Test func proxiesInTheirOwnProcessesTalkMTLSWithoutTheIssuerKey() async throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("meshtop-identity-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: dir) }
        let ca = dir + "/ca", pod = dir + "/pod"
        try fm.createDirectory(atPath: pod, withIntermediateDirectories: true)
        #expect(try meshproxy(["identity", "init", "--dir", ca]).waitForExit() == 0)
        try "emojivoto/web \(Self.webToken)\nemojivoto/voting \(Self.votingToken)\n".write(toFile: dir + "/tokens", atomically: true, encoding: .utf8)
        // A pod gets the anchor and its account's token: no key of the authority's.
        try fm.copyItem(atPath: ca + "/ca.crt", toPath: pod + "/ca.crt")
        // Token files as people write them: with a last newline (echo), or CR LF.
        try (Self.webToken + "\n").write(toFile: pod + "/web.token", atomically: true, encoding: .utf8)
        try (Self.votingToken + "\r\n").write(toFile: pod + "/voting.token", atomically: true, encoding: .utf8)

        let identity = try meshproxy(["identity", "serve", "--dir", ca, "--tokens", dir + "/tokens", "--listen", "127.0.0.1:0"])
        defer { identity.stop() }
        let serviceAddress = try identity.waitFor(/signing CSRs on (127\.0\.0\.1:\d+)/)

        let app = try await statusApp(group: group)
        defer { Task { await app.stop() } }
        let mtls = ["--identity-service", serviceAddress, "--trust-anchor", pod + "/ca.crt"]
        let server = try meshproxy(["--inbound", "127.0.0.1:0", "--app", app.address.description, "--admin", "127.0.0.1:0",
                                    "--label", "namespace=emojivoto", "--label", "deployment=voting", "--identity-token-file", pod + "/voting.token"] + mtls)
        defer { server.stop() }
        let inbound = try server.waitFor(/inbound (127\.0\.0\.1:\d+)/)
        let votingName = "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        try """
        destinations:
          - authority: voting-svc:8080
            backends:
              - name: voting
                endpoints: [{address: "\(inbound)", identity: \(votingName)}]
        """.write(toFile: dir + "/destinations.yaml", atomically: true, encoding: .utf8)
        let client = try meshproxy(["--outbound", "127.0.0.1:0", "--destinations", dir + "/destinations.yaml", "--admin", "127.0.0.1:0",
                                    "--label", "namespace=emojivoto", "--label", "deployment=web", "--identity-token-file", pod + "/web.token"] + mtls)
        defer { client.stop() }
        let outbound = try #require(HostPort(try client.waitFor(/outbound (127\.0\.0\.1:\d+)/)))
        let serverAdmin = try server.waitFor(/admin (127\.0\.0\.1:\d+)/)
        let clientAdmin = try #require(HostPort(try client.waitFor(/admin (127\.0\.0\.1:\d+)/)))

        let http = HTTPClient(group: group)
        defer { http.shutdown() }
        // Each proxy serves at once and is ready once the service has signed its certificate.
        for admin in [try #require(HostPort(serverAdmin)), clientAdmin] {
            let ready = await eventuallyAwaiting(within: 20, pollMs: 50) {
                (try? await http.send(.GET, "/ready", host: "admin", to: admin).get().status) == 200
            }
            #expect(ready, "\(admin) never became ready")
        }
        let response = try await http.send(.GET, "/hello", host: "voting-svc:8080", to: outbound).get()
        #expect(response.status == 200)
        let scrape = try #require(Scraper(timeoutSeconds: 5).scrape([ScrapeTarget(url: "http://\(serverAdmin)/metrics")]) { 0 }.first?.body)
        let metrics = String(decoding: scrape, as: UTF8.self)
        #expect(metrics.contains("client_id=\"web.emojivoto.serviceaccount.identity.linkerd.cluster.local\""), "the server's proxy saw web's identity over mTLS")

        // The issuer's key: in the service's memory, in neither proxy's.
        let issuerKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: ca + "/issuer.key", encoding: .utf8))
        let patterns = Self.keyPatterns(issuerKey, pem: try String(contentsOfFile: ca + "/issuer.key", encoding: .utf8))
        #expect(try Self.memory(of: identity.pid, holdsAnyOf: patterns), "the check cannot find the key where it is")
        #expect(try !Self.memory(of: server.pid, holdsAnyOf: patterns), "the server's proxy holds the issuer's key")
        #expect(try !Self.memory(of: client.pid, holdsAnyOf: patterns), "the client's proxy holds the issuer's key")
    }

    /// The key's scalar as written (big-endian), as BoringSSL keeps it (little-endian words), and
    /// the base64 of its PEM that spells the scalar (the first 48 characters are the PKCS#8
    /// header every P-256 key shares, the proxies' own included).
    static func keyPatterns(_ key: P256.Signing.PrivateKey, pem: String) -> [[UInt8]] {
        let raw = Array(key.rawRepresentation)
        let body = Array(pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined().utf8)
        return [raw, raw.reversed(), Array(body[48..<88])]
    }

    /// Whether any of `patterns` is in the readable memory of process `pid` (/proc/PID/mem).
    static func memory(of pid: Int32, holdsAnyOf patterns: [[UInt8]]) throws -> Bool {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let fd = open("/proc/\(pid)/mem", O_RDONLY)
        guard fd >= 0 else { throw IdentityError("cannot open /proc/\(pid)/mem") }
        defer { close(fd) }
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, fields[1].hasPrefix("r") else { continue }
            let bounds = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
            guard bounds.count == 2, bounds[1] > bounds[0], bounds[1] - bounds[0] <= 512 << 20 else { continue }
            var region = [UInt8](repeating: 0, count: Int(bounds[1] - bounds[0]))
            let n = region.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(bounds[0])) }
            guard n > 0 else { continue }
            if region.withUnsafeBytes({ r in patterns.contains { Self.find($0, in: r, count: n) } }) { return true }
        }
        return false
    }

    /// Whether `pattern` is in the first `count` bytes of `r` (memchr to each candidate, then memcmp).
    static func find(_ pattern: [UInt8], in r: UnsafeRawBufferPointer, count: Int) -> Bool {
        guard let base = r.baseAddress, count >= pattern.count, let first = pattern.first else { return false }
        var i = 0
        while i <= count - pattern.count {
            guard let hit = memchr(base + i, Int32(first), count - pattern.count + 1 - i) else { return false }
            if memcmp(hit, pattern, pattern.count) == 0 { return true }
            i = base.distance(to: UnsafeRawPointer(hit)) + 1
        }
        return false
    }

    func meshproxy(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshproxy"), arguments)
    }
}

/// A process of the built products, its stderr kept in a file to read what it says.
final class ChildProcess {
    let process = Process()
    let log: URL

    init(_ binary: URL, _ arguments: [String]) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = binary
        process.arguments = arguments
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// The first capture of `pattern` in what the process wrote to stderr, within 10 s.
    func waitFor(_ pattern: Regex<(Substring, Substring)>) throws -> String {
        var found: String?
        eventually(within: 10) {
            found = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").firstMatch(of: pattern).map { String($0.1) }
            return found != nil
        }
        guard let found else {
            throw IdentityError("\(process.arguments?.first ?? "") never said it: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        return found
    }

    /// What the process wrote to stderr so far.
    var stderr: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Waits up to `seconds` for the process to exit on its own; then stops it (SIGTERM, which
    /// a drain answers) and waits for that. Its exit status either way.
    func exit(within seconds: Double) -> Int32 {
        if !eventually(within: seconds, { !process.isRunning }) { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func waitForExit() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }
}
