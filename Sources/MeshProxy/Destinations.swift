import YAMLTree

/// One address a backend can be reached at, with the labels the destination service gives it
/// (they become the `dst_*` labels of outbound metrics, as linkerd-destination's labels do).
public struct Endpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var labels: [String: String]
    /// The workload identity the endpoint's proxy proves over mTLS (nil: not meshed, plaintext).
    public var identity: String?

    public init(host: String, port: Int, labels: [String: String] = [:], identity: String? = nil) {
        self.host = host
        self.port = port
        self.labels = labels
        self.identity = identity
    }

    public var address: String { "\(host):\(port)" }
}

/// A named set of endpoints with a traffic-split weight.
public struct Backend: Sendable, Hashable {
    public var name: String
    public var weight: Int
    public var endpoints: [Endpoint]

    public init(name: String, weight: Int = 1, endpoints: [Endpoint]) {
        self.name = name
        self.weight = weight
        self.endpoints = endpoints
    }
}

/// Where outbound traffic for an authority goes: the stand-in for linkerd-destination.
public struct Destination: Sendable, Hashable {
    /// `host:port`, as requests name it in their Host header (`:80` when they give no port).
    public var authority: String
    public var backends: [Backend]
    /// How long a request may wait for its response to begin before it fails with 504 (nil: no limit).
    public var timeoutMs: Int64?
    /// How many times a request without a body (GET, HEAD, OPTIONS, DELETE) answered 5xx may be
    /// tried again, within the authority's retry budget (0: never).
    public var retries: Int

    public init(authority: String, backends: [Backend], timeoutMs: Int64? = nil, retries: Int = 0) {
        self.authority = authority
        self.backends = backends
        self.timeoutMs = timeoutMs
        self.retries = retries
    }
}

/// `500ms`, `2s`, `1m` → milliseconds.
func parseTimeout(_ text: String) -> Int64? {
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        // From a file: finite, and at most a day (a larger number must not trap the conversion).
        guard let v = Double(text.dropLast(suffix.count)), v.isFinite, v > 0, v * scale <= Double(maxTimeoutMs) else { return nil }
        return max(1, Int64(v * scale))
    }
    return nil
}

/// The longest route timeout a destinations file may set (24 h).
let maxTimeoutMs: Int64 = 86_400_000

/// The largest backend weight (as the admin API's `POST /split` takes).
let maxBackendWeight = 1_000_000

/// The destinations file: authorities and their backends.
///
/// ```yaml
/// destinations:
///   - authority: voting-svc.emojivoto.svc.cluster.local:8080
///     backends:
///       - name: voting
///         weight: 100
///         endpoints:                       # (a destination may also set timeout: 500ms, retries: 2)
///           - address: 127.0.0.1:4143
///             labels: {namespace: emojivoto, deployment: voting, pod: voting-0, service: voting-svc}
///             identity: voting.emojivoto.serviceaccount.identity.linkerd.cluster.local   # mTLS (optional)
/// ```
public struct DestinationTable: Sendable {
    public var destinations: [String: Destination]

    public init(_ destinations: [Destination] = []) {
        self.destinations = Dictionary(destinations.map { (Self.normalize($0.authority), $0) }, uniquingKeysWith: { $1 })
    }

    /// The destination for a request's authority (Host header), with `:80` assumed when it has no port.
    public func lookup(_ authority: String) -> Destination? {
        destinations[Self.normalize(authority)]
    }

    static func normalize(_ authority: String) -> String {
        let lower = authority.lowercased()
        if lower.hasPrefix("[") {  // IPv6 literal
            return lower.contains("]:") ? lower : lower + ":80"
        }
        return lower.contains(":") ? lower : lower + ":80"
    }

    /// Reads a destinations file's YAML (or JSON, which is YAML too).
    public static func parse(yaml text: String, file: String = "destinations") throws(ConfigError) -> DestinationTable {
        let root: Any?
        do {
            root = try YAMLTree.load(text)
        } catch {
            throw ConfigError("\(file): not valid YAML: \(error)")
        }
        guard let map = root as? [String: Any], let list = map["destinations"] as? [Any] else {
            throw ConfigError("\(file): expected a top-level 'destinations:' list")
        }
        var out: [Destination] = []
        for (i, item) in list.enumerated() {
            let at = "\(file): destinations[\(i)]"
            guard let d = item as? [String: Any], let authority = d["authority"] as? String, !authority.isEmpty else {
                throw ConfigError("\(at): needs an 'authority: host:port'")
            }
            guard let backends = d["backends"] as? [Any], !backends.isEmpty else {
                throw ConfigError("\(at) (\(authority)): needs a non-empty 'backends:' list")
            }
            var timeoutMs: Int64?
            if let t = d["timeout"] {
                guard let ms = parseTimeout("\(t)") else { throw ConfigError("\(at) (\(authority)): timeout \(t): use e.g. 500ms, 2s or 1m (at most 24h)") }
                timeoutMs = ms
            }
            var retries = 0
            if let r = d["retries"] {
                guard let n = r as? Int, (0...5).contains(n) else { throw ConfigError("\(at) (\(authority)): retries must be 0 to 5") }
                retries = n
            }
            var parsed: [Backend] = []
            for (j, b) in backends.enumerated() {
                let bat = "\(at).backends[\(j)]"
                guard let b = b as? [String: Any] else { throw ConfigError("\(bat): expected a map") }
                let name = (b["name"] as? String) ?? authority
                let weight = (b["weight"] as? Int) ?? 1
                guard (0...maxBackendWeight).contains(weight) else { throw ConfigError("\(bat): weight must be a whole number from 0 to \(maxBackendWeight)") }
                guard let eps = b["endpoints"] as? [Any], !eps.isEmpty else {
                    throw ConfigError("\(bat): needs a non-empty 'endpoints:' list")
                }
                var endpoints: [Endpoint] = []
                for (k, e) in eps.enumerated() {
                    let eat = "\(bat).endpoints[\(k)]"
                    guard let e = e as? [String: Any], let address = e["address"] as? String,
                          let parsedAddress = HostPort(address) else {
                        throw ConfigError("\(eat): needs 'address: host:port'")
                    }
                    var labels: [String: String] = [:]
                    if let l = e["labels"] as? [String: Any] {
                        for (k, v) in l { labels[k] = "\(v)" }
                    }
                    if let identity = e["identity"], !(identity is String) { throw ConfigError("\(eat): 'identity' must be a name") }
                    endpoints.append(Endpoint(host: parsedAddress.host, port: parsedAddress.port, labels: labels, identity: e["identity"] as? String))
                }
                parsed.append(Backend(name: name, weight: weight, endpoints: endpoints))
            }
            out.append(Destination(authority: authority, backends: parsed, timeoutMs: timeoutMs, retries: retries))
        }
        return DestinationTable(out)
    }
}

/// A `host:port` pair, as flags and files write addresses.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `:port` (meaning 127.0.0.1).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A configuration mistake, with a message that names the file and the place in it.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
