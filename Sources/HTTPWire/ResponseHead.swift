/// An HTTP/1 response head from an upstream, parsed in place: the proxy reads its status line and
/// framing headers and forwards the other fields as the bytes they came as.
public struct ResponseHead: WireHead {
    public let bytes: [UInt8]
    public let status: Int
    /// The `x` of `HTTP/1.x`.
    public let minorVersion: Int
    /// The reason phrase (may be empty).
    public let reason: Range<Int>
    public let fields: [WireField]
}

/// How a response's body is delimited (RFC 9112 §6.3).
public enum ResponseFraming: Equatable, Sendable {
    case none
    case length(Int64)
    case chunked
    /// Read until the upstream closes the connection.
    case untilClose
}

/// How the proxy passes a response's body on to its client.
public enum ResponseRelay: Equatable, Sendable {
    case none
    /// As the bytes came: exactly this many.
    case length(Int64)
    /// The upstream's chunks read and framed again, for an HTTP/1.1 client.
    case chunked
    /// The upstream's chunks read, their data passed on, and the connection closed at the end
    /// (an HTTP/1.0 client).
    case dechunked
    /// As the bytes came, until the upstream closes; then `chunked` says whether the proxy
    /// frames them in chunks (an HTTP/1.1 client, whose connection then stays open) or closes.
    case untilClose(chunked: Bool)
}

/// The head to send the client, how to relay the body, and whether the client's connection
/// closes after it.
public struct ForwardedResponse: Equatable, Sendable {
    public var head: [UInt8]
    public var relay: ResponseRelay
    public var close: Bool
}

/// Finds and parses upstream response heads. An upstream whose response cannot be read is
/// answered for with 502.
public enum ResponseHeadParser {
    public static let maxHeadBytes = 64 * 1024
    public static let maxFields = 200

    public static func headLength(_ bytes: UnsafeRawBufferPointer, _ scan: inout RequestHeadParser.Scan) throws -> Int? {
        do {
            return try scanHead(bytes, &scan, limit: maxHeadBytes, noun: "response")
        } catch let refusal as WireRefusal {
            throw WireRefusal(502, refusal.reason)
        }
    }

    /// Parses a whole head (as `headLength` found it): `HTTP/1.x SP 3DIGIT [SP reason] CRLF`
    /// then the fields.
    /// An upstream that is itself a proxy (an outbound's, another meshproxy) may have added
    /// `RequestHeadParser.proxyAddedFields` to a response of `maxFields`: allow those with `maxFields`.
    public static func parse(_ head: [UInt8], maxFields: Int = maxFields) throws -> ResponseHead {
        var fields: [WireField] = []
        return try parse(head, maxFields: maxFields, reusing: &fields)
    }

    /// `parse(_:maxFields:)` with the fields' list in `fields`' storage (see `RequestHeadParser`).
    public static func parse(_ head: [UInt8], maxFields: Int = maxFields, reusing fields: inout [WireField]) throws -> ResponseHead {
        func bad(_ why: String) -> WireRefusal { WireRefusal(502, "the upstream sent " + why) }
        let n = head.count
        var i = 0
        while i + 1 < n, head[i] == 13, head[i + 1] == 10 { i += 2 }
        guard i + 12 <= n, isHTTPSlash(head, at: i), head[i + 5] == 49, head[i + 6] == 46, isDigit(head[i + 7]),
              head[i + 8] == 32, isDigit(head[i + 9]), isDigit(head[i + 10]), isDigit(head[i + 11]) else {
            throw bad("a malformed status line")
        }
        let minor = Int(head[i + 7] - 48)
        let status = Int(head[i + 9] - 48) * 100 + Int(head[i + 10] - 48) * 10 + Int(head[i + 11] - 48)
        guard (100...599).contains(status) else { throw bad("status \(status)") }
        i += 12
        var reasonStart = i
        if i < n, head[i] == 32 {
            i += 1
            reasonStart = i
            while i < n, head[i] != 13 {
                guard head[i] == 9 || head[i] >= 32, head[i] != 127 else { throw bad("a control character in the reason phrase") }
                i += 1
            }
        }
        let reason = reasonStart..<i
        guard i + 1 < n, head[i] == 13, head[i + 1] == 10 else { throw bad("a malformed status line") }
        do {
            try parseFields(head, from: i + 2, maxFields: maxFields, into: &fields)
            return ResponseHead(bytes: head, status: status, minorVersion: minor, reason: reason, fields: fields)
        } catch let refusal as WireRefusal {
            throw bad(refusal.reason)
        }
    }
}

extension ResponseHead {
    /// The upstream may carry another request once this response ended.
    public var keepAlive: Bool {
        minorVersion >= 1 ? !hasToken("connection", "close") : hasToken("connection", "keep-alive")
    }

    /// The body's framing (RFC 9112 §6.3), for a response to a request whose method is or is not
    /// HEAD. Refused (502): `Transfer-Encoding` other than a single `chunked`, both it and
    /// `Content-Length`, and `Content-Length` values that disagree or are not numbers.
    public func framing(requestWasHead: Bool) throws -> ResponseFraming {
        func bad(_ why: String) -> WireRefusal { WireRefusal(502, "the upstream sent " + why) }
        var codings = 0
        var chunked = false
        forEachMember("transfer-encoding") { member in
            codings += 1
            chunked = equalsIgnoringCase(member, "chunked")
        }
        if codings > 0 {
            guard codings == 1, chunked else { throw bad("transfer codings other than chunked") }
        }
        var length: Int64?
        var lengths = 0
        var malformed = false
        forEachMember("content-length") { member in
            lengths += 1
            let n = contentLengthValue(member)
            if n == nil || (length != nil && length != n) { malformed = true }
            length = n
        }
        if codings > 0, lengths > 0 { throw bad("both Transfer-Encoding and Content-Length") }
        if malformed { throw bad("a malformed Content-Length") }
        if requestWasHead || status < 200 || status == 204 || status == 304 { return .none }
        if codings > 0 { return .chunked }
        if let length { return .length(length) }
        return .untilClose
    }

    /// The head for a client that spoke HTTP/1.`clientMinor`: the status line in its version, every
    /// field but the hop-by-hop ones as the bytes they came as, one framing header the proxy
    /// chose, and `Connection` as `keepAlive` (what the proxy wants) and the framing allow.
    /// `extra` fields are added (the proxy's own).
    public func forwarded(_ framing: ResponseFraming, clientMinor: Int, keepAlive: Bool,
                          extra: [(name: String, value: String)] = []) -> ForwardedResponse {
        var out: [UInt8] = []
        let (relay, close) = forwarded(framing, clientMinor: clientMinor, keepAlive: keepAlive, extra: extra, into: &out)
        return ForwardedResponse(head: out, relay: relay, close: close)
    }

    /// `forwarded(_:clientMinor:keepAlive:extra:)` with the head appended to `out` (a
    /// connection's buffer, used again for each response), returning how to relay the body and
    /// whether the client's connection closes after it.
    public func forwarded(_ framing: ResponseFraming, clientMinor: Int, keepAlive: Bool, extra: [(name: String, value: String)] = [],
                          into out: inout [UInt8]) -> (relay: ResponseRelay, close: Bool) {
        out.reserveCapacity(out.count + bytes.count + 48)
        let version: StaticString = clientMinor >= 1 ? "HTTP/1.1 " : "HTTP/1.0 "
        out.append(contentsOf: UnsafeBufferPointer(start: version.utf8Start, count: version.utf8CodeUnitCount))
        out.append(UInt8(48 + status / 100))
        out.append(UInt8(48 + status / 10 % 10))
        out.append(UInt8(48 + status % 10))
        out.append(32)
        out.append(contentsOf: bytes[reason])
        out.append(13)
        out.append(10)
        let named = connectionNamedFields()
        appendFields(to: &out) { f in
            isHopByHop(f) || (!named.isEmpty && named.contains(text(f.name).lowercased()))
        }
        var close = !keepAlive
        let relay: ResponseRelay
        switch framing {
        case .none:
            // A HEAD's or a 304's Content-Length describes the body it would have had.
            var declared: Int64?
            forEachMember("content-length") { declared = contentLengthValue($0) }
            if let declared { appendField(&out, "content-length", declared) }
            relay = .none
        case .length(let n):
            appendField(&out, "content-length", n)
            relay = .length(n)
        case .chunked where clientMinor >= 1:
            appendField(&out, "transfer-encoding", "chunked")
            relay = .chunked
        case .chunked:
            close = true  // an HTTP/1.0 client reads the body to the end of the connection
            relay = .dechunked
        case .untilClose:
            if clientMinor >= 1 { appendField(&out, "transfer-encoding", "chunked") } else { close = true }
            relay = .untilClose(chunked: clientMinor >= 1)
        }
        for (name, value) in extra { appendField(&out, name, value) }
        if clientMinor >= 1 {
            if close { appendField(&out, "connection", "close") }
        } else if !close {
            appendField(&out, "connection", "keep-alive")
        }
        out.append(13)
        out.append(10)
        return (relay, close)
    }
}
