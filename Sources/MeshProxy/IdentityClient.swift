import FoundationEssentials
public import MeshIdentity
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A proxy's side of the identity service: it makes a fresh key, sends a CSR with its service
/// account's token, and checks the certificate it gets against the trust anchor it was given.
/// The issuer's key never reaches the proxy.
///
/// The request goes over TLS, and only to a service whose certificate chains to that trust
/// anchor and names the identity service (`identity.linkerd.DOMAIN`), so the token is never on
/// the wire in clear and nobody else can take it. The answer is read with limits: one
/// `timeoutSeconds` deadline for the whole exchange (a slow body is an error), at most 64 KiB,
/// strict HTTP/1.1 framing; anything else is an `IdentityError` to retry, never a trap.
public struct IdentityClient: Sendable {
    public let service: HostPort
    public let name: String
    let token: String
    let trustAnchorPEM: String
    let timeoutSeconds: Int
    /// The name the service's certificate must carry.
    public let serviceName: String

    /// The most an answer may hold (a certificate chain is about 2 KB).
    static let maxAnswer = 65_536

    public init(service: HostPort, name: String, token: String, trustAnchorPEM: String, timeoutSeconds: Int = 5, serviceName: String? = nil) {
        self.service = service
        self.name = name
        self.token = token
        self.trustAnchorPEM = trustAnchorPEM
        self.timeoutSeconds = timeoutSeconds
        let domain = (try? IdentityAuthority.trustDomain(anchorPEM: trustAnchorPEM)) ?? "cluster.local"
        self.serviceName = serviceName ?? IdentityAuthority.identityServiceName(trustDomain: domain)
    }

    /// A new certificate for a new key, blocking (tests and tools; not on an event loop).
    public func fetch() throws(IdentityError) -> WorkloadIdentity {
        do {
            return try fetch(on: NIOSingletons.posixEventLoopGroup.next()).wait()
        } catch let e as IdentityError {
            throw e
        } catch {
            throw IdentityError("\(error)")
        }
    }

    /// A new certificate for a new key, the exchange run on `loop`. Fails with an `IdentityError`.
    public func fetch(on loop: any EventLoop) -> EventLoopFuture<WorkloadIdentity> {
        let key = WorkloadKey()
        let body: [UInt8]
        do {
            let request = CertifyRequest(identity: name, token: token, csr: try key.csrPEM(for: name))
            body = Array(try JSONEncoder().encode(request))
        } catch {
            return loop.makeFailedFuture(IdentityError("cannot make the certify request: \(error)"))
        }
        let (service, name, anchor) = (self.service, self.name, self.trustAnchorPEM)
        return post("/v1/certify", body, on: loop).flatMapThrowing { (status, answer) throws -> WorkloadIdentity in
            guard status == 200 else {
                let why = (try? JSONDecoder().decode([String: String].self, from: Data(answer)))?["error"]
                    ?? String(decoding: answer.prefix(200), as: UTF8.self)
                throw IdentityError("the identity service at \(service) refused \(name) (HTTP \(status)): \(why)")
            }
            guard let signed = try? JSONDecoder().decode(CertifyAnswer.self, from: Data(answer)) else {
                throw IdentityError("the identity service at \(service) answered something other than a certificate")
            }
            return try key.identity(name, from: signed, trustAnchorPEM: anchor)
        }
    }

    /// One HTTP/1.1 POST over TLS on a connection of its own (closed after): status and body.
    private func post(_ path: String, _ body: [UInt8], on loop: any EventLoop) -> EventLoopFuture<(Int, [UInt8])> {
        let service = self.service
        let fail: @Sendable (String) -> IdentityError = { IdentityError("cannot reach the identity service at \(service): \($0)") }
        let tls: NIOSSLContext
        do {
            tls = try identityServiceClientContext(trustAnchorPEM: trustAnchorPEM)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let answer = loop.makePromise(of: (Int, [UInt8]).self)
        let timeoutSeconds = self.timeoutSeconds
        let deadline = loop.scheduleTask(in: .seconds(Int64(timeoutSeconds))) {
            answer.fail(fail("no whole answer within \(timeoutSeconds) s"))
        }
        answer.futureResult.whenComplete { _ in deadline.cancel() }
        let serviceName = self.serviceName
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: [
            "host": service.description, "content-type": "application/json", "content-length": String(body.count), "connection": "close",
        ])
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(Int64(timeoutSeconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serviceName))
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(IdentityAnswerReader(answer: answer, limit: Self.maxAnswer, describe: fail))
                }
            }
            .connect(host: service.host, port: service.port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    answer.fail(fail(isTLSError(error) ? describeTLS(error) : "\(error)"))
                case .success(let channel):
                    answer.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                }
            }
        return answer.futureResult
    }
}

/// Reads one answer: its status and at most `limit` bytes of body. Any error, a close before
/// the end, or a longer body fails the promise with words `describe` turns into an error.
final class IdentityAnswerReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<(Int, [UInt8])>
    private let limit: Int
    private let describe: @Sendable (String) -> IdentityError
    private var status: Int?
    private var body: [UInt8] = []

    init(answer: EventLoopPromise<(Int, [UInt8])>, limit: Int, describe: @escaping @Sendable (String) -> IdentityError) {
        self.answer = answer
        self.limit = limit
        self.describe = describe
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard head.status.code >= 200 else { return }  // 1xx: the real answer follows
            status = Int(head.status.code)
        case .body(let chunk):
            guard body.count + chunk.readableBytes <= limit else {
                answer.fail(describe("the answer is longer than \(limit / 1024) KiB"))
                context.close(promise: nil)
                return
            }
            body += chunk.readableBytesView
        case .end:
            if let status { answer.succeed((status, body)) } else { answer.fail(describe("not an HTTP answer")) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(describe(status == nil ? "the connection closed before an answer" : "the connection closed in the middle of the answer"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(describe(isTLSError(error) ? "TLS: \(describeTLS(error))" : "a malformed answer (\(error))"))
        context.close(promise: nil)
    }
}
