/// One header field of a head: where its name and its value (without surrounding whitespace) are.
public struct WireField: Sendable, Equatable {
    public let name: Range<Int>
    public let value: Range<Int>
}

/// A request or response head parsed in place: its bytes and where each field is.
public protocol WireHead: Sendable {
    var bytes: [UInt8] { get }
    var fields: [WireField] { get }
}

extension WireHead {
    public func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    public func name(_ f: WireField) -> String { text(f.name) }
    public func value(_ f: WireField) -> String { text(f.value) }

    /// Whether field `f` is named `lowercaseName` (ASCII, any case).
    public func field(_ f: WireField, isNamed lowercaseName: StaticString) -> Bool {
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
    public func fields(named lowercaseName: StaticString) -> [WireField] {
        fields.filter { field($0, isNamed: lowercaseName) }
    }

    /// The value of the first field named `lowercaseName`.
    public func first(_ lowercaseName: StaticString) -> String? {
        fields.first { field($0, isNamed: lowercaseName) }.map(value)
    }

    /// Whether the value of the first field named `lowercaseName` begins with `lowercasePrefix`
    /// (ASCII, any case), read as bytes (no String made).
    public func first(_ lowercaseName: StaticString, hasPrefix lowercasePrefix: StaticString) -> Bool {
        guard let f = fields.first(where: { field($0, isNamed: lowercaseName) }), f.value.count >= lowercasePrefix.utf8CodeUnitCount else { return false }
        return equalsIgnoringCase(bytes[f.value.lowerBound..<(f.value.lowerBound + lowercasePrefix.utf8CodeUnitCount)], lowercasePrefix)
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

    /// Calls `body` with each comma-separated member of every field named `lowercaseName`,
    /// trimmed, as its bytes (no allocation).
    func forEachMember(_ lowercaseName: StaticString, _ body: (ArraySlice<UInt8>) -> Void) {
        for f in fields where field(f, isNamed: lowercaseName) {
            var start = f.value.lowerBound
            while start <= f.value.upperBound {
                var end = start
                while end < f.value.upperBound, bytes[end] != 44 { end += 1 }
                var lo = start, hi = end
                while lo < hi, bytes[lo] == 32 || bytes[lo] == 9 { lo += 1 }
                while hi > lo, bytes[hi - 1] == 32 || bytes[hi - 1] == 9 { hi -= 1 }
                body(bytes[lo..<hi])
                start = end + 1
            }
        }
    }

    /// Whether a field named `lowercaseName` has the member `token` (ASCII, any case).
    public func hasToken(_ lowercaseName: StaticString, _ token: StaticString) -> Bool {
        var found = false
        forEachMember(lowercaseName) { member in
            if !found, equalsIgnoringCase(member, token) { found = true }
        }
        return found
    }

    /// The members of `Connection` other than `close` and `keep-alive`, lowercased: the fields
    /// they name belong to this hop. Allocates only when there are such members.
    public func connectionNamedFields() -> [String] {
        var out: [String] = []
        forEachMember("connection") { member in
            guard !member.isEmpty, !equalsIgnoringCase(member, "close"), !equalsIgnoringCase(member, "keep-alive") else { return }
            out.append(String(decoding: member.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self))
        }
        return out
    }

    /// Appends every field but those `skip` says to drop, as the bytes they came as.
    func appendFields(to out: inout [UInt8], skip: (WireField) -> Bool) {
        for f in fields where !skip(f) {
            out.append(contentsOf: bytes[f.name])
            out.append(58)  // ": "
            out.append(32)
            out.append(contentsOf: bytes[f.value])
            out.append(13)  // CRLF
            out.append(10)
        }
    }
}

/// A Content-Length value: 1 to 18 ASCII digits (no sign, no spaces, no hex).
func contentLengthValue(_ bytes: ArraySlice<UInt8>) -> Int64? {
    guard (1...18).contains(bytes.count) else { return nil }
    var n: Int64 = 0
    for b in bytes {
        guard isDigit(b) else { return nil }
        n = n * 10 + Int64(b - 48)
    }
    return n
}

extension WireHead {
    /// A field that belongs to one hop (`wireHopByHopHeaders`).
    func isHopByHop(_ f: WireField) -> Bool {
        // By length first: most fields are of no hop-by-hop name's length, and the rest are
        // compared with the one or two names of theirs.
        switch f.name.count {
        case 2: return field(f, isNamed: "te")
        case 6: return field(f, isNamed: "expect")
        case 7: return field(f, isNamed: "upgrade")
        case 10: return field(f, isNamed: "connection") || field(f, isNamed: "keep-alive")
        case 14: return field(f, isNamed: "content-length")
        case 16: return field(f, isNamed: "proxy-connection")
        case 17: return field(f, isNamed: "transfer-encoding")
        case 18: return field(f, isNamed: "proxy-authenticate")
        case 19: return field(f, isNamed: "proxy-authorization")
        default: return false
        }
    }
}

/// Whether `bytes` spell `lowercase` (ASCII, any case).
func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    let wanted = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
    var i = 0
    for b in bytes {
        if (b >= 65 && b <= 90 ? b + 32 : b) != wanted[i] { return false }
        i += 1
    }
    return true
}

/// Whether `bytes` hold `HTTP/` at `i`.
@inline(__always) func isHTTPSlash(_ bytes: [UInt8], at i: Int) -> Bool {
    bytes[i] == 72 && bytes[i + 1] == 84 && bytes[i + 2] == 84 && bytes[i + 3] == 80 && bytes[i + 4] == 47
}

/// Whether `bytes` are exactly `text` (case counts: a method).
func spells(_ bytes: ArraySlice<UInt8>, _ text: StaticString) -> Bool {
    bytes.elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
}

/// Appends one header line.
func appendField(_ out: inout [UInt8], _ name: String, _ value: String) {
    out.append(contentsOf: name.utf8)
    out.append(contentsOf: ": ".utf8)
    out.append(contentsOf: value.utf8)
    out.append(contentsOf: "\r\n".utf8)
}

/// Appends one header line the proxy writes itself (no String in between).
func appendField(_ out: inout [UInt8], _ name: StaticString, _ value: StaticString) {
    out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    out.append(58)
    out.append(32)
    out.append(contentsOf: UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
    out.append(13)
    out.append(10)
}

/// Appends a header line whose value is `n` in decimal.
func appendField(_ out: inout [UInt8], _ name: StaticString, _ n: Int64) {
    out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    out.append(58)
    out.append(32)
    appendDecimal(&out, n)
    out.append(13)
    out.append(10)
}

/// Appends `n` (0 or more) in decimal digits.
func appendDecimal(_ out: inout [UInt8], _ n: Int64) {
    precondition(n >= 0)
    var divisor: Int64 = 1
    while divisor <= n / 10 { divisor *= 10 }
    var rest = n
    while divisor > 0 {
        out.append(UInt8(48 + rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}

/// The search for the end of a head, resumed at the first line not yet ended on each call:
/// a head that arrives a byte at a time costs O(n), not O(n²).
func scanHead(_ bytes: UnsafeRawBufferPointer, _ scan: inout RequestHeadParser.Scan, limit: Int, noun: StaticString) throws -> Int? {
    var i = scan.lineStart
    while true {
        let j = firstLineEnd(bytes, from: i)
        if j >= limit { throw WireRefusal(431, "a \(noun) head longer than \(limit) bytes") }
        guard j + 1 < bytes.count else {
            scan.lineStart = i
            return nil
        }
        if bytes[j] == 10 { throw WireRefusal(400, "a line ended by a bare LF in the \(noun) head") }
        guard bytes[j + 1] == 10 else { throw WireRefusal(400, "a bare CR in the \(noun) head") }
        if j > i {
            scan.sawRequestLine = true
        } else if scan.sawRequestLine {
            return j + 2  // the empty line that ends the head
        }
        // Empty lines before the first line are skipped (RFC 9112 §2.2).
        i = j + 2
    }
}

/// Parses the field lines from `start` through the empty line that ends `head` (RFC 9112 §5),
/// strictly: no obs-fold, no whitespace before a colon, no control bytes in a value.
/// The fields go in `fields`, emptied first (its storage kept).
func parseFields(_ head: [UInt8], from start: Int, maxFields: Int, into fields: inout [WireField]) throws {
    // Over the bytes' memory: every index below is checked against `n` before it is read, so the
    // array's own bounds check on each read (half of this loop's work) is left out.
    try head.withUnsafeBufferPointer { try parseFields($0, from: start, maxFields: maxFields, into: &fields) }
}

private func parseFields(_ head: UnsafeBufferPointer<UInt8>, from start: Int, maxFields: Int, into fields: inout [WireField]) throws {
    let n = head.count
    var i = start
    func bad(_ why: String) -> WireRefusal { WireRefusal(400, why) }
    fields.removeAll(keepingCapacity: true)
    // A connection's list keeps its capacity; a new one starts with room for a typical head.
    if fields.capacity == 0 { fields.reserveCapacity(16) }
    while true {
        guard i + 1 < n else { throw bad("a head without its empty line") }
        if head[i] == 13 {
            guard head[i + 1] == 10, i + 2 == n else { throw bad("bytes after the head's empty line") }
            return
        }
        if head[i] == 32 || head[i] == 9 { throw bad("a folded header line (obs-fold)") }
        let nameStart = i
        while i < n, isTokenByteMasked(head[i]) { i += 1 }
        guard i < n else { throw bad("a malformed header line") }
        if head[i] == 32 || head[i] == 9 { throw bad("whitespace between a header's name and its colon") }
        guard head[i] == 58, i > nameStart else { throw bad("a malformed header name") }
        let name = nameStart..<i
        i += 1
        while i < n, head[i] == 32 || head[i] == 9 { i += 1 }
        let valueStart = i
        // Eight bytes at a time while none is a control byte (CR, LF and HTAB are, so the last
        // word, and any with a tab, is read byte by byte).
        while i + 8 <= n, !hasControlByte(UnsafeRawPointer(head.baseAddress! + i).loadUnaligned(as: UInt64.self)) { i += 8 }
        while i < n, head[i] != 13 {
            let c = head[i]
            guard c == 9 || c >= 32, c != 127 else { throw bad("a control character in the value of \(String(decoding: head[name], as: UTF8.self))") }
            i += 1
        }
        // The value ends at its last byte that is not whitespace.
        var valueEnd = i
        while valueEnd > valueStart, head[valueEnd - 1] == 32 || head[valueEnd - 1] == 9 { valueEnd -= 1 }
        guard i + 1 < n, head[i + 1] == 10 else { throw bad("a malformed header line") }
        i += 2
        fields.append(WireField(name: name, value: valueStart..<valueEnd))
        if fields.count > maxFields { throw WireRefusal(431, "more than \(maxFields) headers") }
    }
}

@inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

/// `isTokenByte` as two 64-bit masks, one bit per ASCII byte (the same set: a test compares
/// them on all 256 bytes).
@inline(__always) func isTokenByteMasked(_ c: UInt8) -> Bool {
    switch c {
    case 0..<64: return (0x03FF_6CFA_0000_0000 as UInt64) >> UInt64(c) & 1 == 1
    case 64..<128: return (0x57FF_FFFF_C7FF_FFFE as UInt64) >> UInt64(c - 64) & 1 == 1
    default: return false
    }
}

/// Whether any byte of the word `w` is `b` (a zero byte found in `w ^ b…b`, SWAR).
@inline(__always) func hasByte(_ w: UInt64, _ b: UInt8) -> Bool {
    let v = w ^ (0x0101_0101_0101_0101 &* UInt64(b))
    return (v &- 0x0101_0101_0101_0101) & ~v & 0x8080_8080_8080_8080 != 0
}

/// Whether any byte of `w` is a control byte: below 0x20, or 0x7F. (A byte below 0x20 borrows
/// into its high bit, which `~w` keeps only for bytes below 0x80.)
@inline(__always) func hasControlByte(_ w: UInt64) -> Bool {
    (w &- 0x2020_2020_2020_2020) & ~w & 0x8080_8080_8080_8080 != 0 || hasByte(w, 0x7F)
}

/// The index of the first CR or LF in `bytes` from `start`, or `bytes.count` if none.
func firstLineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
    var j = start
    let n = bytes.count
    while j + 8 <= n {
        let w = bytes.loadUnaligned(fromByteOffset: j, as: UInt64.self)
        if hasByte(w, 13) || hasByte(w, 10) { break }
        j += 8
    }
    while j < n, bytes[j] != 13, bytes[j] != 10 { j += 1 }
    return j
}

/// RFC 9110's tchar: visible ASCII but delimiters.
@inline(__always) func isTokenByte(_ c: UInt8) -> Bool {
    switch c {
    case 33, 35...39, 42, 43, 45, 46, 48...57, 65...90, 94...122, 124, 126: return true
    default: return false
    }
}
