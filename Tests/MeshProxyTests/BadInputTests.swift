import MeshTesting
import Foundation
import Testing
import NIOCore
import NIOPosix
@testable import MeshProxy
import MeshDemo
import MeshSources

/// Sends raw bytes on a fresh connection and returns what comes back before the peer closes
/// (or `wait` passes).
func rawExchange(_ address: HostPort, _ bytes: [UInt8], wait: Double = 2) throws -> String {
    let fd = try TapSubscription.connect(address.description).get()
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(wait), tv_usec: Int((wait - Double(Int(wait))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite(.serialized) struct BadInput {
    func start(group: any EventLoopGroup) async throws -> (AppServer, MeshProxyServer) {
        let app = try await statusApp(group: group)
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        var config = ProxyConfiguration(inbound: (loopback, app.address), admin: loopback)
        config.headerTimeout = .milliseconds(300)
        return (app, try await MeshProxyServer.start(config, group: group))
    }

    @Test func malformedOversizedAndTricklingRequestsGet400431And408() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (app, proxy) = try await start(group: group)
        let inbound = try #require(proxy.inboundAddress)
        #expect(try rawExchange(inbound, Array("THIS IS NOT HTTP\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 400"))
        let huge = "GET / HTTP/1.1\r\nHost: app\r\nX-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n"
        #expect(try rawExchange(inbound, Array(huge.utf8)).hasPrefix("HTTP/1.1 431"))
        // (The 408 itself shows the 300 ms header timeout fired: without it the read ends empty after 3 s.)
        let trickle = try rawExchange(inbound, Array("GET / HTTP/1.1\r\nHost: app\r\nX-Slow: 1".utf8), wait: 3)
        #expect(trickle.hasPrefix("HTTP/1.1 408"))
        // A good request still works, and an idle keep-alive connection is not cut.
        #expect(try rawExchange(inbound, Array("GET /ok HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200"))
        await proxy.stop()
        await app.stop()
        try await group.shutdownGracefully()
    }

    /// Run as its own process, so the count is the proxy's alone (tests run in parallel here).
    /// HTTP/1.0 may leave Host out; the proxy speaks HTTP/1.1 upstream, which needs one, so it
    /// adds the upstream's (the app sees a Host, not a request an HTTP/1.1 server refuses).
    @Test func anHTTP10RequestWithoutHostReachesTheAppWithOne() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await AppServer.start(group: group) { request, loop in
            let host = request.headers.filter { $0.0.lowercased() == "host" }.map(\.1)
            return loop.makeSucceededFuture(AppResponse(status: 200, body: "hosts=\(host)\n"))
        }
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let proxy = try await MeshProxyServer.start(ProxyConfiguration(inbound: (loopback, app.address), admin: loopback), group: group)
        let answer = try rawExchange(try #require(proxy.inboundAddress), Array("GET /ok HTTP/1.0\r\n\r\n".utf8))
        #expect(answer.hasPrefix("HTTP/1.0 200"), "\(answer)")
        #expect(answer.contains("hosts=[\"\(app.address)\"]"), "\(answer)")
        await proxy.stop()
        await app.stop()
        try await group.shutdownGracefully()
    }

    @Test func manyRoundsOfBadInputLeakNoFileDescriptors() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try await statusApp(group: group)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshproxy-fd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let err = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshproxy")
        p.arguments = ["--inbound", "127.0.0.1:0", "--app", app.address.description, "--admin", "127.0.0.1:0"]
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        var inbound: HostPort?
        eventually {
            let text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            inbound = text.firstMatch(of: /inbound (127\.0\.0\.1:\d+)/).flatMap { HostPort(String($0.1)) }
            return inbound != nil
        }
        let address = try #require(inbound, "meshproxy never said where it listens")
        func fds() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p.processIdentifier)/fd")) ?? []).count }
        _ = try rawExchange(address, Array("GET /ok HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".utf8))
        let before = fds()
        for round in 0..<200 {
            switch round % 4 {
            case 0: _ = try rawExchange(address, Array("NOPE\r\n\r\n".utf8))
            case 1: _ = try rawExchange(address, Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "b", count: 90_000) + "\r\n\r\n").utf8))
            case 2: _ = try rawExchange(address, Array("GET /ok HTTP/1.1\r\nHost: app\r\n".utf8), wait: 0.05)  // the client gives up first
            default: _ = try rawExchange(address, Array("GET /status/503 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n".utf8))
            }
        }
        // Connections the proxy is still closing settle within moments.
        eventually(within: 5) { fds() <= before + 2 }
        let after = fds()
        #expect(before > 0)
        #expect(after <= before + 2, "meshproxy's open fds went from \(before) to \(after) over 200 rounds of bad input")
        p.terminate()
        p.waitUntilExit()
        await app.stop()
        try await group.shutdownGracefully()
    }
}
