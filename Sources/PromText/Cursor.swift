/// A position in the exposition bytes, with the line bookkeeping errors need.
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var line = 0
    var lineStart = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8 { bytes[index] }

    mutating func advance() { index += 1 }

    mutating func beginLine() {
        line += 1
        lineStart = index
    }

    mutating func skipBlanks() {
        while index < bytes.count, isBlank(bytes[index]) { index += 1 }
    }

    mutating func skipToLineEnd() {
        while index < bytes.count, bytes[index] != 0x0A { index += 1 }
    }

    mutating func skipLine() {
        skipToLineEnd()
        consumeNewline()
    }

    mutating func consumeNewline() {
        if index < bytes.count, bytes[index] == 0x0D { index += 1 }
        if index < bytes.count, bytes[index] == 0x0A { index += 1 }
    }

    func string(from start: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    /// Slot 0 of the name table's per-position memory is the metric name; label `i` uses
    /// slots 1 + 2i (name) and 2 + 2i (value).
    mutating func metricName(_ names: inout NameTable) -> String {
        let start = index
        while index < bytes.count, isNameByte(bytes[index]) { index += 1 }
        return names.intern(bytes, start: start, count: index - start, slot: 0)
    }

    mutating func labelName(_ names: inout NameTable, position: Int) -> String {
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            guard isNameByte(b) && b != 0x3A else { break }
            index += 1
        }
        return names.intern(bytes, start: start, count: index - start, slot: 1 + 2 * position)
    }

    /// Reads a label value after its opening quote, through the closing quote.
    mutating func quotedLabelValue(_ names: inout NameTable, position: Int) throws(ParseError) -> String {
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            if b == 0x22 {  // '"'
                let value = names.intern(bytes, start: start, count: index - start, slot: 2 + 2 * position)
                index += 1
                return value
            }
            if b == 0x5C { return try escapedLabelValue(from: start) }
            if b == 0x0A { break }
            index += 1
        }
        throw error(at: start - 1, "label value is not closed by '\"' before the end of the line")
    }

    private mutating func escapedLabelValue(from start: Int) throws(ParseError) -> String {
        var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            switch b {
            case 0x22:
                index += 1
                return String(decoding: out, as: UTF8.self)
            case 0x5C:
                guard index + 1 < bytes.count else { break }
                let next = bytes[index + 1]
                switch next {
                case 0x6E: out.append(0x0A)  // \n
                case 0x5C, 0x22: out.append(next)
                default:
                    // Prometheus keeps an unknown escape as written.
                    out.append(0x5C)
                    out.append(next)
                }
                index += 2
                continue
            case 0x0A:
                throw error(at: start - 1, "label value is not closed by '\"' before the end of the line")
            default:
                out.append(b)
            }
            index += 1
        }
        throw error(at: start - 1, "label value is not closed by '\"' before the end of input")
    }

    /// Reads a float: decimal, exponent, `NaN`, `+Inf`, `-Inf`, `Inf`.
    mutating func number(what: String) throws(ParseError) -> Double {
        let start = index
        while index < bytes.count, !isBlank(bytes[index]), bytes[index] != 0x0A, bytes[index] != 0x0D { index += 1 }
        let token = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        guard let value = parseDouble(token) else {
            if token.isEmpty { throw error(at: start, "expected the \(what), found \(describe(at: start))") }
            throw error(at: start, "\"\(String(decoding: token, as: UTF8.self))\" is not a number (the \(what))")
        }
        return value
    }

    /// Reads a timestamp: integer milliseconds (0.0.4) or float seconds (OpenMetrics).
    mutating func timestamp() throws(ParseError) -> Int64 {
        let start = index
        while index < bytes.count, !isBlank(bytes[index]), bytes[index] != 0x0A, bytes[index] != 0x0D { index += 1 }
        let token = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        if let ms = parseInteger(token) { return ms }
        if let seconds = parseDouble(token), seconds.isFinite, abs(seconds) < 9.2e15 { return Int64((seconds * 1000).rounded()) }
        throw error(at: start, "\"\(String(decoding: token, as: UTF8.self))\" is not a timestamp")
    }

    func describePeek() -> String { describe(at: index) }

    func describe(at position: Int) -> String {
        guard position < bytes.count else { return "end of input" }
        let b = bytes[position]
        switch b {
        case 0x0A: return "end of line"
        case 0x20: return "' '"
        case 0x09: return "tab"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(b)))'"
        default: return "byte 0x\(String(b, radix: 16))"
        }
    }

    func error(at position: Int, _ message: String) -> ParseError {
        // Columns count characters (UTF-8 scalars), as an editor shows them.
        var column = 1
        var i = lineStart
        while i < position && i < bytes.count {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return ParseError(line: line, column: column, message: message)
    }
}
