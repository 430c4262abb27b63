/// Tap events as `linkerd viz tap` prints them without `-o json` (its Go format strings).
public enum TapText {
    /// One line: `req id=…`, `rsp id=…` or `end id=…`. With `wide`, the peers' labels follow
    /// (`src_k=v`, then `dst_k=v`, then `rt_k=v`, each sorted).
    public static func line(_ e: TapEvent, wide: Bool = false) -> String {
        let tlsLabel = e.direction == .inbound ? e.source.metadata?["tls"] : e.destination.metadata?["tls"]
        let flow = "proxy=\(e.direction == .inbound ? "in " : "out") src=\(e.source.address) dst=\(e.destination.address) tls=\(tlsLabel ?? "")"
        var line: String
        switch e.http {
        case let .requestInit(id, method, _, authority, path, _):
            line = "req id=\(id.base):\(id.stream) \(flow) :method=\(method) :authority=\(authority) :path=\(path)"
        case let .responseInit(id, since, status, _):
            line = "rsp id=\(id.base):\(id.stream) \(flow) :status=\(status) latency=\(since / 1000)µs"
        case let .responseEnd(id, _, sinceResponse, bytes, grpc, reset, _):
            if let grpc {
                line = "end id=\(id.base):\(id.stream) \(flow) grpc-status=\(grpcCodeName(grpc)) duration=\(sinceResponse / 1000)µs response-length=\(bytes)B"
            } else if let reset {
                line = "end id=\(id.base):\(id.stream) \(flow) reset-error=\(reset) duration=\(sinceResponse / 1000)µs response-length=\(bytes)B"
            } else {
                line = "end id=\(id.base):\(id.stream) \(flow) duration=\(sinceResponse / 1000)µs response-length=\(bytes)B"
            }
        }
        if wide {
            var extra: [String] = []
            for (prefix, map) in [("src", e.source.metadata), ("dst", e.destination.metadata), ("rt", e.routeMeta)] {
                for (k, v) in (map ?? [:]).sorted(by: { $0.key < $1.key }) { extra.append("\(prefix)_\(k)=\(v)") }
            }
            if !extra.isEmpty { line += " " + extra.joined(separator: " ") }
        }
        return line
    }

    /// gRPC status names as Go's `codes.Code` prints them (`Code(666)` when out of range).
    public static func grpcCodeName(_ code: Int) -> String {
        let names = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
                     "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
                     "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]
        return names.indices.contains(code) ? names[code] : "Code(\(code))"
    }
}

/// What a tap subscriber asks for: DESIGN's wire protocol's first line.
public struct TapFilter: Sendable, Equatable {
    public var namespace: String?
    public var deployment: String?
    public var authority: String?
    /// A path prefix.
    public var path: String?
    public var method: String?
    public var direction: TapDirection?
    /// Requests per second at most (default 100, as linkerd's).
    public var maxRps: Double = 100
    /// A token, when the proxy's tap listener requires one.
    public var token: String?

    public init(namespace: String? = nil, deployment: String? = nil, authority: String? = nil, path: String? = nil,
                method: String? = nil, direction: TapDirection? = nil, maxRps: Double = 100, token: String? = nil) {
        self.namespace = namespace
        self.deployment = deployment
        self.authority = authority
        self.path = path
        self.method = method
        self.direction = direction
        self.maxRps = maxRps
        self.token = token
    }

    /// Whether a request (its init event) passes: workload labels are looked up in the peer the
    /// request is about (the destination inbound, the source outbound) and in the other peer.
    public func matches(_ e: TapEvent) -> Bool {
        guard case let .requestInit(_, method, _, authority, path, _) = e.http else { return true }
        if let direction, direction != e.direction { return false }
        if let m = self.method, m.uppercased() != method.uppercased() { return false }
        if let a = self.authority, a != authority { return false }
        if let p = self.path, !path.hasPrefix(p) { return false }
        func has(_ key: String, _ value: String?) -> Bool {
            guard let value else { return true }
            return e.source.metadata?[key] == value || e.destination.metadata?[key] == value
        }
        return has("namespace", namespace) && has("deployment", deployment)
    }

    /// The compact JSON line a client sends.
    public var json: String {
        var fields: [(String, JSONValue)] = []
        for (k, v) in [("namespace", namespace), ("deployment", deployment), ("authority", authority), ("path", path), ("method", method),
                       ("direction", direction?.rawValue.lowercased()), ("token", token)] {
            if let v { fields.append((k, .string(v))) }
        }
        let rps = maxRps == maxRps.rounded() ? String(Int64(maxRps)) : "\(maxRps)"
        return JSONValue.object(fields).render(pretty: false).dropLast() + (fields.isEmpty ? "" : ",") + "\"maxRps\":\(rps)}"
    }

    /// Reads a client's filter line.
    public static func decode(_ object: [String: Any]) -> Result<TapFilter, TapDecodeError> {
        var f = TapFilter()
        f.namespace = object["namespace"] as? String
        f.deployment = object["deployment"] as? String
        f.authority = object["authority"] as? String
        f.path = object["path"] as? String
        f.method = object["method"] as? String
        f.token = object["token"] as? String
        if let d = object["direction"] as? String {
            guard let dir = TapDirection(rawValue: d.uppercased()) else { return .failure(TapDecodeError("direction must be inbound or outbound")) }
            f.direction = dir
        }
        if let r = object["maxRps"] {
            guard let rps = (r as? Double) ?? (r as? Int).map(Double.init), rps > 0, rps.isFinite else {
                return .failure(TapDecodeError("maxRps must be a positive number"))
            }
            f.maxRps = rps
        }
        return .success(f)
    }
}
