import ArgumentParser
import Foundation
import Histogram
import MeshDemo
import MeshProxy
import NIOCore
import NIOPosix
import Synchronization

/// An open-loop HTTP/1.1 load generator: a fixed request rate, latency recorded with HdrHistogram
/// from each request's intended send time (no coordinated omission).
@main
struct Meshload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshload",
        abstract: "Send HTTP requests at a fixed rate and report latency percentiles (open loop, HdrHistogram).",
        discussion: "Latency is measured from when each request was due, not when it was sent, so a "
            + "slow server or a busy generator shows as latency instead of being hidden by waiting.")

    @Argument(help: ArgumentHelp("Where to send: host:port (of a server, or of a proxy's listener).", valueName: "host:port"))
    var target: String

    @Option(help: "Requests per second.") var rate: Double = 1000
    @Option(help: "How long to send (e.g. 10s).") var duration = "10s"
    @Option(help: "The Host header (the authority a proxy routes by).") var host = "localhost"
    @Option(help: "The request path.") var path = "/"
    @Option(help: "Seconds to wait for the last responses.") var drain: Double = 5
    @Option(name: .shortAndLong, help: "Output: table or json.") var output = "table"

    func run() async throws {
        guard let address = HostPort(target) else { throw ValidationError("\(target): expected host:port") }
        guard rate > 0, rate <= 1_000_000 else { throw ValidationError("--rate must be above 0 and at most 1000000") }
        guard let seconds = Self.seconds(duration), seconds > 0 else { throw ValidationError("--duration \(duration): e.g. 10s or 1m") }
        guard output == "table" || output == "json" else { throw ValidationError("-o \(output): use table or json") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = HTTPClient(group: group, timeout: .seconds(10))
        let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three))  // µs, up to 60 s
        let total = Int(rate * seconds)
        let done = Mutex(0)
        let generator = OpenLoopGenerator(rate: rate, on: group.next(), limit: total, send: { _, _ in
            client.send(.GET, path, host: host, to: address)
        }, completed: { result, intended in
            let micros = max(1, (NIODeadline.now() - intended).nanoseconds / 1000)
            if case .success = result { _ = histogram.withLock { $0.record(UInt64(micros)) } }
            done.withLock { $0 += 1 }
        })
        let started = Date()
        while done.withLock({ $0 }) < total, Date().timeIntervalSince(started) < seconds + drain {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        generator.stop()
        let totals = generator.snapshot
        client.shutdown()
        try await group.shutdownGracefully()
        let h = histogram.withLock { $0 }
        let errors = totals.errors + totals.byStatus.filter { $0.key >= 500 }.values.reduce(0, +)
        let unanswered = totals.sent - totals.errors - totals.byStatus.values.reduce(0, +)
        func ms(_ p: Double) -> Double { Double(h.valueAtPercentile(p)) / 1000 }
        if output == "json" {
            let statuses = totals.byStatus.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            print("{\"rate\":\(rate),\"sent\":\(totals.sent),\"errors\":\(errors),\"unanswered\":\(unanswered),"
                  + "\"statuses\":{\(statuses)},\"transport_errors\":\(totals.errors),"
                  + "\"latency_ms\":{\"p50\":\(ms(50)),\"p90\":\(ms(90)),\"p99\":\(ms(99)),\"p99_9\":\(ms(99.9)),\"max\":\(Double(h.maxRecorded) / 1000)}}")
        } else {
            func f(_ v: Double) -> String { String(format: "%.3fms", v) }
            print("target \(address)  rate \(Int(rate))/s  \(Int(seconds))s  sent \(totals.sent)  errors \(errors)  unanswered \(unanswered)")
            print("p50 \(f(ms(50)))  p90 \(f(ms(90)))  p99 \(f(ms(99)))  p99.9 \(f(ms(99.9)))  max \(f(Double(h.maxRecorded) / 1000))")
        }
        if errors > 0 || unanswered > 0 { throw ExitCode(1) }
    }

    static func seconds(_ text: String) -> Double? {
        if text.hasSuffix("ms"), let v = Double(text.dropLast(2)) { return v / 1000 }
        if text.hasSuffix("s"), let v = Double(text.dropLast()) { return v }
        if text.hasSuffix("m"), let v = Double(text.dropLast()) { return v * 60 }
        return Double(text)
    }
}
