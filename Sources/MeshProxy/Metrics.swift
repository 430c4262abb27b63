import NIOConcurrencyHelpers
import Synchronization

/// Linkerd's latency bucket bounds in milliseconds, shared by every latency histogram.
public let latencyBucketBounds: [UInt64] = [
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
]

/// An ordered list of label pairs rendered once, as the proxy prints them.
public struct LabelSet: Hashable, Sendable {
    public let pairs: [(String, String)]
    /// `a="1",b="2"`, values escaped.
    public let rendered: String

    public init(_ pairs: [(String, String)]) {
        self.pairs = pairs
        self.rendered = pairs.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"" }.joined(separator: ",")
    }

    public static func == (a: LabelSet, b: LabelSet) -> Bool { a.rendered == b.rendered }
    public func hash(into h: inout Hasher) { h.combine(rendered) }

    func appending(_ more: String) -> String {
        rendered.isEmpty ? more : (more.isEmpty ? rendered : rendered + "," + more)
    }
}

func escapeLabelValue(_ v: String) -> String {
    guard v.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return v }
    return v.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"").replacingAll("\n", "\\n")
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// A latency histogram with Linkerd's buckets, in milliseconds.
struct LatencyHistogram {
    var buckets = [UInt64](repeating: 0, count: latencyBucketBounds.count + 1)
    var sumMs: UInt64 = 0
    var count: UInt64 = 0

    mutating func record(nanoseconds: Int64) {
        let ms = UInt64(max(0, nanoseconds) / 1_000_000)
        // A value falls in the first bucket whose bound is >= it (bounds are inclusive, `le`).
        var i = 0
        let exact = Double(max(0, nanoseconds)) / 1_000_000
        while i < latencyBucketBounds.count, exact > Double(latencyBucketBounds[i]) { i += 1 }
        buckets[i] += 1
        sumMs += ms
        count += 1
    }
}

/// The HTTP metrics of one target (an inbound app, or one outbound endpoint).
struct HTTPTargetStats {
    var requests: UInt64 = 0
    var latencyByStatus: [Int?: LatencyHistogram] = [:]
    var responses: [ResponseClass: UInt64] = [:]
}

/// TCP metrics of one label set (direction, peer, target and TLS labels).
struct TCPStats {
    var opened: UInt64 = 0
    var open: Int64 = 0
    var closedByErrno: [String: UInt64] = [:]
}

/// The bytes read and written on connections of one TCP label set: counted on every read and
/// write of every connection, so atomics rather than the registry's lock.
final class ByteCounters: Sendable {
    let read = Atomic<UInt64>(0)
    let written = Atomic<UInt64>(0)
}

/// A handle to one target's HTTP stats, resolved once so the hot path does no label work.
public struct HTTPTarget: Sendable, Hashable {
    let index: Int
}

/// A handle to one TCP label set, with its byte counters.
public struct TCPTarget: Sendable, Hashable {
    let index: Int
    let bytes: ByteCounters

    public static func == (a: TCPTarget, b: TCPTarget) -> Bool { a.index == b.index }
    public func hash(into h: inout Hasher) { h.combine(index) }
}

/// Every metric one meshproxy exports, rendered in the Prometheus text format with Linkerd's
/// names, labels, HELP texts and bucket bounds.
public final class MetricsRegistry: Sendable {
    private struct State {
        var httpLabels: [LabelSet] = []
        var httpIndex: [LabelSet: Int] = [:]
        var http: [HTTPTargetStats] = []
        /// ServiceProfile routes (`route_*` families), kept apart from endpoint targets.
        var routeLabels: Set<Int> = []
        var tcpLabels: [LabelSet] = []
        var tcpIndex: [LabelSet: Int] = [:]
        var tcp: [TCPStats] = []
        var tcpBytes: [ByteCounters] = []
        var gauges: [(name: String, help: String, labels: String, value: Double)] = []
    }

    private let state = NIOLockedValueBox(State())
    private let tapBox = NIOLockedValueBox<TapHub?>(nil)
    private let identityBox = NIOLockedValueBox<ProxyIdentity?>(nil)
    /// Failed mTLS handshakes by direction and the peer identity expected (outbound).
    private let handshakeFailures = CounterFamily("meshproxy_tls_handshake_errors_total",
                                                  "mTLS handshakes that failed (a peer with another trust anchor, or the wrong identity).")
    private let retries = CounterFamily("meshproxy_retries_total",
                                        "Requests tried again after a 5xx (retried), or not for want of retry budget (budget_exhausted).")
    private let refusedRequests = CounterFamily("meshproxy_requests_refused_total",
                                                "Requests refused before anything of them was forwarded: ambiguous framing (framing), too many headers (headers).")
    private let refusedConnections = CounterFamily("meshproxy_connections_refused_total",
                                                   "Connections closed at once because the listener had its maximum open.")
    private let closedConnections = CounterFamily("meshproxy_connections_timed_out_total",
                                                  "Connections closed for silence: no protocol detected in time (detect), idle keep-alive (idle), a request body stalled (body).")

    /// The proxy's identity, for the certificate gauges.
    var identity: ProxyIdentity? {
        get { identityBox.withLockedValue { $0 } }
        set { identityBox.withLockedValue { $0 = newValue } }
    }

    func retry(authority: String, result: String) {
        retries.increment("authority=\"\(escapeLabelValue(authority))\",result=\"\(result)\"")
    }

    func tlsHandshakeFailed(direction: String, peer: String) {
        handshakeFailures.increment("direction=\"\(direction)\",peer_id=\"\(escapeLabelValue(peer))\"")
    }

    func requestRefused(reason: String) {
        refusedRequests.increment("reason=\"\(reason)\"")
    }

    func connectionRefused(direction: String) {
        refusedConnections.increment("direction=\"\(direction)\"")
    }

    func connectionTimedOut(direction: String, reason: String) {
        closedConnections.increment("direction=\"\(direction)\",reason=\"\(reason)\"")
    }
    private let splitBox = NIOLockedValueBox<(@Sendable () -> [(authority: String, backend: String, weight: Int)])?>(nil)
    /// The outbound traffic split, exported as `meshproxy_split_weight`.
    var splitWeights: (@Sendable () -> [(authority: String, backend: String, weight: Int)])? {
        get { splitBox.withLockedValue { $0 } }
        set { splitBox.withLockedValue { $0 = newValue } }
    }
    /// The tap emitter whose counters are exported.
    var tapHub: TapHub? {
        get { tapBox.withLockedValue { $0 } }
        set { tapBox.withLockedValue { $0 = newValue } }
    }
    private let buildInfo: LabelSet
    private let startTime: Double

    public init(version: String = meshproxyVersion, startTime: Double = ProcessStats.now()) {
        self.buildInfo = LabelSet([("git_version", version), ("profile", buildProfile), ("vendor", "meshtop")])
        self.startTime = startTime
    }

    /// The handle for a target's HTTP stats, registering its labels on first use.
    public func httpTarget(_ labels: LabelSet) -> HTTPTarget {
        register(labels, route: false)
    }

    /// The handle for a ServiceProfile route's stats (exported as `route_*`).
    public func routeTarget(_ labels: LabelSet) -> HTTPTarget {
        register(labels, route: true)
    }

    private func register(_ labels: LabelSet, route: Bool) -> HTTPTarget {
        state.withLockedValue { s in
            let key = route ? LabelSet(labels.pairs + [("__route", "")]) : labels
            if let i = s.httpIndex[key] { return HTTPTarget(index: i) }
            s.httpLabels.append(labels)
            s.http.append(HTTPTargetStats())
            s.httpIndex[key] = s.http.count - 1
            if route { s.routeLabels.insert(s.http.count - 1) }
            return HTTPTarget(index: s.http.count - 1)
        }
    }

    public func tcpTarget(_ labels: LabelSet) -> TCPTarget {
        state.withLockedValue { s in
            if let i = s.tcpIndex[labels] { return TCPTarget(index: i, bytes: s.tcpBytes[i]) }
            s.tcpLabels.append(labels)
            s.tcp.append(TCPStats())
            s.tcpBytes.append(ByteCounters())
            s.tcpIndex[labels] = s.tcp.count - 1
            return TCPTarget(index: s.tcp.count - 1, bytes: s.tcpBytes[s.tcp.count - 1])
        }
    }

    /// Counts a request when its stream begins (`request_total`).
    public func requestStarted(_ t: HTTPTarget) {
        state.withLockedValue { $0.http[t.index].requests += 1 }
    }

    /// Records time to the first response byte (`response_latency_ms`) under the response's status.
    public func recordLatency(_ t: HTTPTarget, status: Int?, nanoseconds: Int64) {
        state.withLockedValue { $0.http[t.index].latencyByStatus[status, default: LatencyHistogram()].record(nanoseconds: nanoseconds) }
    }

    /// Counts a response at the end of its stream (`response_total`).
    public func responseEnded(_ t: HTTPTarget, _ c: ResponseClass) {
        state.withLockedValue { $0.http[t.index].responses[c, default: 0] += 1 }
    }

    public func connectionOpened(_ t: TCPTarget) {
        state.withLockedValue {
            $0.tcp[t.index].opened += 1
            $0.tcp[t.index].open += 1
        }
    }

    public func connectionClosed(_ t: TCPTarget, errno: String = "") {
        state.withLockedValue {
            $0.tcp[t.index].open -= 1
            $0.tcp[t.index].closedByErrno[errno, default: 0] += 1
        }
    }

    public func bytesRead(_ t: TCPTarget, _ n: Int) {
        t.bytes.read.add(UInt64(n), ordering: .relaxed)
    }

    public func bytesWritten(_ t: TCPTarget, _ n: Int) {
        t.bytes.written.add(UInt64(n), ordering: .relaxed)
    }

    private func renderHTTP(into out: inout String, prefix: String, _ http: [HTTPTargetStats], _ labels: [LabelSet], _ which: [Int]) {
        out += "# HELP \(prefix)request_total Total count of HTTP requests.\n# TYPE \(prefix)request_total counter\n"
        for i in which {
            out += "\(prefix)request_total{\(labels[i].rendered)} \(http[i].requests)\n"
        }
        out += "# HELP \(prefix)response_latency_ms Elapsed times between a request's headers being received and its response stream completing\n# TYPE \(prefix)response_latency_ms histogram\n"
        for i in which {
            for (status, h) in http[i].latencyByStatus.sorted(by: { ($0.key ?? 0) < ($1.key ?? 0) }) {
                let l = labels[i].appending(status.map { "status_code=\"\($0)\"" } ?? "")
                var cumulative: UInt64 = 0
                for (b, bound) in latencyBucketBounds.enumerated() {
                    cumulative += h.buckets[b]
                    out += "\(prefix)response_latency_ms_bucket{\(l),le=\"\(bound)\"} \(cumulative)\n"
                }
                cumulative += h.buckets[latencyBucketBounds.count]
                out += "\(prefix)response_latency_ms_bucket{\(l),le=\"+Inf\"} \(cumulative)\n"
                out += "\(prefix)response_latency_ms_count{\(l)} \(h.count)\n"
                out += "\(prefix)response_latency_ms_sum{\(l)} \(h.sumMs)\n"
            }
        }
        out += "# HELP \(prefix)response_total Total count of HTTP responses.\n# TYPE \(prefix)response_total counter\n"
        renderResponses(into: &out, name: "\(prefix)response_total", http, labels, which)
    }

    private func renderResponses(into out: inout String, name: String, _ http: [HTTPTargetStats], _ labels: [LabelSet], _ which: [Int]) {
        for i in which {
            let sorted = http[i].responses.sorted { a, b in
                (a.key.status ?? 0, a.key.error?.rawValue ?? "", a.key.grpcStatus ?? -1) < (b.key.status ?? 0, b.key.error?.rawValue ?? "", b.key.grpcStatus ?? -1)
            }
            for (c, n) in sorted {
                var l = labels[i].rendered
                if let status = c.status { l += (l.isEmpty ? "" : ",") + "status_code=\"\(status)\"" }
                l += (l.isEmpty ? "" : ",") + "classification=\"\(c.isFailure ? "failure" : "success")\""
                l += ",grpc_status=\"\(c.grpcStatus.map(String.init) ?? "")\""
                l += ",error=\"\(c.error?.rawValue ?? "")\""
                out += "\(name){\(l)} \(n)\n"
            }
        }
    }

    /// The whole exposition, in Linkerd's family order.
    public func render() -> String {
        let s = state.withLockedValue { $0 }
        var out = ""
        out.reserveCapacity(4096 + s.http.count * 4096)

        let endpoints = s.http.indices.filter { !s.routeLabels.contains($0) }
        let routes = s.http.indices.filter { s.routeLabels.contains($0) }
        renderHTTP(into: &out, prefix: "", s.http, s.httpLabels, endpoints)
        if !routes.isEmpty {
            renderHTTP(into: &out, prefix: "route_", s.http, s.httpLabels, routes)
            // Per attempt: equal to route_response_total while meshproxy does not retry.
            out += "# HELP route_actual_response_total Total count of HTTP responses, retries included.\n# TYPE route_actual_response_total counter\n"
            renderResponses(into: &out, name: "route_actual_response_total", s.http, s.httpLabels, routes)
        }

        func tcpFamily(_ name: String, _ type: String, _ help: String, _ value: (Int) -> String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for i in s.tcp.indices {
                out += "\(name){\(s.tcpLabels[i].rendered)} \(value(i))\n"
            }
        }
        tcpFamily("tcp_open_total", "counter", "Total count of opened connections") { "\(s.tcp[$0].opened)" }
        tcpFamily("tcp_open_connections", "gauge", "Number of currently-open connections") { "\(s.tcp[$0].open)" }
        tcpFamily("tcp_read_bytes_total", "counter", "Total count of bytes read from peers") { "\(s.tcpBytes[$0].read.load(ordering: .relaxed))" }
        tcpFamily("tcp_write_bytes_total", "counter", "Total count of bytes written to peers") { "\(s.tcpBytes[$0].written.load(ordering: .relaxed))" }
        out += "# HELP tcp_close_total Total count of closed connections\n# TYPE tcp_close_total counter\n"
        for (i, stats) in s.tcp.enumerated() {
            for (errno, n) in stats.closedByErrno.sorted(by: { $0.key < $1.key }) {
                out += "tcp_close_total{\(s.tcpLabels[i].rendered),errno=\"\(errno)\"} \(n)\n"
            }
        }

        if let weights = splitWeights?(), !weights.isEmpty {
            out += "# HELP meshproxy_split_weight The weight of each backend of an authority's traffic split.\n# TYPE meshproxy_split_weight gauge\n"
            for w in weights {
                out += "meshproxy_split_weight{authority=\"\(escapeLabelValue(w.authority))\",backend=\"\(escapeLabelValue(w.backend))\"} \(w.weight)\n"
            }
        }
        if let hub = tapHub {
            out += "# HELP tap_subscribers Number of connected tap subscribers.\n# TYPE tap_subscribers gauge\n"
            out += "tap_subscribers \(hub.subscriberCount)\n"
            out += "# HELP tap_events_dropped_total Tap events dropped because a subscriber's queue was full.\n# TYPE tap_events_dropped_total counter\n"
            out += "tap_events_dropped_total \(hub.droppedEvents)\n"
        }
        if let identity {
            let ready = identity.notReadyReason == nil
            out += "# HELP meshproxy_identity_ready Whether this proxy holds a certificate valid now (1), or has none or an expired one (0).\n"
            out += "# TYPE meshproxy_identity_ready gauge\nmeshproxy_identity_ready \(ready ? 1 : 0)\n"
        }
        if let identity, let c = identity.latest {
            let id = c.identity
            out += "# HELP identity_cert_expiration_timestamp_seconds Time when this proxy's current mTLS identity certificate will expire (in seconds since the UNIX epoch).\n"
            out += "# TYPE identity_cert_expiration_timestamp_seconds gauge\nidentity_cert_expiration_timestamp_seconds \(Int64(id.notValidAfter.timeIntervalSince1970))\n"
            out += "# HELP identity_cert_refresh_count The total number of times this proxy's mTLS identity certificate has been refreshed by the Identity provider.\n"
            out += "# TYPE identity_cert_refresh_count counter\nidentity_cert_refresh_count \(c.generation - 1)\n"
            out += "# HELP meshproxy_identity_info This proxy's identity and the trust anchor it trusts.\n# TYPE meshproxy_identity_info gauge\n"
            out += "meshproxy_identity_info{identity=\"\(escapeLabelValue(id.name))\",trust_anchor_sha256=\"\(id.trustAnchorFingerprint)\"} 1\n"
            out += "# HELP meshproxy_trust_anchor_expiration_timestamp_seconds Time when the trust anchor expires.\n# TYPE meshproxy_trust_anchor_expiration_timestamp_seconds gauge\n"
            out += "meshproxy_trust_anchor_expiration_timestamp_seconds \(Int64(id.trustAnchorNotValidAfter.timeIntervalSince1970))\n"
            out += "# HELP meshproxy_issuer_expiration_timestamp_seconds Time when the issuer that signs this proxy's certificates expires.\n# TYPE meshproxy_issuer_expiration_timestamp_seconds gauge\n"
            out += "meshproxy_issuer_expiration_timestamp_seconds \(Int64(id.issuerNotValidAfter.timeIntervalSince1970))\n"
        }
        for family in [retries, handshakeFailures, refusedRequests, refusedConnections, closedConnections] { family.render(into: &out) }
        out += ProcessStats.render(startTime: startTime)
        out += "# HELP proxy_build_info Proxy build info\n# TYPE proxy_build_info gauge\n"
        out += "proxy_build_info{\(buildInfo.rendered)} 1\n"
        return out
    }
}

/// Counters of one family, by their rendered labels; a family with no samples is not shown.
final class CounterFamily: Sendable {
    let name: String
    let help: String
    private let values = NIOLockedValueBox<[String: UInt64]>([:])

    init(_ name: String, _ help: String) {
        self.name = name
        self.help = help
    }

    func increment(_ labels: String) {
        values.withLockedValue { $0[labels, default: 0] += 1 }
    }

    func value(_ labels: String) -> UInt64 {
        values.withLockedValue { $0[labels] ?? 0 }
    }

    func render(into out: inout String) {
        let samples = values.withLockedValue { $0 }
        guard !samples.isEmpty else { return }
        out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
        for (labels, n) in samples.sorted(by: { $0.key < $1.key }) { out += "\(name){\(labels)} \(n)\n" }
    }
}

/// meshproxy's version, as `proxy_build_info` reports it.
public let meshproxyVersion = "0.1.0"

#if DEBUG
let buildProfile = "debug"
#else
let buildProfile = "release"
#endif
