/// One kind of response in a window: an HTTP status, a gRPC status or a stream error, whether
/// Linkerd counts it a failure, and how many per second.
public struct ResponseShare: Sendable, Equatable {
    /// `HTTP 503`, `gRPC 14 UNAVAILABLE`, `error timeout`.
    public var label: String
    public var failure: Bool
    public var perSecond: Double

    public init(label: String, failure: Bool, perSecond: Double) {
        self.label = label
        self.failure = failure
        self.perSecond = perSecond
    }
}

extension MetricStore {
    /// The responses behind a success rate, by what they were: `sum(increase(response_total{…}[w]))
    /// by (…, status_code, grpc_status, error, classification)`, per group of `groupBy`, failures
    /// first, then the most frequent. This is what answers "why is this edge failing".
    public func responseBreakdown(_ matchers: [Matcher], groupBy: [String], windowMs: Int64, at end: Int64) -> [[String]: [ResponseShare]] {
        let start = end - windowMs
        let windowSeconds = Double(windowMs) / 1000
        let kinds = ["status_code", "grpc_status", "error"]
        let responses = selection("response_total", matchers, groupBy: groupBy + kinds, extra: "classification")
        var totals: [[String]: [String: (failure: Bool, count: Double)]] = [:]
        for (i, id) in responses.ids.enumerated() {
            guard let inc = PromQL.increase(points(of: id, from: start, through: end), start: start, end: end), inc > 0 else { continue }
            let g = responses.groups[Int(responses.group[i])]
            let failure = responses.extraValues[Int(responses.extra[i])] == "failure"
            let label = Self.responseLabel(status: g[groupBy.count], grpc: g[groupBy.count + 1], error: g[groupBy.count + 2], failure: failure)
            let key = Array(g.prefix(groupBy.count))
            var entry = totals[key]?[label] ?? (failure, 0)
            entry.count += inc
            entry.failure = entry.failure || failure
            totals[key, default: [:]][label] = entry
        }
        return totals.mapValues { byLabel in
            byLabel.map { ResponseShare(label: $0.key, failure: $0.value.failure, perSecond: $0.value.count / windowSeconds) }
                .sorted { ($0.failure ? 0 : 1, -$0.perSecond, $0.label) < ($1.failure ? 0 : 1, -$1.perSecond, $1.label) }
        }
    }

    static let grpcNames = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                            "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                            "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]

    /// `error timeout` over `gRPC 14 UNAVAILABLE` over `HTTP 503`: the most telling of the labels.
    static func responseLabel(status: String, grpc: String, error: String, failure: Bool) -> String {
        if !error.isEmpty { return "error \(error)" }
        if !grpc.isEmpty {
            let name = Int(grpc).flatMap { $0 >= 0 && $0 < grpcNames.count ? grpcNames[$0] : nil }
            return "gRPC \(grpc)" + (name.map { " \($0)" } ?? "")
        }
        return status.isEmpty ? (failure ? "failed (no status)" : "succeeded (no status)") : "HTTP \(status)"
    }
}
