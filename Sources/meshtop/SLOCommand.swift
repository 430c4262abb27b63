import ArgumentParser
import Foundation
import LinkerdViz
import MeshMetrics
import MeshSLO
import MeshtopApp

struct SLO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slo",
        abstract: "Error-budget burn rates of a success objective, and the SRE workbook's page/ticket verdict.",
        discussion: """
        For each workload: the burn rate over each window, (1 − success) / (1 − objective), where \
        success is what `meshtop stat` reports for that window at the same moment. 1x spends the \
        error budget exactly over the SLO period; the multi-window rules page at 14.4x over both \
        1h and 5m, and open a ticket at 6x over both 6h and 30m. A window longer than the data \
        held (a short recording, two live scrapes) is computed over the data there is, marked * \
        and said on stderr. BUDGET_LEFT is the share of the longest window's budget not yet spent.

        A rule is judged only on data that covers its windows: over a short recording or two \
        live scrapes the burn rates are shown, and ALERT says unknown, not none.

        Exit codes: 0 no alert (none or unknown), 1 ticket or page, 2 usage or input error, 3 \
        sources unreachable.
        """)

    @Argument(help: ArgumentHelp("The resource: deploy/NAME, or a kind alone for all of them (deploy, pod, ns, sts, ds).", valueName: "KIND[/NAME]"))
    var resource: String

    @Option(help: ArgumentHelp("The success objective, a percentage (e.g. 99.9); default: the config file's slos for the resource.", valueName: "PERCENT"))
    var objective: String?

    @Option(help: ArgumentHelp("The windows to compute burn rates over (the rules need 5m, 30m, 1h and 6h).", valueName: "LIST"))
    var windows = "5m,30m,1h,6h"

    @OptionGroup var query: QueryOptions

    func run() throws {
        let parts = resource.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let label = try kindLabel(String(parts[0]))
        let name = parts.count > 1 ? String(parts[1]) : nil
        if name?.isEmpty == true { throw Exit.input("\(resource): name the resource after the slash, e.g. deploy/web") }
        let namespace = query.namespace
        // Each objective and where it applies: the flag's, or the config file's declarations.
        var asked: [(name: String?, namespace: String?, goal: SuccessObjective)] = []
        if let objective {
            guard let goal = SuccessObjective(percent: objective) else {
                throw Exit.input("--objective \(objective): a percentage between 0 and 100, e.g. 99.9")
            }
            if goal.target < 0.5 {
                let hint = goal.target * 10000 < 100 ? " (did you mean \(format1(goal.target * 10000))?)" : ""
                warn("meshtop: --objective \(objective) is a percentage: \(objective)% of requests must succeed\(hint)")
            }
            asked = [(name, namespace, goal)]
        } else {
            for d in userConfig.slos where (try? kindLabel(d.kind)) == label && (name == nil || d.name == name)
                && (namespace == nil || d.namespace == nil || d.namespace == namespace) {
                guard let goal = SuccessObjective(percent: d.percent) else { continue }
                asked.append((d.name, d.namespace ?? namespace, goal))
            }
            guard !asked.isEmpty else {
                throw Exit.input("no objective: give --objective 99.9, or declare slos for \(resource) in \(UserConfig.defaultPath())")
            }
        }
        let windowsMs = try windows.split(separator: ",").map { text -> Int64 in
            guard let ms = DurationText.milliseconds(String(text)), ms > 0 else {
                throw Exit.input("--windows \(windows): \(text) is not a duration (try 5m,30m,1h,6h)")
            }
            return ms
        }
        guard !windowsMs.isEmpty else { throw Exit.input("--windows: give at least one window, e.g. 5m,1h") }
        let format = try query.format
        let source = try query.source(windowMs: windowsMs.max() ?? 0)
        var evaluations: [SLOEvaluation] = []
        for a in asked {
            evaluations += try SLOEvaluation.evaluate(windowsMs: windowsMs, heldMs: source.heldMs, objective: a.goal) { windowMs in
                try source.stat(kindLabel: label, namespace: a.namespace, name: a.name, windowMs: windowMs)
            }
        }
        for note in SLOView.shortWindowNotes(evaluations) { warn("meshtop: \(note)") }
        for rule in BurnRule.workbook {
            if !windowsMs.contains(rule.longMs) || !windowsMs.contains(rule.shortMs) {
                warn("meshtop: the \(rule.level.rawValue) rule needs the \(DurationText.format(rule.longMs)) and \(DurationText.format(rule.shortMs)) windows; it is not evaluated")
            } else if let held = source.heldMs, held < rule.longMs {
                warn("meshtop: the \(rule.level.rawValue) rule needs \(DurationText.format(rule.longMs)) of data and there is \(DurationText.format(held)); it is not evaluated (alert unknown)")
            }
        }
        switch format {
        case .json: print(SLOView.json(evaluations, kind: label, single: name != nil), terminator: "")
        case .table, .wide:
            if evaluations.isEmpty { warn("No traffic found.") }
            else { print(SLOView.table(evaluations, showNamespace: namespace == nil, wide: format == .wide), terminator: "") }
        }
        if name != nil, evaluations.isEmpty {
            throw Exit.input("\(resource): no such \(label) in the data\(namespace.map { " (namespace \($0))" } ?? "")")
        }
        if evaluations.contains(where: { $0.alert >= .ticket }) { throw ExitCode(1) }
    }
}
