#if canImport(Glibc)
import Glibc
#endif

/// The sidecar's resident code, after start.
///
/// Most of meshproxy's RSS is not heap but pages of its binary and libraries: argument parsing,
/// certificate and TLS setup, configuration, the loader's relocation work. The kernel maps each
/// in a page-cache folio at a time, neighbours included, and keeps them mapped for the life of the
/// process although serving never touches most of them again.
enum StartupPages {
    /// Unmaps this process's read-only, file-backed pages (code, constant data, symbol and unwind
    /// tables), so that what the proxy runs from now on comes back on first use, from the page
    /// cache, and the rest stays out of its RSS. Only mappings that cannot hold anything of the
    /// process's own are touched: not writable, backed by a file, without one anonymous
    /// (copied-on-write) page. Nothing is lost; a page is at most read again from memory.
    /// Returns how many kB it unmapped.
    @discardableResult
    static func release() -> Int {
        guard let smaps = ProcessStats.readFile("/proc/self/smaps") else { return 0 }
        var released = 0
        for mapping in droppable(smaps) {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { released += mapping.residentKB }
        }
        return released
    }

    struct Mapping: Equatable {
        var start: UInt, end: UInt
        var residentKB: Int
    }

    /// The mappings `release` may drop, from `/proc/self/smaps`' text.
    static func droppable(_ smaps: String) -> [Mapping] {
        var out: [Mapping] = []
        var current: (mapping: Mapping, eligible: Bool)?
        func finish() { if let c = current, c.eligible, c.mapping.residentKB > 0 { out.append(c.mapping) } }
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":"), fields.count >= 5 {
                finish()
                let bounds = range.split(separator: "-")
                guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else {
                    current = nil
                    continue
                }
                let perms = Array(fields[1].utf8)
                let path = fields.count >= 6 ? fields[5] : ""
                let eligible = perms.count == 4 && perms[0] == UInt8(ascii: "r") && perms[1] == UInt8(ascii: "-")
                    && perms[3] == UInt8(ascii: "p") && path.hasPrefix("/")
                current = (Mapping(start: start, end: end, residentKB: 0), eligible)
            } else if fields.count >= 2, let value = Int(fields[1]) {
                if fields[0] == "Rss:" { current?.mapping.residentKB = value }
                if fields[0] == "Anonymous:", value > 0 { current?.eligible = false }
            }
        }
        finish()
        return out
    }
}
