import Foundation
import Testing
import NIOPosix
import MeshDemo
import MeshTap

var meshtopBinary: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshtop")
}

/// Runs the built meshtop with arguments (and optional standard input), returning status and output.
func meshtop(_ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 60) throws -> (status: Int32, stdout: String, stderr: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err"), input = dir.appendingPathComponent("in")
    for f in [out, err] { _ = FileManager.default.createFile(atPath: f.path, contents: nil) }
    _ = FileManager.default.createFile(atPath: input.path, contents: Data((stdin ?? "").utf8))
    let p = Process()
    p.executableURL = meshtopBinary
    p.arguments = arguments
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    p.standardInput = try FileHandle(forReadingFrom: input)
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "", (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}

@Suite(.serialized) struct TapCommands {
    @Test func tapAndTopOnTheDemoMesh() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let mesh = try await DemoMesh.start(DemoMesh.Options(votingFailureRate: 0.2, rate: 40), group: group)
        let web = try #require(mesh.targets.first { $0.labels["deployment"] == "web" }?.tap)
        let voting = try #require(mesh.targets.first { $0.labels["deployment"] == "voting" }?.tap)

        let tap = try meshtop(["tap", "--tap", web.description, "--path", "/api/vote", "--max-events", "9", "-o", "json", "--duration", "20s"])
        #expect(tap.status == 0, "\(tap.stderr)")
        var decoder = TapStreamDecoder()
        let events = decoder.feed(Array(tap.stdout.utf8)).compactMap { piece -> TapEvent? in
            if case .object(let o) = piece { return try? TapJSON.decode(line: o).get() }
            return nil
        }
        #expect(events.count >= 9)
        let paths = events.compactMap { e -> String? in
            if case let .requestInit(_, _, _, _, path, _) = e.http { return path }
            return nil
        }
        #expect(!paths.isEmpty && paths.allSatisfy { $0.hasPrefix("/api/vote") })

        // top merges two proxies' streams and sees voting's failures.
        let top = try meshtop(["top", "--tap", web.description, "--tap", voting.description, "--duration", "5s", "--max-rps", "10000", "-o", "json"])
        #expect(top.status == 0, "\(top.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(top.stdout.utf8)) as? [[String: Any]], "\(top.stdout)")
        // Each request web sends voting is seen by web's outbound and voting's inbound: one row
        // names web's pod, none the loopback address voting's inbound sees.
        // (A request whose outbound sight came before web's stream began is seen once, inbound;
        // --max-rps high, so neither proxy samples.)
        func count(_ source: (String) -> Bool) -> Int {
            rows.filter { source($0["source"] as? String ?? "") && ($0["destination"] as? String)?.hasPrefix("voting-") == true }
                .reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        }
        let fromWeb = count { $0.hasPrefix("web-") }, inboundOnly = count { $0 == "127.0.0.1" }
        #expect(fromWeb > 0 && inboundOnly <= max(3, fromWeb / 10), "web → voting: \(fromWeb), seen only inbound: \(inboundOnly)\n\(top.stdout)")
        let vote = rows.filter { ($0["path"] as? String) == "/vote" }
        #expect(!vote.isEmpty, "no /vote rows in \(top.stdout)")
        let failures = vote.compactMap { $0["success"] as? Double }.filter { $0 < 1 }
        #expect(!failures.isEmpty, "voting fails 20% of votes")
        #expect(rows.contains { ($0["destination"] as? String)?.hasPrefix("voting-") == true })

        await mesh.stop()
        try await group.shutdownGracefully()
    }

    @Test func topFromLinkerdsJSONOnStandardInput() throws {
        let golden = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt"), encoding: .utf8)
        let r = try meshtop(["top", "--tap-import", "-"], stdin: golden + "not json\n")
        #expect(r.status == 0)
        #expect(r.stdout.contains("my-pod") && r.stdout.contains("/some/path"))
        #expect(r.stderr.contains("skipped text") && r.stderr.contains("not json"))
    }

    @Test func topFedLinkerdsTextOutputSaysToUseJSON() throws {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/linkerd/linkerd-viz-tap-golden-tap_busy_output.txt"), encoding: .utf8)
        let r = try meshtop(["top", "--tap-import", "-"], stdin: text)
        #expect(r.status == 2, "\(r.stdout)")
        #expect(r.stderr.contains("linkerd viz tap's text output") && r.stderr.contains("-o json"), "\(r.stderr)")
        #expect(!r.stdout.contains("No requests seen"))
    }

    @Test func unreachableTapSaysWhy() throws {
        let r = try meshtop(["tap", "--tap", "127.0.0.1:1", "--duration", "2s"])
        #expect(r.stderr.contains("tap 127.0.0.1:1: connection refused"))
        #expect(r.status == 3)
    }
}
