public import MeshCanary
import Synchronization

/// A `WeightSetter` that keeps every split it was asked to set, and refuses them all once told to
/// (`failing`): the canary controller tested without a proxy's admin API.
public final class FakeWeightSetter: WeightSetter {
    private let state = Mutex<(calls: [[String: Int]], failure: String?)>(([], nil))

    public init() {}

    /// Every `weights` set, in order.
    public var calls: [[String: Int]] { state.withLock { $0.calls } }

    /// From now on every call throws `reason` (nil: succeeds again).
    public func failing(_ reason: String?) { state.withLock { $0.failure = reason } }

    public func set(authority: String, weights: [String: Int]) throws {
        let failure: String? = state.withLock { s in
            if s.failure == nil { s.calls.append(weights) }
            return s.failure
        }
        if let failure { throw Refused(description: failure) }
    }

    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }
}
