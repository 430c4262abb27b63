import ArgumentParser
import Foundation
import MeshDemo
import NIOCore
import NIOPosix
import Synchronization

/// A tiny upstream app for soak tests and benchmarks: answers every request with 200 `ok`.
/// SIGUSR1 toggles slow mode (every answer waits --slow-ms first), so a script can slow the
/// upstream down and speed it up again without restarting it.
@main
struct Meshapp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An upstream app that answers 200 ok; SIGUSR1 toggles slow answers.")

    @Option(help: ArgumentHelp("Where to listen.", valueName: "host:port")) var listen = "127.0.0.1:8080"
    @Option(help: "Delay of every answer in slow mode, in milliseconds.") var slowMs = 200
    @Option(help: "Share of requests answered 500 (0 to 1).") var failureRate = 0.0

    func run() async throws {
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--listen \(listen): expected host:port") }
        guard (0...1).contains(failureRate) else { throw ValidationError("--failure-rate must be between 0 and 1") }
        let slow = Atomic<Bool>(false)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let delay = TimeAmount.milliseconds(Int64(slowMs))
        let failures = failureRate
        let server = try await AppServer.start(host: String(parts[0]), port: port, group: group) { _, loop in
            let response = Double.random(in: 0..<1) < failures ? AppResponse(status: 500, body: "failed\n") : AppResponse(status: 200, body: "ok\n")
            guard slow.load(ordering: .relaxed) else { return loop.makeSucceededFuture(response) }
            return loop.scheduleTask(in: delay) { response }.futureResult
        }
        signal(SIGUSR1, SIG_IGN)
        let toggle = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        toggle.setEventHandler {
            let now = !slow.load(ordering: .relaxed)
            slow.store(now, ordering: .relaxed)
            FileHandle.standardError.write(Data("meshapp: slow mode \(now ? "on" : "off")\n".utf8))
        }
        toggle.resume()
        FileHandle.standardError.write(Data("meshapp: listening on \(server.address)\n".utf8))
        while true { try await Task.sleep(nanoseconds: 3_600_000_000_000) }
    }
}
