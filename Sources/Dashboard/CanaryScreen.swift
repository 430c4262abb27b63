import MeshMetrics
import TerminalUI
import MeshCanary

/// The canary watch on a terminal: the weight as a bar, a row per check, canary against primary
/// success rate and p99 as sparklines, and the decision log (newest last).
enum CanaryScreen {
    static func draw(_ w: CanaryWatch, in area: Area, _ screen: inout Screen) {
        let unicode = screen.unicode, width = area.width
        let ok = unicode ? "✔" : "+", bad = unicode ? "✖" : "X"
        let ns = w.target.namespace.map { "\($0)/" } ?? ""
        // Who against whom on which authority is what matters: it stays whole (cut in its
        // middle only if it alone is too long); the source and interval give way.
        let who = Column.Cut.middle.shorten(" \(ns)\(w.target.canary) against \(w.target.primary) on \(w.authority)", to: width, unicode: unicode)
        let after = screen.put(who, x: 0, y: area.y, style: Style(.header), maxWidth: width)
        let rest = ": \(w.source), every \(DurationText.format(w.intervalMs))\(w.dryRun ? " (dry run)" : "")"
        if width - after > 8 {
            _ = screen.put(Column.Cut.end.shorten(rest, to: width - after, unicode: unicode), x: after, y: area.y, style: Style(.header), maxWidth: width - after)
        }
        let top = area.y + 1
        // Weight bar: the canary's share, with the max weight marked.
        let label = " weight "
        let percent = "\(w.weight)%"
        let tail = String(repeating: " ", count: max(1, 5 - percent.count)) + percent + "  (step \(w.policy.stepWeight), max \(w.policy.maxWeight))"
        let barWidth = max(10, min(50, width - label.count - tail.count - 3))
        let filled = Int((Double(w.weight) / 100 * Double(barWidth)).rounded())
        let maxMark = min(barWidth - 1, Int((Double(w.policy.maxWeight) / 100 * Double(barWidth)).rounded()))
        var bar = ""
        for i in 0..<barWidth {
            if i < filled { bar += unicode ? "█" : "#" }
            else if i == maxMark { bar += "|" }
            else { bar += unicode ? "░" : "." }
        }
        var x = screen.put(label, x: 0, y: top, style: Style(.header))
        x = screen.put("[", x: x, y: top)
        x = screen.put(bar, x: x, y: top, style: Style(w.result == .rolledBack ? .bad : .good))
        x = screen.put("]", x: x, y: top)
        _ = screen.put(tail, x: x, y: top)
        let failed = " failed checks \(w.failedChecks)/\(w.policy.threshold)   intervals \(w.intervals)"
        _ = screen.put(failed, x: 0, y: top + 1, style: Style(w.failedChecks > 0 ? .warn : .text))

        // Checks of the last interval.
        var y = top + 3
        let columns = [Column("", .left), Column("CHECK", .left), Column("RESULT", .left), Column("VALUE", .left, maxWidth: max(10, width - 40))]
        let rows: [[TableCell]] = w.checks.isEmpty
            ? [[TableCell(" "), TableCell("waiting for the first interval", Style(.muted)), TableCell(""), TableCell("")]]
            : w.checks.map { c in
                [TableCell(c.passed ? ok : bad, Style(c.passed ? .good : .bad, bold: !c.passed)), TableCell(c.name),
                 TableCell(c.passed ? "pass" : "FAIL", Style(c.passed ? .good : .bad, bold: !c.passed)), TableCell(c.detail)]
            }
        y += screen.drawTable(columns, rows: rows, y: y, maxRows: 6) + 1

        // Canary against primary, one cell per interval.
        let spark = max(8, min(30, (width - 34) / 2))
        if y + 3 < area.y + area.height - 3 {
            _ = screen.put(String(repeating: " ", count: 10) + pad("SUCCESS", spark + 9) + "P99", x: 0, y: y, style: Style(.header))
            for (i, (name, history)) in [("canary", w.canaryHistory), ("primary", w.primaryHistory)].enumerated() {
                let row = y + 1 + i
                _ = screen.put(" " + name, x: 0, y: row)
                let sr = history.map { $0?.success }, p99 = history.map { $0?.p99Ms }
                _ = screen.put(Sparkline.render(sr, width: spark, unicode: unicode, floor: 0.8), x: 10, y: row, style: Style(.accent))
                _ = screen.put(Format.percent(sr.last ?? nil), x: 11 + spark, y: row)
                _ = screen.put(Sparkline.render(p99, width: spark, unicode: unicode), x: 19 + spark, y: row, style: Style(.accent))
                _ = screen.put(Format.ms(p99.last ?? nil), x: 20 + 2 * spark, y: row)
            }
            y += 4
        }

        // Decision log: the newest lines that fit above the verdict, wrapped, times without the date.
        let logTop = y
        let logRows = area.y + area.height - 1 - logTop
        if logRows > 1 {
            _ = screen.put(" DECISIONS", x: 0, y: logTop, style: Style(.header))
            var lines: [(String, Role)] = []
            for entry in w.log.reversed() {
                let role: Role = entry.contains("rolled back") || entry.contains("rollback") ? .bad
                    : (entry.contains("promote") ? .good : (entry.contains("halt") ? .warn : .text))
                let wrapped = wrap(shortTime(entry), width: width - 2, indent: 10)
                lines.insert(contentsOf: wrapped.map { ($0, role) }, at: 0)
                if lines.count >= logRows - 1 { break }
            }
            for (i, (line, role)) in lines.suffix(logRows - 1).enumerated() {
                _ = screen.put(" " + line, x: 0, y: logTop + 1 + i, style: Style(role), maxWidth: width)
            }
        }

        // The verdict once there is one, else progress.
        let status: String
        let role: Role
        switch w.result {
        case .promoted: (status, role) = ("PROMOTED: \(w.reason ?? "")", .good)
        case .rolledBack: (status, role) = ("ROLLED BACK: \(w.reason ?? "")", .bad)
        case let r?: (status, role) = ("\(r.rawValue.uppercased()): \(w.reason ?? "")", .warn)
        case nil: (status, role) = ("analysing: interval \(w.intervals + 1), \(w.policy.threshold - w.failedChecks) failed checks to rollback", .text)
        }
        _ = screen.put(" " + status, x: 0, y: area.y + area.height - 1, style: Style(role, bold: w.result != nil), maxWidth: width)
    }

    /// `2026-11-25T23:35:09Z start…` → `23:35:09Z start…`: the screen's clock shows the date.
    static func shortTime(_ line: String) -> String {
        let chars = Array(line)
        guard chars.count > 21, chars[10] == "T", chars[19] == "Z" else { return line }
        return String(chars[11...])
    }

    /// Breaks `text` at spaces into lines of at most `width` characters; continuation lines are indented.
    static func wrap(_ text: String, width: Int, indent: Int) -> [String] {
        guard width > indent + 10, text.count > width else { return [text] }
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let limit = lines.isEmpty ? width : width - indent
            if !current.isEmpty, current.count + 1 + word.count > limit {
                lines.append(current)
                current = String(word)
            } else {
                current += current.isEmpty ? String(word) : " " + word
            }
        }
        lines.append(current)
        return lines.enumerated().map { $0.offset == 0 ? $0.element : String(repeating: " ", count: indent) + $0.element }
    }

    private static func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
}
