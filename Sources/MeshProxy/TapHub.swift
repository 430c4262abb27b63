public import MeshTap
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The proxy's tap emitter: subscribers, each with a filter, a request-rate limit and a bounded
/// queue. Publishing never waits: an event for a subscriber whose queue is full is dropped and
/// counted. With no subscribers, the request path pays one atomic load.
public final class TapHub: Sendable {
    final class Subscriber: Sendable {
        let channel: any Channel
        let filter: TapFilter
        let base: UInt32
        let capacity: Int
        let inFlight = Atomic<Int>(0)
        private struct Limiter {
            var tokens: Double
            var refilledAt: NIODeadline
            var stream: UInt64 = 0
        }
        private let limiter: NIOLockedValueBox<Limiter>

        init(channel: any Channel, filter: TapFilter, base: UInt32, capacity: Int) {
            self.channel = channel
            self.filter = filter
            self.base = base
            self.capacity = capacity
            self.limiter = NIOLockedValueBox(Limiter(tokens: max(1, filter.maxRps), refilledAt: .now()))
        }

        /// Admits one more request under `maxRps` (a token bucket, burst of one second's worth),
        /// returning its stream number.
        func admit() -> UInt64? {
            limiter.withLockedValue { l in
                let now = NIODeadline.now()
                let seconds = Double((now - l.refilledAt).nanoseconds) / 1e9
                l.tokens = min(max(1, filter.maxRps), l.tokens + seconds * filter.maxRps)
                l.refilledAt = now
                guard l.tokens >= 1 else { return nil }
                l.tokens -= 1
                defer { l.stream += 1 }
                return l.stream
            }
        }
    }

    /// The subscribers that took one request, and the id it has for each.
    public struct Tapped: Sendable {
        let takers: [(subscriber: Subscriber, id: TapStreamID)]
    }

    private let subscribers = NIOLockedValueBox<[ObjectIdentifier: Subscriber]>([:])
    private let count = Atomic<Int>(0)
    private let nextBase = Atomic<UInt32>(0)
    let dropped = Atomic<UInt64>(0)
    let sent = Atomic<UInt64>(0)
    /// Events a subscriber may have handed to its socket but not yet written.
    public let queueCapacity: Int
    /// What tap never shows.
    public let redaction: TapRedaction
    /// The most subscribers at once: each costs the request path a filter match and a queue.
    public let maxSubscribers: Int
    /// The most requests per second one subscriber may ask for.
    public let maxRps: Double

    public init(queueCapacity: Int = 1_000, redaction: TapRedaction = TapRedaction(), maxSubscribers: Int = 16, maxRps: Double = 1_000) {
        self.queueCapacity = queueCapacity
        self.redaction = redaction
        self.maxSubscribers = maxSubscribers
        self.maxRps = maxRps
    }

    public var hasSubscribers: Bool { count.load(ordering: .relaxed) > 0 }
    public var subscriberCount: Int { count.load(ordering: .relaxed) }
    public var droppedEvents: UInt64 { dropped.load(ordering: .relaxed) }

    /// Adds a subscriber; nil when `maxSubscribers` are subscribed already.
    func subscribe(channel: any Channel, filter: TapFilter) -> Subscriber? {
        let base = nextBase.wrappingAdd(1, ordering: .relaxed).oldValue
        let s = Subscriber(channel: channel, filter: filter, base: base, capacity: queueCapacity)
        let added = subscribers.withLockedValue { all in
            guard all.count < maxSubscribers else { return false }
            all[ObjectIdentifier(channel)] = s
            return true
        }
        guard added else { return nil }
        count.add(1, ordering: .relaxed)
        return s
    }

    func unsubscribe(channel: any Channel) {
        let removed = subscribers.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        if removed != nil { count.subtract(1, ordering: .relaxed) }
    }

    /// Offers a request's init event (built only when someone listens) to every subscriber whose
    /// filter it passes and whose rate allows it. Nil when nobody took it.
    func requestStarted(_ make: (TapStreamID) -> TapEvent) -> Tapped? {
        guard hasSubscribers else { return nil }
        let all = subscribers.withLockedValue { Array($0.values) }
        let probe = make(TapStreamID(base: 0, stream: 0))
        var takers: [(Subscriber, TapStreamID)] = []
        for s in all where s.filter.matches(probe) {
            guard let stream = s.admit() else { continue }
            var e = probe
            let id = TapStreamID(base: s.base, stream: stream)
            if case let .requestInit(_, method, scheme, authority, path, headers) = e.http {
                e.http = .requestInit(id: id, method: method, scheme: scheme, authority: authority, path: path, headers: headers)
            }
            send(e, to: s)
            takers.append((s, id))
        }
        return takers.isEmpty ? nil : Tapped(takers: takers)
    }

    /// Sends a later event of a tapped request to the subscribers that took it.
    func emit(_ tapped: Tapped, _ make: (TapStreamID) -> TapEvent) {
        for (s, id) in tapped.takers where s.channel.isActive {
            send(make(id), to: s)
        }
    }

    private func send(_ event: TapEvent, to s: Subscriber) {
        guard s.inFlight.load(ordering: .relaxed) < s.capacity else {
            dropped.add(1, ordering: .relaxed)
            return
        }
        s.inFlight.add(1, ordering: .relaxed)
        let line = TapJSON.encode(event) + "\n"
        let buffer = s.channel.allocator.buffer(string: line)
        s.channel.writeAndFlush(buffer).whenComplete { _ in
            s.inFlight.subtract(1, ordering: .relaxed)
            self.sent.add(1, ordering: .relaxed)
        }
    }
}

/// A tap listener connection: reads the subscriber's filter line, then streams events to it.
/// What a peer can hold is bounded: the filter line must arrive within `filterDeadline` (else
/// the connection closes, counted as `meshproxy_connections_timed_out_total{direction="tap",
/// reason="filter"}`), and a subscriber that stops reading (its socket stays full) is closed
/// after `stallTimeout` (`reason="stalled"`). A quiet mesh sends nothing, so silence alone never
/// closes a subscriber.
final class TapServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let hub: TapHub
    private let token: String?
    private let filterDeadline: TimeAmount
    private let stallTimeout: TimeAmount
    private let registry: MetricsRegistry?
    private var pending: [UInt8] = []
    private var subscribed = false
    private var timer: Scheduled<Void>?

    init(hub: TapHub, token: String?, filterDeadline: TimeAmount = .seconds(10), stallTimeout: TimeAmount = .seconds(60),
         registry: MetricsRegistry? = nil) {
        self.hub = hub
        self.token = token
        self.filterDeadline = filterDeadline
        self.stallTimeout = stallTimeout
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: filterDeadline) { [self] in
            guard !subscribed else { return }
            registry?.connectionTimedOut(direction: "tap", reason: "filter")
            refuse(loopBound.value, "no filter line within \(Double(filterDeadline.nanoseconds / 1_000_000) / 1000) s")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if subscribed, !context.channel.isWritable {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: stallTimeout) { [self] in
                registry?.connectionTimedOut(direction: "tap", reason: "stalled")
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !subscribed else { return }  // after the filter line, input is ignored
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard let newline = pending.firstIndex(of: 0x0A) else {
            if pending.count > 65_536 { refuse(context, "the filter line is longer than 64 KiB") }
            return
        }
        let line = Array(pending[..<newline])
        pending.removeAll()
        guard let object = JSONTree.object(line) else {
            refuse(context, "the first line must be a JSON object of filters, e.g. {\"maxRps\":100}")
            return
        }
        let filter: TapFilter
        switch TapFilter.decode(object) {
        case .success(let f): filter = f
        case .failure(let e):
            refuse(context, e.description)
            return
        }
        if let token, !constantTimeEqual(filter.token ?? "", token) {
            refuse(context, "this tap listener needs a token")
            return
        }
        guard filter.maxRps <= hub.maxRps else {
            refuse(context, "maxRps may be at most \(Int(hub.maxRps)) here")
            return
        }
        guard hub.subscribe(channel: context.channel, filter: filter) != nil else {
            refuse(context, "this proxy serves at most \(hub.maxSubscribers) tap subscribers at once; try again when one has ended")
            return
        }
        subscribed = true
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        hub.unsubscribe(channel: context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ message: String) {
        let line = "{\"error\":\(JSONEscape.quoted("meshproxy tap: " + message))}\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: line))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

import FoundationEssentials
