public import MeshMetrics
import Synchronization

/// A clock that moves only when told to: loops, feeds and timers under test run on it, so a test
/// says "two seconds pass" instead of sleeping two seconds.
public final class ManualClock: TimeSource {
    private let ms: Mutex<Int64>

    /// Starts at `startMs` (milliseconds since the epoch; default 2026-11-25T00:00:00Z).
    public init(startMs: Int64 = 1_764_028_800_000) {
        ms = Mutex(startMs)
    }

    public func nowMs() -> Int64 { ms.withLock { $0 } }

    /// Moves the clock forward by `deltaMs`.
    public func advance(byMs deltaMs: Int64) {
        ms.withLock { $0 += deltaMs }
    }
}
