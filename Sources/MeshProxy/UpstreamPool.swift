import NIOConcurrencyHelpers
import NIOCore

/// Which upstream connections may carry a request: the same endpoint reached the same way. A
/// plaintext connection never carries a request meant for mTLS, nor one for another identity.
struct UpstreamKey: Hashable {
    var endpoint: HostPort
    /// The identity the endpoint proved over mTLS; nil for plaintext.
    var identity: String?
}

extension Route {
    /// The upstream connections this route's requests may use: over mTLS when the endpoint has
    /// an identity and this proxy has one to present.
    func upstreamKey(mtls: Bool) -> UpstreamKey {
        UpstreamKey(endpoint: endpoint, identity: mtls ? serverIdentity : nil)
    }
}

/// One value per event loop, made on first use and touched only on that loop (upstream pools:
/// a connection and the handlers using it share a loop, so nothing is locked per request).
final class PerEventLoop<Value: AnyObject>: Sendable {
    private let values = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<Value>]>([:])
    private let make: @Sendable (any EventLoop) -> Value

    init(_ make: @escaping @Sendable (any EventLoop) -> Value) {
        self.make = make
    }

    /// The value of `loop`; call on that loop.
    func value(on loop: any EventLoop) -> Value {
        values.withLockedValue { v in
            let key = ObjectIdentifier(loop)
            if let existing = v[key] { return existing.value }
            let value = NIOLoopBound(make(loop), eventLoop: loop)
            v[key] = value
            return value.value
        }
    }
}

/// Idle keep-alive HTTP/1.1 upstream connections of one event loop, per endpoint and identity.
/// A connection is put here only after its request and its response both ended cleanly.
final class UpstreamPool {
    struct Idle {
        let channel: any Channel
        let handler: UpstreamHandler
        var since: NIODeadline = .now()
    }

    /// One list per key, a class so that taking and putting change it in place: no copy, and
    /// no dictionary mutation per request (which allocates).
    private final class IdleList {
        var connections: [Idle] = []
    }

    private var idle: [UpstreamKey: IdleList] = [:]
    let maxIdlePerEndpoint: Int
    /// Idle connections older than this are closed (a burst's extra connections do not stay forever).
    let idleTimeout: TimeAmount

    init(maxIdlePerEndpoint: Int = 64, idleTimeout: TimeAmount = .seconds(10)) {
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.idleTimeout = idleTimeout
    }

    /// A pool on `loop` that sweeps out expired connections every half idle timeout.
    static func make(on loop: any EventLoop) -> UpstreamPool {
        let pool = UpstreamPool()
        let bound = NIOLoopBound(pool, eventLoop: loop)
        let sweep = TimeAmount.nanoseconds(pool.idleTimeout.nanoseconds / 2)
        loop.scheduleRepeatedTask(initialDelay: sweep, delay: sweep) { _ in bound.value.evictExpired() }
        return pool
    }

    /// Closes connections idle for longer than `idleTimeout`; returns how many.
    @discardableResult
    func evictExpired(now: NIODeadline = .now()) -> Int {
        var closed = 0
        for (key, list) in idle {
            for c in list.connections where c.channel.isActive && now - c.since >= idleTimeout {
                c.channel.close(promise: nil)
                closed += 1
            }
            list.connections.removeAll { !$0.channel.isActive || now - $0.since >= idleTimeout }
            if list.connections.isEmpty { idle[key] = nil }
        }
        return closed
    }

    /// An open idle connection for `key`, if there is one (closed ones are dropped on the way).
    func take(_ key: UpstreamKey) -> Idle? {
        guard let list = idle[key] else { return nil }
        while let c = list.connections.popLast() {
            if c.channel.isActive { return c }
        }
        return nil
    }

    /// Keeps `c` for the next request to `key` (swept of closed connections only when full).
    func put(_ key: UpstreamKey, _ c: Idle) {
        let list: IdleList
        if let existing = idle[key] {
            list = existing
        } else {
            list = IdleList()
            idle[key] = list
        }
        if list.connections.count >= maxIdlePerEndpoint { list.connections.removeAll { !$0.channel.isActive } }
        if list.connections.count >= maxIdlePerEndpoint {
            c.channel.close(promise: nil)
        } else {
            list.connections.append(c)
        }
    }
}
