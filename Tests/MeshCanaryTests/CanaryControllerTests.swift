import Testing
import MeshCanary
import MeshTesting

/// Observations from a list, one per interval, then the end of the source.
struct ScriptedObserver: CanaryObserver {
    var samples: [(canary: TrafficSample?, primary: TrafficSample?)]
    var atMs: Int64 = 1_764_028_800_000
    let source = "script"

    mutating func next(stop: () -> Bool) -> CanaryObservation? {
        guard !stop(), !samples.isEmpty else { return nil }
        let s = samples.removeFirst()
        atMs += 30_000
        return CanaryObservation(atMs: atMs, canary: s.canary, primary: s.primary)
    }
}

/// The controller against a fake WeightSetter: which weights it sets, when, and what happens when
/// a proxy refuses them. No proxy, no HTTP, no clock.
@Suite struct CanaryControllerTests {
    let good = TrafficSample(requests: 100, success: 1, p99Ms: 20)
    let bad = TrafficSample(requests: 100, success: 0.7, p99Ms: 20)
    let target = CanaryTarget(namespace: "emojivoto", canary: "voting-canary", primary: "voting")

    var policy: CanaryPolicy {
        var p = CanaryPolicy()
        (p.stepWeight, p.maxWeight, p.threshold, p.successRateMin, p.latencyP99MaxMs, p.minRequests) = (20, 60, 2, 99, 100, 10)
        return p
    }

    func run(_ samples: [(canary: TrafficSample?, primary: TrafficSample?)], setters: [FakeWeightSetter], dryRun: Bool = false)
        -> (code: Int32, watch: CanaryWatch) {
        let controller = CanaryController(authority: "voting:8080", canaryBackend: "voting-canary", primaryBackend: "voting",
                                          splits: setters, dryRun: dryRun)
        var observer = ScriptedObserver(samples: samples)
        let watch = CanaryWatch(target: target, authority: "voting:8080", source: "script", policy: policy, intervalMs: 30_000, dryRun: dryRun)
        return controller.run(&observer, watch: watch, startMs: 1_764_028_800_000) { _, _ in }
    }

    func canaryWeights(_ setter: FakeWeightSetter) -> [Int] { setter.calls.map { $0["voting-canary"] ?? -1 } }

    @Test func aGoodCanaryStepsEveryProxysSplitAndIsPromoted() {
        let proxies = [FakeWeightSetter(), FakeWeightSetter()]
        let (code, watch) = run(Array(repeating: (good, good), count: 4), setters: proxies)
        #expect(code == 0 && watch.result == .promoted)
        for p in proxies {
            #expect(canaryWeights(p) == [20, 40, 60, 100])
            #expect(p.calls.allSatisfy { ($0["voting-canary"] ?? 0) + ($0["voting"] ?? 0) == 100 })
        }
    }

    @Test func aBadCanaryIsRolledBackToZero() {
        let proxy = FakeWeightSetter()
        let (code, watch) = run([(good, good), (bad, good), (bad, good)], setters: [proxy])
        #expect(code == 1 && watch.result == .rolledBack)
        #expect(canaryWeights(proxy) == [20, 40, 0])
        #expect(watch.reason?.contains("request-success-rate 70%") == true)
    }

    @Test func aRefusedSplitRollsBackAndSaysWhy() {
        let proxy = FakeWeightSetter()
        proxy.failing("HTTP 401: a bearer token is needed")
        let (code, watch) = run([(good, good)], setters: [proxy])
        #expect(code == 1 && watch.result == .rolledBack && watch.weight == 0)
        #expect(watch.reason == "the split cannot be set: HTTP 401: a bearer token is needed")
        #expect(proxy.calls.isEmpty)
    }

    @Test func aDryRunJudgesButSetsNothing() {
        let proxy = FakeWeightSetter()
        let (code, watch) = run(Array(repeating: (good, good), count: 4), setters: [proxy], dryRun: true)
        #expect(code == 0 && watch.result == .promoted)
        #expect(proxy.calls.isEmpty)
    }

    @Test func theSourceEndingBeforeAVerdictStopsWithoutPromoting() {
        let proxy = FakeWeightSetter()
        let (code, watch) = run([(good, good)], setters: [proxy])
        #expect(code == 1 && watch.result == .stopped)
        #expect(canaryWeights(proxy) == [20, 40])
        #expect(watch.reason?.contains("canary left at weight 40") == true)
    }
}
