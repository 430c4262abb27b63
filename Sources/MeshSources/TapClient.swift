import Foundation
public import MeshTap
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A live tap subscription to one proxy's tap listener (DESIGN's NDJSON protocol): sends the
/// filter line, then decodes events as they arrive, on a thread of its own. Refusals, garbage
/// and closed connections are reported, never hidden.
public final class TapSubscription: Sendable {
    public enum Update: Sendable {
        case event(TapEvent)
        /// A problem worth showing (the peer refused, sent garbage, or went away).
        case problem(String)
        case closed
    }

    public let address: String
    public let filter: TapFilter
    private let socketFD = Mutex<Int32>(-1)
    private let stopped = Atomic<Bool>(false)

    public init(address: String, filter: TapFilter) {
        self.address = address
        self.filter = filter
    }

    /// Connects and reads until `stop()` or the peer closes; `deliver` runs on the subscription's thread.
    public func start(_ deliver: @escaping @Sendable (Update) -> Void) {
        let thread = Thread { [self] in
            run(deliver)
        }
        thread.name = "meshtop-tap \(address)"
        thread.start()
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        let fd = socketFD.withLock { $0 }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func run(_ deliver: @Sendable (Update) -> Void) {
        let fd: Int32
        switch Self.connect(address) {
        case .failure(let error):
            deliver(.problem(error.description))
            deliver(.closed)
            return
        case .success(let f):
            fd = f
        }
        socketFD.withLock { $0 = fd }
        defer {
            socketFD.withLock { $0 = -1 }
            close(fd)
        }
        let line = Array((filter.json + "\n").utf8)
        guard line.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == line.count else {
            deliver(.problem("tap \(address): cannot send the filter"))
            deliver(.closed)
            return
        }
        var decoder = TapStreamDecoder()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopped.load(ordering: .relaxed) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            for piece in decoder.feed(buffer[0..<n]) {
                switch piece {
                case .object(let bytes):
                    switch TapJSON.decode(line: bytes) {
                    case .success(let e): deliver(.event(e))
                    case .failure(let reason):
                        if let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let message = o["error"] as? String {
                            deliver(.problem("tap \(address): \(message)"))
                        } else {
                            deliver(.problem("tap \(address): skipped an object that is \(reason)"))
                        }
                    }
                case .garbage(let offset, let bytes):
                    deliver(.problem("tap \(address): \(bytes.count) bytes of garbage at offset \(offset) skipped"))
                case .oversized(let offset):
                    deliver(.problem("tap \(address): an event over 1 MiB at offset \(offset) skipped"))
                }
            }
        }
        if !stopped.load(ordering: .relaxed) { deliver(.problem("tap \(address): the connection closed")) }
        deliver(.closed)
    }

    /// A connected TCP socket to `host:port`, or why not.
    public static func connect(_ address: String) -> Result<Int32, TapConnectError> {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            return .failure(TapConnectError("tap \(address): expected host:port"))
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host.isEmpty ? "127.0.0.1" : host, String(port), &hints, &result) == 0, let first = result else {
            return .failure(TapConnectError("tap \(address): cannot resolve \(host)"))
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return .failure(TapConnectError("tap \(address): no socket")) }
        guard Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            return .failure(TapConnectError("tap \(address): \(reason.lowercased())"))
        }
        return .success(fd)
    }
}

public struct TapConnectError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
