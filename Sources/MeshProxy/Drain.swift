import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore

/// Asked of every proxied connection when the proxy drains: close now if idle, else after the
/// response in flight (which then carries `connection: close`).
struct DrainEvent: Sendable {}

/// The proxy's accepted connections, so a drain can reach each and wait for them to end.
final class ConnectionTracker: Sendable {
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let draining = NIOLockedValueBox(false)

    var count: Int { open.withLockedValue { $0.count } }
    var isDraining: Bool { draining.withLockedValue { $0 } }

    func add(_ channel: any Channel) {
        if isDraining {
            channel.close(promise: nil)
            return
        }
        open.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = open.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    /// Tells every connection to finish; returns at once.
    func startDrain() {
        draining.withLockedValue { $0 = true }
        for channel in open.withLockedValue({ Array($0.values) }) {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(DrainEvent()) }
        }
    }
}

/// The most connections a listener holds: one more is closed at once, counted, and logged the
/// first time (so a flood does not flood the log too).
final class ConnectionCap: Sendable {
    private let open = Atomic<Int>(0)
    private let warned = Atomic<Bool>(false)
    let limit: Int
    private let direction: String
    private let registry: MetricsRegistry
    private let flag: String

    init(limit: Int, direction: String, registry: MetricsRegistry, flag: String = "--max-connections") {
        self.limit = limit
        self.direction = direction
        self.registry = registry
        self.flag = flag
    }

    /// Whether `channel` may stay open; if so it is counted until it closes.
    func admit(_ channel: any Channel) -> Bool {
        guard open.add(1, ordering: .relaxed).newValue <= limit else {
            open.subtract(1, ordering: .relaxed)
            registry.connectionRefused(direction: direction)
            if !warned.exchange(true, ordering: .relaxed) {
                sayOnStderr("meshproxy: the \(direction) listener has \(limit) connections open (its \(flag)): refusing more; "
                    + "meshproxy_connections_refused_total counts them")
            }
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
        return true
    }
}
