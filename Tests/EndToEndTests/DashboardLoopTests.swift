import Testing
import Dashboard
import Foundation
import MeshMetrics
import MeshSources
import MeshTap
import MeshTesting
import Synchronization
import TerminalUI

/// A feed that answers with one fixed snapshot and keeps every query it was asked, with the
/// clock's time of asking.
final class RecordingFeed: SnapshotFeed {
    private let snapshot: MeshSnapshot
    private let clock: ManualClock
    private let asked = Mutex<[(atMs: Int64, query: SnapshotQuery)]>([])

    init(_ snapshot: MeshSnapshot, clock: ManualClock) {
        self.snapshot = snapshot
        self.clock = clock
    }

    var queries: [(atMs: Int64, query: SnapshotQuery)] { asked.withLock { $0 } }

    func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        asked.withLock { $0.append((clock.nowMs(), query)) }
        return snapshot
    }
}

/// Tap events handed over once, on the first drain.
final class OneBatchTapFeed: TapEventFeed {
    private let pending: Mutex<[TapEvent]>
    init(_ events: [TapEvent]) { pending = Mutex(events) }
    var count: Int { 1 }
    func drain() -> (events: [TapEvent], problems: [String]) {
        (pending.withLock { e in defer { e = [] }; return e }, [])
    }
}

/// The dashboard's loop on a clock the test moves and a terminal with no tty: refreshes, keys,
/// quitting, tap and deadlines, each to the millisecond, with no sleeping.
@Suite struct DashboardLoopTests {
    let start: Int64 = 1_764_028_800_000

    func fixture() throws -> (ManualClock, HeadlessTerminal, RecordingFeed, DashboardState) {
        let clock = ManualClock(startMs: start)
        let terminal = HeadlessTerminal(width: 100, height: 30, clock: clock)
        let snapshot = MeshSnapshot.make(from: try FixtureState.collector(), kindLabel: "deployment", namespace: nil, windowMs: 60_000)
        let feed = RecordingFeed(snapshot, clock: clock)
        return (clock, terminal, feed, DashboardState(title: "meshtop", source: "test", windowMs: 60_000))
    }

    @Test func refreshesOncePerIntervalAndStopsAtTheDeadline() throws {
        let (clock, terminal, feed, state) = try fixture()
        DashboardLoop.run(state, feed: feed, terminal: terminal, deadlineMs: start + 3_000, clock: clock)
        // At 0, 1 s and 2 s; the deadline (3 s) ends the loop before a fourth.
        #expect(feed.queries.map { $0.atMs - start } == [0, 1_000, 2_000])
        #expect(clock.nowMs() == start + 3_000)
        #expect(terminal.screen.contains("web"))
        #expect(terminal.screen.contains("voting"))
    }

    @Test func aKeyIsAnsweredInTheSameTurnItArrives() throws {
        let (clock, terminal, feed, state) = try fixture()
        terminal.press(.character("2"), afterMs: 150)
        terminal.press(.character("q"), afterMs: 100)
        DashboardLoop.run(state, feed: feed, terminal: terminal, clock: clock)
        // `q` at 250 ms ends the loop there; `2` at 150 ms drew the Edges view before it.
        #expect(clock.nowMs() == start + 250)
        #expect(terminal.delivered.map { $0.atMs - start } == [150, 250])
        let edges = terminal.screen  // `q` ends the loop without another frame
        #expect(edges.contains("web") && edges.contains("emoji") && edges.contains("voting"))
        #expect(terminal.frames.count == 2 && terminal.frames[0].contains("1 Overview]") && edges.contains("2 Edges]"))
        #expect(feed.queries.count == 1)
    }

    @Test func aNewNamespaceOrWindowIsFetchedAtOnceNotAtTheNextRefresh() throws {
        let (clock, terminal, feed, state) = try fixture()
        terminal.type(":ns emojivoto", afterMs: 10)
        terminal.press(.enter, afterMs: 10)
        terminal.type(":window 30s", afterMs: 10)
        terminal.press(.enter, afterMs: 10)
        terminal.press(.character("q"), afterMs: 10)
        DashboardLoop.run(state, feed: feed, terminal: terminal, clock: clock)
        let asked = feed.queries
        let namespaceEnter = start + 140, windowEnter = start + 260
        #expect(asked.first?.query.namespace == nil)
        #expect(asked.contains { $0.atMs == namespaceEnter && $0.query.namespace == "emojivoto" && $0.query.windowMs == 60_000 })
        #expect(asked.contains { $0.atMs == windowEnter && $0.query.namespace == "emojivoto" && $0.query.windowMs == 30_000 })
        #expect(asked.count == 3)
    }

    @Test func tapEventsReachTheTapView() throws {
        let (clock, terminal, feed, state) = try fixture()
        let tap = OneBatchTapFeed(FixtureState.tapEvents())
        terminal.press(.character("6"), afterMs: 50)
        terminal.press(.character("q"), afterMs: 50)
        DashboardLoop.run(state, feed: feed, tap: tap, terminal: terminal, clock: clock)
        let tapView = terminal.screen
        #expect(tapView.contains("/vote") && tapView.contains("/list"))
    }

    @Test func resizeAndControlLRepaintEverything() throws {
        let (clock, terminal, feed, state) = try fixture()
        terminal.press(.resize, afterMs: 10)
        terminal.press(.control("l"), afterMs: 10)
        terminal.press(.character("q"), afterMs: 10)
        DashboardLoop.run(state, feed: feed, terminal: terminal, clock: clock)
        #expect(terminal.invalidations == 2)
    }
}

/// A feed that does not answer until released (a hung scrape, a Prometheus that accepts and
/// never answers).
final class BlockedFeed: SnapshotFeed {
    let gate = DispatchSemaphore(value: 0)
    func snapshot(for query: SnapshotQuery) -> MeshSnapshot {
        gate.wait()
        gate.signal()
        return MeshSnapshot()
    }
}

/// The loop over a feed that never returns, behind the BackgroundFeed every live dashboard uses.
@Suite struct BlockedFeedTests {
    let start: Int64 = 1_764_028_800_000

    func blockedFeed(width: Int) -> (ManualClock, HeadlessTerminal, BlockedFeed, BackgroundFeed) {
        let clock = ManualClock(startMs: start)
        let blocked = BlockedFeed()
        return (clock, HeadlessTerminal(width: width, height: 30, clock: clock), blocked, BackgroundFeed(blocked, clock: clock))
    }

    @Test func keysAreAnsweredAtOnceWhileTheFeedNeverReturns() throws {
        let (clock, terminal, blocked, feed) = blockedFeed(width: 100)
        defer { feed.stop(); blocked.gate.signal() }
        terminal.press(.character("2"), afterMs: 150)
        terminal.press(.character("q"), afterMs: 100)
        DashboardLoop.run(DashboardState(title: "meshtop", source: "test", windowMs: 60_000), feed: feed, terminal: terminal, clock: clock)
        #expect(clock.nowMs() == start + 250, "the loop waited for the feed")
        #expect(terminal.screen.contains("2 Edges]"))
    }

    @Test func aFeedSlowerThanTwoRefreshesIsSaidOnScreen() throws {
        let (clock, terminal, blocked, feed) = blockedFeed(width: 120)
        defer { feed.stop(); blocked.gate.signal() }
        // The feed's thread starts its (blocked) computation at the start, before the clock runs on.
        _ = feed.snapshot(for: SnapshotQuery(kindLabel: "deployment", windowMs: 60_000))
        #expect(eventually(within: 5) { feed.isComputing })
        DashboardLoop.run(DashboardState(title: "meshtop", source: "test", windowMs: 60_000), feed: feed, terminal: terminal,
                          deadlineMs: start + 3_000, clock: clock)
        #expect(terminal.screen.contains("the data source is slow"), "\(terminal.screen)")
    }
}
