internal import CLibYAML

/// A YAML document as plain values (`[String: Any]`, `[Any]`, and scalars resolved as YAML 1.1
/// resolves plain scalars: `Int`, `Double`, `Bool`, `YAMLTree.Null` and otherwise `String`), for
/// the small files the programs read.
///
/// It reads libyaml's events itself rather than through Yams, so a program that reads YAML needs
/// no Foundation: the proxy's sidecar budget pays for every page of code it links. The tree is the
/// one Yams' composer gave (same resolution rules, same scalar types), and what Yams would trap or
/// stop the process on (a repeated key, an alias that names no anchor, an integer that overflows)
/// is an error or a string here instead.
public enum YAMLTree {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// An explicit null (`~`, `null`, or nothing after a key).
    public struct Null: Sendable, Hashable, CustomStringConvertible {
        public var description: String { "null" }
    }

    /// The document's tree, nil for an empty document; throws `Problem` for a parse error (with its
    /// line and column) or a tree this refuses.
    public static func load(_ text: String) throws -> Any? {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        return try bytes.withUnsafeBufferPointer { buffer throws -> Any? in
            // On the heap: libyaml's string reader keeps a pointer to the parser itself.
            let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
            defer { parser.deallocate() }
            parser.initialize(to: yaml_parser_t())
            guard yaml_parser_initialize(parser) == 1 else { throw Problem(description: "out of memory") }
            defer { yaml_parser_delete(parser) }
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var reader = EventReader(parser: parser)
            return try reader.document()
        }
    }

    /// Deeper nesting than this is refused (the tree is built recursively).
    public static let maxDepth = 256
    /// Aliases may repeat an anchored part at most up to this many nodes in all (a "billion
    /// laughs" document repeats one anchor in another until the tree is astronomically large).
    public static let maxAliasedNodes = 100_000

    /// Walks libyaml's event stream into values, one document.
    private struct EventReader {
        let parser: UnsafeMutablePointer<yaml_parser_t>
        /// Each anchor's value and its size in nodes (aliases inside it counted in full).
        var anchors: [String: (value: Any, nodes: Int)] = [:]
        var aliasedNodes = 0

        mutating func document() throws -> Any? {
            var root: Any?
            var documents = 0
            while true {
                var event = try next()
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return root
                case YAML_DOCUMENT_START_EVENT:
                    documents += 1
                    if documents > 1 { throw Problem(description: "expected a single document, found another (line \(event.start_mark.line + 1))") }
                    anchors = [:]
                case YAML_SCALAR_EVENT, YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT, YAML_ALIAS_EVENT:
                    root = try node(event, depth: 0).value
                default:
                    continue
                }
            }
        }

        mutating func next() throws -> yaml_event_t {
            var event = yaml_event_t()
            guard yaml_parser_parse(parser, &event) == 1 else { throw parseProblem() }
            return event
        }

        func parseProblem() -> Problem {
            let problem = parser.pointee.problem.map { String(cString: $0) } ?? "not valid YAML"
            let context = parser.pointee.context.map { String(cString: $0) + " " } ?? ""
            let mark = parser.pointee.problem_mark
            return Problem(description: "\(context)\(problem) (line \(mark.line + 1), column \(mark.column + 1))")
        }

        /// The value an event starts (a scalar, a whole sequence or mapping, or an alias's anchor)
        /// and its size in nodes.
        mutating func node(_ event: yaml_event_t, depth: Int) throws -> (value: Any, nodes: Int) {
            let line = event.start_mark.line + 1
            switch event.type {
            case YAML_ALIAS_EVENT:
                let name = Self.text(event.data.alias.anchor) ?? ""
                guard let anchored = anchors[name] else { throw Problem(description: "an alias (*\(name)) that does not name an anchor (line \(line))") }
                aliasedNodes += anchored.nodes
                guard aliasedNodes <= YAMLTree.maxAliasedNodes else {
                    throw Problem(description: "aliases repeat more than \(YAMLTree.maxAliasedNodes) nodes (line \(line))")
                }
                return anchored
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let value = YAMLTree.scalar(Self.text(s.value, length: s.length), tag: Self.text(s.tag), plain: s.style == YAML_PLAIN_SCALAR_STYLE)
                if let anchor = Self.text(s.anchor) { anchors[anchor] = (value, 1) }
                return (value, 1)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                guard depth < YAMLTree.maxDepth else { throw Problem(description: "nested deeper than \(YAMLTree.maxDepth) levels (line \(line))") }
                let isSequence = event.type == YAML_SEQUENCE_START_EVENT
                let anchor = Self.text(isSequence ? event.data.sequence_start.anchor : event.data.mapping_start.anchor)
                let built = isSequence ? try sequence(depth: depth) : try mapping(depth: depth)
                if let anchor { anchors[anchor] = built }
                return built
            default:
                throw Problem(description: "unexpected YAML event \(event.type.rawValue) (line \(line))")
            }
        }

        mutating func sequence(depth: Int) throws -> (value: Any, nodes: Int) {
            var items: [Any] = []
            var nodes = 1
            while true {
                var inner = try next()
                defer { yaml_event_delete(&inner) }
                if inner.type == YAML_SEQUENCE_END_EVENT { return (items, nodes) }
                let item = try node(inner, depth: depth + 1)
                items.append(item.value)
                nodes += item.nodes
            }
        }

        mutating func mapping(depth: Int) throws -> (value: Any, nodes: Int) {
            var out: [String: Any] = [:]
            var nodes = 1
            while true {
                var keyEvent = try next()
                defer { yaml_event_delete(&keyEvent) }
                if keyEvent.type == YAML_MAPPING_END_EVENT { return (out, nodes) }
                let keyLine = keyEvent.start_mark.line + 1
                guard keyEvent.type == YAML_SCALAR_EVENT || keyEvent.type == YAML_ALIAS_EVENT else {
                    throw Problem(description: "a key that is a list or a map (line \(keyLine))")
                }
                let key = try node(keyEvent, depth: depth + 1).value
                guard !(key is [Any]), !(key is [String: Any]) else { throw Problem(description: "a key that is a list or a map (line \(keyLine))") }
                let name = "\(key)"
                var valueEvent = try next()
                defer { yaml_event_delete(&valueEvent) }
                let value = try node(valueEvent, depth: depth + 1)
                guard out[name] == nil else { throw Problem(description: "'\(name)' twice in one map (line \(keyLine))") }
                out[name] = value.value
                nodes += 1 + value.nodes
            }
        }

        static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }

        static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
            guard let pointer else { return "" }
            return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
        }
    }

    private static let yamlTagPrefix = "tag:yaml.org,2002:"

    /// A scalar's value, as YAMLTree read it through Yams: `!!int` is an integer however written; any
    /// other quoted or block scalar is a string (whatever its tag); an explicit `!!type` on a plain
    /// one says what it is; and otherwise YAML 1.1's patterns resolve it (null, bool, int, float;
    /// else a string).
    static func scalar(_ text: String, tag: String?, plain: Bool) -> Any {
        let explicit = tag.map { $0.hasPrefix(yamlTagPrefix) ? String($0.dropFirst(yamlTagPrefix.count)) : $0 }
        if explicit == "int" { return integer(text) ?? text }
        guard plain, tag != "!" else { return text }
        let kind = explicit ?? resolve(text)
        switch kind {
        case "null": return Null()
        case "bool": return boolean(text) ?? text
        case "int": return integer(text) ?? text
        case "float": return float(text) ?? text
        default: return text
        }
    }

    /// The tag YAML 1.1 gives a plain scalar, as Yams' default resolver does (first rule that
    /// matches: bool, int, float, null; timestamps and the rest stay strings).
    static func resolve(_ text: String) -> String {
        if boolean(text) != nil { return "bool" }
        if isInteger(text) { return "int" }
        if isFloat(text) { return "float" }
        if ["", "~", "null", "Null", "NULL"].contains(text) { return "null" }
        return "str"
    }

    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON": return true
        case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    /// `[-+]?` then one of: `0b[01_]+`, `0o?[0-7_]+`, `0`, `[1-9][0-9_]*`, `0x[0-9a-fA-F_]+`, or a
    /// sexagesimal `[1-9][0-9_]*(:[0-5]?[0-9])+`.
    static func isInteger(_ text: String) -> Bool {
        var s = Substring(text)
        if let f = s.first, f == "-" || f == "+" { s = s.dropFirst() }
        guard let first = s.first else { return false }
        func all(_ t: Substring, _ ok: (Character) -> Bool) -> Bool { !t.isEmpty && t.allSatisfy(ok) }
        if s.hasPrefix("0b") { return all(s.dropFirst(2)) { $0 == "0" || $0 == "1" || $0 == "_" } }
        if s.hasPrefix("0x") { return all(s.dropFirst(2)) { $0.isHexDigit || $0 == "_" } }
        if s.hasPrefix("0o") { return all(s.dropFirst(2)) { ("0"..."7").contains($0) || $0 == "_" } }
        if first == "0" { return s == "0" || all(s.dropFirst()) { ("0"..."7").contains($0) || $0 == "_" } }
        guard ("1"..."9").contains(first) else { return false }
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard all(parts[0], { $0.isASCII && ($0.isNumber || $0 == "_") }) else { return false }
        return parts.dropFirst().allSatisfy(isSexagesimalDigits)
    }

    /// `[0-5]?[0-9]`
    private static func isSexagesimalDigits(_ part: Substring) -> Bool {
        let digits = Array(part.utf8)
        switch digits.count {
        case 1: return (48...57).contains(digits[0])
        case 2: return (48...53).contains(digits[0]) && (48...57).contains(digits[1])
        default: return false
        }
    }

    /// `[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?`, `\.[0-9_]+([eE][-+][0-9]+)?`, a sexagesimal
    /// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`, `[-+]?\.inf` and `\.nan` in their three spellings.
    static func isFloat(_ text: String) -> Bool {
        if [".nan", ".NaN", ".NAN"].contains(text) { return true }
        var s = Substring(text)
        let signed = s.first == "-" || s.first == "+"
        if signed { s = s.dropFirst() }
        if [".inf", ".Inf", ".INF"].contains(s) { return true }
        func digits(_ t: Substring, underscores: Bool = true) -> Bool { t.allSatisfy { $0.isASCII && ($0.isNumber || (underscores && $0 == "_")) } }
        func exponent(_ t: Substring, signRequired: Bool) -> Bool {
            guard let e = t.first, e == "e" || e == "E" else { return false }
            var rest = t.dropFirst()
            if let sign = rest.first, sign == "-" || sign == "+" { rest = rest.dropFirst() } else if signRequired { return false }
            return !rest.isEmpty && digits(rest, underscores: false)
        }
        if s.first == "." {  // `.5`, with no sign
            guard !signed else { return false }
            let body = s.dropFirst()
            let end = body.firstIndex { $0 == "e" || $0 == "E" } ?? body.endIndex
            return !body[..<end].isEmpty && digits(body[..<end]) && (end == body.endIndex || exponent(body[end...], signRequired: true))
        }
        guard let first = s.first, first.isASCII, first.isNumber else { return false }
        if s.contains(":") {
            guard let dot = s.firstIndex(of: ".") else { return false }
            let parts = s[..<dot].split(separator: ":", omittingEmptySubsequences: false)
            return digits(parts[0]) && parts.count > 1 && parts.dropFirst().allSatisfy(isSexagesimalDigits) && digits(s[s.index(after: dot)...])
        }
        let end = s.firstIndex { $0 == "e" || $0 == "E" } ?? s.endIndex
        let mantissa = s[..<end]
        let pieces = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard digits(pieces[0]), pieces.count == 1 || digits(pieces[1]) else { return false }
        return end == s.endIndex || exponent(s[end...], signRequired: false)
    }

    /// The float a scalar names (`_` ignored, sexagesimal `1:30.5`, `.inf`, `.nan`), or nil.
    static func float(_ text: String) -> Double? {
        let cleaned = text.filter { $0 != "_" }
        switch cleaned.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default: break
        }
        guard cleaned.contains(":") else { return Double(cleaned) }
        var s = Substring(cleaned)
        let negative = s.first == "-"
        if s.first == "-" || s.first == "+" { s = s.dropFirst() }
        var total = 0.0
        for part in s.split(separator: ":", omittingEmptySubsequences: false) {
            guard let n = Double(part) else { return nil }
            total = total * 60 + n
        }
        return negative ? -total : total
    }

    /// A YAML 1.1 integer as Yams reads one (decimal, so `017` is 17; 0x, 0o, 0b, `_` separators,
    /// sexagesimal `1:30`), or nil when it does not fit an `Int`.
    static func integer(_ text: String) -> Int? {
        var digits = Substring(String(text.filter { $0 != "_" }))
        var negative = false
        if let first = digits.first, first == "-" || first == "+" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        var magnitude: Int?
        if digits.hasPrefix("0x") {
            magnitude = Int(digits.dropFirst(2), radix: 16)
        } else if digits.hasPrefix("0o") {
            magnitude = Int(digits.dropFirst(2), radix: 8)
        } else if digits.hasPrefix("0b") {
            magnitude = Int(digits.dropFirst(2), radix: 2)
        } else if digits.contains(":") {
            var total = 0
            for part in digits.split(separator: ":", omittingEmptySubsequences: false) {
                guard let n = Int(part, radix: 10) else { return nil }
                let (shifted, o1) = total.multipliedReportingOverflow(by: 60)
                let (sum, o2) = shifted.addingReportingOverflow(n)
                guard !o1, !o2 else { return nil }
                total = sum
            }
            magnitude = total
        } else {
            magnitude = Int(digits, radix: 10)
        }
        guard let magnitude, magnitude >= 0 else { return nil }
        return negative ? -magnitude : magnitude
    }
}
