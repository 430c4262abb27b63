import FoundationEssentials
public import MeshIdentity
import NIOConcurrencyHelpers
public import NIOCore
import NIOSSL
import Dispatch

/// The proxy's workload identity: its current certificate and TLS contexts, renewed before the
/// certificate expires. New connections take the newest contexts; open ones keep theirs, so a
/// rotation drops nothing.
public final class ProxyIdentity: Sendable {
    public struct Current: Sendable {
        public let identity: WorkloadIdentity
        let server: NIOSSLContext
        let client: NIOSSLContext
        /// How many certificates this proxy has had (1 before the first rotation).
        public let generation: Int
    }

    private let state: NIOLockedValueBox<Current>
    private let issue: @Sendable () throws -> WorkloadIdentity

    /// `issue` makes a fresh certificate (the stand-in for a CSR to linkerd-identity).
    public init(issue: @escaping @Sendable () throws -> WorkloadIdentity) throws {
        self.issue = issue
        let first = try issue()
        state = NIOLockedValueBox(Current(identity: first, server: try first.serverContext(), client: try first.clientContext(), generation: 1))
    }

    public var current: Current { state.withLockedValue { $0 } }
    public var name: String { current.identity.name }

    /// Replaces the certificate now.
    public func rotate() throws {
        let next = try issue()
        let current = Current(identity: next, server: try next.serverContext(), client: try next.clientContext(), generation: self.current.generation + 1)
        state.withLockedValue { $0 = current }
    }

    /// Renews at two thirds of each certificate's lifetime, timed on `loop`, until the loop
    /// stops. The renewal itself (a CSR to the identity service) runs on a global Dispatch queue,
    /// never on the loop. A failed renewal is retried in ten seconds (the old certificate is
    /// still valid meanwhile).
    public func scheduleRotation(on loop: any EventLoop) {
        let c = current.identity
        let lifetime = c.notValidAfter.timeIntervalSince(c.notValidBefore)
        let due = c.notValidBefore.addingTimeInterval(lifetime * 2 / 3).timeIntervalSinceNow
        loop.scheduleTask(in: .milliseconds(Int64(max(0.05, due) * 1000))) { [self] in
            DispatchQueue.global().async { [self] in
                let renewed = (try? rotate()) != nil
                // Back on the loop to schedule the next one: from this thread, a loop that shut
                // down meanwhile would be handed a timer whose promise nobody completes.
                loop.execute { [self] in
                    if renewed {
                        scheduleRotation(on: loop)
                    } else {
                        _ = loop.scheduleTask(in: .seconds(10)) { [self] in scheduleRotation(on: loop) }
                    }
                }
            }
        }
    }
}

/// On a listener that takes both: the first byte of a connection says whether it is TLS (a
/// handshake record, 0x16) or plaintext; TLS connections get the server side of mTLS, as
/// Linkerd's inbound detects meshed peers.
final class TLSDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let identity: ProxyIdentity

    init(identity: ProxyIdentity) {
        self.identity = identity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytesView.first == 0x16 {
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: identity.current.server), position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}
