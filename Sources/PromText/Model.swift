/// The type a `# TYPE` line gives a metric family.
public enum MetricType: String, Sendable, Hashable {
    case counter, gauge, histogram, summary, untyped
    /// OpenMetrics' `unknown`, `gaugehistogram`, `stateset` and `info` are read as untyped.
    case unknown
}

/// One `name="value"` pair of a sample.
public struct Label: Hashable, Sendable, Comparable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public static func < (a: Label, b: Label) -> Bool {
        a.name == b.name ? a.value < b.value : a.name < b.name
    }
}

/// One line of an exposition: a metric name, its labels in the order they were written,
/// a value and, when the line carries one, a timestamp in milliseconds.
public struct Sample: Sendable, Hashable {
    public var name: String
    public var labels: [Label]
    public var value: Double
    public var timestampMs: Int64?

    public init(name: String, labels: [Label], value: Double, timestampMs: Int64? = nil) {
        self.name = name
        self.labels = labels
        self.value = value
        self.timestampMs = timestampMs
    }

    /// The value of the label `name`, or nil when the sample has none.
    public subscript(label name: String) -> String? {
        labels.first(where: { $0.name == name })?.value
    }
}

/// The `# HELP` and `# TYPE` of one family.
public struct FamilyInfo: Sendable, Hashable {
    public var type: MetricType
    public var help: String?

    public init(type: MetricType, help: String? = nil) {
        self.type = type
        self.help = help
    }
}

/// A parsed exposition: every sample in the order written, and what the comments said of each family.
public struct Exposition: Sendable {
    public var samples: [Sample]
    public var families: [String: FamilyInfo]

    public init(samples: [Sample] = [], families: [String: FamilyInfo] = [:]) {
        self.samples = samples
        self.families = families
    }

    /// The type of the family a sample belongs to, seeing `_bucket`, `_sum`, `_count`, `_total`
    /// and `_created` suffixes through to their family.
    public func type(ofSample name: String) -> MetricType {
        if let info = families[name] { return info.type }
        for suffix in ["_bucket", "_count", "_sum", "_total", "_created"] where name.hasSuffix(suffix) {
            if let info = families[String(name.dropLast(suffix.count))] { return info.type }
        }
        return .untyped
    }
}

/// Why an exposition was rejected: where (1-based line and column) and what was expected.
public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}
