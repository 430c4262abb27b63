import FoundationEssentials
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One endpoint's load as linkerd2-proxy's balancer sees it: a peak-sensitive moving average of
/// response times (a slower response replaces the average at once; faster ones pull it down with
/// a 10 s decay) times the requests in flight, and failure accrual (after 5 failures in a row the
/// endpoint is left out for a backoff that doubles from 1 s to 60 s while it keeps failing).
struct EndpointLoad: Sendable {
    /// Linkerd's defaults.
    static let defaultRTTNanos: Double = 30_000_000
    static let decayNanos: Double = 10_000_000_000
    static let failuresToEject = 5
    static let firstBackoffNanos: Int64 = 1_000_000_000
    static let maxBackoffNanos: Int64 = 60_000_000_000

    var ewmaNanos = defaultRTTNanos
    var updated = NIODeadline.now()
    var pending = 0
    var consecutiveFailures = 0
    var ejectedUntil: NIODeadline?
    var backoffNanos: Int64 = 0

    /// The estimate now: it decays toward nothing while no response comes, so an endpoint that
    /// was slow once is tried again.
    func cost(at now: NIODeadline) -> Double {
        let elapsed = Double((now - updated).nanoseconds)
        let rtt = ewmaNanos * exp(-max(0, elapsed) / Self.decayNanos)
        return rtt * Double(pending + 1)
    }

    func isEjected(at now: NIODeadline) -> Bool { ejectedUntil.map { now < $0 } ?? false }

    mutating func observe(rttNanos: Int64, failed: Bool, at now: NIODeadline) {
        let rtt = Double(max(0, rttNanos))
        let elapsed = Double(max(0, (now - updated).nanoseconds))
        if rtt > ewmaNanos {
            ewmaNanos = rtt
        } else {
            let w = exp(-elapsed / Self.decayNanos)
            ewmaNanos = ewmaNanos * w + rtt * (1 - w)
        }
        updated = now
        if failed {
            consecutiveFailures += 1
            if consecutiveFailures >= Self.failuresToEject {
                backoffNanos = backoffNanos == 0 ? Self.firstBackoffNanos : min(Self.maxBackoffNanos, backoffNanos * 2)
                ejectedUntil = now + .nanoseconds(backoffNanos)
                consecutiveFailures = 0
            }
        } else {
            consecutiveFailures = 0
            backoffNanos = 0
            ejectedUntil = nil
        }
    }
}

/// Power of two choices: of two endpoints picked at random (left-out ones skipped while others
/// remain), the one with the lower cost.
enum PowerOfTwoChoices {
    static func pick<R: RandomNumberGenerator>(_ count: Int, load: (Int) -> EndpointLoad?, now: NIODeadline, using rng: inout R) -> Int {
        guard count > 1 else { return 0 }
        var candidates = (0..<count).filter { !(load($0)?.isEjected(at: now) ?? false) }
        if candidates.isEmpty { candidates = Array(0..<count) }  // all left out: better to try than to fail
        guard candidates.count > 1 else { return candidates[0] }
        let a = candidates.randomElement(using: &rng)!
        var b = candidates.randomElement(using: &rng)!
        while b == a { b = candidates.randomElement(using: &rng)! }
        let ca = load(a)?.cost(at: now) ?? EndpointLoad.defaultRTTNanos
        let cb = load(b)?.cost(at: now) ?? EndpointLoad.defaultRTTNanos
        return ca <= cb ? a : b
    }
}

/// Linkerd's retry budget for one authority: retries may add at most 20% to the requests of the
/// last 10 seconds, plus 10 retries a second whatever the traffic, so a failing service is not
/// buried under retries.
struct RetryBudget: Sendable {
    static let ratio = 0.2
    static let minPerSecond = 10.0
    static let ttlNanos: Int64 = 10_000_000_000

    private var requests: [NIODeadline] = []
    private var retries: [NIODeadline] = []

    private mutating func trim(_ now: NIODeadline) {
        let cutoff = now - .nanoseconds(Self.ttlNanos)
        if let i = requests.firstIndex(where: { $0 >= cutoff }) { requests.removeFirst(i) } else { requests.removeAll() }
        if let i = retries.firstIndex(where: { $0 >= cutoff }) { retries.removeFirst(i) } else { retries.removeAll() }
    }

    mutating func recordRequest(at now: NIODeadline) {
        trim(now)
        requests.append(now)
    }

    /// Takes one retry from the budget if there is one left.
    mutating func withdraw(at now: NIODeadline) -> Bool {
        trim(now)
        let allowed = Self.minPerSecond * Double(Self.ttlNanos) / 1e9 + Self.ratio * Double(requests.count)
        guard Double(retries.count) < allowed else { return false }
        retries.append(now)
        return true
    }
}
