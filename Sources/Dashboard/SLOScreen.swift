public import MeshMetrics
public import MeshSLO
import LinkerdViz
import TerminalUI

/// A success objective the dashboard watches: the config file's `slos:` entry for the kind shown.
public struct WatchedSLO: Sendable, Equatable {
    public var name: String
    /// nil: the workload of that name in every namespace.
    public var namespace: String?
    public var objective: SuccessObjective

    public init(name: String, namespace: String?, objective: SuccessObjective) {
        self.name = name
        self.namespace = namespace
        self.objective = objective
    }
}

extension DashboardState {
    /// Each watched SLO at the data shown, in the order declared: the burn rate over the
    /// workbook's windows (over the data held where that is shorter, as `meshtop slo` reports)
    /// and what the page and ticket rules make of it. The feed computes each window's success.
    public var sloEvaluations: [SLOEvaluation] {
        var out: [SLOEvaluation] = []
        var seen = Set<WorkloadID>()
        for slo in slos {
            // A workload without traffic in the dashboard's window still has its longer windows.
            let ids = slo.namespace.map { [WorkloadID(namespace: $0, name: slo.name)] }
                ?? Set(data.workloads.map(\.workload) + data.windowedSuccess.keys).filter { $0.name == slo.name }.sorted()
            for id in ids where (namespace == nil || id.namespace == namespace) && seen.insert(id).inserted {
                let windows = BurnRule.workbookWindowsMs.map { w in
                    BurnWindow(windowMs: w, coveredMs: data.successHeldMs.map { min(w, max($0, 1)) } ?? w,
                               success: data.windowedSuccess[id]?[w], objective: slo.objective)
                }
                out.append(SLOEvaluation(workload: id, objective: slo.objective, windows: windows))
            }
        }
        return out
    }
}

/// o SLO: each declared objective's error-budget burn, the page/ticket verdict and the budget
/// left; Enter opens the workload in Detail.
enum SLOScreen {
    static func rows(_ state: DashboardState, _ evaluations: [SLOEvaluation]) -> [SLOEvaluation] {
        evaluations.filter { state.matchesFilter("\($0.workload.name) \(text($0.alert)) \($0.alert.rawValue)") }
    }

    static func rows(_ state: DashboardState) -> [SLOEvaluation] { rows(state, state.sloEvaluations) }

    /// An alert as the badge says it: `none` is `ok`, `unknown` is `?` (`meshtop slo` spells them out).
    static func text(_ alert: AlertLevel) -> String {
        switch alert {
        case .page: return "PAGE"
        case .ticket: return "ticket"
        case .none: return "ok"
        case .unknown: return "?"
        }
    }

    /// The badge Overview shows for an alert level, and its colour.
    static func badge(_ alert: AlertLevel) -> TableCell {
        let style: Style = switch alert {
        case .page: Style(.bad, bold: true)
        case .ticket: Style(.warn)
        case .none: Style(.good)
        case .unknown: Style(.muted)
        }
        return TableCell(text(alert), style)
    }

    static func draw(_ state: DashboardState, in area: Area, _ screen: inout Screen) {
        var y = area.y
        screen.put("page: burn over 14.4x on 1h and 5m;  ticket: over 6x on 6h and 30m",
                   x: 1, y: y, style: Style(.muted), maxWidth: area.width - 2)
        y += 1
        let evaluations = state.sloEvaluations
        let rows = rows(state, evaluations)
        if let held = evaluations.first?.windows.first(where: \.isShort)?.coveredMs {
            screen.put("* only \(DurationText.format(held)) of data held: burn over that; a rule needs its windows whole, else ?",
                       x: 1, y: y, style: Style(.muted), maxWidth: area.width - 2)
            y += 1
        }
        y += 1
        guard !rows.isEmpty else {
            let why = !evaluations.isEmpty ? "nothing matches the filter \"\(state.filter)\""
                : "no workload of the declared slos is in \(state.namespace.map { "namespace \($0)" } ?? "the data")"
            screen.put(why, x: 1, y: y, style: Style(.muted), maxWidth: area.width - 2)
            return
        }
        let windows = rows[0].windows.map(\.windowMs)
        // The verdict first, then the budget and the burn rates behind them.
        var columns = [Column("", .left), Column("NAME", .left, cut: .middle), Column("OBJECTIVE"), Column("ALERT", .left), Column("BUDGET")]
        if state.namespace == nil { columns.insert(Column("NAMESPACE", .left), at: 1) }
        columns += windows.map { Column("BURN " + DurationText.format($0)) }
        let unicode = screen.unicode
        screen.drawScrollingTable(columns, count: rows.count, in: Area(x: area.x, y: y, width: area.width, height: area.y + area.height - y),
                                  selected: state.selected) { i in
            let e = rows[i]
            let health: Health = switch e.alert {
            case .page: .failing
            case .ticket: .degraded
            case .none: .healthy
            case .unknown: .unknown
            }
            var cells = [TableCell(health.symbol(unicode: unicode), health.style),
                         TableCell(e.workload.name, Style(.text, bold: true)),
                         TableCell(StatView.percent(e.objective.target)), badge(e.alert),
                         TableCell(e.budgetLeft.map(StatView.percent) ?? "-")]
            if state.namespace == nil { cells.insert(TableCell(e.workload.namespace, Style(.muted)), at: 1) }
            cells += e.windows.map { w in
                guard let burn = w.burnRate else { return TableCell("-", Style(.muted)) }
                let style = burn > 14.4 ? Style(.bad) : burn > 6 ? Style(.warn) : burn > 1 ? Style(.text) : Style(.good)
                return TableCell(SLOView.burn(burn) + (w.isShort ? "*" : ""), style)
            }
            return cells
        }
    }
}
