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
    /// Unmaps the read-only pages of this process's own executable (code, constant data, symbol
    /// and unwind tables), so that what the proxy runs from now on comes back on first use, from
    /// the page cache, and the rest stays out of its RSS. Only mappings that cannot hold anything
    /// of the process's own are touched: not writable, private, of the executable file, and with
    /// smaps saying `Anonymous: 0 kB` and `Swap: 0 kB` (no copied-on-write page, resident or
    /// swapped). The executable's mappings never move while it runs, so no other thread can put
    /// something else at those addresses between the reading and the unmapping (a library that
    /// `dlopen` maps or unmaps could). Nothing is lost; a page is at most read again from memory.
    /// Returns how many kB it unmapped.
    @discardableResult
    static func release() -> Int {
        guard let executable = executablePath(), let smaps = ProcessStats.readFile("/proc/self/smaps") else { return 0 }
        var released = 0
        for mapping in droppable(smaps, executable: executable) {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { released += mapping.residentKB }
        }
        return released
    }

    struct Mapping: Equatable {
        var start: UInt, end: UInt
        var residentKB: Int
    }

    /// The mappings `release` may drop, from `/proc/self/smaps`' text. A mapping whose entry was
    /// cut short (no `Anonymous:` or `Swap:` line read) is kept.
    static func droppable(_ smaps: String, executable: String) -> [Mapping] {
        var out: [Mapping] = []
        var current: (mapping: Mapping, eligible: Bool, anonymous: Int?, swap: Int?)?
        func finish() {
            if let c = current, c.eligible, c.anonymous == 0, c.swap == 0, c.mapping.residentKB > 0 { out.append(c.mapping) }
        }
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
                let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
                let eligible = perms.count == 4 && perms[0] == UInt8(ascii: "r") && perms[1] == UInt8(ascii: "-")
                    && perms[3] == UInt8(ascii: "p") && path == executable
                current = (Mapping(start: start, end: end, residentKB: 0), eligible, nil, nil)
            } else if fields.count >= 2, let value = Int(fields[1]) {
                switch fields[0] {
                case "Rss:": current?.mapping.residentKB = value
                case "Anonymous:": current?.anonymous = value
                case "Swap:": current?.swap = value
                default: break
                }
            }
        }
        finish()
        return out
    }

    /// The running executable's path as /proc shows it in the mappings.
    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
