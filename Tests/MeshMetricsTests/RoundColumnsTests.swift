import Testing
@testable import MeshMetrics

/// Rolled-up series' points by round, and the sparklines' trends: what a big mesh's dashboard
/// keeps in memory must read back as the points and histories were written.
@Suite struct RoundColumnsTests {
    /// Rounds at 1 s, 2 s, …: series 0 is in every round, series 5,000 (the second chunk) in the odd
    /// ones, with a NaN sample in round 3.
    static func rounds(_ count: Int, keep: Int) -> RoundColumns {
        var c = RoundColumns()
        for r in 1...count {
            c.startRound(at: Int64(r) * 1000, series: 5001, keep: keep)
            c.set(0, Double(r))
            if r % 2 == 1 { c.set(5000, r == 3 ? .nan : Double(r * 10)) }
        }
        return c
    }

    @Test func theRingHoldsTheNewestRoundsAndSkipsAbsentOnes() {
        let c = Self.rounds(5, keep: 3)
        #expect(c.points(of: 0, from: .min, through: .max) == [Point(t: 3000, v: 3), Point(t: 4000, v: 4), Point(t: 5000, v: 5)])
        let odd = c.points(of: 5000, from: .min, through: .max)
        #expect(odd.map(\.t) == [3000, 5000], "round 4 did not touch the series: no point, not a zero")
        #expect(odd[0].v.isNaN, "a NaN sample is a value, not a missing point")
        #expect(c.points(of: 1, from: .min, through: .max).isEmpty, "a series no round touched has no points")
        #expect(c.oldestMs == 3000)
        #expect(c.points(of: 0, from: 3500, through: 4000) == [Point(t: 4000, v: 4)])
        #expect(c.newest(2, of: 0, from: .min, through: 4500) == [Point(t: 4000, v: 4), Point(t: 3000, v: 3)])
        #expect(c.newest(2, of: 5000, from: 4000, through: .max) == [Point(t: 5000, v: 50)])
    }

    @Test func growingKeepsWhatIsHeldAndShrinkingKeepsTheNewest() {
        var c = Self.rounds(5, keep: 3)
        c.startRound(at: 6000, series: 5001, keep: 6)
        c.set(0, 6)
        #expect(c.points(of: 0, from: .min, through: .max).map(\.v) == [3, 4, 5, 6], "rounds dropped before the ring grew stay dropped")
        #expect(c.oldestMs == 3000)
        for r in 7...9 {
            c.startRound(at: Int64(r) * 1000, series: 5001, keep: 6)
            c.set(0, Double(r))
        }
        #expect(c.points(of: 0, from: .min, through: .max).map(\.v) == [4, 5, 6, 7, 8, 9])
        c.startRound(at: 10_000, series: 9000, keep: 2)
        c.set(8999, 1)
        #expect(c.points(of: 0, from: .min, through: .max).map(\.v) == [9], "round 10 did not touch series 0")
        #expect(c.points(of: 8999, from: .min, through: .max) == [Point(t: 10_000, v: 1)], "a third chunk, added for a new series")
        #expect(c.oldestMs == 9000)
        #expect(c.pointCount == 2)
    }

    @Test func trendsFollowEachRowWhenRowsComeAndGo() {
        func id(_ n: String) -> WorkloadID { WorkloadID(namespace: "prod", name: n) }
        func edge(_ a: String, _ b: String, _ rps: Double) -> EdgeMetrics {
            var t = TrafficMetrics()
            t.rps = rps
            t.success = 1
            return EdgeMetrics(edge: EdgeID(source: id(a), destination: id(b)), traffic: t)
        }
        func snapshot(_ edges: [EdgeMetrics]) -> MeshSnapshot {
            var s = MeshSnapshot()
            s.edges = edges
            var w = GoldenMetrics(workload: id("web"))
            w.rps = Double(edges.count)
            s.workloads = [w]
            return s
        }
        var trends = Trends()
        trends.record(snapshot([edge("web", "a", 1), edge("web", "c", 2)]))
        trends.record(snapshot([edge("web", "a", 3), edge("web", "c", 4)]))
        // A new edge between the two, and one gone: each history stays with its edge.
        trends.record(snapshot([edge("web", "a", 5), edge("web", "b", 6)]))
        trends.record(snapshot([edge("web", "a", 7), edge("web", "b", 8), edge("web", "c", 9)]))
        func rps(_ b: String) -> [Double?]? { trends[viewKey(EdgeID(source: id("web"), destination: id(b)))]?.rps }
        #expect(rps("a") == [1, 3, 5, 7])
        #expect(rps("b") == [6, 8])
        #expect(rps("c") == [2, 4, 9], "a row that comes back goes on from its own history")
        #expect(trends[viewKey(id("web"))]?.rps == [2, 2, 2, 3])
        #expect(Trends(trends.all) == trends)
    }
}
