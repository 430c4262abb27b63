/// Tap events arriving from somewhere (live subscriptions to proxies, in MeshSources), drained by
/// the dashboard once per frame: the dashboard sees this, not the sockets behind it.
public protocol TapEventFeed: Sendable {
    /// How many proxies are tapped.
    var count: Int { get }
    /// The events and problems since the last call, oldest first.
    func drain() -> (events: [TapEvent], problems: [String])
}
