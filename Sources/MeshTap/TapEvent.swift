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

/// What tap never shows: the values of credential headers (a fixed list, names like a token's or
/// a secret's, and names the proxy's operator adds), and the values of query parameters named
/// like secrets (`?access_token=…`, `&api_key=…`, `&sig=…`). Tap never carries bodies.
public struct TapRedaction: Sendable {
    /// Headers that carry credentials by name.
    public static let credentialHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                                                         "x-auth-token", "x-csrf-token", "x-xsrf-token", "x-amz-security-token"]
    /// The credential headers this redaction hides, lowercase.
    public let headerNames: Set<String>

    /// The built-in list, and `extraHeaders` (any case).
    public init(extraHeaders: [String] = []) {
        headerNames = Self.credentialHeaders.union(extraHeaders.map { $0.lowercased() })
    }

    /// Headers with the values of credential headers replaced, whatever their case.
    public func redact(_ headers: [TapHeader]) -> [TapHeader] {
        headers.map { h in hidesHeader(h.name) ? TapHeader(name: h.name, value: redactedValue) : h }
    }

    public func hidesHeader(_ name: String) -> Bool {
        let n = name.lowercased()
        return headerNames.contains(n) || ["token", "secret", "password", "api-key", "apikey"].contains { n.contains($0) }
    }

    /// `path` with the values of its query parameters named like secrets replaced.
    public func redactQuery(_ path: String) -> String {
        guard let q = path.firstIndex(of: "?") else { return path }
        let query = path[path.index(after: q)...]
        guard !query.isEmpty else { return path }
        var changed = false
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> Substring in
            guard let eq = part.firstIndex(of: "="), Self.isSecretParameter(String(part[..<eq])) else { return part }
            changed = true
            return part[...eq] + redactedValue[...]
        }
        guard changed else { return path }
        return String(path[...q]) + parts.joined(separator: "&")
    }

    /// A query parameter whose name (percent-decoded, any case) says it holds a credential.
    public static func isSecretParameter(_ raw: String) -> Bool {
        let name = percentDecoded(raw).lowercased()
        if ["key", "sig", "signature", "code", "pass", "pwd", "auth", "jwt"].contains(name) { return true }
        return ["token", "secret", "passw", "apikey", "api_key", "api-key", "credential", "session"].contains { name.contains($0) }
    }

    private static func percentDecoded(_ s: String) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2, let hi = hex(bytes[bytes.startIndex]), let lo = hex(bytes[bytes.startIndex + 1]) {
                out.append(hi << 4 | lo)
                bytes.removeFirst(2)
            } else {
                out.append(b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
}

/// The built-in credential headers (see `TapRedaction`).
public let sensitiveHeaders = TapRedaction.credentialHeaders

/// The value tap shows in place of a credential.
public let redactedValue = "[REDACTED]"

/// Headers with the values of credential headers replaced, whatever their case (the built-in list).
public func redact(_ headers: [TapHeader]) -> [TapHeader] {
    TapRedaction().redact(headers)
}
