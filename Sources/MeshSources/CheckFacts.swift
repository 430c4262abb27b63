public import MeshCheck
import Foundation

/// What `meshtop check` gathers over the network, for MeshCheck's pure checks.
public enum CheckFacts {
    /// Nil when the tap listener at `address` accepts a subscriber, else why not.
    public static func tapProblem(_ address: String) -> String? {
        switch TapSubscription.connect(address) {
        case .success(let fd):
            close(fd)
            return nil
        case .failure(let e):
            return e.description
        }
    }

    /// How many targets a Prometheus server scrapes and how many proxy series it holds.
    public static func prometheus(_ client: PrometheusClient, atMs: Int64) -> Result<(targets: Int, proxySeries: Int), PrometheusUnanswered> {
        do {
            let up = try client.query("up", atMs: atMs)
            let proxies = try client.query("count(request_total)", atMs: atMs)
            return .success((up.count, proxies.count))
        } catch {
            return .failure(PrometheusUnanswered(error.description))
        }
    }
}
