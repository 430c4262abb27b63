/// How a message's body is delimited (RFC 9112 §6.3).
public enum WireFraming: Equatable, Sendable {
    case none
    case length(Int64)
    case chunked
}

/// What the proxy decided about a request from its head: how its body is framed, and what it
/// must do besides forwarding it.
public struct RequestPlan: Equatable, Sendable {
    public var framing: WireFraming
    /// The client sent `Expect: 100-continue`: the proxy answers `100 Continue` itself.
    public var expectsContinue: Bool
    /// The client asked for a WebSocket upgrade (the `Upgrade` value, forwarded as asked).
    public var upgrade: String?
    /// The connection stays open after this exchange, as the client asked.
    public var keepAlive: Bool
    /// The `Host` value (nil on an HTTP/1.0 request without one).
    public var host: String?
    /// The client asked for trailers to be passed on (`TE: trailers`, which gRPC needs).
    public var trailers: Bool
}

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1), lowercase.
public let wireHopByHopHeaders: [StaticString] = ["connection", "keep-alive", "proxy-connection", "te", "upgrade",
                                                  "proxy-authenticate", "proxy-authorization", "transfer-encoding",
                                                  "content-length", "expect"]

extension RequestHead {
    /// Decides the request's framing, refusing anything ambiguous (RFC 9112 and the request
    /// smuggling research): `Transfer-Encoding` that is not exactly a final `chunked` (501 for
    /// other codings, 400 if malformed or on HTTP/1.0); both `Transfer-Encoding` and
    /// `Content-Length`; a `Content-Length` that is not one field of one number; a
    /// `Connection` header naming framing headers or `Host`; no or several `Host` in HTTP/1.1; a
    /// body on TRACE; an `Expect` other than `100-continue`; CONNECT.
    public func plan() throws -> RequestPlan {
        func bad(_ why: String) -> WireRefusal { WireRefusal(400, why) }
        var host: WireField?
        for f in fields where field(f, isNamed: "host") {
            if host != nil { throw bad("more than one Host header") }
            host = f
        }
        if host == nil, minorVersion >= 1 { throw bad("an HTTP/1.1 request needs a Host header") }
        let connection = tokens("connection")
        for token in connection where ["content-length", "transfer-encoding", "host"].contains(token) {
            throw bad("Connection may not name \(token)")
        }
        let codings = tokens("transfer-encoding")
        let lengths = tokens("content-length")
        var framing = WireFraming.none
        if !codings.isEmpty {
            guard minorVersion >= 1 else { throw bad("Transfer-Encoding in an HTTP/1.0 request") }
            guard lengths.isEmpty else { throw bad("both Transfer-Encoding and Content-Length") }
            guard codings.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isTokenByte) }) else { throw bad("a malformed Transfer-Encoding") }
            guard codings == ["chunked"] else {
                if codings.last == "chunked", !codings.dropLast().contains("chunked") {
                    throw WireRefusal(501, "transfer codings other than chunked are not supported")
                }
                throw bad("Transfer-Encoding must end in a single chunked")
            }
            framing = .chunked
        } else if let first = lengths.first {
            // One field, one number: several (even equal, or as a list) are refused, as
            // NIOHTTP1's parser refuses them (RFC 9112 §6.3 allows either).
            guard lengths.count == 1, let n = Self.contentLength(first) else {
                throw bad("Content-Length must be one number")
            }
            framing = .length(n)
        }
        let method = methodText
        if method == "TRACE", framing != .none, framing != .length(0) { throw bad("a TRACE request may not have a body") }
        let expectations = tokens("expect")
        if !expectations.isEmpty, expectations != ["100-continue"] { throw WireRefusal(417, "only Expect: 100-continue is supported") }
        if method == "CONNECT" {
            throw WireRefusal(405, "CONNECT is not supported: a sidecar proxies HTTP, and tunnels only WebSocket upgrades")
        }
        // WebSocket upgrades are forwarded and tunnelled after the 101; other upgrades (h2c, TLS)
        // are left out, which a server takes as "no upgrade" (RFC 9110 §7.8).
        let upgrade = fields(named: "upgrade").first.map(value).flatMap { v in
            connection.contains("upgrade") && v.lowercased().hasPrefix("websocket") ? v : nil
        }
        let keepAlive = minorVersion >= 1 ? !connection.contains("close") : connection.contains("keep-alive")
        return RequestPlan(framing: framing, expectsContinue: !expectations.isEmpty, upgrade: upgrade, keepAlive: keepAlive,
                           host: host.map(value), trailers: tokens("te").contains("trailers"))
    }

    /// A Content-Length value: 1 to 18 ASCII digits (no sign, no spaces, no hex).
    static func contentLength(_ text: String) -> Int64? {
        guard (1...18).contains(text.utf8.count), text.utf8.allSatisfy(isDigit) else { return nil }
        return Int64(text)
    }

    /// The head to send upstream: the request line in HTTP/1.1; every field but the hop-by-hop
    /// ones (and those `Connection` names) as the bytes it came as; then `te: trailers` when the
    /// client asked for trailers, exactly one framing header the proxy chose, the upgrade's
    /// headers, and `extra` (the proxy's own, such as a tap id, replacing any of that name).
    /// An HTTP/1.0 request without `Host` gets `host: authority`, as HTTP/1.1 needs one.
    /// Fields named in `dropping` are left out.
    public func forwarded(_ plan: RequestPlan, authority: @autoclosure () -> String, extra: [(name: StaticString, value: String)] = [],
                          dropping: [StaticString] = []) -> [UInt8] {
        var out: [UInt8] = []
        forwarded(plan, authority: authority(), extra: extra, dropping: dropping, into: &out)
        return out
    }

    /// `forwarded(_:authority:extra:dropping:)` appended to `out`: a connection's buffer, used
    /// again for each of its requests, so a head costs no allocation.
    public func forwarded(_ plan: RequestPlan, authority: @autoclosure () -> String, extra: [(name: StaticString, value: String)] = [],
                          dropping: [StaticString] = [], into out: inout [UInt8]) {
        out.reserveCapacity(out.count + bytes.count + 64)
        out.append(contentsOf: bytes[method])
        out.append(32)
        out.append(contentsOf: bytes[target])
        let version: StaticString = " HTTP/1.1\r\n"
        out.append(contentsOf: UnsafeBufferPointer(start: version.utf8Start, count: version.utf8CodeUnitCount))
        let named = connectionNamedFields()
        appendFields(to: &out) { f in
            isHopByHop(f) || extra.contains(where: { field(f, isNamed: $0.name) })
                || dropping.contains(where: { field(f, isNamed: $0) }) || (!named.isEmpty && named.contains(text(f.name).lowercased()))
        }
        func add(_ name: String, _ value: String) { appendField(&out, name, value) }
        if plan.host == nil { add("host", authority()) }
        if plan.trailers { appendField(&out, "te", "trailers") }
        switch plan.framing {
        case .length(let n): appendField(&out, "content-length", n)
        case .chunked: appendField(&out, "transfer-encoding", "chunked")
        case .none:
            // Methods that usually carry a body say plainly that this one has none.
            let m = bytes[method]
            if spells(m, "POST") || spells(m, "PUT") || spells(m, "PATCH") { appendField(&out, "content-length", "0") }
        }
        if plan.upgrade != nil, let asked = fields(named: "upgrade").first {
            add("connection", "upgrade")
            // The value as the bytes it came as: obs-text would not survive a trip through String.
            out.append(contentsOf: "upgrade: ".utf8)
            out.append(contentsOf: bytes[asked.value])
            out.append(contentsOf: "\r\n".utf8)
        }
        for (name, value) in extra { add(name.description, value) }
        out.append(13)
        out.append(10)
    }
}
