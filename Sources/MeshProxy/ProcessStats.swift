#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `process_*` family, read from the kernel at scrape time (Linux `/proc`).
public enum ProcessStats {
    /// Wall-clock seconds since the epoch.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Resident set size in bytes, or nil where `/proc/self/statm` cannot be read.
    public static func residentBytes() -> Int? {
        guard let statm = readFile("/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func render(startTime: Double) -> String {
        var out = ""
        func gauge(_ name: String, _ type: String, _ help: String, _ value: Double) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        gauge("process_start_time_seconds", "gauge", "Time that the process started (in seconds since the UNIX epoch)", startTime.rounded(.down))
        gauge("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu)
        if let statm = readFile("/proc/self/statm") {
            let fields = statm.split(separator: " ").compactMap { Double($0) }
            let page = Double(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count > 1 {
                gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", fields[0] * page)
                gauge("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", fields[1] * page)
            }
        }
        if let fds = openFileDescriptors() {
            gauge("process_open_fds", "gauge", "Number of open file descriptors.", Double(fds))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        if let status = readFile("/proc/self/status"),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }),
           let n = Double(line.dropFirst("Threads:".count).trimmed(of: " \t")) {
            gauge("process_threads", "gauge", "Number of OS threads in the process.", n)
        }
        return out
    }

    /// The number of open file descriptors (entries of `/proc/self/fd`).
    public static func openFileDescriptors() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while readdir(dir) != nil { n += 1 }
        return n - 3  // ".", ".." and the descriptor opendir itself holds
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension StringProtocol {
    /// The text without the characters of `set` at either end (Foundation's `trimmingCharacters`,
    /// which the proxy does without). Compared by Unicode scalars: in a String, CR LF is one
    /// Character, so `" \t\r\n".contains("\n")` is false, and a file's last newline would stay.
    func trimmed(of set: String = " \t\r\n") -> SubSequence {
        let scalars = Set(set.unicodeScalars)
        func trims(_ c: Character) -> Bool { c.unicodeScalars.allSatisfy(scalars.contains) }
        var s = self[...]
        while let f = s.first, trims(f) { s = s.dropFirst() }
        while let l = s.last, trims(l) { s = s.dropLast() }
        return s
    }
}
