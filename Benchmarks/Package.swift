// swift-tools-version: 6.1
//
// meshtop's benchmarks (ordo-one/benchmark), kept apart from the main package so that building
// and testing meshtop does not build the benchmark harness. Run from this folder:
//   swift package benchmark                 # every benchmark, with allocation and time metrics
//   swift package benchmark --filter parse  # one
// Benchmarks report; they never fail a build. Side-by-side ratios with peers are in ../scripts/bench-*.
import PackageDescription

let package = Package(
    name: "meshtop-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "meshtop", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PromText", package: "meshtop"),
                .product(name: "MeshMetrics", package: "meshtop"),
                .product(name: "MeshTesting", package: "meshtop"),
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
