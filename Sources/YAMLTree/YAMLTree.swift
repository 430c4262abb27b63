import Yams

/// A YAML document as plain values (`[String: Any]`, `[Any]`, and scalars as Yams resolves them:
/// `Int`, `Double`, `Bool`, `String`, `NSNull`), for the small files the programs read.
///
/// Yams' own `load(yaml:)` builds mappings with a call that traps on a repeated key, and stops
/// the process on an alias it did not resolve; a file from outside must never do either. This
/// builds the same tree from the composed nodes and refuses those with an error instead.
public enum YAMLTree {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The document's tree, nil for an empty document; throws Yams' parse errors and `Problem`.
    public static func load(_ text: String) throws -> Any? {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        return try tree(node)
    }

    private static func tree(_ node: Node) throws -> Any {
        switch node {
        case .scalar(let scalar):
            // Yams' integer construction traps when a number overflows (a long sexagesimal such as
            // -551364444449444436:46): integers are read here, with overflow a plain string.
            if node.tag.rawValue == Tag.Name.int.rawValue { return integer(scalar.string).map { $0 as Any } ?? scalar.string }
            return node.any
        case .sequence(let items):
            return try items.map(tree)
        case .mapping(let pairs):
            var out: [String: Any] = [:]
            for (key, value) in pairs {
                guard case .scalar = key else {
                    throw Problem(description: "a key that is a list or a map (line \(key.mark?.line ?? 0))")
                }
                // Keys go through `tree` too: a key can be an overflowing sexagesimal integer.
                let name = "\(try tree(key))"
                guard out[name] == nil else { throw Problem(description: "'\(name)' twice in one map (line \(key.mark?.line ?? 0))") }
                out[name] = try tree(value)
            }
            return out
        case .alias:
            throw Problem(description: "an alias (*name) that does not name an anchor")
        }
    }

    /// A YAML 1.1 integer (as Yams resolves them: decimal, 0x, 0o, 0b, `_` separators,
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
