public import MeshCanary
public import MeshMetrics
import Foundation

/// Sleeps for one interval in small steps, so a stop request is honoured at once.
/// Returns false when stopped.
func waitInterval(_ ms: Int64, stop: () -> Bool) -> Bool {
    let started = Date()
    while Date().timeIntervalSince(started) * 1000 < Double(ms) {
        if stop() { return false }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return !stop()
}

/// Scrapes the proxies live (through the collector that also feeds a recording).
public struct LiveCanaryObserver: CanaryObserver, Sendable {
    let live: LiveCollector
    let target: CanaryTarget
    let intervalMs: Int64
    let clock: any TimeSource
    public let source: String

    public init(live: LiveCollector, target: CanaryTarget, intervalMs: Int64, source: String, clock: any TimeSource = WallClock()) {
        self.live = live
        self.target = target
        self.intervalMs = intervalMs
        self.source = source
        self.clock = clock
    }

    public mutating func next(stop: () -> Bool) -> CanaryObservation? {
        guard waitInterval(intervalMs, stop: stop) else { return nil }
        let (target, window) = (self.target, intervalMs)
        let (c, p, down) = live.read { collector -> (TrafficSample?, TrafficSample?, String?) in
            let problems = collector.health.values.compactMap(\.message).sorted()
            return (collector.canarySample(target.canary, namespace: target.namespace, windowMs: window),
                    collector.canarySample(target.primary, namespace: target.namespace, windowMs: window),
                    problems.first)
        }
        return CanaryObservation(atMs: clock.nowMs(), canary: c, primary: p, problem: c == nil ? down : nil)
    }
}

/// Asks a Prometheus server with Flagger's Linkerd query templates.
public struct PrometheusCanaryObserver: CanaryObserver, Sendable {
    let client: PrometheusClient
    let target: CanaryTarget
    let intervalMs: Int64
    let clock: any TimeSource
    public var source: String { "Prometheus at \(client.baseURL)" }

    public init(client: PrometheusClient, target: CanaryTarget, intervalMs: Int64, clock: any TimeSource = WallClock()) {
        self.client = client
        self.target = target
        self.intervalMs = intervalMs
        self.clock = clock
    }

    /// Flagger's `request-success-rate` (percent), verbatim apart from whitespace.
    public static func successRateQuery(namespace: String, target: String, interval: String) -> String {
        let selector = "namespace=\"\(namespace)\", deployment=~\"\(target)\""
        return "sum(rate(response_total{\(selector), classification!=\"failure\", direction=\"inbound\"}[\(interval)]))"
            + " / sum(rate(response_total{\(selector), direction=\"inbound\"}[\(interval)])) * 100"
    }

    /// Flagger's `request-duration` (p99, milliseconds).
    public static func durationQuery(namespace: String, target: String, interval: String) -> String {
        "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace=\"\(namespace)\", deployment=~\"\(target)\", direction=\"inbound\"}[\(interval)])) by (le))"
    }

    /// The request volume check's count (Flagger leaves it to a load tester; meshtop asks).
    public static func volumeQuery(namespace: String, target: String, interval: String) -> String {
        "sum(increase(response_total{namespace=\"\(namespace)\", deployment=~\"\(target)\", direction=\"inbound\"}[\(interval)]))"
    }

    /// One side's sample: nil when Prometheus has no values (Flagger's ErrNoValuesFound).
    public func sample(_ deployment: String, atMs: Int64) throws(SourceError) -> TrafficSample? {
        let ns = escape(target.namespace ?? "default")
        let deployment = escape(deployment)
        let interval = "\(max(1, intervalMs / 1000))s"
        func value(_ q: String) throws(SourceError) -> Double? {
            guard let v = try client.query(q, atMs: atMs).first?.value, v.isFinite else { return nil }
            return v
        }
        guard let requests = try value(Self.volumeQuery(namespace: ns, target: deployment, interval: interval)) else { return nil }
        let sr = try value(Self.successRateQuery(namespace: ns, target: deployment, interval: interval))
        let p99 = try value(Self.durationQuery(namespace: ns, target: deployment, interval: interval))
        return TrafficSample(requests: requests, success: sr.map { $0 / 100 }, p99Ms: p99)
    }

    public mutating func next(stop: () -> Bool) -> CanaryObservation? {
        guard waitInterval(intervalMs, stop: stop) else { return nil }
        let at = clock.nowMs()
        do {
            return CanaryObservation(atMs: at, canary: try sample(target.canary, atMs: at), primary: try sample(target.primary, atMs: at))
        } catch {
            return CanaryObservation(atMs: at, canary: nil, primary: nil, problem: error.description)
        }
    }
}

/// meshproxy's split API sets a canary's weights.
extension SplitClient: WeightSetter {}
