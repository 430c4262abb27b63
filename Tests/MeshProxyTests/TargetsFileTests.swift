import MeshMetrics
import Foundation
import Testing
import NIOPosix
import Dashboard
import MeshDemo
import MeshSources
import PromText

@Suite struct FollowingATargetsFile {
    @Test func removedTargetsShowAsGoneAndABadFileKeepsTheLastGoodList() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics: AppLogic = { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: "request_total{direction=\"inbound\"} 1\n")) }
        let a = try await AppServer.start(group: group, logic: metrics)
        let b = try await AppServer.start(group: group, logic: metrics)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("targets-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        func write(_ text: String) throws {
            try text.write(to: file, atomically: true, encoding: .utf8)
            // Make sure the modification time moves even on coarse clocks.
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(Double.random(in: 1...1000))], ofItemAtPath: file.path)
        }
        try write("- targets: [\"\(a.address)\", \"\(b.address)\"]\n  labels: {deployment: web, namespace: ns}\n")
        let live = LiveCollector(targets: [], targetsFile: file.path, intervalSeconds: 1)
        let clock = WallClock()
        live.scrapeOnce(clock: clock)
        #expect(live.snapshot.upCount == 2)

        try write("- targets: [\"\(a.address)\"]\n  labels: {deployment: web, namespace: ns}\n")
        live.scrapeOnce(clock: clock)
        let data = live.read { MeshSnapshot.make(from: $0, kindLabel: "deployment", namespace: nil, windowMs: 60_000) }
        #expect(data.targetsUp == 1 && data.targetsTotal == 1)
        #expect(data.problems.contains { $0.contains("\(b.address) is gone: removed from") })

        try write("- targets: [unclosed\n")
        live.scrapeOnce(clock: clock)
        let after = live.read { MeshSnapshot.make(from: $0, kindLabel: "deployment", namespace: nil, windowMs: 60_000) }
        #expect(after.problems.first?.contains("not valid JSON or YAML") == true)
        #expect(after.problems.first?.contains("still scraping the last good list") == true)
        #expect(live.targets.count == 1 && after.targetsUp == 1)
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func aSlowTargetIsUpButShownSlow() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let body = "request_total{direction=\"inbound\"} 1\n"
        let fast = try await AppServer.start(group: group) { _, loop in loop.makeSucceededFuture(AppResponse(status: 200, body: body)) }
        let slow = try await AppServer.start(group: group) { _, loop in
            loop.scheduleTask(in: .milliseconds(800)) { AppResponse(status: 200, body: body) }.futureResult
        }
        let targets = [fast, slow].map { ScrapeTarget(url: "http://\($0.address)/metrics", labels: [Label("deployment", "web")]) }
        let live = LiveCollector(targets: targets, intervalSeconds: 1, timeoutSeconds: 2)
        live.scrapeOnce(clock: WallClock())
        let data = live.read { MeshSnapshot.make(from: $0, kindLabel: "deployment", namespace: nil, windowMs: 60_000) }
        #expect(data.targetsUp == 2 && data.targetsTotal == 2)
        #expect(data.targetStates == "1 slow")
        #expect(data.problems.contains { $0.contains("\(slow.address)/metrics is slow: the scrape took") }, "\(data.problems)")
        #expect(live.read { $0.health[targets[0].url]?.state } == .up)
        await fast.stop()
        await slow.stop()
        try await group.shutdownGracefully()
    }
}
