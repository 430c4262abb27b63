public import MeshCanary
public import MeshMetrics
public import MeshTap
public import MeshTimeline
import MeshSLO
public import TerminalUI

/// The dashboard's views, in the order of their number keys.
public enum ViewKind: Int, CaseIterable, Sendable {
    case overview = 1, edges = 2, graph = 3, detail = 4, top = 5, tap = 6, compare = 7
    /// Every scrape target: up, down, slow or sending bad metrics, its last error and last success.
    case targets = 0
    case help = 8, canary = 9
    /// What broke first: changes against each metric's recent baseline (key `t`).
    case timeline = 10
    /// Each declared SLO's error-budget burn over the workbook's windows and its alert (key `o`;
    /// only when the config file declares `slos:`).
    case slo = 11

    public var title: String {
        switch self {
        case .overview: return "Overview"
        case .edges: return "Edges"
        case .graph: return "Graph"
        case .detail: return "Detail"
        case .top: return "Top"
        case .tap: return "Tap"
        case .compare: return "Compare"
        case .targets: return "Targets"
        case .help: return "Help"
        case .canary: return "Canary"
        case .timeline: return "Timeline"
        case .slo: return "SLO"
        }
    }

    /// The key that opens it, as its tab shows it.
    public var key: String {
        switch self {
        case .timeline: return "t"
        case .slo: return "o"
        default: return String(rawValue)
        }
    }

    /// The name `:` commands use (`:edges`, `:graph` …).
    public var command: String { title.lowercased() }
}

/// How lists are ordered; `s` cycles, `S` reverses.
public enum SortKey: String, CaseIterable, Sendable {
    case health, name, rps, p99
}

/// What the Detail view shows.
public enum DetailTarget: Sendable, Equatable {
    case workload(WorkloadID)
    case edge(EdgeID)
}

/// Where a replay is in its recording, on its virtual clock.
public struct ReplayPosition: Sendable, Equatable {
    public var startMs: Int64
    public var endMs: Int64
    public var atMs: Int64
    /// Recorded seconds per wall-clock second.
    public var speed: Double = 1
    /// How far ←/→ move.
    public var stepMs: Int64 = 5_000

    public init(startMs: Int64, endMs: Int64, atMs: Int64) {
        self.startMs = startMs
        self.endMs = endMs
        self.atMs = min(max(atMs, startMs), endMs)
    }
}

/// The dashboard's whole state. Only `update` changes it; views are functions of it.
public struct DashboardState: Sendable {
    public var title: String
    /// Where the numbers come from, for the status line.
    public var source: String
    public var windowMs: Int64
    public var kindLabel = "deployment"
    public var namespace: String?
    public var view: ViewKind = .overview
    /// The view Esc goes back to.
    public var previousView: ViewKind = .overview
    public var data = MeshSnapshot()
    public var paused = false
    public var quit = false
    /// Selected row per view.
    public var selection: [ViewKind: Int] = [:]
    public var filter = ""
    public var editingFilter = false
    /// The `:` command line while it is being typed.
    public var commandLine: String?
    public var sort: SortKey = .health
    public var sortReversed = false
    /// A line for the user: a command's result or why it failed.
    public var message: String?
    public var history = Trends()
    public var detail: DetailTarget?
    /// The moment Compare compares with, and its name.
    public var baseline: MeshSnapshot?
    public var baselineName = ""
    /// Recent tap events, newest last, at most `tapCapacity`.
    public var tapEvents: [TapEvent] = []
    public var tapCapacity = 2_000
    /// Events that arrived while the Tap view was paused, shown when it resumes (nothing is lost
    /// below `tapCapacity`).
    public var tapHeld: [TapEvent] = []
    public var top = TopAggregator()
    public var refreshMs = 1000
    /// The wall clock at the last turn of the loop: how old the data on screen is.
    public var nowMs: Int64 = 0
    /// The Overview's and Edges' rows, sorted once per change (see `refreshRowOrder`).
    var rowOrder = RowOrder()
    /// Wall time of the data shown, as `HH:MM:SSZ`.
    public var clockText = ""
    /// Tap sources, for the status line (empty: no tap).
    public var tapSources = 0
    /// Set when the dashboard plays a recording.
    public var replay: ReplayPosition?
    /// A canary release being watched (view 9 exists only then).
    public var canary: CanaryWatch?
    /// The incident timeline, oldest first: a recording's whole one (set before a replay starts),
    /// or, live, what `timelineDetector` has seen in the data so far.
    public var timeline: [TimelineEvent] = []
    var timelineDetector = TimelineDetector()
    var timelineSeenMs: Int64 = 0
    /// The success objectives watched (the config file's `slos:` for this kind): a badge per
    /// workload in Overview and the SLO view.
    public var slos: [WatchedSLO] = []

    /// What the feed is asked for at the next refresh (with the workbook's windows when SLOs are watched).
    public var query: SnapshotQuery {
        SnapshotQuery(kindLabel: kindLabel, namespace: namespace, windowMs: windowMs, atMs: replay?.atMs, stepMs: refreshMs,
                      successWindowsMs: slos.isEmpty ? [] : BurnRule.workbookWindowsMs)
    }

    public init(title: String, source: String, windowMs: Int64) {
        self.title = title
        self.source = source
        self.windowMs = windowMs
    }

    public var selected: Int { selection[view] ?? 0 }

    /// The refresh intervals `+` and `-` step through, in milliseconds.
    public static let refreshSteps = [250, 500, 1000, 2000, 5000, 10_000]

    /// Top's rows over the window the title names: requests that finished in it.
    public var topRows: [TopRow] {
        top.rows(since: data.atMs - (data.windowMs > 0 ? data.windowMs : windowMs))
    }

    /// The views there are now: Canary only while a canary is watched, SLO only when SLOs are.
    public var views: [ViewKind] {
        ViewKind.allCases.filter { ($0 != .canary || canary != nil) && ($0 != .slo || !slos.isEmpty) }
    }
}

/// What the user, the clock or a source asks for.
public enum Action: Sendable {
    case key(Key)
    /// New data arrived, at a wall-clock time shown as `clockText`.
    case data(MeshSnapshot, clockText: String)
    /// Wall-clock time passed (a replay plays on).
    case tick(elapsedMs: Int64)
    case tap([TapEvent])
    /// The canary watch changed.
    case canary(CanaryWatch)
}

/// state + action → new state: the dashboard's only place that changes state.
public func update(_ state: inout DashboardState, _ action: Action) {
    apply(action, to: &state)
    state.refreshRowOrder()
}

private func apply(_ action: Action, to state: inout DashboardState) {
    switch action {
    case .data(let data, let clock):
        // A replay's data follows its position, which does not move while paused.
        guard !state.paused || state.replay != nil else { return }
        state.data = data
        state.rowOrder.key = nil  // new rows: sorted again after this update
        state.clockText = clock
        state.top.release(atMs: data.atMs)
        if state.replay == nil { state.observeTimeline(data) }
        if let h = data.history {
            state.history = Trends(h)
            return
        }
        state.history.record(data)
    case .tick(let elapsedMs):
        guard var r = state.replay, !state.paused else { return }
        r.atMs = min(r.endMs, r.atMs + Int64(Double(elapsedMs) * r.speed))
        if r.atMs == r.endMs {
            state.paused = true
            state.message = "end of the recording (Home restarts, \u{2190} steps back)"
        }
        state.replay = r
    case .tap(let events):
        for e in events { state.top.add(e, atMs: state.data.atMs) }
        if state.paused {
            state.tapHeld += events
        } else {
            state.tapEvents += events
        }
        if state.tapEvents.count > state.tapCapacity { state.tapEvents.removeFirst(state.tapEvents.count - state.tapCapacity) }
        if state.tapHeld.count > state.tapCapacity { state.tapHeld.removeFirst(state.tapHeld.count - state.tapCapacity) }
    case .canary(let watch):
        if watch.result != nil, state.canary?.result == nil {
            state.message = "canary \(watch.result!.rawValue): \(watch.reason ?? "")"
        }
        state.canary = watch
    case .key(let key):
        handleKey(&state, key)
    }
}

/// A key, by family: text while a filter or a command is typed, then replay steering, moving
/// the selection, switching views, and the actions.
private func handleKey(_ state: inout DashboardState, _ key: Key) {
    state.message = nil
    if state.editingFilter { return editFilter(&state, key) }
    if state.commandLine != nil { return editCommandLine(&state, key) }
    if steerReplay(&state, key) || moveSelection(&state, key) || switchView(&state, key) { return }
    act(&state, key)
}

/// Typing a filter: keys are text until Enter (keep it) or Esc (drop it).
private func editFilter(_ state: inout DashboardState, _ key: Key) {
    switch key {
    case .enter: state.editingFilter = false
    case .escape:
        state.editingFilter = false
        state.filter = ""
    case .backspace: if !state.filter.isEmpty { state.filter.removeLast() }
    case .character(let c): state.filter.append(c)
    default: break
    }
    state.selection[state.view] = 0
}

/// Typing a `:` command: keys are text until Enter (run it) or Esc.
private func editCommandLine(_ state: inout DashboardState, _ key: Key) {
    guard let line = state.commandLine else { return }
    switch key {
    case .enter:
        state.commandLine = nil
        run(command: line, &state)
    case .escape: state.commandLine = nil
    case .backspace:
        if line.isEmpty { state.commandLine = nil } else { state.commandLine!.removeLast() }
    case .character(let c): state.commandLine!.append(c)
    default: break
    }
}

/// In a replay: ←/→ step, [ and ] change speed, Home/End jump. False for any other key.
private func steerReplay(_ state: inout DashboardState, _ key: Key) -> Bool {
    guard var r = state.replay else { return false }
    switch key {
    case .left: r.atMs = max(r.startMs, r.atMs - r.stepMs)
    case .right: r.atMs = min(r.endMs, r.atMs + r.stepMs)
    case .character("["): r.speed = max(0.125, r.speed / 2)
    case .character("]"): r.speed = min(1024, r.speed * 2)
    case .home: r.atMs = r.startMs
    case .end: r.atMs = r.endMs
    default: return false
    }
    state.replay = r
    if case .character = key { state.message = "speed x\(DashboardScreen.speedText(r.speed))" }
    return true
}

/// ↑/↓ (j/k), page keys, Home/End (g/G): the selected row.
private func moveSelection(_ state: inout DashboardState, _ key: Key) -> Bool {
    switch key {
    case .down, .character("j"): move(&state, by: 1)
    case .up, .character("k"): move(&state, by: -1)
    case .pageDown, .control("f"): move(&state, by: 10)
    case .pageUp, .control("b"): move(&state, by: -10)
    case .home, .character("g"): state.selection[state.view] = 0
    case .end, .character("G"): state.selection[state.view] = Int.max / 2
    default: return false
    }
    return true
}

/// Digits, Tab/Shift-Tab, ?, Esc (back, or clear the filter) and Enter (drill in).
private func switchView(_ state: inout DashboardState, _ key: Key) -> Bool {
    switch key {
    case .character("?"): show(.help, &state)
    case .character("t"): show(.timeline, &state)
    case .character("o") where state.views.contains(.slo): show(.slo, &state)
    case .character(let c) where c.isNumber:
        if let n = c.wholeNumberValue, let v = ViewKind(rawValue: n), state.views.contains(v) { show(v, &state) }
    case .tab, .backTab:
        let views = state.views
        let i = views.firstIndex(of: state.view) ?? 0
        show(views[(i + (key == .tab ? 1 : views.count - 1)) % views.count], &state)
    case .escape:
        if !state.filter.isEmpty { state.filter = "" } else { show(state.previousView == state.view ? .overview : state.previousView, &state) }
    case .enter: drillIn(&state)
    default: return false
    }
    return true
}

/// The rest: quit, `:` and `/`, pause, sort, mark, refresh rate.
private func act(_ state: inout DashboardState, _ key: Key) {
    switch key {
    case .character("q"), .control("c"): state.quit = true
    case .character(":"): state.commandLine = ""
    case .character("/"):
        state.editingFilter = true
        state.filter = ""
    case .character(" "):
        state.paused.toggle()
        if !state.paused {
            state.tapEvents += state.tapHeld
            state.tapHeld.removeAll()
            if state.tapEvents.count > state.tapCapacity { state.tapEvents.removeFirst(state.tapEvents.count - state.tapCapacity) }
        }
    case .character("s"):
        let all = SortKey.allCases
        state.sort = all[(all.firstIndex(of: state.sort)! + 1) % all.count]
        state.message = "sorted by \(state.sort.rawValue)"
    case .character("S"):
        state.sortReversed.toggle()
        state.message = state.sortReversed ? "order reversed" : "order restored"
    case .character("m"):
        state.baseline = state.data
        state.baselineName = "mark at \(state.clockText)"
        state.message = "marked \(state.clockText): Compare (7) now compares with it"
    case .character("+"):
        state.refreshMs = DashboardState.refreshSteps.last { $0 < state.refreshMs } ?? DashboardState.refreshSteps[0]
        state.message = "refresh every \(DurationText.format(Int64(state.refreshMs)))"
    case .character("-"):
        state.refreshMs = DashboardState.refreshSteps.first { $0 > state.refreshMs } ?? DashboardState.refreshSteps.last!
        state.message = "refresh every \(DurationText.format(Int64(state.refreshMs)))"
    default: break
    }
}

private func show(_ view: ViewKind, _ state: inout DashboardState) {
    if view != state.view { state.previousView = state.view }
    state.view = view
}

private func move(_ state: inout DashboardState, by delta: Int) {
    state.selection[state.view] = max(0, min(state.selected, Int.max / 4) + delta)
}

/// Enter: the selected workload or edge opens in Detail.
private func drillIn(_ state: inout DashboardState) {
    switch state.view {
    case .overview:
        let rows = OverviewScreen.rows(state)
        guard !rows.isEmpty else { return }
        state.detail = .workload(rows[min(state.selected, rows.count - 1)].workload)
        show(.detail, &state)
    case .edges, .graph:
        let edges = EdgesScreen.rows(state)
        guard !edges.isEmpty else { return }
        state.detail = .edge(edges[min(state.selected, edges.count - 1)].edge)
        show(.detail, &state)
    case .slo:
        let rows = SLOScreen.rows(state)
        guard !rows.isEmpty else { return }
        state.detail = .workload(rows[min(state.selected, rows.count - 1)].workload)
        show(.detail, &state)
    case .timeline:
        let events = TimelineScreen.rows(state)
        guard !events.isEmpty else { return }
        let e = events[min(state.selected, events.count - 1)]
        switch e.subject {
        case .workload(let w): state.detail = .workload(w)
        case .edge(let edge): state.detail = .edge(edge)
        }
        if var r = state.replay {
            r.atMs = min(max(e.atMs, r.startMs), r.endMs)
            state.replay = r
            state.paused = true
            state.message = "at \(TimeSpec.format(r.atMs)), paused: \(e.subject.name(kind: TimelineSubject.shortKind(state.kindLabel))) \(TimelineView.what(e))"
        }
        show(.detail, &state)
    default: break
    }
}

extension DashboardState {
    /// Live: the detector looks at each new moment's workloads and edges (a moment once).
    mutating func observeTimeline(_ data: MeshSnapshot) {
        guard data.atMs > timelineSeenMs, data.windowMs > 0, !data.workloads.isEmpty else { return }
        timelineSeenMs = data.atMs
        timelineDetector.observe(atMs: data.atMs, workloads: data.workloads, edges: data.edges, windowMs: data.windowMs)
        timeline = timelineDetector.events
    }
}

/// `:` commands: a view's name, `ns NAME` (or `ns` for all), `mark`, `window 5m`, `q`.
private func run(command: String, _ state: inout DashboardState) {
    let words = command.split(separator: " ").map(String.init)
    guard let verb = words.first?.lowercased() else { return }
    if let v = state.views.first(where: { $0.command == verb || ($0 == .overview && verb == "ov") }) {
        show(v, &state)
        return
    }
    switch verb {
    case "q", "quit": state.quit = true
    case "ns", "namespace":
        state.namespace = words.count > 1 && words[1] != "all" ? words[1] : nil
        state.message = "namespace: \(state.namespace ?? "all")"
    case "mark":
        state.baseline = state.data
        state.baselineName = "mark at \(state.clockText)"
        state.message = "marked \(state.clockText)"
    case "window", "w":
        guard words.count > 1, let ms = DurationText.milliseconds(words[1]), ms >= 1000 else {
            state.message = "usage: :window 1m (at least 1s)"
            return
        }
        state.windowMs = ms
        state.message = "window \(DurationText.format(ms))"
    case "filter":
        state.filter = words.dropFirst().joined(separator: " ")
    case "goto":
        guard var r = state.replay else {
            state.message = ":goto moves a replay (meshtop replay FILE)"
            return
        }
        guard words.count > 1, let t = TimeSpec.milliseconds(words[1], startMs: r.startMs, endMs: r.endMs) else {
            state.message = "usage: :goto 12:03:10, :goto -5m (before the end) or :goto +30s (after the start)"
            return
        }
        r.atMs = min(max(t, r.startMs), r.endMs)
        state.replay = r
        state.message = "at \(TimeSpec.format(r.atMs))"
    default:
        state.message = "unknown command :\(command) (try :\(state.views.map(\.command).joined(separator: " :")) :ns NAME :window 1m :mark :q)"
    }
}
