import LinkerdViz
import MeshMetrics
import MeshTap

/// `meshtop timeline`'s output: a table, oldest first, or a JSON list.
public enum TimelineView {
    /// `98ms`, `56.34%`, `13.2rps`.
    public static func value(_ v: Double, _ metric: TimelineMetric) -> String {
        switch metric {
        case .success: return StatView.percent(v)
        case .p99: return StatView.milliseconds(v)
        case .rps: return format1(v) + "rps"
        }
    }

    /// What happened, in words: `success fell`, `p99 back`.
    public static func what(_ e: TimelineEvent) -> String {
        if e.change == .returned { return "\(e.metric.rawValue) back" }
        if e.change == .settled { return "\(e.metric.rawValue) settled" }
        switch e.metric {
        case .success: return "success fell"
        case .p99: return "p99 rose"
        case .rps: return e.to > e.from ? "rps rose" : "rps fell"
        }
    }

    /// `22:39:15`: the UTC time of day of a change.
    public static func timeOfDay(_ ms: Int64) -> String {
        TimeSpec.format(ms).split(separator: "T").last.map { String($0.prefix(8)) } ?? ""
    }

    /// The table: when (UTC, and seconds since `startMs`), subject, what, from → to.
    public static func table(_ events: [TimelineEvent], kind: String, startMs: Int64, showNamespace: Bool) -> String {
        var headers = ["TIME", "+", "SUBJECT", "CHANGE", "FROM", "", "TO"]
        if showNamespace { headers.insert("NAMESPACE", at: 2) }
        var alignments: [TextTable.Alignment] = [.left, .right, .left, .left, .right, .left, .right]
        if showNamespace { alignments.insert(.left, at: 2) }
        var table = TextTable(headers: headers, alignments: alignments)
        for e in events {
            var cells = [timeOfDay(e.atMs),
                         "+" + DurationText.format(e.atMs - startMs), e.subject.name(kind: kind), what(e),
                         value(e.from, e.metric), "→", value(e.to, e.metric)]
            if showNamespace { cells.insert(e.subject.namespace, at: 2) }
            table.append(cells)
        }
        return table.render()
    }

    /// A JSON list, oldest first: `at` (RFC 3339), `subject`, `metric`, `change`, `from`, `to`
    /// (success as a fraction, p99 in ms, rps per second).
    public static func json(_ events: [TimelineEvent], kind: String) -> String {
        if events.isEmpty { return "[]\n" }
        return "[\n" + events.map { e in
            "  {" + [
                ("at", JSONText.string(TimeSpec.format(e.atMs))),
                ("subject", JSONText.string(e.subject.name(kind: kind))),
                ("namespace", JSONText.string(e.subject.namespace)),
                ("metric", JSONText.string(e.metric.rawValue)),
                ("change", JSONText.string(e.change.rawValue)),
                ("from", JSONText.number(rounded(e.from, e.metric))),
                ("to", JSONText.number(rounded(e.to, e.metric))),
            ].map { "\(JSONText.string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }.joined(separator: ",\n") + "\n]\n"
    }

    /// p99 and RPS to a thousandth (the arithmetic's last digits are noise); success as computed.
    static func rounded(_ v: Double, _ metric: TimelineMetric) -> Double {
        metric == .success ? v : (v * 1000).rounded() / 1000
    }
}
