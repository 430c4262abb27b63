import MeshMetrics
import Foundation
import Testing
import NIOPosix
import MeshDemo
import MeshTap
import MeshSources
import PromText
import MeshProxy
import MeshTesting


var meshtopBinary: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshtop")
}

/// The built meshtop, running with arguments (and optional standard input).
final class MeshtopRun {
    let process = Process()
    private let dir: URL, out: URL, err: URL

    init(_ arguments: [String], stdin: String? = nil) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        out = dir.appendingPathComponent("out")
        err = dir.appendingPathComponent("err")
        let input = dir.appendingPathComponent("in")
        for f in [out, err] { _ = FileManager.default.createFile(atPath: f.path, contents: nil) }
        _ = FileManager.default.createFile(atPath: input.path, contents: Data((stdin ?? "").utf8))
        process.executableURL = meshtopBinary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = try FileHandle(forReadingFrom: input)
        try process.run()
    }

    /// Waits for it to exit (terminating it after `timeout`); its status and output.
    func wait(timeout: TimeInterval = 60) -> (status: Int32, stdout: String, stderr: String) {
        waitForExit(process, within: timeout)
        defer { try? FileManager.default.removeItem(at: dir) }
        return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "", (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// Runs the built meshtop with arguments (and optional standard input), returning status and output.
func meshtop(_ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 60) throws -> (status: Int32, stdout: String, stderr: String) {
    try MeshtopRun(arguments, stdin: stdin).wait(timeout: timeout)
}

/// How many tap subscribers the proxy with this admin listener has.
func tapSubscribers(_ admin: HostPort) throws -> Double {
    let result = Scraper(timeoutSeconds: 5).scrape([ScrapeTarget(url: "http://\(admin)/metrics")]) { 0 }[0]
    let body = try #require(result.body, "scrape failed: \(result.error ?? "?")")
    return value(try PromTextParser.parse(String(decoding: body, as: UTF8.self)), "tap_subscribers", [:]) ?? 0
}

/// Waits (up to 30 s) until each admin listener has `count` tap subscribers.
func waitForTapSubscribers(_ admins: [HostPort], count: Double) async throws {
    let reached = try eventually(within: 30, pollMs: 50) { try admins.allSatisfy { try tapSubscribers($0) == count } }
    if !reached { Issue.record("tap subscribers never reached \(count) on \(admins)") }
}

@Suite(.serialized) struct TapCommands {
    @Test func tapAndTopOnTheDemoMesh() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // No vote-bot traffic: the test sends each request itself, once meshtop is subscribed,
        // so it knows exactly what tap and top must show.
        let mesh = try await DemoMesh.start(DemoMesh.Options(votingFailureRate: 0.5, rate: 0), group: group)
        let webTarget = try #require(mesh.targets.first { $0.labels["deployment"] == "web" })
        let votingTarget = try #require(mesh.targets.first { $0.labels["deployment"] == "voting" })
        let web = try #require(webTarget.tap), voting = try #require(votingTarget.tap)

        // tap: web's proxy sees /api/list and three /api/vote requests; the filter keeps three
        // events (request, response, end) of each vote.
        let tapRun = try MeshtopRun(["tap", "--tap", web.description, "--path", "/api/vote", "--max-events", "9", "-o", "json", "--duration", "60s"])
        try await waitForTapSubscribers([webTarget.admin], count: 1)
        #expect(try await mesh.call("/api/list") == 200)
        for choice in [":joy:", ":rocket:", ":100:"] { _ = try await mesh.call("/api/vote?choice=\(choice)") }
        let tap = tapRun.wait(timeout: 90)
        #expect(tap.status == 0, "\(tap.stderr)")
        var decoder = TapStreamDecoder()
        let events = decoder.feed(Array(tap.stdout.utf8)).compactMap { piece -> TapEvent? in
            if case .object(let o) = piece { return try? TapJSON.decode(line: o).get() }
            return nil
        }
        #expect(events.count == 9, "\(tap.stdout)")
        let paths = events.compactMap { e -> String? in
            if case let .requestInit(_, _, _, _, path, _) = e.http { return path }
            return nil
        }
        #expect(paths == ["/api/vote?choice=:joy:", "/api/vote?choice=:rocket:", "/api/vote?choice=:100:"])

        // top over web's and voting's taps: each vote web sends voting (a gRPC call) is seen by
        // web's outbound and voting's inbound (6 events with --path …/Vote) and is counted once,
        // naming web's pod, whatever order the two streams deliver them in.
        try await waitForTapSubscribers([webTarget.admin], count: 0)
        let votes = 30
        let topRun = try MeshtopRun(["top", "--tap", web.description, "--tap", voting.description, "--path", "/emojivoto.v1.VotingService/Vote",
                                     "--max-events", String(6 * votes), "--duration", "120s", "--max-rps", "1000", "-o", "json"])
        try await waitForTapSubscribers([webTarget.admin, votingTarget.admin], count: 1)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in 0..<5 {
                tasks.addTask { for n in 0..<(votes / 5) { _ = try await mesh.call("/api/vote?choice=:\(worker)-\(n):") } }
            }
            try await tasks.waitForAll()
        }
        let top = topRun.wait(timeout: 150)
        #expect(top.status == 0, "\(top.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(top.stdout.utf8)) as? [[String: Any]], "\(top.stdout)")
        func count(_ source: (String) -> Bool) -> Int {
            rows.filter { source($0["source"] as? String ?? "") && ($0["destination"] as? String)?.hasPrefix("voting-") == true }
                .reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        }
        let fromWeb = count { $0.hasPrefix("web-") }, inboundOnly = count { $0 == "127.0.0.1" }
        #expect(fromWeb == votes && inboundOnly == 0, "web → voting: \(fromWeb), seen only inbound: \(inboundOnly)\n\(top.stdout)")
        let vote = rows.filter { ($0["path"] as? String) == "/emojivoto.v1.VotingService/Vote" }
        #expect(vote.count == 1, "one row: POST …/Vote from web's pod\n\(top.stdout)")
        let success = try #require(vote.first?["success"] as? Double)
        // A failed vote is grpc-status 14 in an HTTP 200 answer: top must count it as a failure.
        #expect(success > 0 && success < 1, "voting fails half the votes: \(success)")

        await mesh.stop()
        try await group.shutdownGracefully()
    }

    @Test func topFromLinkerdsJSONOnStandardInput() throws {
        let golden = try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt")
        let r = try meshtop(["top", "--tap-import", "-"], stdin: golden + "not json\n")
        #expect(r.status == 0)
        #expect(r.stdout.contains("my-pod") && r.stdout.contains("/some/path"))
        #expect(r.stderr.contains("skipped text") && r.stderr.contains("not json"))
    }

    /// A duration from outside that is not one (`"infs"`, `1e300s`, a century of seconds) is an
    /// input error naming the field, never a trapped conversion: skipped and said among good
    /// events, exit 2 when it is all there is.
    @Test(arguments: ["\"infs\"", "\"1e300s\"", "\"-infs\"", "{\"seconds\": 9e18}"])
    func aDurationOutOfRangeIsAnInputError(duration: String) throws {
        let end = """
        {"source":{"ip":"10.0.0.1","port":1},"destination":{"ip":"10.0.0.2","port":2},"proxyDirection":"OUTBOUND",\
        "responseEndEvent":{"id":{"base":1,"stream":1},"sinceRequestInit":\(duration),"sinceResponseInit":"0.001s","responseBytes":5}}

        """
        let alone = try meshtop(["top", "--tap-import", "-"], stdin: end)
        #expect(alone.status == 2, "exit \(alone.status): \(alone.stderr)")
        #expect(alone.stderr.contains("sinceRequestInit is not a duration in range"), "\(alone.stderr)")
        let golden = try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output_json.txt")
        let mixed = try meshtop(["top", "--tap-import", "-"], stdin: golden + end)
        #expect(mixed.status == 0, "exit \(mixed.status): \(mixed.stderr)")
        #expect(mixed.stdout.contains("/some/path"))
        #expect(mixed.stderr.contains("sinceRequestInit is not a duration in range"), "\(mixed.stderr)")
    }

    @Test func topFedLinkerdsTextOutputSaysToUseJSON() throws {
        let text = try fixture("linkerd/linkerd-viz-tap-golden-tap_busy_output.txt")
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
