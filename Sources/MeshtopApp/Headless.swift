public import Dashboard
import Foundation
import LinkerdViz
public import MeshMetrics
public import MeshSources

/// The live pipeline without a screen: scrape, and compute the views every refresh for
/// `durationMs` (Ctrl-C stops early), with a progress line on stderr every 5 s, then the stat
/// table on stdout and a summary on stderr.
public func runHeadless(_ live: LiveCollector, state: DashboardState, durationMs: Int64, clock: any TimeSource = WallClock()) {
    let stop = StopFlag.install()
    let started = clock.nowMs()
    var lastReport = started, refreshes = 0, slowest: Int64 = 0
    while !stop.isSet, clock.nowMs() - started < durationMs {
        let t0 = clock.nowMs()
        let data = live.snapshot(for: state.query)
        refreshes += 1
        slowest = max(slowest, clock.nowMs() - t0)
        if clock.nowMs() - lastReport >= 5_000 {
            lastReport = clock.nowMs()
            let rounds = live.read { $0.rounds }
            warn("meshtop: \((lastReport - started) / 1000)s, \(rounds) scrape rounds, targets \(data.targetsUp)/\(data.targetsTotal) up\(data.targetStates.isEmpty ? "" : " (\(data.targetStates))"), \(data.workloads.count) workloads, slowest refresh \(slowest) ms")
        }
        Thread.sleep(forTimeInterval: max(0, Double(Int64(state.refreshMs) - (clock.nowMs() - t0)) / 1000))
    }
    live.stop()
    let (rounds, targets) = live.read { ($0.rounds, $0.activeCount) }
    let rows = live.read { $0.stat(kindLabel: state.kindLabel, namespace: state.namespace, windowMs: state.windowMs) }
    print(StatView.table(rows, showNamespace: state.namespace == nil, wide: false), terminator: "")
    warn("meshtop: \(rounds) scrape rounds of \(targets) targets and \(refreshes) refreshes (slowest \(slowest) ms) in \((clock.nowMs() - started) / 1000)s")
}

/// Tap listeners from the flags, else from the config file.
