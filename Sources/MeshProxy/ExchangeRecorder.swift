import MeshTap
import Synchronization
import NIOCore

/// What metrics and tap know of one request and its response, whichever HTTP carried it.
struct ExchangeFacts {
    var route: Route
    /// The ServiceProfile route it is also counted under.
    var profileRoute: HTTPTarget?
    var routeName: String?
    /// Tap subscribers that took this request, and where tap says it came from.
    var tapped: TapHub.Tapped?
    var tapSource: TapPeer?
    var started: NIODeadline
    var responseStarted: NIODeadline?
    var responseBytes: UInt64 = 0
    var isGRPC: Bool
    var status: Int?
    var grpcStatus: Int?
    var latencyRecorded = false
}

/// A request as tap shows it.
struct TappedRequest {
    var method: String
    var scheme: String
    var authority: String
    var path: String
    var headers: [TapHeader]
}

/// Counts exchanges as Linkerd does (`request_total` when the request starts, latency at the
/// first response byte, `response_total` at the end of the response stream) and tells tap.
/// A class: a handler calls it several times per request, and a struct of three references
/// would be copied (and each retained) on every call.
final class ExchangeRecorder: Sendable {
    let registry: MetricsRegistry
    let router: any Router
    let tap: TapHub?

    init(registry: MetricsRegistry, router: any Router, tap: TapHub?) {
        self.registry = registry
        self.router = router
        self.tap = tap
    }

    /// A routed request begins (its head was read at `now`).
    func begin(_ route: Route, profile: ProfileMatch?, isGRPC: Bool, request: @autoclosure () -> TappedRequest,
               source: @autoclosure () -> TapPeer, at now: NIODeadline = .now()) -> ExchangeFacts {
        registry.requestStarted(route.http)
        if let profile { registry.requestStarted(profile.target) }
        var facts = ExchangeFacts(route: route, profileRoute: profile?.target, routeName: profile?.name, started: now, isGRPC: isGRPC)
        if let tap, tap.hasSubscribers {
            let source = source()
            let r = request()
            facts.tapSource = source
            facts.tapped = tap.requestStarted { id in
                TapEvent(source: source, destination: route.tapDestination, routeMeta: profile?.name.map { ["route": $0] },
                         direction: route.direction,
                         http: .requestInit(id: id, method: r.method, scheme: r.scheme, authority: r.authority,
                                            path: tap.redaction.redactQuery(r.path), headers: tap.redaction.redact(r.headers)))
            }
        }
        return facts
    }

    /// The response's head arrived (or the proxy made one): latency is taken now.
    func responseBegan(_ facts: inout ExchangeFacts, status: Int, headers: @autoclosure () -> [TapHeader]) {
        let now = NIODeadline.now()
        facts.status = status
        facts.responseStarted = now
        recordLatency(&facts, at: now)
        if let tapped = facts.tapped {
            let since = (now - facts.started).nanoseconds
            let headers = tap?.redaction.redact(headers()) ?? []
            let f = facts
            tap?.emit(tapped) { id in event(f, .responseInit(id: id, sinceRequestInitNanos: since, httpStatus: status, headers: headers)) }
        }
    }

    func recordLatency(_ facts: inout ExchangeFacts, at now: NIODeadline = .now()) {
        guard !facts.latencyRecorded else { return }
        facts.latencyRecorded = true
        let elapsed = (now - facts.started).nanoseconds
        registry.recordLatency(facts.route.http, status: facts.status, nanoseconds: elapsed)
        if let r = facts.profileRoute { registry.recordLatency(r, status: facts.status, nanoseconds: elapsed) }
    }

    /// The exchange is over: counted as `c`. `endpointFailed` feeds the balancer's failure
    /// accrual: a client that went away says nothing about the endpoint.
    func ended(_ facts: ExchangeFacts, _ c: ResponseClass, endpointFailed: Bool? = nil, trailers: [TapHeader] = [], reset: Int? = nil,
               at now: NIODeadline = .now()) {
        router.finished(facts.route, nanoseconds: (now - facts.started).nanoseconds, failed: endpointFailed ?? c.isFailure)
        registry.responseEnded(facts.route.http, c)
        if let r = facts.profileRoute { registry.responseEnded(r, c) }
        guard let tapped = facts.tapped else { return }
        let sinceRequest = (now - facts.started).nanoseconds
        let sinceResponse = (now - (facts.responseStarted ?? now)).nanoseconds
        let trailers = tap?.redaction.redact(trailers) ?? []
        tap?.emit(tapped) { id in
            event(facts, .responseEnd(id: id, sinceRequestInitNanos: sinceRequest, sinceResponseInitNanos: sinceResponse,
                                      responseBytes: facts.responseBytes, grpcStatus: facts.isGRPC ? facts.grpcStatus : nil,
                                      resetErrorCode: reset, trailers: trailers))
        }
    }

    /// The exchange failed in the proxy: a response the proxy made (`status`, when none had begun)
    /// or a cut stream. Latency is recorded for it too, so failures are not missing from the histogram.
    func failed(_ facts: ExchangeFacts, error: StreamError, localStatus: Int?, endpointFailed: Bool) {
        var f = facts
        if f.responseStarted == nil, let localStatus {
            responseBegan(&f, status: localStatus, headers: [])
        } else {
            recordLatency(&f)
        }
        // A stream cut after its response began ends with a reset (INTERNAL_ERROR) in tap.
        ended(f, .failed(error), endpointFailed: endpointFailed, reset: facts.responseStarted != nil ? 2 : nil)
    }

    private func event(_ facts: ExchangeFacts, _ http: TapHTTPEvent) -> TapEvent {
        TapEvent(source: facts.tapSource ?? TapPeer(ip: "0.0.0.0", port: 0), destination: facts.route.tapDestination,
                 routeMeta: facts.routeName.map { ["route": $0] }, direction: facts.route.direction, http: http)
    }
}

/// The ids an outbound stamps on the requests it forwards (`l5d-tap-id`): this process's random
/// prefix and a counter, so one request seen by the client's and the server's proxy is counted
/// once by tap consumers. An id a client sent is replaced; the inbound removes it before the app.
enum TapIDs {
    private static let prefix = String(UInt64.random(in: 1...UInt64.max), radix: 36)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        "\(prefix).\(counter.add(1, ordering: .relaxed).newValue)"
    }
}
