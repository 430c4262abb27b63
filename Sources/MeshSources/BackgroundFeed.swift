public import MeshMetrics
import Foundation

/// Computes a feed's snapshots on a thread of its own, so the dashboard's thread never waits for
/// one: `snapshot(for:)` answers at once with the latest snapshot (marked `catchingUp` while the
/// one for a new namespace or window is still being computed, so the loop asks again soon) and
/// asks for a fresh one. When computing takes longer than the refresh, the next computation
/// starts as the last one ends, with the newest query: work never queues up.
public final class BackgroundFeed: SnapshotFeed, @unchecked Sendable {
    // @unchecked: every field below is read and written under `condition`'s lock.
    private let inner: any SnapshotFeed
    private let clock: any TimeSource
    private let condition = NSCondition()
    private var latest: MeshSnapshot?
    /// The query `latest` answers.
    private var latestQuery: SnapshotQuery?
    private var wanted: SnapshotQuery?
    private var pending = false
    private var computingSinceMs: Int64?
    private var stopped = false
    /// Snapshots the dashboard is done with, freed on this feed's thread.
    private var discarded: [MeshSnapshot] = []

    /// Starts the thread that computes `inner`'s snapshots.
    public init(_ inner: any SnapshotFeed, clock: any TimeSource = WallClock()) {
        self.inner = inner
        self.clock = clock
        Thread.detachNewThread { [self] in
            ThreadPriority.background()
            work()
        }
    }

    public func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        condition.lock()
        wanted = query
        pending = true
        condition.signal()
        var out = latest ?? MeshSnapshot()
        out.catchingUp = latestQuery != query
        let since = computingSinceMs
        condition.unlock()
        // Slow enough to say so: the numbers shown are older than they look.
        if let since {
            let busy = clock.nowMs() - since
            if busy >= 2 * Int64(max(query.stepMs, 1000)) {
                out.problems.insert("the data source is slow: \(busy / 1000) s into this refresh, the numbers shown are from the one before", at: 0)
            }
        }
        return out
    }

    public func recycle(_ old: MeshSnapshot) {
        condition.lock()
        discarded.append(old)
        condition.signal()
        condition.unlock()
    }

    /// Whether a snapshot is being computed now.
    public var isComputing: Bool {
        condition.lock()
        defer { condition.unlock() }
        return computingSinceMs != nil
    }

    /// Stops the thread once the computation in progress (if any) ends.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while !pending, !stopped, discarded.isEmpty { condition.wait() }
            var freed = discarded
            discarded = []
            if stopped {
                condition.unlock()
                return
            }
            guard pending else {
                condition.unlock()
                freed.removeAll()  // outside the lock
                continue
            }
            pending = false
            let query = wanted
            computingSinceMs = clock.nowMs()
            condition.unlock()
            freed.removeAll()
            guard let query else { continue }
            let fresh = inner.snapshot(for: query)
            condition.lock()
            latest = fresh
            latestQuery = query
            computingSinceMs = nil
            condition.unlock()
        }
    }
}
