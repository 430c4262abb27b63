#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one source of time (not the standard library's `Clock`, which measures durations): live
/// runs read the wall clock, replays a virtual one.
public protocol TimeSource: Sendable {
    /// Milliseconds since the epoch.
    func nowMs() -> Int64
}

/// The wall clock.
public struct WallClock: TimeSource {
    public init() {}

    public func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// Unix seconds as milliseconds, or nil when the number is not a time (not finite, or beyond the
/// year 5000 either way): recordings and flags are untrusted input, and an overflow would trap.
public func unixMilliseconds(_ seconds: Double) -> Int64? {
    guard seconds.isFinite, abs(seconds) < 1e11 else { return nil }
    return Int64((seconds * 1000).rounded())
}
