public import PromText

/// A series' identity: its metric name and its labels, sorted by name.
///
/// A histogram bucket's `le` is kept apart from the other labels, so that the buckets of one
/// histogram can share a single array of them (`MetricStore` shares it): a big mesh has ~26
/// buckets per edge, and the arrays were most of what its keys cost.
public struct SeriesKey: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// The labels but `le`, sorted.
    let shared: [Label]
    /// The value of `le`, when the series has one.
    let bound: String?
    /// FNV-1a over the name and labels, computed once: hashing a key is then hashing one word.
    let fingerprint: UInt64

    public init(name: String, labels: [Label]) {
        let sorted = labels.sorted()
        let le = sorted.firstIndex { $0.name == "le" }
        self.init(name: name, shared: le.map { i in sorted.enumerated().filter { $0.offset != i }.map(\.element) } ?? sorted,
                  bound: le.map { sorted[$0].value })
    }

    private init(name: String, shared: [Label], bound: String?) {
        self.name = name
        self.shared = shared
        self.bound = bound
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ s: String) {
            for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            h = (h ^ 0xFF) &* 0x0000_0100_0000_01B3
        }
        mix(name)
        for label in shared {
            mix(label.name)
            mix(label.value)
        }
        if let bound {
            mix("le")
            mix(bound)
        }
        fingerprint = h
    }

    /// The same key over `shared` taken from `sets` (an equal array already held), or added to it.
    func sharing(_ sets: inout [[Label]: [Label]]) -> SeriesKey {
        if let held = sets[shared] { return SeriesKey(name: name, shared: held, bound: bound, fingerprint: fingerprint) }
        sets[shared] = shared
        return self
    }

    private init(name: String, shared: [Label], bound: String?, fingerprint: UInt64) {
        self.name = name
        self.shared = shared
        self.bound = bound
        self.fingerprint = fingerprint
    }

    /// Every label, sorted by name.
    public var labels: [Label] {
        guard let bound else { return shared }
        var all = shared
        let le = Label("le", bound)
        all.insert(le, at: all.firstIndex { le < $0 } ?? all.endIndex)
        return all
    }

    public static func == (a: SeriesKey, b: SeriesKey) -> Bool {
        a.fingerprint == b.fingerprint && a.name == b.name && a.bound == b.bound && a.shared == b.shared
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }

    public subscript(label name: String) -> String? {
        if name == "le" { return bound }
        return shared.first(where: { $0.name == name })?.value
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
    /// With a rollup: the rolled-up series' points, by round (see `RoundColumns`); `columnar`
    /// says which series keep theirs there.
    private var columns = RoundColumns()
    private var columnar: [Bool] = []
    /// Series ids by their key's fingerprint: 16 bytes an entry where a key would take 40 (a big
    /// mesh has close to a million series). Keys whose fingerprints collide go to `collided`.
    private var index: [UInt64: Int32] = [:]
    private var collided: [SeriesKey: Int] = [:]
    /// Each distinct label array the keys hold (`le` aside), held once.
    private var labelSets: [[Label]: [Label]] = [:]
    private var byName: [String: [Int]] = [:]
    /// Resolved selections, shared by copies of the store (see `SelectionCache`).
    let cache = SelectionCache()
    /// Per target: the series of its last scrape, in order.
    private var layouts: [[Label]: [(name: String, labels: [Label], id: Int)]] = [:]
    /// How long samples are kept, in milliseconds.
    public var retentionMs: Int64
    /// The latest time anything was written, in milliseconds.
    public private(set) var latestMs: Int64 = .min
    /// The earliest time still held, in milliseconds: the oldest round of rolled-up series when
    /// there are any (what the views read), else the oldest point.
    public var earliestMs: Int64 { columns.oldestMs ?? pointsEarliestMs }
    private var pointsEarliestMs: Int64 = .max
    /// Set: keep rollups, not every series (see `Rollup`).
    public let rollup: Rollup?
    /// With a rollup: the most points a series keeps (older ones are dropped first).
    public var maxPointsPerSeries: Int?
    /// With a rollup: the most memory the rolled-up series' points may take; fewer rounds are
    /// kept than `maxPointsPerSeries` asks when they would not fit.
    public var pointBudgetBytes: Int?
    /// Per target, with a rollup: its last scrape's series, in order.
    private var members: [[Label]: [RollupMember]] = [:]
    /// With a rollup: each rolled-up series' running sum, by series id (0 for `up`).
    private var sums: [Double] = []
    /// With a rollup: the series whose sums the scrapes since the last `commit` touched.
    private var touched: [Int] = []
    private var isTouched: [Bool] = []
    /// With a rollup: scrapes taken by `ingestKnown`, whose labels were not parsed.
    public private(set) var scrapesMatched = 0

    public init(retentionMs: Int64 = 30 * 60 * 1000, rollup: Rollup? = nil) {
        self.retentionMs = retentionMs
        self.rollup = rollup
    }

    /// Series held.
    public var seriesCount: Int { keys.count }

    /// Points held, over every series.
    public var pointCount: Int { points.reduce(0) { $0 + $1.count } + columns.pointCount }

    /// Appends a point to a series, creating the series on first sight.
    public mutating func append(_ key: SeriesKey, _ point: Point) {
        append(id: seriesID(key), point)
    }

    private mutating func seriesID(_ key: SeriesKey, columnar inColumns: Bool = false) -> Int {
        let known = index[key.fingerprint]
        if let known, keys[Int(known)] == key { return Int(known) }
        if known != nil, let existing = collided[key] { return existing }
        let id = keys.count
        keys.append(key.sharing(&labelSets))
        points.append([])
        columnar.append(inColumns)
        if known == nil { index[key.fingerprint] = Int32(id) } else { collided[key] = id }
        byName[key.name, default: []].append(id)
        return id
    }

    private mutating func append(id: Int, _ point: Point) {
        if rollup != nil, let most = maxPointsPerSeries {
            // A rolled-up series holds at most `most` points, in exactly that much memory: at a
            // million series, slack and doubling would cost more than the points.
            if points[id].count >= most {
                points[id].removeFirst(points[id].count - most + 1)
                pointsEarliestMs = max(pointsEarliestMs, points[id][0].t)
            }
            if points[id].capacity < most { points[id].reserveCapacity(most) }
        }
        points[id].append(point)
        if point.t > latestMs { latestMs = point.t }
        if point.t < pointsEarliestMs { pointsEarliestMs = point.t }
    }

    /// Adds one scrape: every sample with the target's labels, at the scrape's time unless the
    /// sample carries its own, and `up` = 1.
    ///
    /// A target sends the same series in the same order scrape after scrape, so each target's last
    /// layout is remembered: a sample equal to the one at its position last time reuses that
    /// series without building, sorting or hashing its labels again.
    /// With a rollup, `lines` are the exposition's `SeriesLines.hashes`: what the next scrape's
    /// lines are matched against (`ingestKnown`).
    public mutating func ingest(_ exposition: Exposition, target: [Label], at t: Int64, lines: [UInt64]? = nil) {
        if let rollup {
            ingest(exposition, target: target, at: t, rollup: rollup, lines: lines.flatMap { $0.count == exposition.samples.count ? $0 : nil })
            return
        }
        var layout = layouts[target] ?? []
        var next: [(name: String, labels: [Label], id: Int)] = []
        next.reserveCapacity(exposition.samples.count)
        for (i, sample) in exposition.samples.enumerated() {
            let point = Point(t: sample.timestampMs ?? t, v: sample.value)
            if i < layout.count, layout[i].name == sample.name, layout[i].labels == sample.labels {
                append(id: layout[i].id, point)
                next.append(layout[i])
                continue
            }
            let id = seriesID(SeriesKey(name: sample.name, labels: Self.merge(target: target, sample: sample.labels)))
            append(id: id, point)
            next.append((sample.name, sample.labels, id))
        }
        layout = next
        layouts[target] = layout
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 1))
    }

    /// A sample's labels with the target's added the way Prometheus adds them: a label the
    /// exposition already has is kept as `exported_<name>`.
    static func merge(target: [Label], sample: [Label]) -> [Label] {
        var labels = target
        labels.reserveCapacity(target.count + sample.count)
        for label in sample {
            labels.append(target.contains(where: { $0.name == label.name }) ? Label("exported_" + label.name, label.value) : label)
        }
        return labels
    }

    /// With a rollup: adds each sample's increase (or a gauge's change) to the rolled-up series it
    /// belongs to. The points are written by `commit`, once per round of scrapes.
    private mutating func ingest(_ exposition: Exposition, target: [Label], at t: Int64, rollup: Rollup, lines: [UInt64]?) {
        let old = members[target] ?? []
        var byFingerprint: [UInt64: RollupMember]?
        var next: [RollupMember] = []
        next.reserveCapacity(exposition.samples.count)
        for (i, sample) in exposition.samples.enumerated() {
            // Identified by its line as written when the lines could be read, else by its labels
            // (such a target then always takes this path).
            let fingerprint = lines?[i] ?? RollupMember.fingerprint(sample)
            var member: RollupMember
            if i < old.count, old[i].fingerprint == fingerprint {
                member = old[i]
            } else {
                // The layout changed: look the series up by fingerprint, built once per scrape.
                if byFingerprint == nil { byFingerprint = Dictionary(old.map { ($0.fingerprint, $0) }, uniquingKeysWith: { a, _ in a }) }
                if let known = byFingerprint?[fingerprint] {
                    member = known
                } else if let family = rollup.families[sample.name] {
                    let labels = Self.merge(target: target, sample: sample.labels).filter { family.labels.contains($0.name) }
                    member = RollupMember(fingerprint: fingerprint, group: Int32(seriesID(SeriesKey(name: sample.name, labels: labels), columnar: true)),
                                          counter: family.counter, last: .nan)
                } else {
                    member = RollupMember(fingerprint: fingerprint, group: -1, counter: false, last: .nan)
                }
            }
            if member.group >= 0 { add(member.take(sample.value), to: Int(member.group)) }
            next.append(member)
        }
        if byFingerprint != nil {
            // Series the target no longer sends: a gauge's value leaves the sum with it.
            let kept = Set(next.map(\.fingerprint))
            for m in old where !kept.contains(m.fingerprint) { forget(m) }
        }
        members[target] = next
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 1))
    }

    /// With a rollup: takes a scrape whose sample lines are, one for one, those of the target's
    /// last scrape (same series text, same order), reading only their values. False (and nothing
    /// taken) otherwise: the caller parses the body in full and calls `ingest`.
    public mutating func ingestKnown(_ body: UnsafeRawBufferPointer, target: [Label], at t: Int64) -> Bool {
        guard rollup != nil, var known = members[target] else { return false }
        var values: [Double] = []
        values.reserveCapacity(known.count)
        let same = SeriesLines.scan(body) { hash, value in
            guard values.count < known.count, known[values.count].fingerprint == hash else { return false }
            values.append(value)
            return true
        }
        guard same, values.count == known.count else { return false }
        members[target] = nil  // so the array below is not copied as it changes
        for i in known.indices {
            let delta = known[i].take(values[i])
            if known[i].group >= 0 { add(delta, to: Int(known[i].group)) }
        }
        members[target] = known
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 1))
        scrapesMatched += 1
        return true
    }

    private mutating func add(_ delta: Double, to id: Int) {
        if sums.count < keys.count {
            sums.append(contentsOf: repeatElement(0, count: keys.count - sums.count))
            isTouched.append(contentsOf: repeatElement(false, count: keys.count - isTouched.count))
        }
        sums[id] += delta
        if !isTouched[id] {
            isTouched[id] = true
            touched.append(id)
        }
    }

    /// A member that stopped reporting: a gauge's last value is taken out of its sum.
    private mutating func forget(_ member: RollupMember) {
        guard member.group >= 0, !member.counter, !member.last.isNaN else { return }
        add(-member.last, to: Int(member.group))
    }

    /// With a rollup: writes the sums the round's scrapes touched, as points at `t`.
    public mutating func commit(at t: Int64) {
        columns.startRound(at: t, series: keys.count, keep: roundsToKeep(at: t))
        for id in touched {
            columns.set(id, sums[id])
            isTouched[id] = false
        }
        touched.removeAll(keepingCapacity: true)
        if t > latestMs { latestMs = t }
    }

    /// The rounds of points `pointBudgetBytes` affords the series held now (at least 3).
    public var roundsAffordable: Int? {
        pointBudgetBytes.map { max(3, $0 / MemoryLayout<Double>.stride / max(1, keys.count)) }
    }

    /// The rounds rolled-up series keep: `maxPointsPerSeries`, or without it as many as the
    /// retention covers (the ring doubles while its oldest round is still within it).
    private func roundsToKeep(at t: Int64) -> Int {
        let affordable = roundsAffordable ?? .max
        if let most = maxPointsPerSeries { return min(most, affordable) }
        guard columns.held == columns.capacity, let oldest = columns.oldestMs, oldest >= t - retentionMs else {
            return min(max(4, columns.capacity), affordable)
        }
        return min(columns.capacity * 2, affordable)
    }

    /// Records a failed scrape of a target: `up` = 0.
    public mutating func ingestFailure(target: [Label], at t: Int64) {
        if rollup != nil, let gone = members.removeValue(forKey: target) {
            // Its gauges leave the sums; its counters start afresh when it answers again.
            for m in gone { forget(m) }
        }
        append(SeriesKey(name: "up", labels: target), Point(t: t, v: 0))
    }

    /// Drops samples older than the retention period before `now`.
    public mutating func trim(now: Int64) {
        let cutoff = now - retentionMs
        // Trimming walks every series: do it once the cutoff has moved a tenth of the retention,
        // not on every scrape (points up to that much older than the retention stay meanwhile).
        guard pointsEarliestMs <= cutoff - max(1_000, retentionMs / 10) else { return }
        for id in points.indices {
            if let first = points[id].firstIndex(where: { $0.t >= cutoff }) {
                if first > 0 { points[id].removeFirst(first) }
            } else {
                points[id].removeAll()
            }
        }
        pointsEarliestMs = cutoff
    }

    /// The ids of the series named `name` whose labels satisfy every matcher.
    public func select(_ name: String, _ matchers: [Matcher] = []) -> [Int] {
        (byName[name] ?? []).filter { id in matchers.allSatisfy { $0.matches(keys[id]) } }
    }

    /// The points of a series in the closed range [start, end], as Prometheus 2.x selects a range.
    public func points(of id: Int, from start: Int64, through end: Int64) -> ArraySlice<Point> {
        if columnar[id] { return ArraySlice(columns.points(of: id, from: start, through: end)) }
        let all = points[id]
        let lo = all.partitioningIndex { $0.t >= start }
        let hi = all.partitioningIndex { $0.t > end }
        return all[lo..<max(lo, hi)]
    }

    /// `irate()` of a series over [start, end] without slicing: the common case, a range that
    /// ends at or after the newest sample, reads the last two points directly.
    func lastRate(of id: Int, from start: Int64, through end: Int64) -> Double? {
        if columnar[id] {
            let two = columns.newest(2, of: id, from: start, through: end)
            return two.count == 2 ? PromQL.irate(last: two[0], previous: two[1]) : nil
        }
        return points[id].withUnsafeBufferPointer { p -> Double? in
            let n = p.count
            guard n >= 2 else { return nil }
            if p[n - 1].t <= end {
                guard p[n - 2].t >= start else { return nil }
                return PromQL.irate(last: p[n - 1], previous: p[n - 2])
            }
            return PromQL.irate(points(of: id, from: start, through: end))
        }
    }

    /// The latest point at or before `at`, no older than `lookbackMs` (Prometheus' instant selector).
    public func latest(of id: Int, at: Int64, lookbackMs: Int64 = 5 * 60 * 1000) -> Point? {
        if columnar[id] { return columns.newest(1, of: id, from: at - lookbackMs, through: at).first }
        return points[id].withUnsafeBufferPointer { p -> Point? in
            guard let last = p.last else { return nil }
            if last.t <= at { return last.t >= at - lookbackMs ? last : nil }
            return points(of: id, from: at - lookbackMs, through: at).last
        }
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
