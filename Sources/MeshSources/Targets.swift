public import MeshMetrics
import PromText
import YAMLTree

/// Reads Prometheus `file_sd` files: a JSON or YAML list of `{targets: [host:port…], labels: {…}}`.
/// The same file feeds meshtop and a Prometheus server.
public enum TargetsFile {
    /// The scrape targets a file lists. `__scheme__` and `__metrics_path__` labels set the URL
    /// as in Prometheus; other labels starting with `__` are dropped.
    public static func parse(_ text: String, file: String) throws(SourceError) -> [ScrapeTarget] {
        let root: Any?
        do {
            root = try YAMLTree.load(text)
        } catch {
            throw SourceError("\(file): not valid JSON or YAML: \(error)")
        }
        guard let groups = root as? [Any] else {
            throw SourceError("\(file): expected a list of {targets: [...], labels: {...}} groups (Prometheus file_sd format)")
        }
        var out: [ScrapeTarget] = []
        for (i, item) in groups.enumerated() {
            guard let group = item as? [String: Any] else { throw SourceError("\(file): entry \(i + 1) is not a map") }
            guard let addresses = group["targets"] as? [Any] else {
                throw SourceError("\(file): entry \(i + 1) has no 'targets' list")
            }
            var labels: [String: String] = [:]
            if let l = group["labels"] {
                guard let map = l as? [String: Any] else { throw SourceError("\(file): entry \(i + 1): 'labels' is not a map") }
                for (k, v) in map { labels[k] = "\(v)" }
            }
            let scheme = labels["__scheme__"] ?? "http"
            let path = labels["__metrics_path__"] ?? "/metrics"
            let kept = labels.filter { !$0.key.hasPrefix("__") }.map { Label($0.key, $0.value) }.sorted()
            for address in addresses {
                guard let a = address as? String, !a.isEmpty else {
                    throw SourceError("\(file): entry \(i + 1): each target must be a \"host:port\" string")
                }
                guard !a.contains("/") else {
                    throw SourceError("\(file): entry \(i + 1): \"\(a)\" is a URL; file_sd targets are host:port, with the path in a __metrics_path__ label (and https in __scheme__)")
                }
                out.append(ScrapeTarget(url: "\(scheme)://\(a)\(path)", labels: kept))
            }
        }
        return out
    }

    /// A `--scrape` argument: `URL` or `URL;name=value,name=value` (the labels the target gets).
    public static func parseScrapeArgument(_ argument: String) throws(SourceError) -> ScrapeTarget {
        let parts = argument.split(separator: ";", maxSplits: 1)
        guard let first = parts.first, !first.isEmpty else { throw SourceError("--scrape needs a URL") }
        var url = String(first)
        if !url.contains("://") { url = "http://" + url }
        if url.split(separator: "/", omittingEmptySubsequences: false).count <= 3 { url += "/metrics" }
        var labels: [Label] = []
        if parts.count == 2 {
            for pair in parts[1].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, !kv[0].isEmpty else {
                    throw SourceError("--scrape \(argument): labels after ';' must be name=value pairs separated by ','")
                }
                labels.append(Label(String(kv[0]), String(kv[1])))
            }
        }
        return ScrapeTarget(url: url, labels: labels.sorted())
    }
}

/// A problem with a source the user named: a file, a URL, a target.
public struct SourceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The source answered, but with something that cannot be used (a count that is NaN): bad
    /// input rather than an unreachable source.
    public var badAnswer = false
    public init(_ description: String, badAnswer: Bool = false) {
        self.description = description
        self.badAnswer = badAnswer
    }
}
