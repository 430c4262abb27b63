import NIOHTTP1

// The framing rules the proxy applied on NIOHTTP1's decoded heads until its data path moved to
// HTTPWire's bytes. Kept here as a second opinion: `WireTests` checks that HTTPWire refuses
// everything this refuses (after NIOHTTP1's own parser) and agrees on the rest.

/// How a message's body is delimited on the hop the proxy writes it to. The proxy decides this
/// itself for every message it forwards (RFC 9112 §6.3) and writes exactly one framing header
/// for it, so the next hop can never read a different message boundary than the proxy did.
enum BodyFraming: Equatable {
    case none
    case length(Int64)
    case chunked
}

/// A request the proxy refuses before forwarding anything of it.
struct FramingRefusal: Error, Equatable {
    var status: HTTPResponseStatus
    var reason: String
}

/// A request head as the proxy forwards it, and what it learned deciding that.
struct ForwardedRequest {
    var head: HTTPRequestHead
    var framing: BodyFraming
    /// The client sent `Expect: 100-continue`: the proxy answers `100 Continue` itself.
    var expectsContinue: Bool
    /// The client asked to switch protocols (`Upgrade: websocket`): forwarded as asked.
    var upgrade: String?
}

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1).
let hopByHopHeaders = ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authenticate", "proxy-authorization",
                       "transfer-encoding", "content-length", "expect"]

/// The comma-separated tokens of every `name` header (`name` lowercase), trimmed and lowercased.
/// Allocates nothing when there is no such header: most requests have none of the headers the
/// proxy reads this way, and this runs several times per request.
func headerTokens(_ headers: HTTPHeaders, _ name: String) -> [Substring] {
    var tokens: [Substring] = []
    for (n, value) in headers where n.equalsLowercase(name) {
        for token in value.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            tokens.append(token.trimmingSpacesAndTabs())
        }
    }
    return tokens
}

/// How many `name` headers (`name` lowercase) there are, without building their values.
func headerCount(_ headers: HTTPHeaders, _ name: String) -> Int {
    var count = 0
    for (n, _) in headers where n.equalsLowercase(name) { count += 1 }
    return count
}

extension String {
    /// Equal to `lowercase` (which is lowercase ASCII), ignoring ASCII case: a header name match
    /// that builds no string.
    func equalsLowercase(_ lowercase: String) -> Bool {
        guard utf8.count == lowercase.utf8.count else { return false }
        for (a, b) in zip(utf8, lowercase.utf8) where a != b && !(a >= 65 && a <= 90 && a + 32 == b) { return false }
        return true
    }
}

extension Substring {
    func trimmingSpacesAndTabs() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}

/// Removes hop-by-hop headers (and those `Connection` names), keeping `te: trailers`, which is
/// end to end in practice (gRPC servers require it).
func stripHopByHop(_ headers: inout HTTPHeaders) {
    // Most messages carry none: then the headers are left as they are (no copy, no rewrite).
    guard headers.contains(where: { name, _ in hopByHopHeaders.contains { name.equalsLowercase($0) } }) else { return }
    let trailers = headerTokens(headers, "te").contains("trailers")
    for named in headerTokens(headers, "connection") where !named.isEmpty && named != "close" && named != "keep-alive" {
        headers.remove(name: String(named))
    }
    for name in hopByHopHeaders { headers.remove(name: name) }
    if trailers { headers.add(name: "te", value: "trailers") }
}

/// The most headers a request may carry (then 431).
let maxRequestHeaders = 100

/// Decides a request's framing from its head, refusing anything ambiguous, and returns the head
/// to send upstream: HTTP/1.1, hop-by-hop headers gone, and exactly one framing header the proxy
/// chose (`content-length: N` or `transfer-encoding: chunked`, spelled so).
///
/// Refused, as RFC 9112 and the request-smuggling research ask: `Transfer-Encoding` that is not
/// exactly a final `chunked` (501 for other codings, 400 if malformed or on HTTP/1.0); both
/// `Transfer-Encoding` and `Content-Length`; a `Content-Length` that is not one number, or
/// several that differ; a `Connection` header naming framing headers or `Host`; no or several
/// `Host` in HTTP/1.1; a body on TRACE; more than `maxRequestHeaders` headers; an `Expect` other
/// than `100-continue`.
func forwardedRequest(_ head: HTTPRequestHead) -> Result<ForwardedRequest, FramingRefusal> {
    func refuse(_ status: HTTPResponseStatus, _ reason: String) -> Result<ForwardedRequest, FramingRefusal> {
        .failure(FramingRefusal(status: status, reason: reason))
    }
    let headers = head.headers
    guard headers.count <= maxRequestHeaders else { return refuse(.requestHeaderFieldsTooLarge, "more than \(maxRequestHeaders) headers") }
    let hosts = headerCount(headers, "host")
    if hosts > 1 { return refuse(.badRequest, "more than one Host header") }
    if hosts == 0, head.version.isAtLeast11 { return refuse(.badRequest, "an HTTP/1.1 request needs a Host header") }
    for token in headerTokens(headers, "connection") where ["content-length", "transfer-encoding", "host"].contains(token) {
        return refuse(.badRequest, "Connection may not name \(token)")
    }
    let codings = headerTokens(headers, "transfer-encoding")
    let lengths = headerTokens(headers, "content-length")
    var framing = BodyFraming.none
    if !codings.isEmpty {
        guard head.version.isAtLeast11 else { return refuse(.badRequest, "Transfer-Encoding in an HTTP/1.0 request") }
        guard lengths.isEmpty else { return refuse(.badRequest, "both Transfer-Encoding and Content-Length") }
        guard codings.allSatisfy({ isToken($0) }) else { return refuse(.badRequest, "a malformed Transfer-Encoding") }
        guard codings == ["chunked"] else {
            return codings.last == "chunked" && !codings.dropLast().contains("chunked")
                ? refuse(.notImplemented, "transfer codings other than chunked are not supported")
                : refuse(.badRequest, "Transfer-Encoding must end in a single chunked")
        }
        framing = .chunked
    } else if let first = lengths.first {
        guard lengths.allSatisfy({ $0 == first }), let n = contentLength(first) else {
            return refuse(.badRequest, "Content-Length must be one number")
        }
        framing = .length(n)
    }
    if head.method == .TRACE, framing != .none, framing != .length(0) { return refuse(.badRequest, "a TRACE request may not have a body") }
    let expectations = headerTokens(headers, "expect")
    if !expectations.isEmpty, expectations != ["100-continue"] { return refuse(.expectationFailed, "only Expect: 100-continue is supported") }
    if head.method == .CONNECT { return refuse(.methodNotAllowed, "CONNECT is not supported: a sidecar proxies HTTP, and tunnels only WebSocket upgrades") }
    // WebSocket upgrades are forwarded and tunnelled after the 101; other upgrades (h2c, TLS)
    // are left out, which a server takes as "no upgrade" (RFC 9110 §7.8).
    let upgrade = headers.first(name: "upgrade").flatMap { value in
        headerTokens(headers, "connection").contains("upgrade") && value.lowercased().hasPrefix("websocket") ? value : nil
    }

    var out = head
    if out.version != .http1_1 { out.version = .http1_1 }  // a write copies the head's storage
    stripHopByHop(&out.headers)
    switch framing {
    case .length(let n): out.headers.add(name: "content-length", value: String(n))
    case .chunked: out.headers.add(name: "transfer-encoding", value: "chunked")
    case .none:
        // Methods that usually carry a body say plainly that this one has none.
        if [.POST, .PUT, .PATCH].contains(head.method) { out.headers.add(name: "content-length", value: "0") }
    }
    if let upgrade {
        out.headers.add(name: "connection", value: "upgrade")
        out.headers.add(name: "upgrade", value: upgrade)
    }
    return .success(ForwardedRequest(head: out, framing: framing, expectsContinue: !expectations.isEmpty, upgrade: upgrade))
}

/// A Content-Length value: 1 to 18 ASCII digits (no sign, no spaces, no hex).
func contentLength(_ text: Substring) -> Int64? {
    guard (1...18).contains(text.utf8.count), text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
    return Int64(text)
}

/// RFC 9110's token: visible ASCII without delimiters.
private func isToken(_ text: Substring) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy { c in
        c > 32 && c < 127 && !"\"(),/:;<=>?@[\\]{}".utf8.contains(c)
    }
}

extension HTTPVersion {
    /// HTTP/1.1 or later: chunked framing and persistent connections by default.
    var isAtLeast11: Bool { major > 1 || (major == 1 && minor >= 1) }
}
