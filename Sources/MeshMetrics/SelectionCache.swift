import Synchronization

/// The series a query selects, each with the group it belongs to and the value of one more label
/// (`classification`, `le`), resolved once and reused while no series is added. Series are only
/// ever appended, so a selection made when the store held N series stays right for any copy of
/// the store that holds N series.
struct Selection: Sendable {
    var ids: [Int] = []
    /// Index into `groups` for each id.
    var group: [Int32] = []
    var groups: [[String]] = []
    /// The extra label's value for each id, as an index into `extraValues`.
    var extra: [Int32] = []
    var extraValues: [String] = []
}

final class SelectionCache: Sendable {
    private let entries = Mutex<[String: (generation: Int, selection: Selection)]>([:])

    func selection(_ key: String, generation: Int, make: () -> Selection) -> Selection {
        if let hit = entries.withLock({ $0[key] }), hit.generation == generation { return hit.selection }
        let fresh = make()
        entries.withLock { $0[key] = (generation, fresh) }
        return fresh
    }
}

extension MetricStore {
    /// The series of `name` matching `matchers`, grouped by the values of `groupBy`, with the value
    /// of `extra` for each.
    func selection(_ name: String, _ matchers: [Matcher], groupBy: [String], extra: String) -> Selection {
        let key = name + "|" + matchers.map { "\($0.name)\($0.op)\($0.value)" }.joined(separator: ",") + "|" + groupBy.joined(separator: ",") + "|" + extra
        return cache.selection(key, generation: keys.count) {
            var s = Selection()
            var index: [[String]: Int32] = [:]
            var extraIndex: [String: Int32] = [:]
            for id in select(name, matchers) {
                let k = keys[id]
                let values = groupBy.map { k[label: $0] ?? "" }
                let g: Int32
                if let existing = index[values] {
                    g = existing
                } else {
                    g = Int32(s.groups.count)
                    s.groups.append(values)
                    index[values] = g
                }
                s.ids.append(id)
                s.group.append(g)
                let value = k[label: extra] ?? ""
                if let e = extraIndex[value] {
                    s.extra.append(e)
                } else {
                    extraIndex[value] = Int32(s.extraValues.count)
                    s.extra.append(Int32(s.extraValues.count))
                    s.extraValues.append(value)
                }
            }
            return s
        }
    }
}
