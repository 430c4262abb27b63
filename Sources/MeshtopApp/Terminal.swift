public import Dashboard
import Foundation
public import MeshMetrics
public import MeshSources
public import MeshCanary
public import TerminalNcurses
public import TerminalUI
import MeshSLO

/// How the full-screen commands look and stop: colours, theme, refresh and scripted runs.
public struct DisplaySettings: Sendable {
    public var noColor: Bool
    /// A theme's name or a YAML file.
    public var theme: String
    public var refreshMs: Int
    /// Stop after drawing this many frames (scripted runs).
    public var maxFrames: Int?
    /// The config file's success objectives: Overview's SLO badges and the SLO view.
    public var slos: [SLODeclaration]

    public init(noColor: Bool, theme: String, refreshMs: Int, maxFrames: Int?, slos: [SLODeclaration] = []) {
        self.noColor = noColor
        self.theme = theme
        self.refreshMs = refreshMs
        self.maxFrames = maxFrames
        self.slos = slos
    }

    /// The declared objectives for workloads of the kind the dashboard shows (`deploy/…` for
    /// deployments); one naming its namespace comes before one for every namespace, so it wins
    /// for its workload.
    public func watchedSLOs(kindLabel: String) -> [WatchedSLO] {
        let watched = slos.compactMap { d -> WatchedSLO? in
            guard (try? MeshtopApp.kindLabel(d.kind)) == kindLabel, let goal = SuccessObjective(percent: d.percent) else { return nil }
            return WatchedSLO(name: d.name, namespace: d.namespace, objective: goal)
        }
        return watched.filter { $0.namespace != nil } + watched.filter { $0.namespace == nil }
    }

    /// The terminal, opened with the theme asked for (monochrome under `noColor` or NO_COLOR).
    public func openTerminal() throws(Exit) -> NcursesTerminal {
        let monochrome = noColor || !(ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        do {
            return try NcursesTerminal(noColor: monochrome, theme: loadTheme(theme))
        } catch {
            throw Exit.input("\(error)")
        }
    }
}

/// The theme asked for, or the default with a warning when it cannot be used.
public func loadTheme(_ nameOrPath: String) -> Theme {
    do {
        return try ThemeLoader.load(nameOrPath)
    } catch {
        warn("meshtop: \(error); using default-dark")
        return .defaultDark
    }
}

/// The dashboard on the terminal, from `state` until `q` (or the deadline, or `maxFrames`): the
/// tap subscriptions in `tap` run only as long, and the terminal is restored after. Live feeds
/// (`inBackground`) compute on a thread of their own, so a slow scrape round, a big mesh or a
/// Prometheus that does not answer never holds up a key; a replay computes in step with its clock.
public func runDashboard(_ state: DashboardState, feed: any SnapshotFeed, inBackground: Bool = true, tap: TapFeed? = nil,
                         canary: CanaryBoard? = nil, on terminal: NcursesTerminal, display: DisplaySettings,
                         deadlineMs: Int64? = nil, clock: any TimeSource = WallClock()) {
    let background = inBackground ? BackgroundFeed(feed, clock: clock) : nil
    var state = state
    if state.slos.isEmpty { state.slos = display.watchedSLOs(kindLabel: state.kindLabel) }
    tap?.start()
    DashboardLoop.run(state, feed: background ?? feed, tap: tap, canary: canary, terminal: terminal, maxFrames: display.maxFrames,
                      deadlineMs: deadlineMs, clock: clock)
    terminal.close()
    tap?.stop()
    background?.stop()
}
