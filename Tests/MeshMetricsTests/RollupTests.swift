import Testing
import MeshMetrics
import PromText

/// A store that keeps rollups answers stat and edges as the store of every series does, from far
/// fewer series: the dashboard's numbers do not change when it saves memory.
@Suite struct RollupTests {
    /// Pod `pod` of deployment `app` in round `round`: inbound responses and latency, outbound
    /// responses to `db`, open connections, and families no view reads. Counters grow by a rate
    /// that differs per pod; `resetAt` restarts this pod's counters from zero at that round.
    func body(app: String, pod: Int, round: Int, resetAt: Int? = nil, connections: Double = 2) -> [UInt8] {
        let r = Double(resetAt.map { round >= $0 ? round - $0 : round } ?? round)
        let ok = r * Double(10 + pod), bad = r * Double(pod + 1)
        let dst = "dst_namespace=\"prod\",dst_deployment=\"db\",dst_pod=\"db-\(pod)\",authority=\"db.prod:5432\",target_addr=\"10.0.0.\(pod):5432\""
        var text = """
        # TYPE response_total counter
        response_total{direction="inbound",authority="\(app).prod",tls="true",status_code="200",classification="success",grpc_status="",error=""} \(ok)
        response_total{direction="inbound",authority="\(app).prod",tls="true",status_code="503",classification="failure",grpc_status="",error=""} \(bad)
        response_total{direction="outbound",\(dst),tls="true",status_code="200",classification="success",grpc_status="",error=""} \(ok / 2)
        response_total{direction="outbound",\(dst),tls="true",status_code="500",classification="failure",grpc_status="",error=""} \(bad / 2)
        # TYPE response_latency_ms histogram

        """
        for (i, le) in ["5", "10", "50", "100", "+Inf"].enumerated() {
            text += "response_latency_ms_bucket{direction=\"inbound\",authority=\"\(app).prod\",status_code=\"200\",le=\"\(le)\"} \(ok * Double(i + 1) / 5)\n"
            text += "response_latency_ms_bucket{direction=\"outbound\",\(dst),status_code=\"200\",le=\"\(le)\"} \(ok / 2 * Double(min(i + 2, 5)) / 5)\n"
        }
        text += """
        response_latency_ms_count{direction="inbound",authority="\(app).prod",status_code="200"} \(ok)
        response_latency_ms_sum{direction="inbound",authority="\(app).prod",status_code="200"} \(ok * 7)
        # TYPE tcp_open_connections gauge
        tcp_open_connections{direction="inbound",peer="src",tls="true"} \(connections)
        # TYPE tcp_read_bytes_total counter
        tcp_read_bytes_total{direction="inbound",peer="src",tls="true"} \(r * 1000)
        # TYPE process_cpu_seconds_total counter
        process_cpu_seconds_total \(r / 10)

        """
        return Array(text.utf8)
    }

    func target(_ app: String, _ pod: Int) -> ScrapeTarget {
        ScrapeTarget(url: "http://10.1.\(app.count).\(pod):4191/metrics",
                     labels: [Label("namespace", "prod"), Label("deployment", app), Label("pod", "\(app)-\(pod)")])
    }

    /// Both collectors fed the same rounds of scrapes (every target at the round's moment, as a
    /// rollup's points are stamped), each round given to `results`.
    func collectors(rounds: Int, results: (Int) -> [ScrapeResult]) -> (raw: Collector, rolled: Collector) {
        var raw = Collector()
        var rolled = Collector(store: MetricStore(rollup: Rollup(kindLabel: "deployment")))
        for round in 0..<rounds {
            raw.ingest(results(round))
            rolled.ingest(results(round))
        }
        return (raw, rolled)
    }

    func round(_ round: Int, pods: [(String, Int)], resetPod: (String, Int)? = nil, connections: Double = 2) -> [ScrapeResult] {
        pods.map { app, pod in
            let reset = resetPod.map { $0 == (app, pod) } == true ? 6 : nil
            return ScrapeResult(target: target(app, pod), startedMs: 1_800_000_000_000 + Int64(round) * 1_000, durationSeconds: 0.01,
                                body: body(app: app, pod: pod, round: round, resetAt: reset, connections: connections), error: nil)
        }
    }

    func expectSame(_ a: Double?, _ b: Double?, _ what: String) {
        guard let a, let b else {
            #expect(a == nil && b == nil, "\(what): \(String(describing: a)) vs \(String(describing: b))")
            return
        }
        #expect(abs(a - b) <= 1e-9 * max(1, abs(a)), "\(what): every series \(a), rollup \(b)")
    }

    func expectSameViews(_ raw: Collector, _ rolled: Collector, windowMs: Int64) {
        let a = raw.stat(kindLabel: "deployment", namespace: nil, windowMs: windowMs)
        let b = rolled.stat(kindLabel: "deployment", namespace: nil, windowMs: windowMs)
        #expect(a.map(\.workload) == b.map(\.workload))
        for (x, y) in zip(a, b) {
            let name = x.workload.name
            #expect(x.runningPods == y.runningPods && x.meshedPods == y.meshedPods, "\(name) pods")
            expectSame(x.traffic.success, y.traffic.success, "\(name) success")
            expectSame(x.traffic.rps, y.traffic.rps, "\(name) rps")
            expectSame(x.traffic.latencyP50, y.traffic.latencyP50, "\(name) p50")
            expectSame(x.traffic.latencyP99, y.traffic.latencyP99, "\(name) p99")
            expectSame(x.tcpOpenConnections, y.tcpOpenConnections, "\(name) connections")
            expectSame(x.readBytesRate, y.readBytesRate, "\(name) read bytes")
        }
        let at = raw.lastScrapeMs ?? 0
        let e = raw.store.edges(kindLabel: "deployment", namespace: nil, windowMs: raw.effectiveWindow(windowMs), atMs: at)
        let f = rolled.store.edges(kindLabel: "deployment", namespace: nil, windowMs: rolled.effectiveWindow(windowMs), atMs: at)
        #expect(e.map(\.edge) == f.map(\.edge))
        #expect(!e.isEmpty)
        for (x, y) in zip(e, f) {
            expectSame(x.traffic.success, y.traffic.success, "edge success")
            expectSame(x.traffic.rps, y.traffic.rps, "edge rps")
            expectSame(x.traffic.latencyP99, y.traffic.latencyP99, "edge p99")
        }
    }

    let pods = [("web", 0), ("web", 1), ("web", 2), ("api", 0), ("api", 1), ("api", 2)]

    @Test func statAndEdgesMatchEverySeriesFromFewerSeries() {
        let (raw, rolled) = collectors(rounds: 20) { round($0, pods: pods) }
        expectSameViews(raw, rolled, windowMs: 10_000)
        expectSameViews(raw, rolled, windowMs: 60_000)
        // Every scrape after a target's first matched its lines and skipped the parse.
        #expect(rolled.store.scrapesMatched == 19 * pods.count)
        // Per pod, 20 series; rolled up per workload, the pod and address labels and the families
        // no view reads are gone.
        #expect(raw.store.seriesCount >= 3 * rolled.store.seriesCount, "\(raw.store.seriesCount) → \(rolled.store.seriesCount)")
        #expect(!rolled.store.keys.contains { $0.name == "process_cpu_seconds_total" || $0[label: "pod"] != nil && $0.name != "up" })
    }

    @Test func aCounterResetCountsFromZeroAsIncreaseDoes() {
        let (raw, rolled) = collectors(rounds: 12) { round($0, pods: pods, resetPod: ("web", 1)) }
        expectSameViews(raw, rolled, windowMs: 10_000)
        let web = rolled.stat(kindLabel: "deployment", namespace: nil, windowMs: 10_000).first { $0.workload.name == "web" }
        #expect((web?.traffic.rps ?? 0) > 0)
    }

    @Test func aPodThatJoinsLateCountsFromItsFirstScrape() {
        // api-2 is first scraped at round 10, its counters long past zero: what it served before
        // is not traffic of this window (Prometheus reads a new series from its first sample).
        let (raw, rolled) = collectors(rounds: 20) { n in round(n, pods: n < 10 ? Array(pods.dropLast()) : pods) }
        let a = raw.stat(kindLabel: "deployment", namespace: nil, windowMs: 10_000).first { $0.workload.name == "api" }
        let b = rolled.stat(kindLabel: "deployment", namespace: nil, windowMs: 10_000).first { $0.workload.name == "api" }
        let rawRPS = a?.traffic.rps ?? 0, rolledRPS = b?.traffic.rps ?? 0
        // Not to the digit: Prometheus extrapolates the new series alone, the rollup the sum.
        #expect(rawRPS > 0 && abs(rolledRPS - rawRPS) / rawRPS < 0.1, "every series \(rawRPS), rollup \(rolledRPS)")
        #expect(abs((a?.traffic.success ?? 0) - (b?.traffic.success ?? 1)) < 0.01)
    }

    @Test func aGaugeLeavesTheSumWithItsTarget() {
        var rolled = Collector(store: MetricStore(rollup: Rollup(kindLabel: "deployment")))
        for n in 0..<3 { rolled.ingest(round(n, pods: pods, connections: 5)) }
        func open(_ c: Collector) -> Double? {
            c.stat(kindLabel: "deployment", namespace: nil, windowMs: 10_000).first { $0.workload.name == "api" }?.tcpOpenConnections
        }
        #expect(open(rolled) == 15)
        // api-2 stops answering: its 5 connections are no longer counted.
        var next = round(3, pods: pods, connections: 5)
        next[5] = ScrapeResult(target: target("api", 2), startedMs: next[5].startedMs, durationSeconds: 2, body: nil, error: "timed out")
        rolled.ingest(next)
        #expect(open(rolled) == 10)
    }

    @Test func aScrapeThatChangesShapeOrBreaksTakesTheFullParse() {
        var (raw, rolled) = collectors(rounds: 8) { round($0, pods: pods) }
        // Round 8: web-0 sends garbage in place of a value (same series lines); web-1 gains a new
        // series at the top (every line moves).
        func results(_ n: Int) -> [ScrapeResult] {
            var r = round(n, pods: pods)
            if n == 8 {
                let text = String(decoding: r[0].body!, as: UTF8.self)
                r[0].body = Array(text.replacingOccurrences(of: "} 8.0\n", with: "} zero\n").utf8)
                r[1].body = Array(("response_total{direction=\"inbound\",classification=\"success\",status_code=\"204\"} 5\n" + String(decoding: r[1].body!, as: UTF8.self)).utf8)
            }
            return r
        }
        for n in 8..<14 {
            raw.ingest(results(n))
            rolled.ingest(results(n))
        }
        #expect(rolled.health[target("web", 0).url]?.state == .up, "a later good scrape recovers")
        expectSameViews(raw, rolled, windowMs: 4_000)
        var bad = Collector(store: MetricStore(rollup: Rollup(kindLabel: "deployment")))
        for n in 0..<9 { bad.ingest(Array(results(n).prefix(1))) }
        #expect(bad.health[target("web", 0).url]?.state == .badFormat, "the garbage value is caught, not read as a number")
    }

    @Test func aWindowLongerThanTheDataHeldIsShortenedToIt() {
        var rolled = Collector(store: MetricStore(retentionMs: 10_000, rollup: Rollup(kindLabel: "deployment")))
        for n in 0..<40 { rolled.ingest(round(n, pods: pods)) }
        let held = rolled.effectiveWindow(60_000)
        #expect(held < 60_000 && held >= 10_000, "\(held)")
        // Bounded by points instead (the memory budget): 5 points a series, 4 s of rounds.
        var bounded = Collector(store: MetricStore(rollup: Rollup(kindLabel: "deployment")))
        bounded.store.maxPointsPerSeries = 5
        for n in 0..<40 { bounded.ingest(round(n, pods: pods)) }
        #expect(bounded.effectiveWindow(60_000) == 4_000)
        #expect(bounded.store.pointCount <= 5 * bounded.store.seriesCount)
        let rps = bounded.stat(kindLabel: "deployment", namespace: nil, windowMs: 60_000).first { $0.workload.name == "web" }?.traffic.rps
        let full = rolled.stat(kindLabel: "deployment", namespace: nil, windowMs: 4_000).first { $0.workload.name == "web" }?.traffic.rps
        #expect(rps != nil && rps == full, "the rate over what is held, not diluted over the window asked")
    }
}
