public import PromText

/// One endpoint to scrape, with the labels its samples get (as Prometheus' file_sd gives them).
public struct ScrapeTarget: Sendable, Hashable {
    public var url: String
    public var labels: [Label]

    public init(url: String, labels: [Label] = []) {
        self.url = url
        self.labels = labels
    }

    /// `host:port` of the URL, as Prometheus' `instance` label names it.
    public var instance: String {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        return String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
    }

    /// The target's labels with `instance` added when absent: what each series is keyed by.
    public var seriesLabels: [Label] {
        labels.contains { $0.name == "instance" } ? labels : labels + [Label("instance", instance)]
    }
}

/// What one scrape gave: a body, or why there is none.
public struct ScrapeResult: Sendable {
    public var target: ScrapeTarget
    /// When the scrape started, in milliseconds since the epoch.
    public var startedMs: Int64
    public var durationSeconds: Double
    public var body: [UInt8]?
    /// A sentence naming what went wrong (connection refused, timeout, HTTP status…).
    public var error: String?
    /// The target's clock, from its `Date` header (whole seconds), when it sent one. Not recorded.
    public var serverDateMs: Int64?

    public init(target: ScrapeTarget, startedMs: Int64, durationSeconds: Double, body: [UInt8]?, error: String?) {
        self.target = target
        self.startedMs = startedMs
        self.durationSeconds = durationSeconds
        self.body = body
        self.error = error
    }
}
