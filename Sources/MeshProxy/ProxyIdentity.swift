public import FoundationEssentials
public import MeshIdentity
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL

/// The proxy's workload identity: its current certificate and TLS contexts, renewed before the
/// certificate expires. New connections take the newest contexts; open ones keep theirs, so a
/// rotation drops nothing.
///
/// A proxy whose identity comes from the identity service starts without a certificate, as
/// Linkerd's does: it serves, says it is not ready (`/ready` answers 503 with the reason), and
/// asks again with capped exponential backoff and jitter until it gets one. Until then, and
/// whenever the certificate held is outside its `notBefore`…`notAfter`, there is no usable
/// identity: inbound TLS is refused and outbound mTLS fails with `error="tls"`; plaintext goes on.
public final class ProxyIdentity: Sendable {
    public struct Current: Sendable {
        public let identity: WorkloadIdentity
        let server: NIOSSLContext
        let client: NIOSSLContext
        /// How many certificates this proxy has had (1 before the first rotation).
        public let generation: Int
    }

    /// How long to wait between attempts: doubling from `first` up to `cap`, each wait drawn
    /// at random from its upper half (jitter, so proxies that lost the service together do not
    /// come back together).
    public struct Backoff: Sendable {
        public var first: TimeAmount
        public var cap: TimeAmount

        public init(first: TimeAmount = .milliseconds(500), cap: TimeAmount = .seconds(30)) {
            self.first = first
            self.cap = cap
        }

        /// The wait after `failures` failed attempts in a row (1 or more).
        func delay(after failures: Int) -> TimeAmount {
            let doubled = Double(first.nanoseconds) * Double(1 << min(max(failures - 1, 0), 20))
            let ceiling = min(doubled, Double(cap.nanoseconds))
            return .nanoseconds(Int64(ceiling * Double.random(in: 0.5...1.0)))
        }
    }

    private struct State {
        var current: Current?
        /// Why the last attempt failed, and how many failed in a row.
        var lastError: String?
        var failures = 0
        /// The generation whose expiry has been said on stderr.
        var expirySaid = 0
        /// Which `start` the timers belong to: `stop` and a new `start` make old ones do nothing.
        var epoch = 0
    }

    private let state: NIOLockedValueBox<State>
    private let issue: @Sendable (any EventLoop) -> EventLoopFuture<WorkloadIdentity>
    private let backoff: Backoff
    private let now: @Sendable () -> Date
    private let say: @Sendable (String) -> Void
    /// The identity asked for (known before any certificate arrives).
    public let name: String

    /// An identity issued at once by `issue` (tests and tools that hold an authority).
    public convenience init(issue: @escaping @Sendable () throws -> WorkloadIdentity) throws {
        let first = try issue()
        self.init(name: first.name, first: first) { loop in loop.makeCompletedFuture { try issue() } }
    }

    /// An identity the identity service signs: none until `start(on:)` has got the first one.
    /// `now` is the clock the certificate's dates are judged by.
    public convenience init(client: IdentityClient, backoff: Backoff = Backoff(), now: @escaping @Sendable () -> Date = { Date() },
                            say: @escaping @Sendable (String) -> Void = { sayOnStderr("meshproxy: " + $0) }) {
        self.init(name: client.name, first: nil, backoff: backoff, now: now, say: say) { loop in client.fetch(on: loop) }
    }

    init(name: String, first: WorkloadIdentity?, backoff: Backoff = Backoff(), now: @escaping @Sendable () -> Date = { Date() },
         say: @escaping @Sendable (String) -> Void = { sayOnStderr("meshproxy: " + $0) },
         issue: @escaping @Sendable (any EventLoop) -> EventLoopFuture<WorkloadIdentity>) {
        self.name = name
        self.issue = issue
        self.backoff = backoff
        self.now = now
        self.say = say
        var initial = State()
        if let first, let contexts = try? Self.contexts(first, generation: 1) { initial.current = contexts }
        state = NIOLockedValueBox(initial)
    }

    private static func contexts(_ identity: WorkloadIdentity, generation: Int) throws -> Current {
        Current(identity: identity, server: try identity.serverContext(), client: try identity.clientContext(), generation: generation)
    }

    /// The certificate held, usable or not (for the gauges).
    public var latest: Current? { state.withLockedValue { $0.current } }

    /// The certificate, when there is one and today is within its dates; nil otherwise (the
    /// first time an expired one is found, stderr says so).
    public var usable: Current? {
        let (current, expired) = state.withLockedValue { s -> (Current?, Bool) in
            guard let c = s.current else { return (nil, false) }
            let t = now()
            guard t >= c.identity.notValidBefore, t < c.identity.notValidAfter else {
                defer { s.expirySaid = c.generation }
                return (nil, t >= c.identity.notValidAfter && s.expirySaid != c.generation)
            }
            return (c, false)
        }
        if expired, let c = latest {
            say("identity: the certificate for \(name) expired at \(Self.iso(c.identity.notValidAfter)); mTLS is off until a new one arrives")
        }
        return current
    }

    /// Why this proxy is not ready for meshed traffic; nil when it has a valid certificate.
    public var notReadyReason: String? {
        if usable != nil { return nil }
        let (current, error, failures) = state.withLockedValue { ($0.current, $0.lastError, $0.failures) }
        if let c = current {
            let t = now()
            if t < c.identity.notValidBefore { return "the certificate for \(name) is not valid before \(Self.iso(c.identity.notValidBefore))" }
            return "the certificate for \(name) expired at \(Self.iso(c.identity.notValidAfter))" + (error.map { "; renewing failed: \($0)" } ?? "")
        }
        return "no certificate for \(name) yet" + (error.map { " (\(failures) attempt(s) failed; last: \($0))" } ?? " (asking the identity service)")
    }

    /// Waits until there is a usable certificate, or `timeout` passed; whether there is one.
    public func waitUntilUsable(timeout: TimeAmount) async -> Bool {
        let deadline = NIODeadline.now() + timeout
        while usable == nil {
            guard NIODeadline.now() < deadline else { return false }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return true
    }

    /// Replaces the certificate now (blocking: tests and tools; the proxy renews with `start`).
    public func rotate() throws {
        let next = try issue(NIOSingletons.posixEventLoopGroup.next()).wait()
        try install(next)
    }

    private func install(_ next: WorkloadIdentity) throws {
        let generation = (latest?.generation ?? 0) + 1
        let current = try Self.contexts(next, generation: generation)
        state.withLockedValue {
            $0.current = current
            $0.lastError = nil
            $0.failures = 0
        }
    }

    /// Gets the first certificate if there is none, then renews at two thirds of each
    /// certificate's lifetime, all timed on `loop`, until the loop stops. A failed attempt is
    /// tried again after `backoff`; a certificate still valid stays in use meanwhile.
    public func start(on loop: any EventLoop) {
        let epoch = state.withLockedValue { s -> Int in
            s.epoch += 1
            return s.epoch
        }
        loop.execute { [self] in
            if latest == nil { attempt(on: loop, epoch) } else { scheduleRenewal(on: loop, epoch) }
        }
    }

    /// Stops asking for certificates (the proxy stopped); the one held stays as it is.
    public func stop() {
        state.withLockedValue { $0.epoch += 1 }
    }

    private func running(_ epoch: Int) -> Bool { state.withLockedValue { $0.epoch == epoch } }

    private func attempt(on loop: any EventLoop, _ epoch: Int) {
        guard running(epoch) else { return }
        issue(loop).hop(to: loop).assumeIsolated().whenComplete { [self] result in
            guard running(epoch) else { return }
            do {
                let first = latest == nil
                let next = try result.get()
                try install(next)
                if first { say("identity: certified as \(next.name) until \(Self.iso(next.notValidAfter)); mTLS is on") }
                scheduleRenewal(on: loop, epoch)
                scheduleExpiryCheck(on: loop, epoch)
            } catch {
                let failures = state.withLockedValue { s -> Int in
                    s.lastError = "\(error)"
                    s.failures += 1
                    return s.failures
                }
                let wait = backoff.delay(after: failures)
                if failures == 1 || failures % 10 == 0 {
                    say("identity: \(error); trying again in \(Double(wait.nanoseconds / 1_000_000) / 1000) s")
                }
                loop.scheduleTask(in: wait) { [self] in attempt(on: loop, epoch) }
            }
        }
    }

    private func scheduleRenewal(on loop: any EventLoop, _ epoch: Int) {
        guard let c = latest?.identity else { return }
        let lifetime = c.notValidAfter.timeIntervalSince(c.notValidBefore)
        let due = c.notValidBefore.addingTimeInterval(lifetime * 2 / 3).timeIntervalSince(now())
        loop.scheduleTask(in: .milliseconds(Int64(min(max(0.05, due), 365 * 86_400) * 1000))) { [self] in attempt(on: loop, epoch) }
    }

    /// At the certificate's end, says so if no renewal replaced it.
    private func scheduleExpiryCheck(on loop: any EventLoop, _ epoch: Int) {
        guard let c = latest else { return }
        let left = c.identity.notValidAfter.timeIntervalSince(now())
        loop.scheduleTask(in: .milliseconds(Int64(min(max(0, left), 365 * 86_400) * 1000) + 10)) { [self] in
            if running(epoch), latest?.generation == c.generation { _ = usable }
        }
    }

    static func iso(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

/// On a listener that takes both: the first byte of a connection says whether it is TLS (a
/// handshake record, 0x16) or plaintext; TLS connections get the server side of mTLS, as
/// Linkerd's inbound detects meshed peers. While the proxy has no valid certificate, TLS
/// connections are closed (counted as failed handshakes); plaintext goes on.
final class TLSDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let context: @Sendable () -> NIOSSLContext?
    private let onRefused: @Sendable () -> Void

    init(identity: ProxyIdentity, onRefused: @escaping @Sendable () -> Void = {}) {
        self.context = { identity.usable?.server }
        self.onRefused = onRefused
    }

    init(context: @escaping @Sendable () -> NIOSSLContext?) {
        self.context = context
        self.onRefused = {}
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytesView.first == 0x16 {
            guard let tls = self.context() else {
                // A fatal handshake_failure alert, so the peer's TLS says so rather than "reset".
                onRefused()
                let alert = context.channel.allocator.buffer(bytes: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
                context.writeAndFlush(NIOAny(alert)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}
