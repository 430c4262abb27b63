import FoundationEssentials
import MeshTap

/// The body of `POST /split` on the admin API: `{"authority": "host:port", "weights":
/// {"backend": 90, …}}`. Every weight comes from outside, so each must be a whole number from 0
/// to 1,000,000 (never a trapped conversion: 1e300, NaN, a string); anything else is refused with
/// the reason, which the admin API answers with 400.
public struct SplitRequest: Equatable, Sendable {
    public var authority: String
    public var weights: [String: Int]

    public static let maxWeight = 1_000_000

    public static func parse(_ body: [UInt8]) -> Result<SplitRequest, SplitRequestError> {
        guard let object = JSONTree.object(body),
              let authority = object["authority"] as? String, let weights = object["weights"] as? [String: Any] else {
            return .failure(SplitRequestError("expected a JSON object: authority (host:port) and weights (backend: number)"))
        }
        var parsed: [String: Int] = [:]
        for (k, v) in weights {
            guard let d = JSONTree.number(v), d.isFinite, d >= 0, d <= Double(maxWeight), d == d.rounded() else {
                return .failure(SplitRequestError("weight of \(k) must be a whole number from 0 to \(maxWeight)"))
            }
            parsed[k] = Int(d)
        }
        return .success(SplitRequest(authority: authority, weights: parsed))
    }
}

public struct SplitRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
