public import MeshTap
import MeshMetrics
import Synchronization
import Foundation

/// The events of a one-shot `tap` or `top`: from live proxies' tap listeners (merged), or from
/// what `linkerd viz tap -o json` printed.
public enum TapStream {
    /// Calls `onEvent` with each event that passes `filter` (for an import, a request's response
    /// events go with its request) until `onEvent` says false, `maxEvents`, `stopAfterMs`, Ctrl-C,
    /// the end of the import, or every subscription closed. Problems go to `warn`; unreachable
    /// when no subscription delivered anything.
    public static func run(addresses taps: [String], importing tapImport: String?, filter: TapFilter, stopAfterMs: Int64?, maxEvents: Int?,
                           warn: (String) -> Void, onEvent: @escaping (TapEvent) -> Bool) throws(OneShotError) {
        if let file = tapImport {
            // Requests the filter turned away, so their responses are left out too.
            var rejected = Set<String>()
            var stop = false
            var seen = 0
            let problems: [String]
            do {
                problems = try TapImport.read(file) { e in
                    guard !stop else { return }
                    if let maxEvents, seen >= maxEvents {
                        stop = true
                        return
                    }
                    let key = e.requestKey
                    if case .requestInit = e.http, !filter.matches(e) {
                        rejected.insert(key)
                        return
                    }
                    if rejected.contains(key) { return }
                    seen += 1
                    if !onEvent(e) { stop = true }
                }
            } catch {
                throw .input(error.description)
            }
            for p in problems { warn(p) }
            return
        }
        let queue = Mutex<[TapSubscription.Update]>([])
        let subscriptions = taps.map { TapSubscription(address: $0, filter: filter) }
        for s in subscriptions { s.start { u in queue.withLock { $0.append(u) } } }
        defer { for s in subscriptions { s.stop() } }
        let stop = StopFlag.install()
        let started = WallClock().nowMs()
        var closed = 0
        var seen = 0
        var problems: [String] = []
        while !stop.isSet {
            if let stopAfterMs, WallClock().nowMs() - started >= stopAfterMs { break }
            let batch = queue.withLock { q in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            for u in batch {
                switch u {
                case .event(let e):
                    seen += 1
                    if !onEvent(e) { return }
                    if let maxEvents, seen >= maxEvents { return }
                case .problem(let p):
                    problems.append(p)
                    warn(p)
                case .closed: closed += 1
                }
            }
            if closed == subscriptions.count {
                if seen == 0 { throw .unreachable("no tap source delivered anything: " + problems.joined(separator: "; ")) }
                break
            }
            if batch.isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}
