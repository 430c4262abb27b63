import Dashboard
import MeshMetrics
import MeshSources
import MeshTesting
import MeshTimeline
import Testing

/// The Timeline view over the recorded incident: golden screens, and Enter taking Detail and the
/// replay to the moment of a change.
@Suite struct TimelineScreen {
    /// The incident replayed as `meshtop replay` sets it up, paused at `+offsetMs`.
    static func incidentScrapes() throws -> [ScrapeResult] {
        let reader = try RecordingReader(path: repositoryRoot.path + "/Fixtures/recordings/demo-incident.meshrec.gz")
        var scrapes: [ScrapeResult] = []
        while let e = try reader.next() { if case .scrape(let r) = e { scrapes.append(r) } }
        return scrapes
    }

    static func replayState(atOffsetMs offsetMs: Int64) throws -> (DashboardState, ReplayFeed) {
        let scrapes = try incidentScrapes()
        let feed = ReplayFeed(events: scrapes)
        let start = try #require(feed.startMs), end = try #require(feed.endMs)
        var s = DashboardState(title: "replay: demo-incident.meshrec.gz", source: "demo-incident.meshrec.gz", windowMs: 10_000)
        s.replay = ReplayPosition(startMs: start, endMs: end, atMs: start + offsetMs)
        s.paused = true
        s.timeline = TimelineReplay.run(scrapes: scrapes, kindLabel: s.kindLabel, namespace: nil, windowMs: nil).events
        update(&s, .data(feed.snapshot(for: s.query), clockText: "22:39:34Z"))
        return (s, feed)
    }

    @Test func goldens() throws {
        for (width, height) in [(80, 24), (120, 40)] {
            var (s, _) = try Self.replayState(atOffsetMs: 30_000)
            update(&s, .key(.character("t")))
            try assertGolden(FixtureState.render(s, width, height), "incident-timeline-\(width)x\(height).txt")
        }
    }

    @Test func votingIsTheFirstChangeAndEnterGoesToItsMoment() throws {
        var (s, feed) = try Self.replayState(atOffsetMs: 5_000)
        update(&s, .key(.character("t")))
        #expect(s.view == .timeline)
        let first = try #require(s.timeline.first)
        #expect(first.subject == .workload(WorkloadID(namespace: "emojivoto", name: "voting")))
        update(&s, .key(.enter))
        #expect(s.view == .detail)
        #expect(s.detail == .workload(WorkloadID(namespace: "emojivoto", name: "voting")))
        #expect(s.replay?.atMs == first.atMs && s.paused)
        update(&s, .data(feed.snapshot(for: s.query), clockText: ""))
        let text = FixtureState.render(s, 120, 40)
        #expect(text.contains("workload emojivoto/voting"), "\(text)")
        // Esc returns to the list; the fourth row (web's own p99) opens web.
        update(&s, .key(.escape))
        #expect(s.view == .timeline)
        for _ in 0..<2 { update(&s, .key(.character("j"))) }
        update(&s, .key(.enter))
        #expect(s.detail == .workload(WorkloadID(namespace: "emojivoto", name: "web")))
    }

    @Test func liveDataBuildsTheTimelineAsItComes() throws {
        // The same recording fed as live snapshots, a second apart: the detector sees voting first.
        let feed = ReplayFeed(events: try Self.incidentScrapes())
        let start = try #require(feed.startMs), end = try #require(feed.endMs)
        var s = DashboardState(title: "live", source: "fixture", windowMs: 3_000)
        var t = start + 3_000
        while t <= end {
            var q = s.query
            q.atMs = t
            update(&s, .data(feed.snapshot(for: q), clockText: ""))
            t += 1_000
        }
        let subjects = s.timeline.map(\.subject)
        #expect(subjects.first == .workload(WorkloadID(namespace: "emojivoto", name: "voting")), "\(s.timeline)")
        #expect(s.timeline.contains { $0.change == .returned })
    }
}
