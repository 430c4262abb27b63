import Foundation
import Testing
import NIOPosix
import MeshDemo

@Suite struct MeshloadRuns {
    func meshload(_ args: [String]) throws -> (status: Int32, stdout: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("meshload-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshload")
        p.arguments = args
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    @Test func sendsAtTheRateAskedAndReportsPercentiles() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // An upstream that takes 20 ms: an open-loop generator must still send 200 in one second.
        let slow = try await AppServer.start(group: group) { _, loop in
            loop.scheduleTask(in: .milliseconds(20)) { AppResponse(status: 200, body: "ok\n") }.futureResult
        }
        let started = Date()
        let r = try meshload([slow.address.description, "--rate", "200", "--duration", "1s", "-o", "json"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stdout)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(report["sent"] as? Int == 200)
        #expect(report["errors"] as? Int == 0)
        let latency = try #require(report["latency_ms"] as? [String: Double])
        #expect((latency["p50"] ?? 0) >= 20 && (latency["p50"] ?? 0) < 100, "\(latency)")
        #expect((latency["p99"] ?? 0) >= (latency["p50"] ?? 0))
        #expect(elapsed < 5)
        // Errors are counted and make the exit code non-zero.
        let failing = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 503)) }
        let bad = try meshload([failing.address.description, "--rate", "50", "--duration", "0.2s", "-o", "json"])
        #expect(bad.status == 1)
        await slow.stop()
        await failing.stop()
        try await group.shutdownGracefully()
    }
}
