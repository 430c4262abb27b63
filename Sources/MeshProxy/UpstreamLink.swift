import NIOCore

/// A client connection's upstream HTTP/1 connection, one at a time, as a state machine: none;
/// connecting, with the request parts that wait for it; or ready, and whether it may carry
/// another request once this exchange is over. Taken from the event loop's pool when one to the
/// same endpoint is idle there, and given back to it when the exchange ends cleanly.
final class UpstreamLink {
    enum State {
        case none
        case connecting(key: UpstreamKey, pending: [ByteBuffer])
        case ready(UpstreamConnection)
    }

    private(set) var state: State = .none
    /// Reading from the connection was stopped (the client could not take more).
    private var readStopped = false
    private let pool: UpstreamPool?

    init(pool: UpstreamPool?) {
        self.pool = pool
    }

    /// The connection, once it is ready.
    var channel: (any Channel)? {
        if case .ready(let r) = state { return r.channel }
        return nil
    }

    /// Whether `channel` is this link's connection (callbacks from an old one are ignored).
    func carries(_ channel: any Channel) -> Bool { self.channel === channel }

    /// Marks the ready connection as not to be used again (the upstream said close, a retry
    /// left a response unread); `true` makes no connection reusable that already is not.
    func setReusable(_ reusable: Bool) {
        guard case .ready(let r) = state else { return }
        r.reusable = reusable
    }

    var isReusable: Bool {
        if case .ready(let r) = state { return r.reusable }
        return false
    }

    /// Writes a request head for `key`: on the connection held when it can carry it, else on a
    /// pooled one. Returns false when there is none: the link is then connecting, with the head
    /// waiting, and the caller opens the connection. Written, not flushed (`flush` does).
    /// `reuse` false takes no open connection (an mTLS one made with a certificate that has
    /// since expired must not carry more).
    func send(_ head: ByteBuffer, to key: UpstreamKey, owner: ProxyHandler, reuse: Bool = true) -> Bool {
        if reuse, case .ready(let r) = state, r.channel.isActive, r.reusable, r.key == key {
            write(head, on: r)
            return true
        }
        if case .none = state {} else { release() }
        if reuse, let pooled = pool?.take(key) {
            pooled.handler.owner = owner
            pooled.reusable = true
            state = .ready(pooled)
            write(head, on: pooled)
            return true
        }
        state = .connecting(key: key, pending: [head])
        return false
    }

    /// Writes bytes of the request on (flushed by `flush`) when the connection is ready, else
    /// keeps them until it is. Returns whether more may be read from the client now: not while
    /// the upstream cannot take more, nor while a body waits for the connection.
    func forward(_ bytes: ByteBuffer) -> Bool {
        switch state {
        case .ready(let r):
            write(bytes, on: r)
            return r.channel.isWritable
        case .connecting(let key, var pending):
            pending.append(bytes)
            state = .connecting(key: key, pending: pending)
            return false
        case .none:
            return true  // the exchange failed: nothing goes on
        }
    }

    /// Sends what was written.
    func flush() {
        guard case .ready(let r) = state else { return }
        if let flusher = pool?.flusher { flusher.flush(r.channel) } else { r.channel.flush() }
    }

    /// Writes on `c` (not flushed), counted when its handler took the counting over.
    private func write(_ bytes: ByteBuffer, on c: UpstreamConnection) {
        c.handler.counter?.wrote(bytes.readableBytes)
        c.channel.write(bytes, promise: nil)
    }

    /// The connection to `key` opened: it becomes the link's, and what waited is written.
    /// False (and the channel is the caller's to close) when the link no longer waits for it.
    func attach(_ channel: any Channel, handler: UpstreamHandler, key: UpstreamKey) -> Bool {
        guard case .connecting(let waiting, let pending) = state, waiting == key else { return false }
        state = .ready(UpstreamConnection(channel: channel, handler: handler, key: key))
        for part in pending { channel.write(part, promise: nil) }
        channel.flush()
        return true
    }

    /// Whether the link waits for a connection to `key`.
    func isConnecting(to key: UpstreamKey) -> Bool {
        if case .connecting(let waiting, _) = state { return waiting == key }
        return false
    }

    /// Starts or stops reading from the connection; only a change costs anything.
    func read(_ on: Bool) {
        guard readStopped == on, let channel else { return }
        readStopped = !on
        setAutoRead(channel, on)
    }

    /// Forgets the connection without closing it (it failed, closed, or became a tunnel).
    func detach() {
        state = .none
        readStopped = false
    }

    /// Closes the connection (a connection still opening is closed when it arrives). The link
    /// forgets it first: the close may report the channel inactive at once, and that is no
    /// failure of the exchange.
    func close() {
        let closing = channel
        state = .none
        readStopped = false
        closing?.close(promise: nil)
    }

    /// Gives the connection back to the pool when it is open, reusable and idle, else closes it.
    /// Callers know it is idle: both messages of the last exchange ended on it.
    func release(at now: NIODeadline = .now()) {
        guard case .ready(let r) = state, let pool, r.channel.isActive, r.reusable else {
            close()
            return
        }
        r.handler.owner = nil
        if readStopped { setAutoRead(r.channel, true) }
        readStopped = false
        r.idleSince = now
        pool.put(r)
        state = .none
    }
}

/// One upstream HTTP/1 connection, held by a client's link while it carries an exchange and by
/// the loop's pool while idle: the same object moves between them, nothing is copied.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let key: UpstreamKey
    /// Both messages may end cleanly on it: it can be used again (pooled).
    var reusable = true
    /// When it went back to the pool.
    var idleSince = NIODeadline.now()

    init(channel: any Channel, handler: UpstreamHandler, key: UpstreamKey) {
        self.channel = channel
        self.handler = handler
        self.key = key
    }
}
