import Benchmark
import MeshMetrics
import MeshTesting
import PromText

/// Parse and aggregate: the two costs every refresh pays.
let benchmarks: @Sendable () -> Void = {
    // A 2 MB linkerd-shaped exposition (about 100 destinations): throughput is bytes per second.
    let payload = Array(LinkerdPayload.exposition(destinations: 100).utf8)

    Benchmark("parse 2MB linkerd exposition",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .one,
                                   maxDuration: .seconds(5))) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? PromTextParser.parse(payload))
        }
    }

    // 100 targets × ~1,700 series, two scrapes 10 s apart; one refresh computes stat and edges.
    let exposition = try! PromTextParser.parse(LinkerdPayload.exposition(destinations: 27))
    var store = MetricStore()
    for round in 0..<2 {
        for t in 0..<100 {
            store.ingest(exposition, target: [Label("namespace", "prod"), Label("deployment", "app-\(t / 3)"),
                                              Label("pod", "app-\(t)"), Label("instance", "10.0.0.\(t):4191")],
                         at: Int64(round) * 10_000)
        }
    }
    let snapshot = store

    Benchmark("refresh stat+edges, 100 targets x 1,700 series",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(5))) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(snapshot.stat(StatQuery(kindLabel: "deployment", windowMs: 60_000, atMs: 10_000)))
            blackHole(snapshot.edges(kindLabel: "deployment", namespace: nil, windowMs: 60_000, atMs: 10_000))
        }
    }

    Benchmark("ingest one scrape of 1,700 series (steady state)",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(5))) { benchmark in
        var s = snapshot
        var t: Int64 = 20_000
        for _ in benchmark.scaledIterations {
            s.ingest(exposition, target: [Label("namespace", "prod"), Label("deployment", "app-0"), Label("pod", "app-0"), Label("instance", "10.0.0.0:4191")], at: t)
            t += 10_000
        }
        blackHole(s)
    }
}
