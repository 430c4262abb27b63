/// One side of a tapped request: an address and what is known of the workload there.
public struct TapPeer: Sendable, Equatable {
    public var ip: String
    public var port: Int
    /// Labels of the workload (`pod`, `deployment`, `namespace`, `tls`, …); nil when unknown.
    public var metadata: [String: String]?

    public init(ip: String, port: Int, metadata: [String: String]? = nil) {
        self.ip = ip
        self.port = port
        self.metadata = metadata
    }

    /// `10.0.0.1:80`, or `[ff01::1]:80` for IPv6, as linkerd prints addresses.
    public var address: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}

/// A header as tap carries it: a text value, or bytes that are not valid UTF-8 (base64 in JSON).
public struct TapHeader: Sendable, Equatable {
    public var name: String
    public var value: String
    public var isBinary: Bool

    public init(name: String, value: String, isBinary: Bool = false) {
        self.name = name
        self.value = value
        self.isBinary = isBinary
    }
}

/// `base:stream`, as linkerd numbers tapped requests.
public struct TapStreamID: Sendable, Hashable {
    public var base: UInt32
    public var stream: UInt64

    public init(base: UInt32, stream: UInt64) {
        self.base = base
        self.stream = stream
    }
}

/// What happened: a request began, its response began, or its response ended.
public enum TapHTTPEvent: Sendable, Equatable {
    case requestInit(id: TapStreamID, method: String, scheme: String, authority: String, path: String, headers: [TapHeader])
    case responseInit(id: TapStreamID, sinceRequestInitNanos: Int64, httpStatus: Int, headers: [TapHeader])
    /// `grpcStatus` when the stream ended with one; `resetErrorCode` when it was reset.
    case responseEnd(id: TapStreamID, sinceRequestInitNanos: Int64, sinceResponseInitNanos: Int64, responseBytes: UInt64,
                     grpcStatus: Int?, resetErrorCode: Int?, trailers: [TapHeader])

    public var id: TapStreamID {
        switch self {
        case .requestInit(let id, _, _, _, _, _), .responseInit(let id, _, _, _), .responseEnd(let id, _, _, _, _, _, _): return id
        }
    }
}

public enum TapDirection: String, Sendable {
    case inbound = "INBOUND"
    case outbound = "OUTBOUND"
}

/// One tap event, in the shape `linkerd viz tap -o json` prints.
public struct TapEvent: Sendable, Equatable {
    public var source: TapPeer
    public var destination: TapPeer
    public var routeMeta: [String: String]?
    public var direction: TapDirection
    public var http: TapHTTPEvent

    public init(source: TapPeer, destination: TapPeer, routeMeta: [String: String]? = nil, direction: TapDirection, http: TapHTTPEvent) {
        self.source = source
        self.destination = destination
        self.routeMeta = routeMeta
        self.direction = direction
        self.http = http
    }

    /// What the events of one request share (its peers and stream id), as linkerd viz top
    /// matches a request's end to its start.
    public var requestKey: String {
        "\(source.address)|\(destination.address)|\(http.id.base):\(http.id.stream)"
    }
}

/// Headers that carry credentials: tap never shows their values.
public let sensitiveHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

/// The value tap shows in place of a credential.
public let redactedValue = "[REDACTED]"

/// Headers with the values of credential headers replaced, whatever their case.
public func redact(_ headers: [TapHeader]) -> [TapHeader] {
    headers.map { h in
        sensitiveHeaders.contains(h.name.lowercased()) ? TapHeader(name: h.name, value: redactedValue) : h
    }
}
