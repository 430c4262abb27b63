public import MeshMetrics
public import MeshSources
import Synchronization

/// A `ScrapeTransport` that answers from memory: each target's next body (or failure) is set by
/// the test, and a scrape takes no time on the clock given. Feeds and collectors tested without
/// sockets or libcurl.
public final class InMemoryScrapes: ScrapeTransport {
    private let bodies = Mutex<[String: Result<String, ScrapeFailure>]>([:])

    public init() {}

    /// What `url` answers from now on.
    public func answer(_ url: String, with body: String) { bodies.withLock { $0[url] = .success(body) } }

    /// `url` fails from now on, as a refused connection would.
    public func fail(_ url: String, _ reason: String) { bodies.withLock { $0[url] = .failure(ScrapeFailure(reason: reason)) } }

    public func scrape(_ targets: [ScrapeTarget], now: () -> Int64) -> [ScrapeResult] {
        let started = now()
        let answers = bodies.withLock { $0 }
        return targets.map { t in
            switch answers[t.url] ?? .failure(ScrapeFailure(reason: "\(t.url): connection refused")) {
            case .success(let body):
                return ScrapeResult(target: t, startedMs: started, durationSeconds: 0, body: Array(body.utf8), error: nil)
            case .failure(let f):
                return ScrapeResult(target: t, startedMs: started, durationSeconds: 0, body: nil, error: f.reason)
            }
        }
    }

    public struct ScrapeFailure: Error {
        public var reason: String
    }
}
