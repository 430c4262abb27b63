/// How a canary is judged and stepped: Flagger's analysis, in meshtop's words.
public struct CanaryPolicy: Sendable, Equatable {
    /// Weight added to the canary after each passing interval.
    public var stepWeight: Int = 5
    /// The canary is promoted once it passes at this weight.
    public var maxWeight: Int = 50
    /// Failed checks (in any intervals) before the canary is rolled back.
    public var threshold: Int = 5
    /// Lowest success rate, in percent.
    public var successRateMin: Double = 99
    /// Highest p99 latency, in milliseconds.
    public var latencyP99MaxMs: Double = 500
    /// Fewer requests than this in an interval is a failed check (no data never passes).
    public var minRequests: Double = 10
    /// The canary's success rate may be at most this many points below the primary's (nil: no check).
    public var maxSuccessRateDropPoints: Double? = nil
    /// The canary's p99 may be at most this many percent above the primary's (nil: no check).
    public var maxP99IncreasePercent: Double? = nil

    public init() {}
}

/// One side's traffic over an interval.
public struct TrafficSample: Sendable, Equatable {
    public var requests: Double
    /// 0…1, nil with no responses.
    public var success: Double?
    public var p99Ms: Double?

    public init(requests: Double, success: Double?, p99Ms: Double?) {
        self.requests = requests
        self.success = success
        self.p99Ms = p99Ms
    }
}

/// One check's outcome, with the numbers that decided it.
public struct CheckResult: Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var detail: String
}

/// What the controller does after an interval.
public enum CanaryDecision: Sendable, Equatable {
    /// Checks passed: the canary's weight goes up to this.
    case advance(to: Int)
    /// Checks failed: the weight stays; `failed` of `threshold` failed checks so far.
    case hold(failed: Int)
    /// Too many failed checks: weight back to 0, the release is rolled back.
    case rollback(reason: String)
    /// Passing at max weight: the canary takes all traffic.
    case promote

    public var isFinal: Bool {
        switch self {
        case .rollback, .promote: return true
        default: return false
        }
    }
}

/// A canary analysis in progress: the weight, the failed checks, and every decision made.
public struct CanaryAnalysis: Sendable {
    public let policy: CanaryPolicy
    public private(set) var weight = 0
    public private(set) var failedChecks = 0
    public private(set) var intervals = 0
    public private(set) var decision: CanaryDecision?
    /// One line per interval: the checks and the decision.
    public private(set) var log: [String] = []

    public init(policy: CanaryPolicy) {
        self.policy = policy
    }

    /// Starts the analysis: the canary gets its first step of traffic, as Flagger routes
    /// `stepWeight` to it before the first checks.
    @discardableResult
    public mutating func begin() -> Int {
        guard intervals == 0, decision == nil, weight == 0 else { return weight }
        weight = min(policy.stepWeight, policy.maxWeight)
        log.append("start: canary weight \(weight)")
        return weight
    }

    /// The checks of one interval, as Flagger runs them on the canary (and against the primary).
    public static func check(canary: TrafficSample?, primary: TrafficSample?, policy: CanaryPolicy) -> [CheckResult] {
        guard let c = canary, c.requests >= policy.minRequests else {
            let seen = canary.map { String(Int($0.requests.rounded())) } ?? "no data"
            return [CheckResult(name: "request-volume", passed: false,
                                detail: "\(seen) requests, at least \(Int(policy.minRequests)) needed: no values found, the canary is probably not receiving traffic")]
        }
        var results = [CheckResult(name: "request-volume", passed: true, detail: "\(Int(c.requests.rounded())) requests")]
        if let sr = c.success {
            results.append(CheckResult(name: "request-success-rate", passed: sr * 100 >= policy.successRateMin,
                                       detail: "\(percent(sr)) (min \(trim(policy.successRateMin))%)"))
        } else {
            results.append(CheckResult(name: "request-success-rate", passed: false, detail: "no responses"))
        }
        if let p99 = c.p99Ms {
            results.append(CheckResult(name: "request-duration", passed: p99 <= policy.latencyP99MaxMs,
                                       detail: "p99 \(trim(p99))ms (max \(trim(policy.latencyP99MaxMs))ms)"))
        } else {
            results.append(CheckResult(name: "request-duration", passed: false, detail: "no latency values"))
        }
        if let drop = policy.maxSuccessRateDropPoints {
            if let p = primary?.success, let sr = c.success {
                let points = (p - sr) * 100
                results.append(CheckResult(name: "success-rate-vs-primary", passed: points <= drop,
                                           detail: "canary \(percent(sr)) vs primary \(percent(p)) (at most \(trim(drop)) points worse)"))
            } else {
                results.append(CheckResult(name: "success-rate-vs-primary", passed: false, detail: "no primary data to compare with"))
            }
        }
        if let increase = policy.maxP99IncreasePercent {
            if let p = primary?.p99Ms, let q = c.p99Ms, p > 0 {
                let more = (q - p) / p * 100
                results.append(CheckResult(name: "p99-vs-primary", passed: more <= increase,
                                           detail: "canary \(trim(q))ms vs primary \(trim(p))ms (at most \(trim(increase))% slower)"))
            } else {
                results.append(CheckResult(name: "p99-vs-primary", passed: false, detail: "no primary latency to compare with"))
            }
        }
        return results
    }

    /// Folds one interval's checks in and decides. After a final decision nothing changes.
    @discardableResult
    public mutating func step(_ checks: [CheckResult]) -> CanaryDecision {
        if let decision, decision.isFinal { return decision }
        intervals += 1
        let failed = checks.filter { !$0.passed }
        let summary = checks.map { "\($0.passed ? "pass" : "FAIL") \($0.name): \($0.detail)" }.joined(separator: "; ")
        let decision: CanaryDecision
        if !failed.isEmpty {
            failedChecks += 1
            if failedChecks >= policy.threshold {
                weight = 0
                decision = .rollback(reason: "\(failedChecks) failed checks reached the threshold of \(policy.threshold); last: "
                    + failed.map { "\($0.name) \($0.detail)" }.joined(separator: ", "))
            } else {
                decision = .hold(failed: failedChecks)
            }
        } else if weight >= policy.maxWeight {
            weight = 100
            decision = .promote
        } else {
            weight = min(policy.maxWeight, weight + policy.stepWeight)
            decision = .advance(to: weight)
        }
        self.decision = decision
        log.append("interval \(intervals): \(summary) => \(Self.describe(decision))")
        return decision
    }

    public static func describe(_ d: CanaryDecision) -> String {
        switch d {
        case .advance(let w): return "advance canary weight to \(w)"
        case .hold(let n): return "halt advancement (\(n) failed checks)"
        case .rollback(let reason): return "rollback: \(reason)"
        case .promote: return "promote: canary at 100%"
        }
    }
}

func percent(_ fraction: Double) -> String { trim((fraction * 10000).rounded() / 100) + "%" }

func trim(_ v: Double) -> String {
    v == v.rounded() ? String(Int64(v)) : String((v * 100).rounded() / 100)
}
