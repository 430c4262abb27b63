/// A request the proxy refuses, with the status to answer and why (said to the client in
/// `l5d-proxy-error`). Nothing of a refused request is forwarded.
public struct WireRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let reason: String

    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status): \(reason)" }
}

/// An HTTP/1 request head as it came on the wire, parsed in place: the proxy reads the request
/// line, the framing headers and the few others routing reads, and forwards the rest as the
/// bytes they came as (RFC 9112's grammar, strictly: this parser is where request smuggling is
/// stopped, so anything two parsers could read differently is refused).
public struct RequestHead: WireHead {
    /// The head's bytes, through the empty line that ends it.
    public let bytes: [UInt8]
    public let method: Range<Int>
    public let target: Range<Int>
    /// The `x` of `HTTP/1.x`: 0 or 1.
    public let minorVersion: Int
    public let fields: [WireField]

    public var methodText: String { text(method) }
    public var targetText: String { text(target) }
}

/// Finds and parses request heads.
public enum RequestHeadParser {
    /// The longest head taken (then 431), as nginx's default large buffers.
    public static let maxHeadBytes = 32 * 1024
    /// The most header fields a client's request may carry (then 431).
    public static let maxFields = 100
    /// The fields a proxy may add to a head it forwards (host, framing, te, upgrade, tap id):
    /// a hop that takes requests from another proxy allows this many more.
    public static let proxyAddedFields = 8

    /// Where a head's search stands between reads: the start of the first line not yet ended.
    public struct Scan: Sendable {
        var lineStart = 0
        var sawRequestLine = false

        public init() {}
    }

    /// The length of the head at the start of `bytes` (through its empty line), or nil while
    /// it has not all arrived: call again with more bytes and the same `scan`, which resumes where
    /// this one stopped. Refuses, before the whole head is in, a line ended by a bare LF or a
    /// bare CR, and a head longer than `maxHeadBytes`.
    public static func headLength(_ bytes: UnsafeRawBufferPointer, _ scan: inout Scan) throws -> Int? {
        try scanHead(bytes, &scan, limit: maxHeadBytes, noun: "request")
    }

    /// Parses a whole head (as `headLength` found it).
    public static func parse(_ head: [UInt8], maxFields: Int = maxFields) throws -> RequestHead {
        var fields: [WireField] = []
        return try parse(head, maxFields: maxFields, reusing: &fields)
    }

    /// `parse(_:maxFields:)` with the fields' list in `fields`' storage: a connection's, used
    /// again for each head once the last head parsed into it is gone (no allocation).
    public static func parse(_ head: [UInt8], maxFields: Int = maxFields, reusing fields: inout [WireField]) throws -> RequestHead {
        let n = head.count
        var i = 0
        while i + 1 < n, head[i] == 13, head[i + 1] == 10 { i += 2 }
        func bad(_ why: String) -> WireRefusal { WireRefusal(400, why) }
        // method SP request-target SP HTTP-version CRLF
        let methodStart = i
        while i < n, isTokenByte(head[i]) { i += 1 }
        guard i > methodStart, i < n, head[i] == 32 else { throw bad("a malformed request line") }
        let method = methodStart..<i
        i += 1
        let targetStart = i
        while i < n, head[i] > 32, head[i] < 127 { i += 1 }
        guard i > targetStart, i < n, head[i] == 32 else { throw bad("a malformed request target") }
        let target = targetStart..<i
        i += 1
        guard i + 10 <= n, isHTTPSlash(head, at: i), isDigit(head[i + 5]), head[i + 6] == 46, isDigit(head[i + 7]),
              head[i + 8] == 13, head[i + 9] == 10 else { throw bad("a malformed HTTP version") }
        guard head[i + 5] == 49, head[i + 7] <= 49 else { throw WireRefusal(505, "only HTTP/1.0 and HTTP/1.1 are spoken here") }
        let minor = Int(head[i + 7] - 48)
        i += 10
        try parseFields(head, from: i, maxFields: maxFields, into: &fields)
        return RequestHead(bytes: head, method: method, target: target, minorVersion: minor, fields: fields)
    }
}
