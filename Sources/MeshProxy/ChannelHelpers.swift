import NIOCore
import NIOPosix
import NIOSSL

/// The identity a client proved over mTLS on `connection` (an accepted connection, or the
/// connection an HTTP/2 stream is carried on: pass the stream's `parent`).
func peerIdentityName(of connection: any Channel) -> String? {
    guard let tls = try? connection.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) else { return nil }
    return tls.peerCertificate?.identityNames.first
}

/// The connect to an upstream ran out of time (directly, or for each address a name resolved to).
func isConnectTimeout(_ error: any Error) -> Bool {
    if let e = error as? ChannelError, case .connectTimeout = e { return true }
    if let e = error as? NIOConnectionError {
        return !e.connectionErrors.isEmpty && e.connectionErrors.allSatisfy { isConnectTimeout($0.error) }
    }
    return false
}

func isTLSError(_ error: any Error) -> Bool {
    if let e = error as? NIOConnectionError {
        return !e.connectionErrors.isEmpty && e.connectionErrors.allSatisfy { isTLSError($0.error) }
    }
    return error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError || error is NoCertificateError
}

/// mTLS cannot begin: this proxy has no valid certificate (none yet, or it expired).
struct NoCertificateError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "this proxy has no valid certificate: \(reason)" }
}

/// A TLS failure in a sentence (BoringSSL's error stacks are long).
func describeTLS(_ error: any Error) -> String {
    if let e = error as? NIOConnectionError, let first = e.connectionErrors.first { return describeTLS(first.error) }
    if let e = error as? NoCertificateError { return e.description }
    let text = "\(error)"
    if text.contains("hostname") || text.contains("Hostname") { return "its certificate is not for the identity expected" }
    if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("BAD_SIGNATURE") {
        return "its certificate does not chain to this proxy's trust anchor"
    }
    if text.contains("ALERT") || text.contains("alert") { return "the peer refused this proxy's certificate" }
    return String(text.prefix(160))
}

/// Turns reading on or off on `channel` (on its own event loop), so a fast side waits for a slow
/// one. Turning it on asks for a read too: an HTTP/2 stream channel does not start one by itself.
func setAutoRead(_ channel: (any Channel)?, _ on: Bool) {
    guard let channel, channel.isActive, let options = channel.syncOptions,
          let current = try? options.getOption(ChannelOptions.autoRead), current != on else { return }
    try? options.setOption(ChannelOptions.autoRead, value: on)
    if on { channel.read() }
}

extension String {
    func trimmingTrailingNewline() -> String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only, not on where
/// they differ: a token compared byte by byte with an early exit tells a patient attacker how
/// many leading bytes were right.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(truncatingIfNeeded: x.count ^ y.count) | UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
        diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return diff == 0
}
