/// Why a stream failed in the proxy without a response: the `error` label of `response_total`,
/// as linkerd2-proxy names it.
public enum StreamError: String, Hashable, Sendable, Comparable {
    /// No response: the upstream refused, reset or closed, or the client went away.
    case unclassified
    /// The route's timeout, a connect timeout, or a request body that stalled.
    case timeout
    /// The mTLS handshake with the upstream failed.
    case tls

    public static func < (a: StreamError, b: StreamError) -> Bool { a.rawValue < b.rawValue }
}

/// How a response is classified, as linkerd2-proxy classifies it.
public struct ResponseClass: Hashable, Sendable {
    /// The HTTP status, nil when the stream failed before a response.
    public var status: Int?
    /// The gRPC status code, for gRPC responses.
    public var grpcStatus: Int?
    /// Why the stream failed without a response.
    public var error: StreamError?
    public var isFailure: Bool

    /// Linkerd's default gRPC failure codes: UNKNOWN, DEADLINE_EXCEEDED, PERMISSION_DENIED,
    /// INTERNAL, UNAVAILABLE, DATA_LOSS.
    public static let grpcFailureCodes: Set<Int> = [2, 4, 7, 13, 14, 15]

    /// An HTTP response: a failure when its status is 500–599.
    public static func http(status: Int) -> ResponseClass {
        let status = bounded(status)
        return ResponseClass(status: status, grpcStatus: nil, error: nil, isFailure: (500...599).contains(status))
    }

    /// A gRPC response: classified by `grpc-status`; without one, by its HTTP status (a 5xx from
    /// something that is not a gRPC server, e.g. a proxy or load balancer, is a failure).
    public static func grpc(status: Int, grpcStatus: Int?) -> ResponseClass {
        let status = bounded(status)
        // A code gRPC does not define is UNKNOWN, as gRPC's clients read it.
        let code = grpcStatus.map { (0...16).contains($0) ? $0 : 2 }
        return ResponseClass(status: status, grpcStatus: code, error: nil,
                             isFailure: code.map { grpcFailureCodes.contains($0) } ?? (500...599).contains(status))
    }

    /// Labels come from what upstreams answer, so they are bounded: a status outside HTTP's
    /// classes 1xx–5xx has no meaning a client could give it and is counted as 500.
    private static func bounded(_ status: Int) -> Int { (100...599).contains(status) ? status : 500 }

    /// A stream that failed without a response.
    public static func failed(_ error: StreamError) -> ResponseClass {
        ResponseClass(status: nil, grpcStatus: nil, error: error, isFailure: true)
    }
}
