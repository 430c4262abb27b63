import FoundationEssentials
public import MeshIdentity
#if canImport(Glibc)
import Glibc
#endif

/// A proxy's side of the identity service: it makes a fresh key, sends a CSR with its service
/// account's token, and checks the certificate it gets against the trust anchor it was given.
/// The issuer's key never reaches the proxy. Blocking (a loopback round trip and a signature):
/// call it off the event loops.
public struct IdentityClient: Sendable {
    public let service: HostPort
    public let name: String
    let token: String
    let trustAnchorPEM: String
    let timeoutSeconds: Int

    public init(service: HostPort, name: String, token: String, trustAnchorPEM: String, timeoutSeconds: Int = 5) {
        self.service = service
        self.name = name
        self.token = token
        self.trustAnchorPEM = trustAnchorPEM
        self.timeoutSeconds = timeoutSeconds
    }

    /// A new certificate for a new key.
    public func fetch() throws(IdentityError) -> WorkloadIdentity {
        let key = WorkloadKey()
        let request = CertifyRequest(identity: name, token: token, csr: try key.csrPEM(for: name))
        guard let body = try? JSONEncoder().encode(request) else { throw IdentityError("cannot encode the certify request") }
        let (status, answer) = try post("/v1/certify", Array(body))
        guard status == 200 else {
            let why = (try? JSONDecoder().decode([String: String].self, from: Data(answer)))?["error"] ?? String(decoding: answer.prefix(200), as: UTF8.self)
            throw IdentityError("the identity service at \(service) refused \(name) (HTTP \(status)): \(why)")
        }
        guard let signed = try? JSONDecoder().decode(CertifyAnswer.self, from: Data(answer)) else {
            throw IdentityError("the identity service at \(service) answered something other than a certificate")
        }
        return try key.identity(name, from: signed, trustAnchorPEM: trustAnchorPEM)
    }

    /// Where an answer's head ends and the body its content-length announces, once the head is in.
    private static func framing(_ received: [UInt8]) -> (head: Range<Int>, length: Int?)? {
        guard let split = received.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: received[..<split.lowerBound], as: UTF8.self).lowercased()
        let line = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
        return (split, line.flatMap { Int(String($0.dropFirst("content-length:".count)).trimmed(of: " \t")) })
    }

    /// Whether `received` holds a whole answer: its head and as many bytes as its content-length.
    private static func complete(_ received: [UInt8]) -> Bool {
        guard let f = framing(received), let length = f.length else { return false }
        return received.count - f.head.upperBound >= length
    }

    /// One HTTP/1.1 POST on a connection of its own (closed after): status and body.
    private func post(_ path: String, _ body: [UInt8]) throws(IdentityError) -> (Int, [UInt8]) {
        func fail(_ why: String) -> IdentityError { IdentityError("cannot reach the identity service at \(service): \(why)") }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(service.host, String(service.port), &hints, &found) == 0, let info = found else { throw fail("cannot resolve \(service.host)") }
        defer { freeaddrinfo(found) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw fail("no socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { throw fail(String(cString: strerror(errno))) }
        let head = "POST \(path) HTTP/1.1\r\nHost: \(service)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let out = Array(head.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw fail("the connection broke while sending") }
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while received.count < 1 << 20, !Self.complete(received) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw fail(errno == EAGAIN ? "no answer within \(timeoutSeconds) s" : String(cString: strerror(errno))) }
            received += buffer[0..<n]
        }
        guard let f = Self.framing(received),
              let statusLine = String(decoding: received[..<f.head.lowerBound], as: UTF8.self).split(separator: "\r\n").first,
              let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw fail("not an HTTP answer")
        }
        let rest = Array(received[f.head.upperBound...])
        if let length = f.length, length <= rest.count { return (status, Array(rest.prefix(length))) }
        return (status, rest)
    }
}
