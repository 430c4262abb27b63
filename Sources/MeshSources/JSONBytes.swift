/// A small JSON reader over bytes, for the hot path of reading recordings: strings come out as
/// bytes (a scrape body goes to the parser without a String in between) and runs without escapes
/// are copied whole. It reads any JSON value; errors say at which byte.
struct JSONBytes {
    indirect enum Value {
        case string([UInt8])
        case number(Double)
        case bool(Bool)
        case null
        case array([Value])
        case object([(key: [UInt8], value: Value)])

        subscript(key: String) -> Value? {
            guard case .object(let members) = self else { return nil }
            let k = Array(key.utf8)
            return members.first { $0.key == k }?.value
        }

        var text: String? {
            if case .string(let b) = self { return String(decoding: b, as: UTF8.self) }
            return nil
        }

        var number: Double? {
            if case .number(let n) = self { return n }
            return nil
        }
    }

    struct Failure: Error {
        var offset: Int
        var message: String
    }

    /// Parses one JSON document (surrounding whitespace allowed, nothing else after it).
    static func parse(_ bytes: [UInt8]) throws(Failure) -> Value {
        try bytes.withUnsafeBufferPointer { (buffer: UnsafeBufferPointer<UInt8>) throws(Failure) -> Value in
            var r = Reader(b: buffer)
            let v = try r.value(depth: 0)
            r.skipSpace()
            guard r.i == buffer.count else { throw Failure(offset: r.i, message: "unexpected bytes after the value") }
            return v
        }
    }

    /// The number after a leading `{"t":`, without reading the rest of the line; nil when the
    /// line does not start that way.
    static func leadingTime(_ bytes: [UInt8]) -> Double? {
        let prefix: [UInt8] = Array(#"{"t":"#.utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        var end = prefix.count
        while end < bytes.count, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: "}") { end += 1 }
        return Double(String(decoding: bytes[prefix.count..<end], as: UTF8.self))
    }

    private struct Reader {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }

        mutating func value(depth: Int) throws(Failure) -> Value {
            guard depth < 64 else { throw Failure(offset: i, message: "nested too deeply") }
            skipSpace()
            guard i < b.count else { throw Failure(offset: i, message: "unexpected end") }
            switch b[i] {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "{"):
                i += 1
                var members: [(key: [UInt8], value: Value)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Failure(offset: i, message: "expected a key") }
                    let key = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw Failure(offset: i, message: "expected ':'") }
                    i += 1
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw Failure(offset: i, message: "unexpected end in an object") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    throw Failure(offset: i, message: "expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [Value] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw Failure(offset: i, message: "unexpected end in an array") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw Failure(offset: i, message: "expected ',' or ']'")
                }
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { throw Failure(offset: i, message: "unexpected end") }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { throw Failure(offset: i, message: "unknown literal") }
            i += n
        }

        mutating func number() throws(Failure) -> Double {
            let start = i
            while i < b.count {
                let c = b[i]
                guard (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") else { break }
                i += 1
            }
            guard i > start, let v = Double(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)) else {
                throw Failure(offset: start, message: "expected a value")
            }
            return v
        }

        /// A string's bytes, unescaped; `i` is at the opening quote.
        mutating func string() throws(Failure) -> [UInt8] {
            i += 1
            var out: [UInt8] = []
            while true {
                // Copy the run up to the next quote or backslash in one go.
                let start = i
                while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") {
                    guard b[i] >= 0x20 else { throw Failure(offset: i, message: "a control character in a string") }
                    i += 1
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
                guard i < b.count else { throw Failure(offset: i, message: "unterminated string") }
                if b[i] == UInt8(ascii: "\"") { i += 1; return out }
                i += 1
                guard i < b.count else { throw Failure(offset: i, message: "unterminated escape") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Failure(offset: i, message: "a lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw Failure(offset: i, message: "a lone surrogate") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw Failure(offset: i - 1, message: "unknown escape")
                }
            }
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 <= b.count else { throw Failure(offset: i, message: "a short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw Failure(offset: i, message: "not a hex digit")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }
    }
}
