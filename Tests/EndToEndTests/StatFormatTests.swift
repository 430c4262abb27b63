import LinkerdViz
import Testing
import Dashboard
import MeshMetrics
import MeshTap
import MeshTesting

/// meshtop's stat output must be byte for byte what `linkerd viz stat` prints for the same numbers.
@Suite struct LinkerdStatFormat {
    func emoji(namespace: String) -> GoldenMetrics {
        var row = GoldenMetrics(workload: WorkloadID(namespace: namespace, name: "emoji"), meshedPods: 1, runningPods: 2)
        row.success = 1
        row.rps = 2.05
        row.latencyP50 = 123
        row.latencyP95 = 123
        row.latencyP99 = 123
        row.tcpOpenConnections = 123
        row.readBytesRate = 2.05
        row.writeBytesRate = 2.05
        return row
    }

    @Test func oneNamespaceTable() throws {
        #expect(StatView.table([emoji(namespace: "emojivoto1")], showNamespace: false)
                == (try fixture("linkerd/linkerd-viz-stat-golden-stat_one_output.txt")))
    }

    @Test func allNamespacesTable() throws {
        #expect(StatView.table([emoji(namespace: "emojivoto1"), emoji(namespace: "emojivoto2")], showNamespace: true)
                == (try fixture("linkerd/linkerd-viz-stat-golden-stat_all_output.txt")))
    }

    @Test func wideTable() throws {
        #expect(StatView.table([emoji(namespace: "emojivoto1")], showNamespace: false, wide: true)
                == (try fixture("linkerd/linkerd-viz-stat-golden-stat_one_tcp_output.txt")))
    }

    @Test func json() throws {
        var row = emoji(namespace: "emojivoto1")
        row.workload.name = "emoji"
        let expected = try fixture("linkerd/linkerd-viz-stat-golden-stat_one_output_json.txt")
        #expect(StatView.json([row], kind: "namespace") == expected)
    }

    @Test func noTrafficPrintsDashes() {
        let idle = GoldenMetrics(workload: WorkloadID(namespace: "ns", name: "idle"), meshedPods: 1, runningPods: 1)
        #expect(StatView.table([idle], showNamespace: false) == """
        NAME   MESHED   SUCCESS   RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN
        idle      1/1         -     -             -             -             -          -

        """)
    }
}

@Suite struct LinkerdEdgesFormat {
    func edge(_ src: String, _ dst: String, ns: String, client: String, server: String) -> EdgeMetrics {
        EdgeMetrics(edge: EdgeID(source: WorkloadID(namespace: ns, name: src), destination: WorkloadID(namespace: ns, name: dst)),
                    clientID: client + ".serviceaccount.identity.linkerd.cluster.local",
                    serverID: server + ".serviceaccount.identity.linkerd.cluster.local")
    }

    var goldenEdges: [EdgeMetrics] {
        [edge("vote-bot", "web", ns: "emojivoto", client: "default.emojivoto", server: "web.emojivoto"),
         edge("web", "emoji", ns: "emojivoto", client: "web.emojivoto", server: "emoji.emojivoto"),
         edge("web", "voting", ns: "emojivoto", client: "web.emojivoto", server: "voting.emojivoto"),
         edge("linkerd-identity", "linkerd-prometheus", ns: "linkerd", client: "linkerd-identity.linkerd", server: "linkerd-prometheus.linkerd")]
    }

    @Test func tableAndWide() throws {
        #expect(EdgesView.table(goldenEdges, wide: false, metrics: false) == (try fixture("linkerd/linkerd-viz-edges-golden-edges_one_output.txt")))
        #expect(EdgesView.table(goldenEdges, wide: true, metrics: false) == (try fixture("linkerd/linkerd-viz-edges-golden-edges_wide_output.txt")))
    }

    @Test func json() throws {
        #expect(EdgesView.json(goldenEdges, metrics: false) == (try fixture("linkerd/linkerd-viz-edges-golden-edges_one_output_json.txt")))
    }

    @Test func unsecuredEdgesSayWhy() {
        var e = edge("web", "voting", ns: "emojivoto", client: "", server: "")
        e.noTLSReason = "not_provided_by_service_discovery"
        #expect(EdgesView.table([e], wide: false, metrics: false).contains("Not Provided By Service Discovery"))
    }
}

@Suite struct LinkerdRoutesFormat {
    func route(_ name: String?, rps: Double, success: Double, actualRPS: Double? = nil) -> RouteMetrics {
        var t = TrafficMetrics()
        t.rps = rps
        t.success = success
        t.latencyP50 = 123
        t.latencyP95 = 123
        t.latencyP99 = 123
        var actual = TrafficMetrics()
        actual.rps = actualRPS ?? rps
        actual.success = success
        return RouteMetrics(route: name, authority: "foobar.default.svc.cluster.local:8080", effective: t, actual: actual)
    }

    var goldenRoutes: [RouteMetrics] {
        [route("/a", rps: 1.5, success: 1), route("/b", rps: 1, success: 1), route("/c", rps: 0, success: 0), route(nil, rps: 0.5, success: 1)]
    }

    @Test func tableAndWide() throws {
        #expect(RoutesView.table(goldenRoutes, wide: false) == (try fixture("linkerd/linkerd-viz-routes-golden-routes_one_output.txt")))
        #expect(RoutesView.table(goldenRoutes, wide: true) == (try fixture("linkerd/linkerd-viz-routes-golden-routes_one_output_wide.txt")))
    }

    @Test func json() throws {
        #expect(RoutesView.json(goldenRoutes, resource: "deploy/foobar") == (try fixture("linkerd/linkerd-viz-routes-golden-routes_one_output_json.txt")))
    }
}

@Suite struct LinkerdTopFormat {
    @Test func tableIsLinkerdTopsLayout() throws {
        func row(_ src: String, _ dst: String, _ count: Int, _ best: Int64, _ worst: Int64, _ last: Int64) -> TopRow {
            var r = TopRow(source: src, destination: dst, method: "POST", path: "/demo.Baz/GetInfo")
            r.count = count
            r.best = best
            r.worst = worst
            r.last = last
            r.successes = count
            return r
        }
        let rows = [
            row("foo-64798767b7-x8xvf", "baz-659dbf6895-v7gdm", 1187, 81_000, 9_000_000, 124_000),
            row("bar-577c4bf849-cpdxl", "baz-659dbf6895-9twg9", 1103, 86_000, 6_000_000, 140_000),
            row("foo-64798767b7-x8xvf", "baz-659dbf6895-7chgx", 1084, 79_000, 9_000_000, 355_000),
            row("bar-577c4bf849-cpdxl", "baz-659dbf6895-7chgx", 1061, 93_000, 7_000_000, 293_000),
            row("foo-64798767b7-x8xvf", "baz-659dbf6895-9twg9", 1042, 81_000, 5_000_000, 565_000),
            row("bar-577c4bf849-cpdxl", "baz-659dbf6895-v7gdm", 958, 75_000, 8_000_000, 203_000),
        ]
        #expect(TopView.table(rows) == (try fixture("linkerd/linkerd-viz-top-website-blog-2025-sample.txt")))
    }
}
