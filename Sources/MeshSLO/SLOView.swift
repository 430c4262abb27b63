import LinkerdViz
import MeshMetrics
import MeshTap

/// `meshtop slo`'s output: a table (a row per workload, a burn-rate column per window) or JSON.
public enum SLOView {
    /// The table. A burn rate over less data than its window asked for is marked `*`
    /// (`shortWindowNotes` says how much less); `wide` adds each window's success rate.
    public static func table(_ evaluations: [SLOEvaluation], showNamespace: Bool, wide: Bool = false) -> String {
        let windows = evaluations.first?.windows.map(\.windowMs) ?? []
        var headers = ["NAME", "OBJECTIVE"]
        headers += windows.map { "BURN_" + DurationText.format($0).uppercased() }
        if wide { headers += windows.map { "SUCCESS_" + DurationText.format($0).uppercased() } }
        headers += ["BUDGET_LEFT", "ALERT"]
        if showNamespace { headers.insert("NAMESPACE", at: 0) }
        var alignments = Array(repeating: TextTable.Alignment.right, count: headers.count)
        alignments[0] = .left
        if showNamespace { alignments[1] = .left }
        alignments[alignments.count - 1] = .left
        var table = TextTable(headers: headers, alignments: alignments)
        for e in evaluations {
            var cells = [e.workload.name, StatView.percent(e.objective.target)]
            cells += e.windows.map { w in w.burnRate.map { burn($0) + (w.isShort ? "*" : "") } ?? "-" }
            if wide { cells += e.windows.map { $0.success.map(StatView.percent) ?? "-" } }
            cells += [e.budgetLeft.map(StatView.percent) ?? "-", e.alert.rawValue]
            if showNamespace { cells.insert(e.workload.namespace, at: 0) }
            table.append(cells)
        }
        return table.render()
    }

    /// `12.3x`; burn rates under 10 get two decimals, so 0.05x is not printed as 0.1x.
    public static func burn(_ rate: Double) -> String {
        (rate < 10 ? format2(rate) : format1(rate)) + "x"
    }

    /// One line per window whose data is shorter than asked, for stderr (empty when all are whole).
    public static func shortWindowNotes(_ evaluations: [SLOEvaluation]) -> [String] {
        var seen = Set<Int64>()
        var notes: [String] = []
        for e in evaluations {
            for w in e.windows where w.isShort && seen.insert(w.windowMs).inserted {
                notes.append("\(DurationText.format(w.windowMs)): only \(DurationText.format(w.coveredMs)) of data; its burn rate (marked *) is over that span")
            }
        }
        return notes
    }

    /// One evaluation as a JSON object, or several as an array of them.
    public static func json(_ evaluations: [SLOEvaluation], kind: String, single: Bool) -> String {
        if single, let only = evaluations.first, evaluations.count == 1 { return object(only, kind: kind, indent: "") + "\n" }
        if evaluations.isEmpty { return "[]\n" }
        return "[\n" + evaluations.map { "  " + object($0, kind: kind, indent: "  ") }.joined(separator: ",\n") + "\n]\n"
    }

    static func object(_ e: SLOEvaluation, kind: String, indent: String) -> String {
        let windows = e.windows.map { w in
            "{" + [
                ("window", JSONText.string(DurationText.format(w.windowMs))),
                ("covered", JSONText.string(DurationText.format(w.coveredMs))),
                ("success", JSONText.number(w.success)),
                ("burn_rate", JSONText.number(w.burnRate)),
            ].map { "\(JSONText.string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }
        let rules = e.verdicts.map { v in
            "{" + [
                ("alert", JSONText.string(v.rule.level.rawValue)),
                ("long", JSONText.string(DurationText.format(v.rule.longMs))),
                ("short", JSONText.string(DurationText.format(v.rule.shortMs))),
                ("threshold", JSONText.number(v.rule.threshold)),
                ("state", JSONText.string(v.state.rawValue)),
            ].map { "\(JSONText.string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }
        let inner = indent + "  "
        let fields: [(String, String)] = [
            ("workload", JSONText.string(e.workload.name)),
            ("namespace", JSONText.string(e.workload.namespace)),
            ("kind", JSONText.string(kind)),
            ("objective", JSONText.number(e.objective.target)),
            ("windows", "[\n" + windows.map { inner + "  " + $0 }.joined(separator: ",\n") + "\n" + inner + "]"),
            ("alert", JSONText.string(e.alert.rawValue)),
            ("budget_left", JSONText.number(e.budgetLeft)),
            ("rules", "[\n" + rules.map { inner + "  " + $0 }.joined(separator: ",\n") + "\n" + inner + "]"),
        ]
        return "{\n" + fields.map { inner + JSONText.string($0.0) + ": " + $0.1 }.joined(separator: ",\n") + "\n" + indent + "}"
    }
}
