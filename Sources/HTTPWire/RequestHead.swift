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
public struct RequestHead: Sendable {
    /// One header field: where its name and its value (without surrounding whitespace) are.
    public struct Field: Sendable, Equatable {
        public let name: Range<Int>
        public let value: Range<Int>
    }

    /// The head's bytes, through the empty line that ends it.
    public let bytes: [UInt8]
    public let method: Range<Int>
    public let target: Range<Int>
    /// The `x` of `HTTP/1.x`: 0 or 1.
    public let minorVersion: Int
    public let fields: [Field]

    public var methodText: String { text(method) }
    public var targetText: String { text(target) }

    public func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    public func name(_ f: Field) -> String { text(f.name) }
    public func value(_ f: Field) -> String { text(f.value) }

    /// Whether field `f` is named `lowercaseName` (ASCII, any case).
    public func field(_ f: Field, isNamed lowercaseName: StaticString) -> Bool {
        guard f.name.count == lowercaseName.utf8CodeUnitCount else { return false }
        let wanted = UnsafeRawBufferPointer(start: lowercaseName.utf8Start, count: lowercaseName.utf8CodeUnitCount)
        var i = 0
        for b in bytes[f.name] {
            let lower = b >= 65 && b <= 90 ? b + 32 : b
            if lower != wanted[i] { return false }
            i += 1
        }
        return true
    }

    /// The fields named `lowercaseName`, in order.
    public func fields(named lowercaseName: StaticString) -> [Field] {
        fields.filter { field($0, isNamed: lowercaseName) }
    }

    /// The comma-separated members of every field named `lowercaseName`, trimmed and lowercased.
    public func tokens(_ lowercaseName: StaticString) -> [String] {
        var out: [String] = []
        for f in fields where field(f, isNamed: lowercaseName) {
            for member in bytes[f.value].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                var m = member[...]
                while let c = m.first, c == 32 || c == 9 { m.removeFirst() }
                while let c = m.last, c == 32 || c == 9 { m.removeLast() }
                out.append(String(decoding: m.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self))
            }
        }
        return out
    }
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
        var i = scan.lineStart
        while true {
            var j = i
            while j < bytes.count, bytes[j] != 13, bytes[j] != 10 { j += 1 }
            if j >= maxHeadBytes { throw WireRefusal(431, "a request head longer than \(maxHeadBytes) bytes") }
            guard j + 1 < bytes.count else {
                scan.lineStart = i
                return nil
            }
            if bytes[j] == 10 { throw WireRefusal(400, "a line ended by a bare LF in the request head") }
            guard bytes[j + 1] == 10 else { throw WireRefusal(400, "a bare CR in the request head") }
            if j > i {
                scan.sawRequestLine = true
            } else if scan.sawRequestLine {
                return j + 2  // the empty line that ends the head
            }
            // Empty lines before the request line are skipped (RFC 9112 §2.2).
            i = j + 2
        }
    }

    /// Parses a whole head (as `headLength` found it).
    public static func parse(_ head: [UInt8], maxFields: Int = maxFields) throws -> RequestHead {
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
        guard i + 10 <= n, head[i..<(i + 5)].elementsEqual("HTTP/".utf8), isDigit(head[i + 5]), head[i + 6] == 46, isDigit(head[i + 7]),
              head[i + 8] == 13, head[i + 9] == 10 else { throw bad("a malformed HTTP version") }
        guard head[i + 5] == 49, head[i + 7] <= 49 else { throw WireRefusal(505, "only HTTP/1.0 and HTTP/1.1 are spoken here") }
        let minor = Int(head[i + 7] - 48)
        i += 10
        var fields: [RequestHead.Field] = []
        while true {
            guard i + 1 < n else { throw bad("a request head without its empty line") }
            if head[i] == 13 {
                guard head[i + 1] == 10, i + 2 == n else { throw bad("bytes after the request head's empty line") }
                break
            }
            if head[i] == 32 || head[i] == 9 { throw bad("a folded header line (obs-fold)") }
            let nameStart = i
            while i < n, isTokenByte(head[i]) { i += 1 }
            guard i < n else { throw bad("a malformed header line") }
            if head[i] == 32 || head[i] == 9 { throw bad("whitespace between a header's name and its colon") }
            guard head[i] == 58, i > nameStart else { throw bad("a malformed header name") }
            let name = nameStart..<i
            i += 1
            while i < n, head[i] == 32 || head[i] == 9 { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < n, head[i] != 13 {
                let c = head[i]
                guard c == 9 || c >= 32, c != 127 else { throw bad("a control character in the value of \(String(decoding: head[name], as: UTF8.self))") }
                i += 1
                if c != 32, c != 9 { valueEnd = i }
            }
            guard i + 1 < n, head[i + 1] == 10 else { throw bad("a malformed header line") }
            i += 2
            fields.append(RequestHead.Field(name: name, value: valueStart..<valueEnd))
            if fields.count > maxFields { throw WireRefusal(431, "more than \(maxFields) headers") }
        }
        return RequestHead(bytes: head, method: method, target: target, minorVersion: minor, fields: fields)
    }
}

@inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

/// RFC 9110's tchar: visible ASCII but delimiters.
@inline(__always) func isTokenByte(_ c: UInt8) -> Bool {
    switch c {
    case 33, 35...39, 42, 43, 45, 46, 48...57, 65...90, 94...122, 124, 126: return true
    default: return false
    }
}
