/// The little JSON writing meshtop needs, printed the way Go's encoding/json prints it
/// (linkerd's JSON output is Go's): strings escaped, `<`, `>`, `&` as \u escapes, whole numbers without a fraction.
public enum JSONText {
    public static func string(_ s: String) -> String { JSONEscape.quoted(s) }

    /// A number, or `null` for nil and non-finite values.
    public static func number(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "null" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// `{"k":"v",…}` with keys sorted, for label maps.
    public static func object(_ map: [String: String]) -> String {
        "{" + map.sorted { $0.key < $1.key }.map { string($0.key) + ":" + string($0.value) }.joined(separator: ",") + "}"
    }
}
