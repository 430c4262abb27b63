/// The sparklines' history of every workload and edge the dashboard has shown: one point per
/// refresh, looked up by `viewKey`.
///
/// A big mesh refreshes tens of thousands of edges a second on the dashboard's own thread, so
/// recording is a walk down the snapshot's rows: while the rows are those of the last snapshot
/// (the usual case: sources list them in the same order), each row's history is known by position
/// and no key is built, hashed or looked up.
public struct Trends: Sendable, Equatable {
    private var slots: [History] = []
    private var index: [String: Int] = [:]
    /// The rows of the last snapshot recorded, and the slot of each.
    private var lastWorkloads: [WorkloadID] = []
    private var workloadSlots: [Int] = []
    private var lastEdges: [EdgeID] = []
    private var edgeSlots: [Int] = []

    public init() {}

    /// Histories as a recording holds them.
    public init(_ histories: [String: History]) {
        for (key, h) in histories.sorted(by: { $0.key < $1.key }) {
            index[key] = slots.count
            slots.append(h)
        }
    }

    public subscript(key: String) -> History? {
        index[key].map { slots[$0] }
    }

    /// Every history by key.
    public var all: [String: History] { index.mapValues { slots[$0] } }

    public var isEmpty: Bool { slots.isEmpty }

    /// Adds `data`'s numbers to the history of each workload and edge in it.
    public mutating func record(_ data: MeshSnapshot) {
        let w = data.workloads, e = data.edges
        if !Self.same(w.count, lastWorkloads, { w[$0].workload }) {
            lastWorkloads = w.map(\.workload)
            workloadSlots = lastWorkloads.map { slot(viewKey($0)) }
        }
        if !Self.same(e.count, lastEdges, { e[$0].edge }) {
            lastEdges = e.map(\.edge)
            edgeSlots = lastEdges.map { slot(viewKey($0)) }
        }
        for i in w.indices {
            slots[workloadSlots[i]].append(rps: w[i].rps, success: w[i].success, p99: w[i].latencyP99)
        }
        for i in e.indices {
            slots[edgeSlots[i]].append(rps: e[i].traffic.rps, success: e[i].traffic.success, p99: e[i].traffic.latencyP99)
        }
    }

    private static func same<ID: Equatable>(_ count: Int, _ last: [ID], _ id: (Int) -> ID) -> Bool {
        count == last.count && last.indices.allSatisfy { id($0) == last[$0] }
    }

    private mutating func slot(_ key: String) -> Int {
        if let known = index[key] { return known }
        index[key] = slots.count
        slots.append(History())
        return slots.count - 1
    }

    public static func == (a: Trends, b: Trends) -> Bool { a.all == b.all }
}

/// A few recent values of one workload or edge, for sparklines.
public struct History: Sendable, Equatable {
    public static let length = 60
    // Doubles with NaN for "not known", in arrays of exactly `length + 1`: a big mesh keeps one
    // History per edge (tens of thousands), and `Double?` with doubling took four times as much.
    private var rpsValues: [Double] = []
    private var successValues: [Double] = []
    private var p99Values: [Double] = []

    public var rps: [Double?] { Self.optionals(rpsValues) }
    public var success: [Double?] { Self.optionals(successValues) }
    public var p99: [Double?] { Self.optionals(p99Values) }

    public init() {}

    public mutating func append(rps r: Double?, success s: Double?, p99 p: Double?) {
        if rpsValues.isEmpty {
            rpsValues.reserveCapacity(Self.length + 1)
            successValues.reserveCapacity(Self.length + 1)
            p99Values.reserveCapacity(Self.length + 1)
        }
        rpsValues.append(r ?? .nan)
        successValues.append(s ?? .nan)
        p99Values.append(p ?? .nan)
        if rpsValues.count > Self.length {
            rpsValues.removeFirst()
            successValues.removeFirst()
            p99Values.removeFirst()
        }
    }

    private static func optionals(_ values: [Double]) -> [Double?] {
        values.map { $0.isNaN ? nil : $0 }
    }

    public static func == (a: History, b: History) -> Bool {
        a.rps == b.rps && a.success == b.success && a.p99 == b.p99
    }
}

