public import NIOCore
import NIOConcurrencyHelpers

/// Sends requests at a fixed rate whatever the responses do (open loop): a slow server gets
/// more requests in flight, not fewer. Each request has an intended send time (start + n/rate);
/// latency measured from it includes any time the generator itself fell behind, so slowness is
/// never hidden by waiting (no coordinated omission).
public final class OpenLoopGenerator: Sendable {
    public struct Totals: Sendable, Equatable {
        public var sent = 0
        public var byStatus: [Int: Int] = [:]
        public var errors = 0
        /// Sent and not yet answered.
        public var inFlight: Int { sent - byStatus.values.reduce(0, +) - errors }
    }

    private let stopped = NIOLockedValueBox(false)
    private let totals = NIOLockedValueBox(Totals())

    /// Starts sending `rate` requests per second on `eventLoop`; `send` gets the request's number and
    /// its intended send time, and `completed` (optional) the response or error and that time.
    public init(rate: Double, on eventLoop: any EventLoop, limit: Int? = nil,
                send: @escaping @Sendable (UInt64, NIODeadline) -> EventLoopFuture<ClientResponse>,
                completed: (@Sendable (Result<ClientResponse, any Error>, NIODeadline) -> Void)? = nil) {
        let interval = Int64(1e9 / max(rate, 0.001))
        let start = NIODeadline.now()
        let totals = self.totals
        let stopped = self.stopped
        @Sendable func tick(_ next: UInt64) {
            guard !stopped.withLockedValue({ $0 }) else { return }
            var n = next
            // Send everything that is due (more than one when the loop fell behind), then sleep to the next deadline.
            while start + .nanoseconds(Int64(n) * interval) <= .now() {
                if let limit, n >= UInt64(limit) { return }
                let intended = start + .nanoseconds(Int64(n) * interval)
                totals.withLockedValue { $0.sent += 1 }
                send(n, intended).whenComplete { result in
                    totals.withLockedValue { t in
                        switch result {
                        case .success(let r): t.byStatus[r.status, default: 0] += 1
                        case .failure: t.errors += 1
                        }
                    }
                    completed?(result, intended)
                }
                n += 1
            }
            eventLoop.scheduleTask(deadline: start + .nanoseconds(Int64(n) * interval)) { tick(n) }
        }
        guard rate > 0 else { return }  // a rate of 0 sends nothing
        eventLoop.execute { tick(0) }
    }

    /// Convenience for callers that need no intended time.
    public convenience init(rate: Double, on eventLoop: any EventLoop, send: @escaping @Sendable (UInt64) -> EventLoopFuture<ClientResponse>) {
        self.init(rate: rate, on: eventLoop, limit: nil, send: { n, _ in send(n) }, completed: nil)
    }

    /// What has been sent and answered so far.
    public var snapshot: Totals { totals.withLockedValue { $0 } }

    public func stop() {
        stopped.withLockedValue { $0 = true }
    }
}
