public import FoundationEssentials
import MeshTap
public import MeshIdentity
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Who may ask for which identity: one bootstrap token per service account, as a file of lines
/// `NAMESPACE/SERVICEACCOUNT TOKEN` (`#` starts a comment).
///
/// Why tokens: Linkerd's identity controller checks the pod's Kubernetes ServiceAccount token
/// with a TokenReview before signing its proxy's CSR. There is no Kubernetes here, so each
/// service account has a token of its own, given to its proxies (`--identity-token-file`) and
/// to the identity service, which checks it the same way: the token names the service account,
/// and the service account names the only identity its proxies may have.
public struct IdentityTokens: Sendable {
    public struct Account: Sendable, Equatable {
        public let namespace: String
        public let serviceAccount: String
    }

    let entries: [(account: Account, token: String)]

    public init(_ entries: [(namespace: String, serviceAccount: String, token: String)]) {
        self.entries = entries.map { (Account(namespace: $0.namespace, serviceAccount: $0.serviceAccount), $0.token) }
    }

    /// Parses a tokens file; each problem names its line.
    public static func parse(_ text: String, file: String) throws(IdentityError) -> IdentityTokens {
        var out: [(String, String, String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map { String(String($0).trimmed(of: " \t")) } ?? ""
            if line.isEmpty { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let account = parts.first?.split(separator: "/", omittingEmptySubsequences: false) ?? []
            guard parts.count == 2, account.count == 2, !account[0].isEmpty, !account[1].isEmpty, parts[1].count >= 16 else {
                throw IdentityError("\(file):\(n + 1): expected NAMESPACE/SERVICEACCOUNT TOKEN, with a token of 16 characters or more")
            }
            out.append((String(account[0]), String(account[1]), String(parts[1])))
        }
        guard !out.isEmpty else { throw IdentityError("\(file): no tokens") }
        return IdentityTokens(out)
    }

    /// The service account a token belongs to. Every entry is compared, each in constant time:
    /// how long this takes says nothing about which token was close.
    func account(for token: String) -> Account? {
        var found: Account?
        for e in entries where constantTimeEqual(e.token, token) { found = e.account }
        return found
    }
}

/// The identity service (`meshproxy identity serve`), as linkerd-identity: it alone holds the
/// issuer's key, and signs a proxy's CSR for the identity of the service account whose token
/// the proxy presents, and for no other. `POST /v1/certify` takes a `CertifyRequest` and answers
/// a `CertifyAnswer` (403 for a wrong token or another account's identity, 400 for a bad CSR);
/// `GET /metrics` counts answers by result.
///
/// It answers over TLS with a certificate of its own for `identity.linkerd.DOMAIN`, signed by
/// the issuer, so a proxy that holds only the trust anchor can tell it is talking to the real
/// service before it sends its token. The same port answers plaintext too, for `GET /metrics`
/// and `/ready` only (what Prometheus and `meshtop check` read): a CSR sent in clear is refused
/// (403, `identity_certify_total{result="refused_plaintext"}`) and its token should be
/// considered seen.
public final class IdentityService: Sendable {
    let authority: IdentityAuthority
    let tokens: IdentityTokens
    let certificateLifetime: TimeInterval
    private let counts = Mutex<[String: Int]>([:])
    /// The service's own certificate and TLS context, made again when half its life is gone.
    private let serving = Mutex<(identity: WorkloadIdentity, context: NIOSSLContext)?>(nil)
    /// The name on the service's own certificate, which proxies check.
    public var serviceName: String { authority.identityServiceName }
    /// How long the service's own certificate is valid.
    static let servingLifetime: TimeInterval = 7 * 86_400

    public init(authority: IdentityAuthority, tokens: IdentityTokens, certificateLifetime: TimeInterval = 24 * 3600) {
        self.authority = authority
        self.tokens = tokens
        self.certificateLifetime = certificateLifetime
    }

    /// The TLS context for a new connection: the current serving certificate, renewed once it is
    /// past half its life. Nil when it cannot be made (the issuer expired): TLS is then refused.
    func tlsContext(now: Date = Date()) -> NIOSSLContext? {
        serving.withLock { s in
            if let current = s, now.timeIntervalSince(current.identity.notValidBefore) < Self.servingLifetime / 2,
               current.identity.isValid(at: now) {
                return current.context
            }
            guard let identity = try? authority.issue(authority.identityServiceName, validFor: Self.servingLifetime, now: now),
                  let context = try? identity.listenerContext() else { return nil }
            s = (identity, context)
            return context
        }
    }

    /// How many requests ended with `result` (`issued`, `refused_token`, `refused_foreign`, `invalid`).
    public func count(_ result: String) -> Int { counts.withLock { $0[result] ?? 0 } }

    /// Answers one certify request body: status and JSON.
    func certify(_ body: [UInt8], overTLS: Bool = true) -> (HTTPResponseStatus, String) {
        func answer(_ status: HTTPResponseStatus, _ result: String, _ json: String) -> (HTTPResponseStatus, String) {
            counts.withLock { $0[result, default: 0] += 1 }
            return (status, json)
        }
        func problem(_ message: String) -> String { "{\"error\":\(JSONEscape.quoted(message))}\n" }
        guard overTLS else {
            return answer(.forbidden, "refused_plaintext", problem("CSRs are taken over TLS only: a token sent in clear should be replaced"))
        }
        guard let request = try? JSONDecoder().decode(CertifyRequest.self, from: Data(body)) else {
            return answer(.badRequest, "invalid", problem("expected a JSON object: identity, token, csr (PEM)"))
        }
        guard let account = tokens.account(for: request.token) else {
            return answer(.forbidden, "refused_token", problem("the token is not one of a service account's"))
        }
        let allowed = authority.identityName(serviceAccount: account.serviceAccount, namespace: account.namespace)
        guard request.identity == allowed else {
            return answer(.forbidden, "refused_foreign",
                          problem("the token of \(account.namespace)/\(account.serviceAccount) may ask for \(allowed) only, not \(request.identity)"))
        }
        do {
            let signed = try authority.certify(csrPEM: request.csr, name: allowed, validFor: certificateLifetime)
            let json = try JSONEncoder().encode(signed)
            return answer(.ok, "issued", String(decoding: json, as: UTF8.self) + "\n")
        } catch {
            return answer(.badRequest, "invalid", problem("\(error)"))
        }
    }

    /// The counts in Prometheus' text format.
    func metrics() -> String {
        let c = counts.withLock { $0 }
        var out = "# HELP identity_certify_total Certify requests answered, by result.\n# TYPE identity_certify_total counter\n"
        for result in ["issued", "invalid", "refused_foreign", "refused_plaintext", "refused_token"] {
            out += "identity_certify_total{result=\"\(result)\"} \(c[result] ?? 0)\n"
        }
        let expiry = Int(authority.issuer.notValidAfter.timeIntervalSince1970)
        out += "# HELP identity_issuer_expiration_timestamp_seconds When the issuer certificate expires.\n"
        out += "# TYPE identity_issuer_expiration_timestamp_seconds gauge\nidentity_issuer_expiration_timestamp_seconds \(expiry)\n"
        return out
    }

    /// Listens on `address` until the process ends, saying where once it listens.
    public func serve(_ address: HostPort, listening: (HostPort) -> Void) async throws {
        let channel = try await bind(address, group: MultiThreadedEventLoopGroup.singleton)
        listening(channel.localHostPort ?? address)
        try await channel.closeFuture.get()
    }

    /// Listens on `address` (loopback by default, as every listener here) until the channel closes.
    public func bind(_ address: HostPort, group: any EventLoopGroup) async throws -> any Channel {
        guard tlsContext() != nil else {
            throw IdentityError("cannot make the identity service's own certificate (has the issuer expired? \(authority.issuer.notValidAfter))")
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(TLSDetector(context: { self.tlsContext() }))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(IdentityHandler(service: self))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

final class IdentityHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: IdentityService
    private var request: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLong = false

    init(service: IdentityService) {
        self.service = service
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            body.removeAll()
            tooLong = false
        case .body(var chunk):
            if body.count + chunk.readableBytes > 65_536 { tooLong = true } else { body += chunk.readBytes(length: chunk.readableBytes) ?? [] }
        case .end:
            guard let head = request else { return }
            request = nil
            let (status, text): (HTTPResponseStatus, String)
            switch (head.method, head.uri) {
            case (.POST, "/v1/certify"):
                let overTLS = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
                (status, text) = tooLong ? (.payloadTooLarge, "{\"error\":\"the request is longer than 64 KiB\"}\n") : service.certify(body, overTLS: overTLS)
            case (.GET, "/metrics"):
                (status, text) = (.ok, service.metrics())
            case (.GET, "/ready"):
                (status, text) = (.ok, "ready\n")
            default:
                (status, text) = (.notFound, "{\"error\":\"POST /v1/certify, GET /metrics\"}\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: head.uri == "/metrics" ? "text/plain; version=0.0.4" : "application/json")
            headers.add(name: "content-length", value: String(text.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
