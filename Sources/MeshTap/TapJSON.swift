import FoundationEssentials

/// Reads and writes tap events as `linkerd viz tap -o json` does: compact (one per line) on the
/// wire, pretty (2-space indent, one object after another) for people and for linkerd's format.
public enum TapJSON {
    /// One event as a JSON object. `pretty` indents as linkerd does; compact is one line.
    public static func encode(_ e: TapEvent, pretty: Bool = false) -> String {
        var fields: [(String, JSONValue)] = [
            ("source", peer(e.source)),
            ("destination", peer(e.destination)),
            ("routeMeta", e.routeMeta.map { .object($0.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }) } ?? .null),
            ("proxyDirection", .string(e.direction.rawValue)),
        ]
        switch e.http {
        case let .requestInit(id, method, scheme, authority, path, headers):
            fields.append(("requestInitEvent", .object([
                ("id", streamID(id)), ("method", .string(method)), ("scheme", .string(scheme)),
                ("authority", .string(authority)), ("path", .string(path)), ("headers", headerList(headers)),
            ])))
        case let .responseInit(id, since, status, headers):
            fields.append(("responseInitEvent", .object([
                ("id", streamID(id)), ("sinceRequestInit", duration(since)), ("httpStatus", .int(Int64(status))),
                ("headers", headerList(headers)),
            ])))
        case let .responseEnd(id, sinceRequest, sinceResponse, bytes, grpc, reset, trailers):
            var end: [(String, JSONValue)] = [
                ("id", streamID(id)), ("sinceRequestInit", duration(sinceRequest)), ("sinceResponseInit", duration(sinceResponse)),
                ("responseBytes", .int(Int64(bytes))), ("trailers", headerList(trailers)),
            ]
            if let grpc { end.append(("grpcStatusCode", .int(Int64(grpc)))) }
            if let reset { end.append(("resetErrorCode", .int(Int64(reset)))) }
            fields.append(("responseEndEvent", .object(end)))
        }
        return JSONValue.object(fields).render(pretty: pretty)
    }

    /// An event from a decoded JSON object (linkerd's keys); nil when the object is not a tap event,
    /// an error naming the field when a duration is not one (`"infs"`, `1e300s`).
    public static func decode(_ object: [String: Any]) throws(TapDecodeError) -> TapEvent? {
        guard let source = peer(object["source"]), let destination = peer(object["destination"]) else { return nil }
        let direction = TapDirection(rawValue: object["proxyDirection"] as? String ?? "") ?? .inbound
        let routeMeta = (object["routeMeta"] as? [String: Any]).map { stringMap($0) }
        let http: TapHTTPEvent
        if let r = object["requestInitEvent"] as? [String: Any] {
            http = .requestInit(id: streamID(r["id"]), method: methodName(r["method"]), scheme: schemeName(r["scheme"]),
                                authority: r["authority"] as? String ?? "", path: r["path"] as? String ?? "",
                                headers: headers(r["headers"]))
        } else if let r = object["responseInitEvent"] as? [String: Any] {
            http = .responseInit(id: streamID(r["id"]), sinceRequestInitNanos: try nanos(r["sinceRequestInit"], field: "sinceRequestInit"),
                                 httpStatus: int(r["httpStatus"]) ?? 0, headers: headers(r["headers"]))
        } else if let r = object["responseEndEvent"] as? [String: Any] {
            var grpc = int(r["grpcStatusCode"])
            var reset = int(r["resetErrorCode"])
            if let eos = r["eos"] as? [String: Any] {  // the proto shape, as some tools print it
                grpc = grpc ?? int(eos["grpcStatusCode"])
                reset = reset ?? int(eos["resetErrorCode"])
            }
            http = .responseEnd(id: streamID(r["id"]), sinceRequestInitNanos: try nanos(r["sinceRequestInit"], field: "sinceRequestInit"),
                                sinceResponseInitNanos: try nanos(r["sinceResponseInit"], field: "sinceResponseInit"),
                                responseBytes: UInt64(max(0, int(r["responseBytes"]) ?? 0)), grpcStatus: grpc, resetErrorCode: reset,
                                trailers: headers(r["trailers"]))
        } else {
            return nil
        }
        return TapEvent(source: source, destination: destination, routeMeta: routeMeta, direction: direction, http: http)
    }

    /// One compact line; nil with the reason when it is not a tap event.
    public static func decode(line: [UInt8]) -> Result<TapEvent, TapDecodeError> {
        guard let object = JSONTree.object(line) else {
            return .failure(TapDecodeError("not a JSON object"))
        }
        do {
            guard let event = try decode(object) else {
                return .failure(TapDecodeError("a JSON object, but not a tap event (no source/destination or no *Event)"))
            }
            return .success(event)
        } catch {
            return .failure(error)
        }
    }

    // MARK: encoding helpers

    static func peer(_ p: TapPeer) -> JSONValue {
        .object([("ip", .string(p.ip)), ("port", .int(Int64(p.port))),
                 ("metadata", p.metadata.map { .object($0.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }) } ?? .null)])
    }

    static func streamID(_ id: TapStreamID) -> JSONValue {
        .object([("base", .int(Int64(id.base))), ("stream", .int(Int64(id.stream)))])
    }

    /// A protobuf Duration as Go's jsonpb prints it: zero fields left out.
    static func duration(_ nanos: Int64) -> JSONValue {
        var f: [(String, JSONValue)] = []
        if nanos / 1_000_000_000 != 0 { f.append(("seconds", .int(nanos / 1_000_000_000))) }
        if nanos % 1_000_000_000 != 0 { f.append(("nanos", .int(nanos % 1_000_000_000))) }
        return .object(f)
    }

    static func headerList(_ headers: [TapHeader]) -> JSONValue {
        .array(headers.map { h in
            h.isBinary ? .object([("name", .string(h.name)), ("valueBin", .string(h.value))])
                       : .object([("name", .string(h.name)), ("valueStr", .string(h.value))])
        })
    }

    // MARK: decoding helpers

    static func peer(_ any: Any?) -> TapPeer? {
        guard let p = any as? [String: Any] else { return nil }
        let ip: String
        if let s = p["ip"] as? String {
            ip = s
        } else if let v4 = (p["ip"] as? [String: Any])?["ipv4"], let n = int(v4) {  // the proto's fixed32
            ip = "\(n >> 24 & 255).\(n >> 16 & 255).\(n >> 8 & 255).\(n & 255)"
        } else {
            ip = ""
        }
        return TapPeer(ip: ip, port: int(p["port"]) ?? 0, metadata: (p["metadata"] as? [String: Any]).map(stringMap))
    }

    static func streamID(_ any: Any?) -> TapStreamID {
        let d = any as? [String: Any] ?? [:]
        return TapStreamID(base: UInt32(clamping: int(d["base"]) ?? 0), stream: UInt64(clamping: int(d["stream"]) ?? 0))
    }

    /// A duration in nanoseconds: `"1.5s"` (protobuf JSON) or `{"seconds": 1, "nanos": 5e8}`.
    /// Out of range (over a century either way) or not finite: an error naming `field`, never a
    /// trapped conversion.
    static func nanos(_ any: Any?, field: String) throws(TapDecodeError) -> Int64 {
        let limit = 100 * 365 * 86_400.0
        func bad(_ shown: String) -> TapDecodeError { TapDecodeError("\(field) is not a duration in range: \(shown)") }
        if let s = any as? String, s.hasSuffix("s"), let v = Double(s.dropLast()) {  // "1.5s"
            guard v.isFinite, abs(v) <= limit else { throw bad("\"\(s)\"") }
            return Int64((v * 1e9).rounded())
        }
        let d = any as? [String: Any] ?? [:]
        // As numbers first: `9e18` is a number of seconds out of range, not a missing field.
        func number(_ v: Any?) -> Double? { JSONTree.number(v) ?? (v as? String).flatMap(Double.init) }
        let seconds = number(d["seconds"]) ?? 0, nanos = number(d["nanos"]) ?? 0
        guard abs(seconds) <= limit, abs(nanos) <= limit * 1e9 else { throw bad("\(d["seconds"] ?? 0) s \(d["nanos"] ?? 0) ns") }
        return Int64(seconds) * 1_000_000_000 + Int64(nanos)
    }

    static func headers(_ any: Any?) -> [TapHeader] {
        guard let list = (any as? [[String: Any]]) ?? ((any as? [String: Any])?["headers"] as? [[String: Any]]) else { return [] }
        return list.compactMap { h in
            guard let name = h["name"] as? String else { return nil }
            if let s = h["valueStr"] as? String { return TapHeader(name: name, value: s) }
            if let b = h["valueBin"] as? String { return TapHeader(name: name, value: b, isBinary: true) }
            return TapHeader(name: name, value: "")
        }
    }

    static func methodName(_ any: Any?) -> String {
        if let s = any as? String { return s }
        let d = any as? [String: Any] ?? [:]
        if let s = d["unregistered"] as? String { return s }
        if let s = d["registered"] as? String { return s }
        let names = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "HEAD", "TRACE"]
        if let n = int(d["registered"]), names.indices.contains(n) { return names[n] }
        return d.isEmpty ? "" : "GET"  // proto3 leaves GET (0) out
    }

    static func schemeName(_ any: Any?) -> String {
        if let s = any as? String { return s }
        let d = any as? [String: Any] ?? [:]
        if let s = d["unregistered"] as? String { return s }
        if let s = d["registered"] as? String { return s }
        return int(d["registered"]) == 1 ? "HTTPS" : "HTTP"
    }

    static func int(_ any: Any?) -> Int? {
        switch any {
        case let n as Int: return n
        case let d as Double where d.isFinite && abs(d) < 9e18: return Int(d)
        case let s as String: return Int(s)
        default: return nil
        }
    }

    static func stringMap(_ d: [String: Any]) -> [String: String] {
        d.mapValues { "\($0)" }
    }
}

public struct TapDecodeError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A small JSON value with ordered object keys, rendered as Go's encoding/json renders it.
indirect enum JSONValue {
    case null
    case string(String)
    case int(Int64)
    case array([JSONValue])
    case object([(String, JSONValue)])

    func render(pretty: Bool, indent: Int = 0) -> String {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let close = pretty ? String(repeating: "  ", count: indent) : ""
        let nl = pretty ? "\n" : ""
        let colon = pretty ? ": " : ":"
        switch self {
        case .null: return "null"
        case .string(let s): return quote(s)
        case .int(let n): return String(n)
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[" + nl + items.map { pad + $0.render(pretty: pretty, indent: indent + 1) }.joined(separator: "," + nl) + nl + close + "]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{" + nl + fields.map { pad + quote($0.0) + colon + $0.1.render(pretty: pretty, indent: indent + 1) }.joined(separator: "," + nl) + nl + close + "}"
        }
    }

    private func quote(_ s: String) -> String { JSONEscape.quoted(s) }
}

/// JSON string escaping as Go's encoding/json does it (linkerd's JSON output is Go's):
/// `<`, `>` and `&` as `\u` escapes, control characters as `\u00XX`.
public enum JSONEscape {
    public static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
