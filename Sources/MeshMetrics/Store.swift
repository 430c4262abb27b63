public import PromText

/// A series' identity: its metric name and its labels, sorted by name.
public struct SeriesKey: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let labels: [Label]

    public init(name: String, labels: [Label]) {
        self.name = name
        self.labels = labels.sorted()
    }

    public subscript(label name: String) -> String? {
        labels.first(where: { $0.name == name })?.value
    }

    public var description: String { name + PromTextWriter.format(labels: labels) }
}

/// One sample in time: milliseconds since the epoch, and a value.
public struct Point: Sendable, Equatable {
    public var t: Int64
    public var v: Double

    public init(t: Int64, v: Double) {
        self.t = t
        self.v = v
    }
}

/// A label matcher as PromQL writes them: `=`, `!=`, `=~`, `!~`.
public struct Matcher: Sendable {
    public enum Op: Sendable { case equal, notEqual, matches, notMatches }
    public var name: String
    public var op: Op
    public var value: String

    public static func eq(_ name: String, _ value: String) -> Matcher { Matcher(name: name, op: .equal, value: value) }
    public static func ne(_ name: String, _ value: String) -> Matcher { Matcher(name: name, op: .notEqual, value: value) }

    func matches(_ key: SeriesKey) -> Bool {
        let actual = key[label: name] ?? ""
        switch op {
        case .equal: return actual == value
        case .notEqual: return actual != value
        case .matches: return anchoredMatch(actual, value)
        case .notMatches: return !anchoredMatch(actual, value)
        }
    }

    private func anchoredMatch(_ s: String, _ pattern: String) -> Bool {
        guard let regex = try? Regex("^(?:" + pattern + ")$") else { return false }
        return s.wholeMatch(of: regex) != nil
    }
}

/// Every sample seen, per series, kept for a retention period: the store queries run over.
///
/// Targets' own labels are added to each sample the way Prometheus adds them: a label the
/// exposition already has is kept as `exported_<name>`, and each scrape also writes `up`.
public struct MetricStore: Sendable {
    public private(set) var keys: [SeriesKey] = []
    private var points: [[Point]] = []
    private var index: [SeriesKey: Int] = [:]
    private var byName: [String: [Int]] = [:]
    /// How long samples are kept, in milliseconds.
    public var retentionMs: Int64
    /// The latest time anything was written, in milliseconds.
    public private(set) var latestMs: Int64 = .min
    /// The earliest time still held, in milliseconds.
    public private(set) var earliestMs: Int64 = .max

    public init(retentionMs: Int64 = 30 * 60 * 1000) {
        self.retentionMs = retentionMs
    }

    /// Appends a point to a series, creating the series on first sight.
    public mutating func append(_ key: SeriesKey, _ point: Point) {
        let id: Int
        if let existing = index[key] {
            id = existing
        } else {
            id = keys.count
            keys.append(key)
            points.append([])
            index[key] = id
            byName[key.name, default: []].append(id)
        }
        points[id].append(point)
        latestMs = max(latestMs, point.t)
        earliestMs = min(earliestMs, point.t)
    }

    /// Adds one scrape: every sample with the target's labels, at the scrape's time unless the
    /// sample carries its own, and `up` = 1.
    public mutating func ingest(_ exposition: Exposition, target: [Label], at t: Int64) {
        let targetNames = Set(target.map(\.name))
        for sample in exposition.samples {
            var labels = target
            labels.reserveCapacity(target.count + sample.labels.count)
            for label in sample.labels {
                labels.append(targetNames.contains(label.name) ? Label("exported_" + label.name, label.value) : label)
            }
            append(SeriesKey(name: sample.name, labels: labels), Point(t: sample.timestampMs ?? t, v: sample.value))
        }
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 1))
    }

    /// Records a failed scrape of a target: `up` = 0.
    public mutating func ingestFailure(target: [Label], at t: Int64) {
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 0))
    }

    /// Drops samples older than the retention period before `now`.
    public mutating func trim(now: Int64) {
        let cutoff = now - retentionMs
        guard earliestMs < cutoff else { return }
        for id in points.indices {
            if let first = points[id].firstIndex(where: { $0.t >= cutoff }) {
                if first > 0 { points[id].removeFirst(first) }
            } else {
                points[id].removeAll()
            }
        }
        earliestMs = cutoff
    }

    /// The ids of the series named `name` whose labels satisfy every matcher.
    public func select(_ name: String, _ matchers: [Matcher] = []) -> [Int] {
        (byName[name] ?? []).filter { id in matchers.allSatisfy { $0.matches(keys[id]) } }
    }

    /// The points of a series in the closed range [start, end], as Prometheus 2.x selects a range.
    public func points(of id: Int, from start: Int64, through end: Int64) -> ArraySlice<Point> {
        let all = points[id]
        let lo = all.partitioningIndex { $0.t >= start }
        let hi = all.partitioningIndex { $0.t > end }
        return all[lo..<max(lo, hi)]
    }

    /// The latest point at or before `at`, no older than `lookbackMs` (Prometheus' instant selector).
    public func latest(of id: Int, at: Int64, lookbackMs: Int64 = 5 * 60 * 1000) -> Point? {
        let slice = points(of: id, from: at - lookbackMs, through: at)
        return slice.last
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate that is false then true.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if predicate(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
