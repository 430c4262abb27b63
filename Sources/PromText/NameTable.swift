/// Interns the strings an exposition repeats on every line (metric names, label names, and
/// label values), so each distinct one is decoded and allocated once per parse.
struct NameTable {
    private var table: [Int: [String]] = [:]

    /// Returns the interned string for `bytes`.
    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> String {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        let key = hasher.finalize()
        if let candidates = table[key] {
            for candidate in candidates where candidate.utf8.elementsEqual(bytes) {
                return candidate
            }
        }
        let string = String(decoding: bytes, as: UTF8.self)
        table[key, default: []].append(string)
        return string
    }
}
