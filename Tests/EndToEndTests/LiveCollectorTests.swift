import Testing
import MeshMetrics
import MeshSources
import MeshTesting
import PromText

/// The live collector on an in-memory transport and a manual clock: what a round of scrapes
/// becomes on screen, exactly, with no sockets and no waiting.
@Suite struct LiveCollectorTests {
    let web = ScrapeTarget(url: "http://web:4191/metrics", labels: [Label("deployment", "web"), Label("namespace", "emojivoto")])
    let voting = ScrapeTarget(url: "http://voting:4191/metrics", labels: [Label("deployment", "voting"), Label("namespace", "emojivoto")])

    func body(ok: Int, failed: Int) -> String {
        """
        response_total{direction="inbound",status_code="200",classification="success"} \(ok)
        response_total{direction="inbound",status_code="500",classification="failure"} \(failed)

        """
    }

    /// A collector of both targets after a first round in which each answered with zero counts.
    func firstRound() -> (ManualClock, InMemoryScrapes, LiveCollector) {
        let clock = ManualClock()
        let scrapes = InMemoryScrapes()
        let live = LiveCollector(targets: [web, voting])
        scrapes.answer(web.url, with: body(ok: 0, failed: 0))
        scrapes.answer(voting.url, with: body(ok: 0, failed: 0))
        live.scrapeOnce(clock: clock, transport: scrapes)
        return (clock, scrapes, live)
    }

    @Test func twoRoundsTenSecondsApartGiveRatesAndSuccess() {
        let (clock, scrapes, live) = firstRound()
        clock.advance(byMs: 10_000)
        scrapes.answer(web.url, with: body(ok: 200, failed: 0))
        scrapes.answer(voting.url, with: body(ok: 90, failed: 10))
        live.scrapeOnce(clock: clock, transport: scrapes)
        let snapshot = live.snapshot(for: SnapshotQuery(kindLabel: "deployment", windowMs: 60_000))
        #expect(snapshot.windowMs == 10_000, "the window is clamped to the 10 s of data held")
        #expect(snapshot.targetsUp == 2 && snapshot.targetsTotal == 2)
        let w = snapshot.workload(WorkloadID(namespace: "emojivoto", name: "web"))
        let v = snapshot.workload(WorkloadID(namespace: "emojivoto", name: "voting"))
        #expect(w?.rps == 20 && w?.success == 1)
        #expect(v?.rps == 10 && v?.success == 0.9)
    }

    @Test func aTargetThatStopsAnsweringIsDownWithItsReasonAndKeepsItsData() {
        let (clock, scrapes, live) = firstRound()
        clock.advance(byMs: 1_000)
        scrapes.fail(voting.url, "http://voting:4191/metrics: connection refused")
        live.scrapeOnce(clock: clock, transport: scrapes)
        let snapshot = live.snapshot(for: SnapshotQuery(kindLabel: "deployment", windowMs: 60_000))
        #expect(snapshot.targetsUp == 1 && snapshot.targetStates == "1 down")
        #expect(snapshot.problems == ["http://voting:4191/metrics: connection refused"])
        #expect(snapshot.targets.first?.url == voting.url && snapshot.targets.first?.state == .down)
    }
}
