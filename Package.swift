// swift-tools-version: 6.0
//
// meshtop: a terminal dashboard for a service mesh, and the mesh's sidecar proxy.
// Layout and data flow are described in README.md; one module, one job:
//   sources -> store -> analysis -> views -> screen.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]

let package = Package(
    name: "meshtop",
    products: [
        .executable(name: "meshtop", targets: ["meshtop"]),
        .executable(name: "meshproxy", targets: ["meshproxy"]),
        .executable(name: "meshload", targets: ["meshload"]),
        .executable(name: "meshapp", targets: ["meshapp"]),
        // The core, for Benchmarks/ and for tools built on meshtop.
        .library(name: "PromText", targets: ["PromText"]),
        .library(name: "MeshMetrics", targets: ["MeshMetrics"]),
        .library(name: "MeshTesting", targets: ["MeshTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        // gRPC for the demo's web → emoji and web → voting calls (h2c through the proxies).
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
    ],
    targets: [
        // System libraries, each behind a small C shim (variadic and macro APIs, C globals).
        .systemLibrary(name: "CNcurses", pkgConfig: "ncursesw", providers: [.apt(["libncurses-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        // Pure core: no I/O.
        .target(name: "PromText", swiftSettings: swiftSettings),
        .target(name: "MeshMetrics", dependencies: ["PromText"], swiftSettings: swiftSettings),
        .target(name: "MeshTap", swiftSettings: swiftSettings),
        .target(name: "MeshCanary", dependencies: ["MeshMetrics", "MeshTap"], swiftSettings: swiftSettings),
        // linkerd viz's formats: stat, edges, routes and top as tables and JSON.
        .target(name: "LinkerdViz", dependencies: ["MeshMetrics", "MeshTap"], swiftSettings: swiftSettings),
        // Error-budget burn rates and the SRE workbook's multi-window alert rules, with their table and JSON.
        .target(name: "MeshSLO", dependencies: ["MeshMetrics", "MeshTap", "LinkerdViz"], swiftSettings: swiftSettings),
        // The incident timeline: metrics leaving their recent baseline and coming back, callees first.
        .target(name: "MeshTimeline", dependencies: ["MeshMetrics", "MeshTap", "LinkerdViz"], swiftSettings: swiftSettings),
        // `meshtop check`'s checks, as pure functions over gathered scrapes.
        .target(name: "MeshCheck", dependencies: ["PromText", "MeshMetrics", "MeshTap"], swiftSettings: swiftSettings),

        // gzip streams over zlib (recordings, /metrics).
        .target(name: "Gzip", dependencies: ["CZlib"], swiftSettings: swiftSettings),

        // I/O at the edges.
        .target(
            name: "MeshSources",
            dependencies: ["PromText", "MeshMetrics", "MeshTap", "MeshCanary", "MeshCheck", "MeshTimeline", "CCurl", "Gzip", "YAMLTree"],
            swiftSettings: swiftSettings),
        .target(name: "TerminalUI", swiftSettings: swiftSettings),
        // The real terminal behind TerminalUI's `TerminalBackend`, as NIOPosix is behind NIOCore.
        .target(name: "TerminalNcurses", dependencies: ["TerminalUI", "CNcurses"], swiftSettings: swiftSettings),
        .target(
            name: "Dashboard",
            dependencies: ["MeshMetrics", "MeshTap", "MeshCanary", "LinkerdViz", "MeshTimeline", "MeshSLO", "TerminalUI"],
            swiftSettings: swiftSettings),
        .target(
            name: "MeshIdentity",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings),
        // HTTP/1 on the wire, parsed in place: the proxy's request-smuggling boundary (pure, fuzzed).
        .target(name: "HTTPWire", swiftSettings: swiftSettings),
        .target(name: "YAMLTree", dependencies: ["CLibYAML"], swiftSettings: swiftSettings),
        .target(
            name: "MeshProxy",
            dependencies: ["MeshTap", "MeshIdentity", "HTTPWire", "YAMLTree", "Gzip"] + nio + [.product(name: "NIOSSL", package: "swift-nio-ssl"),
                             .product(name: "NIOHTTP2", package: "swift-nio-http2")],
            swiftSettings: swiftSettings),
        .target(name: "MeshDemo", dependencies: ["MeshProxy", "MeshIdentity"] + nio + [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        ], swiftSettings: swiftSettings),

        // Thin executables: argument parsing and wiring.
        // What meshtop's commands run: one-shot outputs, the demo, canary runs, the dashboard on a
        // terminal; the executable keeps only its options.
        .target(
            name: "MeshtopApp",
            dependencies: ["Dashboard", "MeshDemo", "MeshSources", "MeshMetrics", "MeshCanary", "MeshTap", "TerminalUI", "TerminalNcurses",
                           "LinkerdViz", "MeshSLO", "PromText", .product(name: "Yams", package: "Yams")] + nio,
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "meshtop",
            dependencies: [
                "MeshtopApp", "Dashboard", "MeshDemo", "MeshSources", "MeshMetrics", "MeshCanary", "MeshTap", "TerminalUI", "TerminalNcurses", "LinkerdViz", "MeshCheck", "MeshSLO", "MeshTimeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "meshproxy",
            dependencies: ["MeshProxy", "MeshIdentity", .product(name: "ArgumentParser", package: "swift-argument-parser")] + nio,
            exclude: ["meshproxy.order", "link"],
            swiftSettings: swiftSettings,
            // The sidecar's memory: relative relocations packed (RELR, with the toolchain's lld),
            // so the loader does not touch 2.7 MB of relocation tables at every start; and the
            // functions it runs laid out together (scripts/proxy-order records them), so the
            // kernel maps about 7 MB of its 25 MB of code instead of 10.6 MB.
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
                                           "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/meshproxy/meshproxy.order",
                                           "-Xlinker", "--no-warn-symbol-ordering"], .when(platforms: [.linux])),
                            // In release, the C++ runtime linked statically (Sources/meshproxy/link says how):
                            // the shared libstdc++ costs 1.2 MB of RSS for its tables and start-up alone.
                            // Debug builds load libswiftCore.so, which brings the shared one anyway.
                            .unsafeFlags(["-L\(Context.packageDirectory)/Sources/meshproxy/link"], .when(platforms: [.linux], configuration: .release))]),

        .executableTarget(
            name: "meshload",
            dependencies: ["MeshDemo", "MeshProxy", .product(name: "Histogram", package: "hdrhistogram-swift"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")] + nio,
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "meshapp",
            dependencies: ["MeshDemo", .product(name: "ArgumentParser", package: "swift-argument-parser")] + nio,
            swiftSettings: swiftSettings),
        .target(name: "MeshTesting", dependencies: ["PromText", "MeshMetrics", "MeshCanary", "MeshSources", "TerminalUI"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "meshbench",
            dependencies: ["PromText", "MeshMetrics", "MeshTesting", "Dashboard", "TerminalUI", "MeshDemo", "MeshSources",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")] + nio,
            swiftSettings: swiftSettings),

        .testTarget(name: "PromTextTests", dependencies: ["PromText", "MeshTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "MeshTapTests", dependencies: ["MeshTap", "MeshTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "MeshCanaryTests", dependencies: ["MeshCanary", "MeshMetrics", "MeshTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "MeshTimelineTests", dependencies: ["MeshTimeline", "MeshMetrics"], swiftSettings: swiftSettings),
        .testTarget(name: "MeshSLOTests", dependencies: ["MeshSLO", "MeshMetrics"], swiftSettings: swiftSettings),
        .testTarget(name: "YAMLTreeTests", dependencies: ["YAMLTree", .product(name: "Yams", package: "Yams")], swiftSettings: swiftSettings),
        .testTarget(name: "MeshMetricsTests", dependencies: ["MeshMetrics", "PromText"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MeshProxyTests",
            dependencies: ["MeshProxy", "MeshIdentity", "Gzip", "HTTPWire", .product(name: "NIOHTTP2", package: "swift-nio-http2"), "MeshDemo", "MeshSources", "MeshTap", "PromText", "MeshMetrics", "Dashboard", "LinkerdViz", "MeshCheck", "MeshTesting", .product(name: "NIOEmbedded", package: "swift-nio")] + nio,
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ConformanceTests",
            dependencies: ["MeshMetrics", "MeshSources", "Dashboard", "LinkerdViz", "PromText", "MeshDemo", "MeshCanary", "MeshTap", "MeshTesting",
                           "MeshTimeline"] + nio,
            swiftSettings: swiftSettings),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Dashboard", "MeshtopApp", "MeshSLO", "MeshTimeline", "TerminalUI", "MeshMetrics", "MeshSources", "MeshTap", "MeshCanary", "LinkerdViz", "MeshCheck", "PromText", "MeshTesting"],
            exclude: ["Goldens"],
            swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
