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
    /// One list per key, a class so that taking and putting change it in place: no copy, and
    /// no dictionary mutation per request (which allocates).
    private final class IdleList {
        let key: UpstreamKey
        var connections: [UpstreamConnection] = []

        init(key: UpstreamKey) {
            self.key = key
        }
    }

    private var idle: [UpstreamKey: IdleList] = [:]
    /// The list last used: a proxy whose requests mostly go to one endpoint (an inbound's app)
    /// finds it without hashing the key.
    private var recent: IdleList?
    /// The loop's flushes, batched to the end of each tick.
    let flusher: TickFlusher?
    let maxIdlePerEndpoint: Int
    /// Idle connections older than this are closed (a burst's extra connections do not stay forever).
    let idleTimeout: TimeAmount

    init(maxIdlePerEndpoint: Int = 64, idleTimeout: TimeAmount = .seconds(10), loop: (any EventLoop)? = nil) {
        self.flusher = loop.map(TickFlusher.init(loop:))
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.idleTimeout = idleTimeout
    }

    /// A pool on `loop` that sweeps out expired connections every half idle timeout.
    static func make(on loop: any EventLoop) -> UpstreamPool {
        let pool = UpstreamPool(loop: loop)
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
            for c in list.connections where c.channel.isActive && now - c.idleSince >= idleTimeout {
                c.channel.close(promise: nil)
                closed += 1
            }
            list.connections.removeAll { !$0.channel.isActive || now - $0.idleSince >= idleTimeout }
            if list.connections.isEmpty {
                idle[key] = nil
                if recent === list { recent = nil }
            }
        }
        return closed
    }

    /// An open idle connection for `key`, if there is one (closed ones are dropped on the way).
    func take(_ key: UpstreamKey) -> UpstreamConnection? {
        guard let list = list(key, creating: false) else { return nil }
        while let c = list.connections.popLast() {
            if c.channel.isActive { return c }
        }
        return nil
    }

    /// Keeps `c` for the next request to `key` (swept of closed connections only when full).
    func put(_ c: UpstreamConnection) {
        let list = list(c.key, creating: true)!
        if list.connections.count >= maxIdlePerEndpoint { list.connections.removeAll { !$0.channel.isActive } }
        if list.connections.count >= maxIdlePerEndpoint {
            c.channel.close(promise: nil)
        } else {
            list.connections.append(c)
        }
    }

    private func list(_ key: UpstreamKey, creating: Bool) -> IdleList? {
        if let recent, recent.key == key { return recent }
        if let existing = idle[key] {
            recent = existing
            return existing
        }
        guard creating else { return nil }
        let list = IdleList(key: key)
        idle[key] = list
        recent = list
        return list
    }
}
