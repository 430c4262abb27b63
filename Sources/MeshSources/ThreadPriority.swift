#if canImport(Glibc)
import Glibc
#endif

/// Scheduling of the threads that work behind the dashboard.
enum ThreadPriority {
    /// Lowers the calling thread's priority (nice 10), so that on a busy machine the thread that
    /// reads keys and draws gets the CPU first: scraping and computing may run late, keys may not.
    static func background() {
        #if os(Linux)
        // On Linux the nice value belongs to the thread (see setpriority(2), BUGS): `who` 0 is
        // the calling thread alone, not the whole process.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }
}
