#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Interns the strings an exposition repeats on every line (metric names, label names, and
/// label values), so each distinct one is decoded and allocated once per parse.
///
/// Two levels: lines usually repeat the previous line's labels in the same positions (a
/// histogram's 26 bucket lines differ only in `le`), so each position remembers the bytes it saw
/// last and reuses that string after one `memcmp`; everything else goes through a hash table.
struct NameTable {
    private var table: [UInt64: [String]] = [:]
    /// Per label position: where the previous line's bytes were, and the string made of them.
    private var recent: [(start: Int, count: Int, string: String)] = []

    /// Returns the interned string for `bytes[start..<start+count]`, trying position `slot`'s
    /// previous string first.
    mutating func intern(_ base: UnsafeRawBufferPointer, start: Int, count: Int, slot: Int) -> String {
        if slot < recent.count {
            let r = recent[slot]
            if r.count == count, memcmp(base.baseAddress! + r.start, base.baseAddress! + start, count) == 0 {
                recent[slot].start = start
                return r.string
            }
        }
        let string = intern(UnsafeRawBufferPointer(rebasing: base[start..<(start + count)]))
        if slot < recent.count {
            recent[slot] = (start, count, string)
        } else if slot == recent.count {
            recent.append((start, count, string))
        }
        return string
    }

    /// Returns the interned string for `bytes`.
    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> String {
        // FNV-1a over 8-byte words: collisions only cost a comparison.
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x0000_0100_0000_01B3
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01B3
            i += 1
        }
        h ^= UInt64(n)
        if let candidates = table[h] {
            for candidate in candidates where candidate.utf8.elementsEqual(bytes) {
                return candidate
            }
        }
        let string = String(decoding: bytes, as: UTF8.self)
        table[h, default: []].append(string)
        return string
    }
}
