/// Parses the Prometheus text exposition format (0.0.4), tolerant of OpenMetrics
/// (`# EOF`, `# UNIT`, exemplars, `_created`, the `unknown` type).
///
/// ```swift
/// let exposition = try PromTextParser.parse(Array(body.utf8))
/// for sample in exposition.samples where sample.name == "request_total" { … }
/// ```
///
/// The parser works on bytes and allocates only for the strings it returns.
public enum PromTextParser {
    public static func parse(_ text: String) throws(ParseError) -> Exposition {
        var copy = text
        let result = copy.withUTF8 { buffer in
            Result { () throws(ParseError) in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> Exposition {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(ParseError) in try parse(buffer) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> Exposition {
        var cursor = Cursor(bytes: bytes)
        var exposition = Exposition()
        exposition.samples.reserveCapacity(bytes.count / 80)
        var names = NameTable()
        var labelCount = 0
        while !cursor.atEnd {
            cursor.beginLine()
            cursor.skipBlanks()
            if cursor.atEnd { break }
            let byte = cursor.peek
            if byte == ascii("\n") {
                cursor.advance()
                continue
            }
            if byte == ascii("#") {
                if try parseComment(&cursor, into: &exposition, names: &names) { break }
                continue
            }
            exposition.samples.append(try parseSample(&cursor, names: &names, previousLabelCount: &labelCount))
        }
        return exposition
    }

    /// Returns true at `# EOF`.
    private static func parseComment(_ c: inout Cursor, into exposition: inout Exposition, names: inout NameTable) throws(ParseError) -> Bool {
        c.advance()  // '#'
        c.skipBlanks()
        let keywordStart = c.index
        while !c.atEnd, isNameByte(c.peek) { c.advance() }
        let keyword = c.string(from: keywordStart)
        switch keyword {
        case "EOF":
            return true
        case "HELP", "TYPE":
            c.skipBlanks()
            guard !c.atEnd, isNameStart(c.peek) else {
                c.skipLine()
                return false  // a bare "# HELP" is a comment; Prometheus accepts it too
            }
            let name = c.metricName(&names)
            c.skipBlanks()
            let restStart = c.index
            c.skipToLineEnd()
            let rest = c.string(from: restStart)
            c.consumeNewline()
            if keyword == "TYPE" {
                let typeName = rest.trimmingTrailingBlanks()
                let type: MetricType
                switch typeName {
                case "counter": type = .counter
                case "gauge": type = .gauge
                case "histogram", "gaugehistogram": type = .histogram
                case "summary": type = .summary
                case "untyped": type = .untyped
                case "unknown", "stateset", "info": type = .unknown
                default:
                    throw c.error(at: restStart, "unknown metric type \"\(typeName)\" for \(name)")
                }
                exposition.families[name, default: FamilyInfo(type: type)].type = type
            } else {
                exposition.families[name, default: FamilyInfo(type: .untyped)].help = unescapeHelp(rest)
            }
        default:
            c.skipLine()
        }
        return false
    }

    private static func parseSample(_ c: inout Cursor, names: inout NameTable, previousLabelCount: inout Int) throws(ParseError) -> Sample {
        guard isNameStart(c.peek) else {
            throw c.error(at: c.index, "expected a metric name, found \(c.describePeek())")
        }
        let name = c.metricName(&names)
        var labels: [Label] = []
        let afterName = c.index
        c.skipBlanks()
        if !c.atEnd, c.peek == ascii("{") {
            c.advance()
            labels = try parseLabels(&c, names: &names, expected: previousLabelCount)
            previousLabelCount = labels.count
        } else if c.index > afterName {
            c.index = afterName
        }
        guard !c.atEnd, isBlank(c.peek) else {
            throw c.error(at: c.index, "expected a space before the value of \(name), found \(c.describePeek())")
        }
        c.skipBlanks()
        let value = try c.number(what: "value of \(name)")
        c.skipBlanks()
        var timestamp: Int64? = nil
        if !c.atEnd, c.peek != ascii("\n"), c.peek != ascii("\r"), c.peek != ascii("#") {
            timestamp = try c.timestamp()
            c.skipBlanks()
        }
        if !c.atEnd, c.peek == ascii("#") {
            c.skipToLineEnd()  // an OpenMetrics exemplar: not kept
        }
        guard c.atEnd || c.peek == ascii("\n") || c.peek == ascii("\r") else {
            throw c.error(at: c.index, "expected the end of the line after the value of \(name), found \(c.describePeek())")
        }
        c.consumeNewline()
        return Sample(name: name, labels: labels, value: value, timestampMs: timestamp)
    }

    private static func parseLabels(_ c: inout Cursor, names: inout NameTable, expected: Int) throws(ParseError) -> [Label] {
        var labels: [Label] = []
        labels.reserveCapacity(max(4, expected))
        while true {
            c.skipBlanks()
            guard !c.atEnd else { throw c.error(at: c.index, "unexpected end of input inside a label set") }
            if c.peek == ascii("}") {
                c.advance()
                return labels
            }
            guard isNameStart(c.peek) else {
                throw c.error(at: c.index, "expected a label name or '}', found \(c.describePeek())")
            }
            let name = c.labelName(&names, position: labels.count)
            c.skipBlanks()
            guard !c.atEnd, c.peek == ascii("=") else {
                throw c.error(at: c.index, "expected '=' after label name \(name), found \(c.describePeek())")
            }
            c.advance()
            c.skipBlanks()
            guard !c.atEnd, c.peek == ascii("\"") else {
                throw c.error(at: c.index, "expected '\"' to open the value of label \(name), found \(c.describePeek())")
            }
            c.advance()
            let value = try c.quotedLabelValue(&names, position: labels.count)
            labels.append(Label(name, value))
            c.skipBlanks()
            guard !c.atEnd else { throw c.error(at: c.index, "unexpected end of input inside a label set") }
            if c.peek == ascii(",") {
                c.advance()
            } else if c.peek != ascii("}") {
                throw c.error(at: c.index, "expected ',' or '}' after the value of label \(name), found \(c.describePeek())")
            }
        }
    }

    private static func unescapeHelp(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = ""
        var escaping = false
        for ch in s {
            if escaping {
                out.append(ch == "n" ? "\n" : ch)
                escaping = false
            } else if ch == "\\" {
                escaping = true
            } else {
                out.append(ch)
            }
        }
        if escaping { out.append("\\") }
        return out
    }
}

@inline(__always) func ascii(_ s: Unicode.Scalar) -> UInt8 { UInt8(s.value) }
@inline(__always) func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
@inline(__always) func isNameStart(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || b == 0x3A
}
@inline(__always) func isNameByte(_ b: UInt8) -> Bool { isNameStart(b) || (b >= 0x30 && b <= 0x39) }

extension String {
    func trimmingTrailingBlanks() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
