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
