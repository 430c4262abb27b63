import Testing
import MeshMetrics
import PromText

/// Equal to 1e-12 relative: floating point in a different order than Prometheus' Go code.
func close(_ a: Double?, _ b: Double) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1)
}

/// Expected values are worked by hand from Prometheus' extrapolatedRate / bucketQuantile.
@Suite struct RangeFunctions {
    func pts(_ pairs: [(Int64, Double)]) -> ArraySlice<Point> { ArraySlice(pairs.map { Point(t: $0.0 * 1000, v: $0.1) }) }

    @Test func increaseWithinFullyCoveredRange() {
        // Samples at 0,10,…,60 s covering a [0, 60] range: no extrapolation needed.
        let p = pts((0...6).map { (Int64($0 * 10), Double($0 * 10)) })
        #expect(PromQL.increase(p, start: 0, end: 60_000) == 60)
        #expect(PromQL.increase(p, start: 0, end: 60_000, perSecond: true) == 1)
    }

    @Test func increaseExtrapolatesHalfAnIntervalAtAGap() {
        // Samples at 20..60 s in a [0,60] range: the start is more than 1.1 intervals away,
        // so Prometheus extrapolates by half an average interval (5 s): 40 s sampled → 45 s.
        let p = pts([(20, 100), (30, 110), (40, 120), (50, 130), (60, 140)])
        #expect(close(PromQL.increase(p, start: 0, end: 60_000), 45))
    }

    @Test func increaseStopsExtrapolatingAtZero() {
        // A counter that starts at 5 and rises 1/s cannot have been below zero 5 s before its first sample.
        let p = pts([(30, 5), (40, 15), (50, 25), (60, 35)])
        // toStart = 30 s, but toZero = 30 × 5/30 = 5 s < threshold 11 → extrapolate 5 s; end 0 s.
        #expect(close(PromQL.increase(p, start: 0, end: 60_000), 35))
    }

    @Test func counterResetIsCorrected() {
        let p = pts([(0, 10), (10, 20), (20, 3), (30, 13)])
        // 20-10 + 3 (after reset, counted from 0) + 10 = 23
        #expect(PromQL.increase(p, start: 0, end: 30_000) == 23)
    }

    @Test func irateUsesTheLastTwoSamples() {
        #expect(PromQL.irate(pts([(0, 0), (10, 100), (12, 110)])) == 5)
        #expect(PromQL.irate(pts([(0, 0), (10, 100), (12, 4)])) == 2)  // reset
        #expect(PromQL.irate(pts([(0, 1)])) == nil)
    }

    @Test func histogramQuantileInterpolates() {
        let b: [(le: Double, count: Double)] = [(1, 0), (2, 10), (5, 20), (.infinity, 20)]
        #expect(PromQL.histogramQuantile(0.5, b) == 2)
        #expect(PromQL.histogramQuantile(0.75, b) == 3.5)
        #expect(PromQL.histogramQuantile(0.25, b) == 1.5)
    }

    @Test func histogramQuantileInTheInfBucketGivesTheLastFiniteBound() {
        let b: [(le: Double, count: Double)] = [(10, 5), (50, 8), (.infinity, 10)]
        #expect(PromQL.histogramQuantile(0.99, b) == 50)
    }

    @Test func histogramQuantileEdgeCases() {
        #expect(PromQL.histogramQuantile(0.5, [(1, 0), (.infinity, 0)]).isNaN)
        #expect(PromQL.histogramQuantile(0.5, [(1, 3), (2, 4)]).isNaN)  // no +Inf bucket
        #expect(PromQL.histogramQuantile(-1, [(1, 3), (.infinity, 4)]) == -.infinity)
        #expect(PromQL.histogramQuantile(2, [(1, 3), (.infinity, 4)]) == .infinity)
        // Non-monotonic counts are repaired, as Prometheus does, before interpolating.
        let b: [(le: Double, count: Double)] = [(1, 10), (2, 8), (4, 20), (.infinity, 20)]
        #expect(PromQL.histogramQuantile(0.5, b) == 1)
    }
}

@Suite struct GoldenFromScrapes {
    /// Two scrapes 10 s apart of one inbound workload: 100 requests, 10 of them failures.
    func store() throws -> MetricStore {
        var store = MetricStore()
        let target = [Label("namespace", "emojivoto"), Label("deployment", "voting"), Label("pod", "voting-1"), Label("instance", "127.0.0.1:1")]
        for (t, ok, failed, fast, slow) in [(Int64(0), 0.0, 0.0, 0.0, 0.0), (10_000, 90, 10, 80, 20)] {
            let text = """
            response_total{direction="inbound",status_code="200",classification="success"} \(ok)
            response_total{direction="inbound",status_code="500",classification="failure"} \(failed)
            response_latency_ms_bucket{direction="inbound",status_code="200",le="10"} \(fast)
            response_latency_ms_bucket{direction="inbound",status_code="200",le="100"} \(fast + slow)
            response_latency_ms_bucket{direction="inbound",status_code="200",le="+Inf"} \(fast + slow)
            tcp_open_connections{direction="inbound",peer="src"} 3
            """
            store.ingest(try PromTextParser.parse(text), target: target, at: t)
        }
        return store
    }

    @Test func successRpsAndQuantiles() throws {
        let rows = try store().stat(StatQuery(kindLabel: "deployment", namespace: "emojivoto", windowMs: 10_000, atMs: 10_000))
        let row = try #require(rows.first)
        #expect(rows.count == 1)
        #expect(row.workload == WorkloadID(namespace: "emojivoto", name: "voting"))
        #expect(row.success == 0.9)
        #expect(row.rps == 10)
        #expect(row.latencyP50 == 6.25)  // rank 5 of 10/s within (0,10] holding 8/s: 10 × 5/8
        #expect(row.latencyP95 == 77.5)  // rank 9.5: 10 + (100 - 10) × (9.5 - 8) / (10 - 8)
        #expect(row.tcpOpenConnections == 3)
        #expect(row.meshedPods == 1 && row.runningPods == 1)
    }

    @Test func targetLabelsWinAndExposedOnesAreKeptAsExported() throws {
        var store = MetricStore()
        store.ingest(try PromTextParser.parse("m{namespace=\"inner\"} 1\n"), target: [Label("namespace", "outer")], at: 0)
        let key = store.keys[store.select("m")[0]]
        #expect(key[label: "namespace"] == "outer")
        #expect(key[label: "exported_namespace"] == "inner")
    }

    @Test func failedScrapeCountsTheInstanceAsNotMeshed() throws {
        var s = try store()
        s.ingestFailure(target: [Label("namespace", "emojivoto"), Label("deployment", "voting"), Label("pod", "voting-1"), Label("instance", "127.0.0.1:1")], at: 11_000)
        let row = try #require(s.stat(StatQuery(kindLabel: "deployment", windowMs: 10_000, atMs: 11_000)).first)
        #expect(row.meshedPods == 0 && row.runningPods == 1)
    }
}
