import FoundationEssentials
import MeshTap
import NIOCore
import NIOHTTP1
import Gzip
#if canImport(Glibc)
import Glibc
#endif

/// The admin listener, as linkerd2-proxy's on port 4191: `/metrics`, `/ready`, `/live`, and
/// `/split` — `GET` shows every authority's backend weights, `POST {"authority": "…",
/// "weights": {"backend": 90, …}}` sets them (a canary step). `/split` answers only peers on
/// loopback, and wants `Authorization: Bearer TOKEN` when a token is configured.
///
/// The POSTs (`/split`, `/shutdown`) change what the proxy does, so a web page must not be able
/// to send them through a browser on this machine: one that carries an `Origin` or a
/// `Sec-Fetch-Site` other than `none` (every browser sends one or the other on a POST) is
/// refused (403), and so is a body typed as a form or as text (`/split` takes
/// `application/json` only, which a page cannot send elsewhere without a CORS preflight this
/// listener never grants). Command-line clients send neither header.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: MetricsRegistry
    private let router: OutboundRouter?
    private let token: String?
    private let identity: ProxyIdentity?
    private let draining: @Sendable () -> Bool
    private let onShutdown: (@Sendable () -> Void)?
    private var request: HTTPRequestHead?
    private var body: [UInt8] = []

    init(registry: MetricsRegistry, router: OutboundRouter? = nil, token: String? = nil, identity: ProxyIdentity? = nil,
         draining: @escaping @Sendable () -> Bool = { false }, onShutdown: (@Sendable () -> Void)? = nil) {
        self.registry = registry
        self.router = router
        self.token = token
        self.identity = identity
        self.draining = draining
        self.onShutdown = onShutdown
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            body.removeAll()
        case .body(var chunk):
            if body.count < 65_536 { body += chunk.readBytes(length: min(chunk.readableBytes, 65_536 - body.count)) ?? [] }
        case .end:
            guard let head = request else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let (status, type, body): (HTTPResponseStatus, String, String)
            switch (head.method, path) {
            case (.GET, "/metrics"), (.HEAD, "/metrics"):
                (status, type, body) = (.ok, "text/plain; version=0.0.4", registry.render())
            case (.GET, "/ready"):
                if draining() {
                    (status, type, body) = (.serviceUnavailable, "text/plain", "draining\n")
                } else if let reason = identity?.notReadyReason {
                    (status, type, body) = (.serviceUnavailable, "text/plain", "not ready: \(reason)\n")
                } else {
                    (status, type, body) = (.ok, "text/plain", "ready\n")
                }
            case (.POST, _) where Self.fromBrowser(head.headers) != nil:
                (status, type, body) = (.forbidden, "text/plain", "meshproxy admin: \(Self.fromBrowser(head.headers)!)\n")
            case (.POST, "/shutdown"):
                if !isLoopback(context.channel.remoteAddress) {
                    (status, type, body) = (.forbidden, "text/plain", "shutdown is only permitted from localhost\n")
                } else if let token, !constantTimeEqual(head.headers.first(name: "authorization") ?? "", "Bearer \(token)") {
                    (status, type, body) = (.unauthorized, "text/plain", "a bearer token is required\n")
                } else if let onShutdown {
                    onShutdown()
                    (status, type, body) = (.ok, "text/plain", "shutting down\n")
                } else {
                    (status, type, body) = (.notFound, "text/plain", "this proxy cannot be shut down from here\n")
                }
            case (.GET, "/live"):
                (status, type, body) = (.ok, "text/plain", "live\n")
            case (.GET, "/split"), (.POST, "/split"):
                (status, type, body) = split(head, peer: context.channel.remoteAddress)
            default:
                (status, type, body) = (.notFound, "text/plain", "not found\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: type)
            // /metrics compressed when the scraper asks (Prometheus does): linkerd-shaped pages shrink ~10x.
            var bytes = Array(body.utf8)
            if path == "/metrics", status == .ok, acceptsGzip(head.headers), let compressed = GzipDeflater.compress(bytes) {
                bytes = compressed
                headers.add(name: "content-encoding", value: "gzip")
            }
            headers.add(name: "content-length", value: String(bytes.count))
            headers.add(name: "date", value: HTTPDate.now())  // what `meshtop check` measures clock skew by
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    private func split(_ head: HTTPRequestHead, peer: SocketAddress?) -> (HTTPResponseStatus, String, String) {
        let json = "application/json"
        guard let router else { return (.notFound, json, "{\"error\":\"this proxy has no outbound destinations\"}\n") }
        guard isLoopback(peer) else {
            return (.forbidden, json, "{\"error\":\"requests are only permitted from localhost\"}\n")
        }
        if let token, !constantTimeEqual(head.headers.first(name: "authorization") ?? "", "Bearer \(token)") {
            return (.unauthorized, json, "{\"error\":\"a bearer token is required\"}\n")
        }
        if head.method == .POST {
            let type = head.headers.first(name: "content-type")?.split(separator: ";").first.map { String($0).trimmed(of: " \t").lowercased() }
            guard type == "application/json" else {
                return (.unsupportedMediaType, json, "{\"error\":\"POST /split takes Content-Type: application/json\"}\n")
            }
            let request: SplitRequest
            switch SplitRequest.parse(body) {
            case .failure(let problem): return (.badRequest, json, "{\"error\":\(JSONEscape.quoted(problem.description))}\n")
            case .success(let r): request = r
            }
            if let problem = router.setWeights(authority: request.authority, request.weights) {
                return (.badRequest, json, "{\"error\":\(JSONEscape.quoted(problem))}\n")
            }
        }
        var byAuthority: [String: [(String, Int)]] = [:]
        for w in router.weights() { byAuthority[w.authority, default: []].append((w.backend, w.weight)) }
        let out = byAuthority.keys.sorted().map { a in
            JSONEscape.quoted(a) + ":{" + byAuthority[a]!.map { JSONEscape.quoted($0.0) + ":\($0.1)" }.joined(separator: ",") + "}"
        }.joined(separator: ",")
        return (.ok, json, "{" + out + "}\n")
    }

    /// Why a POST looks sent by a web page through a browser (nil when it does not): browsers
    /// mark such requests with `Origin` or `Sec-Fetch-Site`, and forms send form or text bodies.
    static func fromBrowser(_ headers: HTTPHeaders) -> String? {
        if headers.contains(name: "origin") { return "requests from web pages (with an Origin header) are refused" }
        if let site = headers.first(name: "sec-fetch-site"), site.lowercased() != "none" {
            return "requests from web pages (Sec-Fetch-Site: \(site)) are refused"
        }
        let type = headers.first(name: "content-type")?.split(separator: ";").first.map { String($0).trimmed(of: " \t").lowercased() } ?? ""
        if ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"].contains(type) {
            return "form and text bodies (\(type)) are refused; send application/json"
        }
        return nil
    }

    /// `Accept-Encoding` names gzip with a weight above 0.
    private func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "accept-encoding"].contains { coding in
            let parts = coding.split(separator: ";").map { String($0).trimmed(of: " \t") }
            guard parts.first?.lowercased() == "gzip" || parts.first == "*" else { return false }
            return !parts.dropFirst().contains { $0.filter { $0 != " " } == "q=0" }
        }
    }

    private func isLoopback(_ peer: SocketAddress?) -> Bool {
        guard let ip = peer?.ipAddress else { return false }
        return ip == "::1" || ip.hasPrefix("127.")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The HTTP `Date` header's form (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    static func now() -> String { format(time(nil)) }

    static func format(_ seconds: time_t) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
