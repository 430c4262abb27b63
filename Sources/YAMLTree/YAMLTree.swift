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
        case .scalar:
            return node.any
        case .sequence(let items):
            return try items.map(tree)
        case .mapping(let pairs):
            var out: [String: Any] = [:]
            for (key, value) in pairs {
                guard case .scalar = key else {
                    throw Problem(description: "a key that is a list or a map (line \(key.mark?.line ?? 0))")
                }
                let name = "\(key.any)"
                guard out[name] == nil else { throw Problem(description: "'\(name)' twice in one map (line \(key.mark?.line ?? 0))") }
                out[name] = try tree(value)
            }
            return out
        case .alias:
            throw Problem(description: "an alias (*name) that does not name an anchor")
        }
    }
}
