public import MeshMetrics

/// A success objective: the fraction of requests that must succeed, strictly between 0 and 1
/// (99.9% is 0.999). Its error budget is `1 − target`.
public struct SuccessObjective: Sendable, Equatable {
    public let target: Double

    /// nil unless 0 < target < 1 (an objective of 100% has no budget to burn).
    public init?(target: Double) {
        guard target.isFinite, target > 0, target < 1 else { return nil }
        self.target = target
    }

    /// `99.9`, `99.9%`: a percentage strictly between 0 and 100; anything else is nil.
    public init?(percent text: String) {
        var t = Substring(text)
        if t.hasSuffix("%") { t = t.dropLast() }
        // Plain decimals only: Double() would also take 0x63, 9.99e1 and inf.
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), t.filter({ $0 == "." }).count <= 1,
              let p = Double(t), p.isFinite else { return nil }
        self.init(percent: p)
    }

    /// A percentage already read as a number (the config file's `objective:`), rounded to the
    /// nearest 1e-9 of the target, so 99.9 is exactly the double 0.999 (99.9 / 100 is
    /// 0.9990000000000001): `meshtop slo` and the dashboard judge the same objective alike.
    public init?(percent p: Double) {
        guard p.isFinite else { return nil }
        self.init(target: (p * 1e7).rounded() / 1e9)
    }

    /// How many times faster than allowed the budget is being spent at `success`:
    /// `(1 − success) / (1 − target)`. 1 spends exactly the budget over the SLO's period.
    public func burnRate(success: Double) -> Double { (1 - success) / (1 - target) }
}

/// One window the burn rate is computed over.
public struct BurnWindow: Sendable, Equatable {
    /// The window asked for.
    public var windowMs: Int64
    /// The span of data behind it: `windowMs`, or less where the data held is shorter.
    public var coveredMs: Int64
    /// Successful over all responses in the covered span, as `stat` computes it; nil without traffic.
    public var success: Double?
    public var burnRate: Double?

    public init(windowMs: Int64, coveredMs: Int64, success: Double?, objective: SuccessObjective) {
        self.windowMs = windowMs
        self.coveredMs = coveredMs
        self.success = success
        self.burnRate = success.map(objective.burnRate)
    }

    /// True when the data held is shorter than the window asked for.
    public var isShort: Bool { coveredMs < windowMs }
}

/// What a burn asks of people: nothing, a ticket (fix it this week), or a page (wake someone).
public enum AlertLevel: String, Sendable, Comparable, CaseIterable {
    /// No rule could be evaluated: a window not asked for, without traffic, or longer than the data.
    case unknown
    case none, ticket, page

    public static func < (a: AlertLevel, b: AlertLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A multi-window burn-rate rule (Google's SRE workbook, "Alerting on SLOs"): it fires when the
/// burn rate exceeds `threshold` over both the long window (a real spend of budget) and the short
/// one (still happening now, so the alert resets soon after a recovery).
public struct BurnRule: Sendable, Equatable {
    public var level: AlertLevel
    public var longMs: Int64
    public var shortMs: Int64
    public var threshold: Double

    public init(level: AlertLevel, longMs: Int64, shortMs: Int64, threshold: Double) {
        self.level = level
        self.longMs = longMs
        self.shortMs = shortMs
        self.threshold = threshold
    }

    /// The workbook's: page at 14.4× over 1 h and 5 m (2% of a 30-day budget in an hour), ticket
    /// at 6× over 6 h and 30 m (5% in six hours).
    public static let workbook = [
        BurnRule(level: .page, longMs: 3_600_000, shortMs: 300_000, threshold: 14.4),
        BurnRule(level: .ticket, longMs: 21_600_000, shortMs: 1_800_000, threshold: 6),
    ]

    /// The windows the workbook's rules read: 5m, 30m, 1h, 6h.
    public static let workbookWindowsMs: [Int64] = [300_000, 1_800_000, 3_600_000, 21_600_000]
}

/// A rule as evaluated: fired, quiet, or not evaluable (a window not asked for, no traffic in it,
/// or less data than it spans: a 1h rule is not judged on two minutes).
public struct RuleVerdict: Sendable, Equatable {
    public enum State: String, Sendable { case firing, quiet, unknown }
    public var rule: BurnRule
    public var state: State
}

/// One workload's (or edge's) burn over its windows, and what the rules make of it.
public struct SLOEvaluation: Sendable, Equatable {
    public var workload: WorkloadID
    public var objective: SuccessObjective
    public var windows: [BurnWindow]
    public var verdicts: [RuleVerdict]

    /// The windows (asked, covered, success) evaluated against `rules`.
    public init(workload: WorkloadID, objective: SuccessObjective, windows: [BurnWindow], rules: [BurnRule] = BurnRule.workbook) {
        self.workload = workload
        self.objective = objective
        self.windows = windows
        self.verdicts = rules.map { rule in
            let longWindow = windows.first { $0.windowMs == rule.longMs }
            let shortWindow = windows.first { $0.windowMs == rule.shortMs }
            guard let long = longWindow?.burnRate, let short = shortWindow?.burnRate,
                  longWindow?.isShort == false, shortWindow?.isShort == false else { return RuleVerdict(rule: rule, state: .unknown) }
            return RuleVerdict(rule: rule, state: long > rule.threshold && short > rule.threshold ? .firing : .quiet)
        }
    }

    /// The highest level among the rules that fire; `none` when a rule was judged and none
    /// fired; `unknown` when no rule could be judged.
    public var alert: AlertLevel {
        if let fired = verdicts.filter({ $0.state == .firing }).map(\.rule.level).max() { return fired }
        return verdicts.contains { $0.state == .quiet } ? .none : .unknown
    }

    /// The share of the longest window's error budget not yet spent: `1 − burn rate` there, down
    /// to 0 (spent) — nil when that window saw no traffic.
    public var budgetLeft: Double? {
        guard let longest = windows.max(by: { $0.windowMs < $1.windowMs }), let burn = longest.burnRate else { return nil }
        return max(0, 1 - burn)
    }
}

extension SLOEvaluation {
    /// Every workload `stat` reports, evaluated over `windowsMs`: each window's success is `stat`'s
    /// over that window (or over `heldMs`, the data held, where that is shorter), so the two agree
    /// at the same moment. A workload `stat` leaves out of a window saw no traffic there.
    public static func evaluate(windowsMs: [Int64], heldMs: Int64?, objective: SuccessObjective, rules: [BurnRule] = BurnRule.workbook,
                                stat: (_ windowMs: Int64) throws -> [GoldenMetrics]) rethrows -> [SLOEvaluation] {
        var success: [WorkloadID: [Int64: Double]] = [:]
        var covered: [Int64: Int64] = [:]
        for window in windowsMs {
            let span = min(window, heldMs.map { max($0, 1) } ?? window)
            covered[window] = span
            for row in try stat(span) {
                success[row.workload, default: [:]][window] = row.success
            }
        }
        return success.keys.sorted().map { id in
            let windows = windowsMs.map { w in
                BurnWindow(windowMs: w, coveredMs: covered[w] ?? w, success: success[id]?[w], objective: objective)
            }
            return SLOEvaluation(workload: id, objective: objective, windows: windows, rules: rules)
        }
    }
}
