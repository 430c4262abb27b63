#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import MeshProxy

/// After start, meshproxy unmaps the read-only pages of its binary and libraries, so that its RSS
/// holds what serving runs rather than everything start-up touched (StartupPages).
@Suite struct StartupPagesTests {
    static let smaps = """
    55d0a0000000-55d0a0100000 r--p 00000000 fe:00 161 /opt/mesh proxy/meshproxy
    Size:               1024 kB
    Rss:                 300 kB
    Anonymous:             0 kB
    Swap:                  0 kB
    VmFlags: rd mr mw me dw sd
    55d0a0100000-55d0a0800000 r-xp 00100000 fe:00 161 /opt/mesh proxy/meshproxy
    Rss:                5000 kB
    Anonymous:             0 kB
    Swap:                  0 kB
    55d0a0800000-55d0a0900000 r--p 00800000 fe:00 161 /opt/mesh proxy/meshproxy
    Rss:                1000 kB
    Anonymous:          1000 kB
    Swap:                  0 kB
    55d0a0900000-55d0a0980000 r--p 00900000 fe:00 161 /opt/mesh proxy/meshproxy
    Rss:                  40 kB
    Anonymous:             0 kB
    Swap:                  8 kB
    55d0a0980000-55d0a0a00000 r--p 00980000 fe:00 161 /opt/mesh proxy/meshproxy
    Rss:                  40 kB
    Anonymous:             0 kB
    55d0a0a00000-55d0a0b00000 rw-p 00a00000 fe:00 161 /opt/mesh proxy/meshproxy
    Rss:                 800 kB
    Anonymous:           100 kB
    Swap:                  0 kB
    55d0a0b00000-55d0a0c00000 rw-p 00000000 00:00 0
    Rss:                 200 kB
    Anonymous:           200 kB
    Swap:                  0 kB
    7f0000000000-7f0000100000 r-xp 00026000 fe:00 333 /usr/lib/x86_64-linux-gnu/libc.so.6
    Rss:                1100 kB
    Anonymous:             0 kB
    Swap:                  0 kB
    7f0000300000-7f0000301000 r--s 00000000 fe:00 335 /dev/shm/shared
    Rss:                   4 kB
    Anonymous:             0 kB
    Swap:                  0 kB
    7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
    Rss:                   8 kB
    Anonymous:             0 kB
    Swap:                  0 kB
    """

    @Test func onlyTheExecutablesReadOnlyPagesWithNothingOfTheProcesssOwnAreDropped() {
        let dropped = StartupPages.droppable(Self.smaps, executable: "/opt/mesh proxy/meshproxy")
        #expect(dropped == [
            .init(start: 0x55d0a0000000, end: 0x55d0a0100000, residentKB: 300),   // headers, tables
            .init(start: 0x55d0a0100000, end: 0x55d0a0800000, residentKB: 5000),  // code
        ])
        // Not: the relocated (copied-on-write) RELRO, resident or swapped out; an entry cut short
        // before its Swap line; data; heap; a library (dlopen could reuse its addresses); a shared
        // mapping; the vDSO.
    }

    static func fileBackedKB() -> Int? {
        ProcessStats.readFile("/proc/self/status")?.split(separator: "\n")
            .first { $0.hasPrefix("RssFile:") }?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// In this very process: the pages go, and everything goes on running (the code it runs next
    /// is read back from the page cache).
    @Test func releasingInALiveProcessLowersItsRSSAndLosesNothing() throws {
        let before = try #require(Self.fileBackedKB())
        let released = StartupPages.release()
        let after = try #require(Self.fileBackedKB())
        #expect(released > 1_000, "released \(released) kB")
        #expect(after < before - 1_000, "file-backed RSS \(before) kB before, \(after) kB after")
        // Code and constant data still work: parse a destinations file and a tap filter.
        let table = try DestinationTable.parse(yaml: "destinations:\n- authority: web:80\n  backends: [{endpoints: [{address: '127.0.0.1:8080'}]}]\n")
        #expect(table.lookup("web:80") != nil)
        #expect(SplitRequest.parse(Array(#"{"authority":"web:80","weights":{"a":1}}"#.utf8)) == .success(SplitRequest(authority: "web:80", weights: ["a": 1])))
    }
}
