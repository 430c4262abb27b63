import Testing
import MeshCanary

@Suite struct CanaryAnalysisTests {
    var policy: CanaryPolicy {
        var p = CanaryPolicy()
        p.stepWeight = 20
        p.maxWeight = 60
        p.threshold = 2
        p.successRateMin = 99
        p.latencyP99MaxMs = 100
        p.minRequests = 10
        return p
    }

    let good = TrafficSample(requests: 100, success: 1, p99Ms: 20)
    let bad = TrafficSample(requests: 100, success: 0.7, p99Ms: 20)

    @Test func aGoodCanaryAdvancesStepByStepAndIsPromotedAtMaxWeight() {
        var a = CanaryAnalysis(policy: policy)
        var decisions: [CanaryDecision] = []
        for _ in 0..<6 { decisions.append(a.step(CanaryAnalysis.check(canary: good, primary: good, policy: policy))) }
        #expect(decisions.prefix(4) == [.advance(to: 20), .advance(to: 40), .advance(to: 60), .promote])
        #expect(a.weight == 100 && a.decision == .promote)
        #expect(decisions.last == .promote)  // final: nothing changes after
    }

    @Test func aBadCanaryIsRolledBackAfterThresholdFailedChecks() {
        var a = CanaryAnalysis(policy: policy)
        #expect(a.step(CanaryAnalysis.check(canary: good, primary: good, policy: policy)) == .advance(to: 20))
        #expect(a.step(CanaryAnalysis.check(canary: bad, primary: good, policy: policy)) == .hold(failed: 1))
        #expect(a.weight == 20)
        guard case .rollback(let reason) = a.step(CanaryAnalysis.check(canary: bad, primary: good, policy: policy)) else {
            Issue.record("expected a rollback")
            return
        }
        #expect(a.weight == 0)
        #expect(reason.contains("request-success-rate 70%"))
        #expect(a.log.count == 3 && a.log[2].contains("FAIL request-success-rate"))
    }

    @Test func missingDataOrTooFewRequestsNeverPromotes() {
        var a = CanaryAnalysis(policy: policy)
        for sample in [nil, TrafficSample(requests: 3, success: 1, p99Ms: 1)] as [TrafficSample?] {
            let checks = CanaryAnalysis.check(canary: sample, primary: good, policy: policy)
            #expect(checks.contains { !$0.passed && $0.name == "request-volume" })
            a.step(checks)
        }
        guard case .rollback = a.decision else {
            Issue.record("missing data must count as failed checks: \(String(describing: a.decision))")
            return
        }
        #expect(a.weight == 0)
    }

    @Test func comparisonWithThePrimary() {
        var p = policy
        p.successRateMin = 0
        p.maxSuccessRateDropPoints = 2
        p.maxP99IncreasePercent = 50
        let slightlyWorse = TrafficSample(requests: 100, success: 0.97, p99Ms: 40)
        let checks = CanaryAnalysis.check(canary: slightlyWorse, primary: TrafficSample(requests: 100, success: 0.995, p99Ms: 20), policy: p)
        #expect(checks.first { $0.name == "success-rate-vs-primary" }?.passed == false)
        #expect(checks.first { $0.name == "p99-vs-primary" }?.passed == false)
        let noPrimary = CanaryAnalysis.check(canary: good, primary: nil, policy: p)
        #expect(noPrimary.first { $0.name == "success-rate-vs-primary" }?.passed == false)
    }

    @Test func slowCanaryFailsTheDurationCheck() {
        let checks = CanaryAnalysis.check(canary: TrafficSample(requests: 50, success: 1, p99Ms: 250), primary: nil, policy: policy)
        #expect(checks.first { $0.name == "request-duration" }?.passed == false)
        #expect(checks.first { $0.name == "request-duration" }?.detail == "p99 250ms (max 100ms)")
    }
}
