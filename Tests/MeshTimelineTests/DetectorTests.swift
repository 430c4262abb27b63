import MeshMetrics
import MeshTimeline
import Testing

/// The incident timeline's detector on synthetic series: what leaves a baseline, what comes
/// back, what does not flap, and the order of changes seen at one moment.
@Suite struct TimelineDetection {
    let web = WorkloadID(namespace: "emojivoto", name: "web")
    let voting = WorkloadID(namespace: "emojivoto", name: "voting")

    /// Feeds one sample per second for each subject; `values(t)` gives each one's (success, p99, rps).
    func run(seconds: Int, calls: [EdgeID] = [], _ values: (Int) -> [TimelineSubject: TimelineSample]) -> [TimelineEvent] {
        var d = TimelineDetector()
        for t in 0..<seconds { d.observe(atMs: Int64(t) * 1000, samples: values(t), calls: calls) }
        return d.events
    }

    func sample(_ success: Double, _ p99: Double = 20, _ rps: Double = 10) -> TimelineSample {
        TimelineSample(success: success, p99: p99, rps: rps)
    }

    @Test func aDropAndItsRecoveryAreTwoEvents() {
        let events = run(seconds: 60) { t in [.workload(voting): sample(t >= 20 && t < 40 ? 0.6 : 1)] }
        #expect(events.map(\.change) == [.left, .returned])
        #expect(events.map(\.atMs) == [20_000, 40_000])
        #expect(events[0].metric == .success && events[0].from == 1 && events[0].to == 0.6)
        #expect(events[1].from == 0.6 && events[1].to == 1)
    }

    @Test func noiseWithinTheBandIsNotAChange() {
        // 0.5–1.5% errors around 1%, p99 18–26 ms around 22: ordinary.
        let events = run(seconds: 120) { t in [.workload(web): sample(0.99 + Double(t % 3 - 1) * 0.005, 22 + Double(t % 5 * 2 - 4), 10 + Double(t % 2))] }
        #expect(events.isEmpty, "\(events)")
    }

    @Test func aValueHoveringAtTheEdgeDoesNotFlap() {
        // Errors at 1% → 4% (away), then between 2.6% and 3.4%: not back until under 2%.
        let events = run(seconds: 80) { t in
            let err = t < 20 ? 0.01 : t < 30 ? 0.04 : t < 60 ? (t % 2 == 0 ? 0.026 : 0.034) : 0.01
            return [.workload(web): sample(1 - err)]
        }
        #expect(events.map(\.change) == [.left, .returned])
        #expect(events.map(\.atMs) == [20_000, 60_000])
    }

    @Test func nothingLeavesBeforeThereIsABaseline() {
        #expect(run(seconds: 4) { t in [.workload(web): sample(t == 3 ? 0.2 : 1)] }.isEmpty)
    }

    @Test func latencyAndRateChangesAreSeen() {
        let events = run(seconds: 40) { t in [.workload(web): sample(1, t >= 20 ? 100 : 20, t >= 30 ? 2 : 10)] }
        #expect(events.map(\.metric) == [.p99, .rps])
        #expect(events[1].from == 10 && events[1].to == 2)
    }

    @Test func aCalleeComesBeforeItsCallersAtTheSameMoment() {
        let edge = EdgeID(source: web, destination: voting)
        let events = run(seconds: 30, calls: [edge]) { t in
            let bad = t >= 20
            return [.workload(web): sample(bad ? 0.8 : 1), .edge(edge): sample(bad ? 0.6 : 1), .workload(voting): sample(bad ? 0.6 : 1)]
        }
        #expect(events.map(\.subject) == [.workload(voting), .edge(edge), .workload(web)])
    }

    @Test func missingValuesAreSkippedNotZero() {
        let events = run(seconds: 40) { t in [.workload(web): TimelineSample(success: t % 4 == 0 ? nil : 1, p99: nil, rps: 10)] }
        #expect(events.isEmpty)
    }

    @Test func workloadsThatCallEachOtherStillComeAfterTheirCallees() {
        // a ↔ b, b → c → d: d first, then c, then a and b (alike, by name), whatever the order seen.
        let ns = "n"
        func w(_ name: String) -> WorkloadID { WorkloadID(namespace: ns, name: name) }
        let calls = [EdgeID(source: w("a"), destination: w("b")), EdgeID(source: w("b"), destination: w("a")),
                     EdgeID(source: w("b"), destination: w("c")), EdgeID(source: w("c"), destination: w("d"))]
        for _ in 0..<5 {
            let events = run(seconds: 30, calls: calls.shuffled()) { t in
                Dictionary(uniqueKeysWithValues: ["b", "d", "a", "c"].shuffled().map { (TimelineSubject.workload(w($0)), sample(t >= 20 ? 0.5 : 1)) })
            }
            #expect(events.map(\.subject) == ["d", "c", "a", "b"].map { .workload(w($0)) })
        }
    }

    @Test func aLastingShiftSettlesIntoTheNewBaseline() {
        // RPS doubles for good: it leaves, then after the baseline's reach it settles, and a later
        // drop from the new level is seen.
        var d = TimelineDetector()
        d.thresholds.baselineMs = 30_000
        for t in 0..<120 {
            let rps: Double = t < 20 ? 10 : t < 100 ? 20 : 5
            d.observe(atMs: Int64(t) * 1000, samples: [.workload(web): sample(1, 20, rps)], calls: [])
        }
        #expect(d.events.map(\.change) == [.left, .settled, .left])
        #expect(d.events.last?.from == 20 && d.events.last?.to == 5)
    }

    @Test func eventsAreCapped() {
        var d = TimelineDetector()
        d.capacity = 10
        for t in 0..<400 {
            d.observe(atMs: Int64(t) * 1000, samples: [.workload(web): sample(t % 20 < 10 ? 1 : 0.5)], calls: [])
        }
        #expect(d.events.count == 10)
        #expect(d.events.last?.atMs == 390_000)
    }
}
