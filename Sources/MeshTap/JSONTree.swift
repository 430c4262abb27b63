/// A JSON document (RFC 8259) as plain values, as `JSONSerialization` gave them: `[String: Any]`,
/// `[Any]`, `String`, `Bool`, `Int` (a number written without fraction or exponent that fits),
/// `Double` (any other number) and `JSONTree.Null`.
///
/// The proxy reads tap filters and `POST /split` bodies this way and meshtop reads tap events, so
/// it is written here rather than taken from Foundation, which the sidecar does not link
/// (FoundationEssentials has only `JSONDecoder`, and decoding untyped values through it is five
/// times slower than this). Strict: what is not JSON is nil, never a trap; nesting is limited.
public enum JSONTree {
    public struct Null: Sendable, Hashable, CustomStringConvertible {
        public var description: String { "null" }
    }

    /// Deeper than this is refused (a hostile `[[[[…` must not exhaust the stack).
    public static let maxDepth = 512

    /// The document's value, or nil when the bytes are not one JSON value.
    public static func parse(_ bytes: [UInt8]) -> Any? {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = Reader(bytes: buffer)
            guard let value = reader.value(depth: 0) else { return nil }
            reader.skipSpace()
            return reader.at == buffer.count ? value : nil
        }
    }

    /// A JSON number's value as a Double (the tree gives `Int` or `Double`); nil for anything else.
    public static func number(_ value: Any?) -> Double? {
        (value as? Int).map(Double.init) ?? (value as? Double)
    }

    /// The document's value when it is an object.
    public static func object(_ bytes: [UInt8]) -> [String: Any]? {
        parse(bytes) as? [String: Any]
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var at = 0

        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { at += 1 }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard at + n <= bytes.count else { return false }
            for i in 0..<n where bytes[at + i] != word.utf8Start[i] { return false }
            at += n
            return true
        }

        mutating func value(depth: Int) -> Any? {
            skipSpace()
            guard let b = peek else { return nil }
            switch b {
            case UInt8(ascii: "{"):
                guard depth < JSONTree.maxDepth else { return nil }
                at += 1
                var out: [String: Any] = [:]
                skipSpace()
                if peek == UInt8(ascii: "}") { at += 1; return out }
                while true {
                    skipSpace()
                    guard peek == UInt8(ascii: "\""), let key = string() else { return nil }
                    skipSpace()
                    guard peek == UInt8(ascii: ":") else { return nil }
                    at += 1
                    guard let v = value(depth: depth + 1) else { return nil }
                    out[key] = v
                    skipSpace()
                    switch peek {
                    case UInt8(ascii: ","): at += 1
                    case UInt8(ascii: "}"): at += 1; return out
                    default: return nil
                    }
                }
            case UInt8(ascii: "["):
                guard depth < JSONTree.maxDepth else { return nil }
                at += 1
                var out: [Any] = []
                skipSpace()
                if peek == UInt8(ascii: "]") { at += 1; return out }
                while true {
                    guard let v = value(depth: depth + 1) else { return nil }
                    out.append(v)
                    skipSpace()
                    switch peek {
                    case UInt8(ascii: ","): at += 1
                    case UInt8(ascii: "]"): at += 1; return out
                    default: return nil
                    }
                }
            case UInt8(ascii: "\""):
                return string()
            case UInt8(ascii: "t"):
                return literal("true") ? true : nil
            case UInt8(ascii: "f"):
                return literal("false") ? false : nil
            case UInt8(ascii: "n"):
                return literal("null") ? Null() : nil
            default:
                return number()
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        mutating func number() -> Any? {
            let start = at
            func digits() -> Int {
                let from = at
                while let b = peek, b >= 0x30, b <= 0x39 { at += 1 }
                return at - from
            }
            if peek == UInt8(ascii: "-") { at += 1 }
            guard let first = peek, first >= 0x30, first <= 0x39 else { return nil }
            if first == 0x30 { at += 1 } else { _ = digits() }
            var whole = true
            if peek == UInt8(ascii: ".") {
                at += 1
                whole = false
                guard digits() > 0 else { return nil }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                at += 1
                whole = false
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { return nil }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
            if whole, let i = Int(text) { return i }
            // A number past Double's range (1e400) is refused, as JSONSerialization refuses it.
            guard let d = Double(text), d.isFinite else { return nil }
            return d
        }

        /// A string from its opening quote: escapes decoded, UTF-8 checked, no raw control bytes.
        mutating func string() -> String? {
            at += 1
            var out: [UInt8] = []
            var runStart = at
            while true {
                guard let b = peek else { return nil }
                if b == UInt8(ascii: "\"") {
                    out.append(contentsOf: bytes[runStart..<at])
                    at += 1
                    return String(validating: out, as: UTF8.self)
                }
                if b < 0x20 { return nil }
                if b != UInt8(ascii: "\\") { at += 1; continue }
                out.append(contentsOf: bytes[runStart..<at])
                at += 1
                guard let e = peek else { return nil }
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(scalar) {  // a high surrogate: its low half must follow
                        guard literal("\\u"), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { return nil }  // a lone low surrogate
                    out.append(contentsOf: UTF8.encode(u)!)
                default:
                    return nil
                }
                runStart = at
            }
        }

        mutating func hex4() -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[at]
                let d: UInt8
                switch b {
                case 0x30...0x39: d = b - 0x30
                case 0x41...0x46: d = b - 0x41 + 10
                case 0x61...0x66: d = b - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
                at += 1
            }
            return v
        }
    }
}
