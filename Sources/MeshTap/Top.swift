/// A latency histogram with log-spaced buckets (about 4% wide) from 1 µs to about 20 min: small,
/// fixed-size, and within a few percent for p50/p99.
public struct LatencySketch: Sendable, Equatable {
    private static let growth = 1.04
    private static let count = 540
    private var buckets = [UInt32](repeating: 0, count: LatencySketch.count)
    public private(set) var total: UInt64 = 0

    public init() {}

    public mutating func record(nanos: Int64) {
        let us = max(1.0, Double(nanos) / 1000)
        let i = min(Self.count - 1, Int((log(us) / log(Self.growth)).rounded(.down)))
        buckets[i] &+= 1
        total += 1
    }

    /// The latency at quantile `q` (0…1), in nanoseconds: the middle of its bucket.
    public func quantile(_ q: Double) -> Int64? {
        guard total > 0 else { return nil }
        let rank = max(1, UInt64((q * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += UInt64(n)
            if seen >= rank {
                return Int64(pow(Self.growth, Double(i) + 0.5) * 1000)
            }
        }
        return nil
    }
}

/// The header a meshproxy outbound stamps on each request it forwards (and its inbound reads and
/// removes), so that tap consumers can tell one request seen by two proxies.
public let tapIDHeader = "l5d-tap-id"

/// One row of `top`: requests with the same source, destination, method and path.
public struct TopRow: Sendable, Equatable {
    public var source: String
    public var destination: String
    public var method: String
    public var path: String
    public var count = 0
    public var best: Int64 = .max
    public var worst: Int64 = 0
    public var last: Int64 = 0
    public var successes = 0
    public var failures = 0
    public var latencies = LatencySketch()

    public init(source: String, destination: String, method: String, path: String) {
        self.source = source
        self.destination = destination
        self.method = method
        self.path = path
    }

    public var successRate: Double? { count == 0 ? nil : Double(successes) / Double(successes + failures) }
}

/// Aggregates tap events into `top`'s rows, as `linkerd viz top` does: a request completes
/// when its end event arrives, matched to its init event by (source, destination, stream id).
public struct TopAggregator: Sendable {
    private struct Pending: Sendable {
        var source: String
        var destination: String
        var method: String
        var path: String
        var status: Int?
        /// The request's `l5d-tap-id`, when a meshproxy outbound stamped one.
        var tapID: String?
        /// Seen by the server's inbound (which names the client only by its address).
        var inbound = false
    }

    /// An inbound sight that finished before its outbound sight arrived: two proxies' streams
    /// reach us independently, so the client's may lag. Counted after `mergeGraceMs` (or at
    /// `finish()`) unless the outbound sight turns up first and takes its place.
    private struct Held: Sendable {
        var pending: Pending
        var nanos: Int64
        var grpc: Int?
        var reset: Int?
        var atMs: Int64?
    }

    private var pending: [String: Pending] = [:]
    /// One request seen by both of its proxies (the client's outbound and the server's inbound
    /// carry the same `l5d-tap-id`) is counted once, as the outbound saw it (it names the client's
    /// pod; the inbound sees only the connection's address).
    private var pendingByTapID: [String: (key: String, outbound: Bool)] = [:]
    private var finishedTapIDs: Set<String> = []
    private var finishedTapIDOrder: [String] = []
    private var held: [String: Held] = [:]
    private var heldOrder: [String] = []
    /// How long an inbound sight that finished first waits for its outbound sight.
    public var mergeGraceMs: Int64 = 1_000
    /// Observations left out as the second sight of a request (their ends are not counted).
    private var duplicates: Set<String> = []
    /// Requests seen by two proxies and counted once.
    public private(set) var merged = 0
    private var pendingOrder: [String] = []
    private var rowIndex: [String: Int] = [:]
    public private(set) var rows: [TopRow] = []
    /// Requests whose start was never seen (they began before the stream did).
    public private(set) var unmatched = 0
    /// Requests in flight kept at most; the oldest are forgotten past this.
    public var maxPending = 10_000
    /// Group paths by route (`routeMeta["route"]`, or `[DEFAULT]`) instead of path.
    public var byRoute = false

    /// One finished request, for counting over a window (`rows(since:)`).
    private struct Completion: Sendable {
        var atMs: Int64
        var row: Int32
        var ok: Bool
        var nanos: Int64
    }
    /// Finished requests with the moment they were added, oldest first (from `add(_:atMs:)`).
    private var completions: [Completion] = []
    private var completionsStart = 0
    /// Completions kept at most for windowed rows; the oldest are forgotten past this.
    public var maxCompletions = 50_000

    public init(byRoute: Bool = false) {
        self.byRoute = byRoute
    }

    /// Adds `e` and, when it finishes a request, remembers that it did at `atMs`, so
    /// `rows(since:)` can count over a window.
    public mutating func add(_ e: TapEvent, atMs: Int64) {
        release(atMs: atMs)
        complete(e, atMs: atMs)
    }

    /// Counts the inbound sights held for their outbound sight longer than `mergeGraceMs` at
    /// `atMs` (all of them when `atMs` is nil): a live view calls this as time passes.
    public mutating func release(atMs: Int64?) {
        var done = 0
        for id in heldOrder {
            guard let h = held[id] else {
                done += 1
                continue
            }
            if let atMs, let since = h.atMs, atMs - since < mergeGraceMs, held.count <= maxPending { break }
            held[id] = nil
            done += 1
            remember(finished: id)
            count(h.pending, nanos: h.nanos, grpc: h.grpc, reset: h.reset, atMs: h.atMs)
        }
        heldOrder.removeFirst(done)
    }

    /// The input ended: counts what is still held. `rows` is final after this.
    public mutating func finish() {
        release(atMs: nil)
    }

    /// The rows counting only requests finished at or after `startMs` (added with a time), most
    /// first: what a view headed with a window shows. Rows with none in the window are left out.
    public func rows(since startMs: Int64) -> [TopRow] {
        var out = rows.map { TopRow(source: $0.source, destination: $0.destination, method: $0.method, path: $0.path) }
        var i = completions.count
        while i > completionsStart, completions[i - 1].atMs >= startMs { i -= 1 }
        for c in completions[i...] {
            let r = Int(c.row)
            out[r].count += 1
            out[r].best = min(out[r].best, c.nanos)
            out[r].worst = max(out[r].worst, c.nanos)
            out[r].last = c.nanos
            out[r].latencies.record(nanos: c.nanos)
            if c.ok { out[r].successes += 1 } else { out[r].failures += 1 }
        }
        return Self.byCount(out.filter { $0.count > 0 })
    }

    /// Adds `e` with no time: inbound sights held for their outbound sight are counted at `finish()`.
    public mutating func add(_ e: TapEvent) {
        complete(e, atMs: nil)
    }

    /// Folds `e` in, counting a request when its end arrives.
    private mutating func complete(_ e: TapEvent, atMs: Int64?) {
        let key = e.requestKey
        switch e.http {
        case let .requestInit(_, method, _, _, path, headers):
            let shownPath = byRoute ? (e.routeMeta?["route"] ?? "[DEFAULT]") : path
            let tapID = headers.first { $0.name.lowercased() == tapIDHeader }?.value
            if let tapID {
                let outbound = e.direction == .outbound
                if outbound, held.removeValue(forKey: tapID) != nil {
                    merged += 1  // the inbound sight finished first; this one is counted instead
                } else if finishedTapIDs.contains(tapID) || held[tapID] != nil {
                    duplicates.insert(key)
                    merged += 1
                    return
                } else if let other = pendingByTapID[tapID] {
                    merged += 1
                    guard outbound && !other.outbound else {
                        duplicates.insert(key)
                        return
                    }
                    pending[other.key] = nil  // the inbound sight gives way to the outbound one
                    duplicates.insert(other.key)
                }
                pendingByTapID[tapID] = (key, outbound)
            }
            if pending[key] == nil { pendingOrder.append(key) }
            pending[key] = Pending(source: Self.name(e.source), destination: Self.name(e.destination), method: method, path: shownPath,
                                   status: nil, tapID: tapID, inbound: e.direction == .inbound)
            if pendingOrder.count > maxPending {
                let drop = pendingOrder.count - maxPending
                for k in pendingOrder.prefix(drop) {
                    if let id = pending[k]?.tapID { pendingByTapID[id] = nil }
                    pending[k] = nil
                }
                pendingOrder.removeFirst(drop)
                if duplicates.count > maxPending { duplicates.removeAll() }
            }
        case let .responseInit(_, _, status, _):
            pending[key]?.status = status
        case let .responseEnd(_, sinceRequest, _, _, grpc, reset, _):
            if duplicates.remove(key) != nil { return }
            guard let p = pending.removeValue(forKey: key) else {
                unmatched += 1
                return
            }
            if pendingOrder.count > 2 * pending.count + 64 { pendingOrder.removeAll { pending[$0] == nil } }
            if let id = p.tapID {
                pendingByTapID[id] = nil
                if p.inbound {
                    held[id] = Held(pending: p, nanos: sinceRequest, grpc: grpc, reset: reset, atMs: atMs)
                    heldOrder.append(id)
                    if held.count > maxPending { release(atMs: atMs) }
                    return
                }
                remember(finished: id)
            }
            count(p, nanos: sinceRequest, grpc: grpc, reset: reset, atMs: atMs)
        }
    }

    /// Remembers (boundedly) that the request `id` was counted, so a late second sight is not.
    private mutating func remember(finished id: String) {
        finishedTapIDs.insert(id)
        finishedTapIDOrder.append(id)
        if finishedTapIDOrder.count > maxPending {
            let drop = finishedTapIDOrder.count - maxPending
            for old in finishedTapIDOrder.prefix(drop) { finishedTapIDs.remove(old) }
            finishedTapIDOrder.removeFirst(drop)
        }
    }

    /// Counts one finished request in its row (and, with a time, for `rows(since:)`).
    private mutating func count(_ p: Pending, nanos: Int64, grpc: Int?, reset: Int?, atMs: Int64?) {
        let rowKey = "\(p.source)|\(p.destination)|\(p.method)|\(p.path)"
        let i: Int
        if let existing = rowIndex[rowKey] {
            i = existing
        } else {
            i = rows.count
            rows.append(TopRow(source: p.source, destination: p.destination, method: p.method, path: p.path))
            rowIndex[rowKey] = i
        }
        rows[i].count += 1
        rows[i].best = min(rows[i].best, nanos)
        rows[i].worst = max(rows[i].worst, nanos)
        rows[i].last = nanos
        rows[i].latencies.record(nanos: nanos)
        let ok = Self.isSuccess(status: p.status, grpc: grpc, reset: reset)
        if ok { rows[i].successes += 1 } else { rows[i].failures += 1 }
        guard let atMs else { return }
        completions.append(Completion(atMs: atMs, row: Int32(i), ok: ok, nanos: nanos))
        if completions.count - completionsStart > maxCompletions { completionsStart = completions.count - maxCompletions }
        if completionsStart > 4096 && completionsStart * 2 > completions.count {
            completions.removeFirst(completionsStart)
            completionsStart = 0
        }
    }

    /// Rows by count, most first (stable).
    public var sortedRows: [TopRow] { Self.byCount(rows) }

    static func byCount(_ rows: [TopRow]) -> [TopRow] {
        rows.enumerated().sorted { a, b in a.element.count != b.element.count ? a.element.count > b.element.count : a.offset < b.offset }.map(\.element)
    }

    /// linkerd viz top's rule: status below 500, not ended by gRPC UNKNOWN, DEADLINE_EXCEEDED,
    /// INTERNAL, UNAVAILABLE or DATA_LOSS, and not reset.
    public static func isSuccess(status: Int?, grpc: Int?, reset: Int?) -> Bool {
        if reset != nil { return false }
        if let status, status >= 500 { return false }
        if let grpc, [2, 4, 13, 14, 15].contains(grpc) { return false }
        return true
    }

    /// The `pod` label when the peer has one, else its IP.
    static func name(_ p: TapPeer) -> String {
        if let pod = p.metadata?["pod"], !pod.isEmpty { return pod }
        return p.ip
    }

    /// `81µs`, `9ms`, `2s`: linkerd top's durations.
    public static func format(nanos: Int64) -> String {
        if nanos < 1_000_000 { return "\((nanos + 500) / 1000)µs" }
        if nanos < 1_000_000_000 { return "\((nanos + 500_000) / 1_000_000)ms" }
        return "\((nanos + 500_000_000) / 1_000_000_000)s"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
