public import NIOCore
import NIOConcurrencyHelpers

/// Sends requests at a fixed rate whatever the responses do (open loop): a slow server gets
/// more requests in flight, not fewer, so latency is not hidden by the generator waiting.
public final class OpenLoopGenerator: Sendable {
    public struct Totals: Sendable, Equatable {
        public var sent = 0
        public var byStatus: [Int: Int] = [:]
        public var errors = 0
    }

    private let task: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)
    private let totals = NIOLockedValueBox(Totals())

    /// Starts sending `rate` requests per second; `next` picks each request's path.
    public init(rate: Double, on eventLoop: any EventLoop, send: @escaping @Sendable (UInt64) -> EventLoopFuture<ClientResponse>) {
        let interval = TimeAmount.nanoseconds(Int64(1e9 / max(rate, 0.001)))
        let counter = NIOLockedValueBox<UInt64>(0)
        let totals = self.totals
        let repeated = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            let n = counter.withLockedValue { c in
                c += 1
                return c
            }
            totals.withLockedValue { $0.sent += 1 }
            send(n).whenComplete { result in
                totals.withLockedValue { t in
                    switch result {
                    case .success(let r): t.byStatus[r.status, default: 0] += 1
                    case .failure: t.errors += 1
                    }
                }
            }
        }
        task.withLockedValue { $0 = repeated }
    }

    /// What has been sent and answered so far.
    public var snapshot: Totals { totals.withLockedValue { $0 } }

    public func stop() {
        task.withLockedValue { t in
            t?.cancel()
            t = nil
        }
    }
}
