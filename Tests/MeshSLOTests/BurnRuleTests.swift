import MeshMetrics
import MeshSLO
import Testing

/// The SRE workbook's multi-window, multi-burn-rate rules on synthetic burns: what each rule
/// needs to fire, and what keeps it quiet.
@Suite struct BurnRules {
    let objective = SuccessObjective(percent: "99.9")!
    let id = WorkloadID(namespace: "emojivoto", name: "voting")

    /// An evaluation over the workbook's windows, each at the burn rate given (nil: no traffic).
    func evaluate(m5: Double?, m30: Double?, h1: Double?, h6: Double?) -> SLOEvaluation {
        let burns: [(Int64, Double?)] = [(300_000, m5), (1_800_000, m30), (3_600_000, h1), (21_600_000, h6)]
        let windows = burns.map { ms, burn in
            BurnWindow(windowMs: ms, coveredMs: ms, success: burn.map { 1 - $0 * (1 - objective.target) }, objective: objective)
        }
        return SLOEvaluation(workload: id, objective: objective, windows: windows)
    }

    @Test func objectiveIsAPercentage() {
        #expect(SuccessObjective(percent: "99.9")?.target == 0.999)
        #expect(SuccessObjective(percent: "99.95%")?.target == 0.9995)
        for bad in ["100", "0", "-5", "abc", "", "nan", "inf", "1e400", "0x63", "9.99e1", "99..9", "%"] {
            #expect(SuccessObjective(percent: bad) == nil, "\(bad)")
        }
    }

    @Test func burnRateIsErrorRateOverBudget() {
        // 1% errors against a 0.1% budget: ten times too fast.
        #expect(abs(objective.burnRate(success: 0.99) - 10) < 1e-9)
        #expect(objective.burnRate(success: 1) == 0)
        #expect(abs(objective.burnRate(success: 0.999) - 1) < 1e-9)
    }

    @Test func fastBurnOverBothPageWindowsPages() {
        let e = evaluate(m5: 20, m30: 20, h1: 15, h6: 3)
        #expect(e.alert == .page)
        #expect(e.verdicts.map(\.state) == [.firing, .quiet])
    }

    @Test func spikeThatEndedDoesNotPage() {
        // The last hour burned hard, but the last five minutes are clean: the page resets.
        let e = evaluate(m5: 0.5, m30: 10, h1: 20, h6: 4)
        #expect(e.alert == .none)
    }

    @Test func shortSpikeAloneDoesNotPage() {
        // Five bad minutes inside a good hour are not 2% of a month's budget.
        #expect(evaluate(m5: 100, m30: 10, h1: 9, h6: 2).alert == .none)
    }

    @Test func slowBurnOverBothTicketWindowsOpensATicket() {
        let e = evaluate(m5: 7, m30: 7, h1: 7, h6: 6.5)
        #expect(e.alert == .ticket)
        #expect(e.verdicts.map(\.state) == [.quiet, .firing])
    }

    @Test func pageOutranksTicket() {
        #expect(evaluate(m5: 30, m30: 30, h1: 30, h6: 30).alert == .page)
    }

    @Test func thresholdIsExceededNotMet() {
        #expect(evaluate(m5: 14.4, m30: 6, h1: 14.4, h6: 6).alert == .none)
        #expect(evaluate(m5: 14.5, m30: 6.1, h1: 14.5, h6: 6.1).alert == .page)
    }

    @Test func windowWithoutTrafficLeavesItsRulesUnknown() {
        let e = evaluate(m5: nil, m30: 20, h1: 20, h6: 20)
        #expect(e.verdicts.map(\.state) == [.unknown, .firing])
        #expect(e.alert == .ticket)
    }

    @Test func ruleWhoseWindowWasNotAskedIsUnknown() {
        let w = BurnWindow(windowMs: 300_000, coveredMs: 300_000, success: 0.5, objective: objective)
        let e = SLOEvaluation(workload: id, objective: objective, windows: [w])
        #expect(e.verdicts.allSatisfy { $0.state == .unknown })
        #expect(e.alert == .unknown)
    }

    @Test func budgetLeftIsTheLongestWindows() {
        #expect(abs((evaluate(m5: 30, m30: 1, h1: 1, h6: 0.25).budgetLeft ?? -1) - 0.75) < 1e-9)
        #expect(evaluate(m5: 0, m30: 0, h1: 0, h6: 3).budgetLeft == 0)
        #expect(evaluate(m5: 0, m30: 0, h1: 0, h6: nil).budgetLeft == nil)
    }

    /// A window longer than the data is computed over the data held and marked; its rule is not
    /// judged on it (the page rule's 1h would read 10 minutes), so the alert is unknown, not none.
    @Test func windowsLongerThanTheDataAreClampedAndSaid() {
        var asked: [Int64] = []
        let all = SLOEvaluation.evaluate(windowsMs: [300_000, 3_600_000], heldMs: 600_000, objective: objective) { windowMs in
            asked.append(windowMs)
            var row = GoldenMetrics(workload: id, meshedPods: 1, runningPods: 1)
            row.success = 0.98
            return [row]
        }
        #expect(asked == [300_000, 600_000])
        #expect(all.count == 1)
        #expect(all[0].windows.map(\.isShort) == [false, true])
        #expect(SLOView.shortWindowNotes(all) == ["1h: only 10m of data; its burn rate (marked *) is over that span"])
        #expect(SLOView.table(all, showNamespace: false) == """
        NAME     OBJECTIVE   BURN_5M   BURN_1H   BUDGET_LEFT   ALERT  
        voting      99.90%     20.0x    20.0x*         0.00%   unknown

        """)
    }
}
