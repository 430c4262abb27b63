import FoundationEssentials

/// A JSON document as plain values, as `JSONSerialization` gave them: `[String: Any]`, `[Any]`,
/// `String`, `Bool`, `Int` (a number that is a whole `Int`), `Double` (any other number) and
/// `JSONTree.Null`. Decoded by FoundationEssentials' `JSONDecoder`, so the proxy, which reads tap
/// filters and split requests this way, links no Foundation.
public enum JSONTree {
    public struct Null: Sendable, Hashable, CustomStringConvertible {
        public var description: String { "null" }
    }

    /// The document's value, or nil when the bytes are not JSON.
    public static func parse(_ bytes: [UInt8]) -> Any? {
        try? JSONDecoder().decode(Value.self, from: Data(bytes)).value
    }

    /// The document's value when it is an object.
    public static func object(_ bytes: [UInt8]) -> [String: Any]? {
        parse(bytes) as? [String: Any]
    }

    private struct Value: Decodable {
        let value: Any

        init(from decoder: any Decoder) throws {
            if let single = try? decoder.singleValueContainer() {
                // Strings first: most of a tap event's values are, and each miss costs an error.
                if single.decodeNil() { value = Null(); return }
                if let s = try? single.decode(String.self) { value = s; return }
                if let i = try? single.decode(Int.self) { value = i; return }
                if let d = try? single.decode(Double.self) { value = d; return }
                if let b = try? single.decode(Bool.self) { value = b; return }
            }
            if var list = try? decoder.unkeyedContainer() {
                var items: [Any] = []
                while !list.isAtEnd { items.append(try list.decode(Value.self).value) }
                value = items
                return
            }
            let keyed = try decoder.container(keyedBy: Key.self)
            var out: [String: Any] = [:]
            for key in keyed.allKeys { out[key.stringValue] = try keyed.decode(Value.self, forKey: key).value }
            value = out
        }
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}
