import NIOCore

/// The flushes asked for on one event loop during a tick, done together once the tick's I/O
/// events have all been handled (an event-loop task runs after them). Twenty connections made
/// ready by one `epoll_wait` then write their twenty requests after reading all of them, and the
/// peer woken by the first write finds the others waiting: fewer wake-ups on both sides, as
/// HAProxy sends once its tasks have run. A flush waits for nothing but the rest of the tick.
final class TickFlusher {
    private let loop: any EventLoop
    private var pending: [any Channel] = []

    init(loop: any EventLoop) {
        self.loop = loop
        pending.reserveCapacity(64)
    }

    /// Flushes `channel` at the end of this tick (on the loop).
    func flush(_ channel: any Channel) {
        if pending.isEmpty { loop.assumeIsolated().execute { self.run() } }
        pending.append(channel)
    }

    private func run() {
        // A flush may ask for another (a write made ready by this one): it goes in the next batch.
        var i = 0
        while i < pending.count {
            pending[i].flush()
            i += 1
        }
        pending.removeAll(keepingCapacity: true)
    }
}
