public import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOPosix
public import MeshProxy
public import NIOCore

/// emojivoto's gRPC surface as the demo's apps speak it (grpc-swift over h2c): `web` lists the
/// emoji and casts votes through its proxy's outbound listener, as Linkerd's emojivoto does.
/// Linkerd's voting service has one method per emoji (`VoteJoy`, `VoteDoughnut`, …); here one
/// `Vote` carries the shortcode, so a route table shows one row per kind of call.
public enum Emojivoto {
    public static let listAll = MethodDescriptor(fullyQualifiedService: "emojivoto.v1.EmojiService", method: "ListAll")
    public static let vote = MethodDescriptor(fullyQualifiedService: "emojivoto.v1.VotingService", method: "Vote")

    /// `ListAllEmojiRequest {}`
    public struct ListAllRequest: DemoMessage, Equatable {
        public init() {}
        public init(wire: ProtoFields) {}
        public var wire: ProtoFields { ProtoFields() }
    }

    /// `Emoji { string unicode = 1; string shortcode = 2; }`
    public struct Emoji: DemoMessage, Equatable {
        public var unicode: String
        public var shortcode: String
        public init(unicode: String, shortcode: String) {
            self.unicode = unicode
            self.shortcode = shortcode
        }
        public init(wire: ProtoFields) throws {
            unicode = try wire.string(1) ?? ""
            shortcode = try wire.string(2) ?? ""
        }
        public var wire: ProtoFields { ProtoFields([(1, Array(unicode.utf8)), (2, Array(shortcode.utf8))]) }
    }

    /// `ListAllEmojiResponse { repeated Emoji list = 1; }`
    public struct ListAllResponse: DemoMessage, Equatable {
        public var list: [Emoji]
        public init(list: [Emoji]) { self.list = list }
        public init(wire: ProtoFields) throws {
            list = try wire.all(1).map { try Emoji(wire: ProtoFields(decoding: $0)) }
        }
        public var wire: ProtoFields { ProtoFields(list.map { (1, $0.wire.encoded) }) }
    }

    /// `VoteRequest { string shortcode = 1; }`
    public struct VoteRequest: DemoMessage, Equatable {
        public var shortcode: String
        public init(shortcode: String) { self.shortcode = shortcode }
        public init(wire: ProtoFields) throws { shortcode = try wire.string(1) ?? "" }
        public var wire: ProtoFields { ProtoFields([(1, Array(shortcode.utf8))]) }
    }

    /// `VoteResponse {}`
    public struct VoteResponse: DemoMessage, Equatable {
        public init() {}
        public init(wire: ProtoFields) {}
        public var wire: ProtoFields { ProtoFields() }
    }

    /// The emoji the demo's emoji service lists.
    public static let catalogue: [Emoji] = [
        Emoji(unicode: "😂", shortcode: ":joy:"), Emoji(unicode: "😎", shortcode: ":sunglasses:"),
        Emoji(unicode: "🍩", shortcode: ":doughnut:"), Emoji(unicode: "🚀", shortcode: ":rocket:"),
        Emoji(unicode: "💯", shortcode: ":100:"),
    ]
}

/// A demo message: protobuf's wire format, reduced to what emojivoto's messages use
/// (length-delimited fields: strings and embedded messages).
public protocol DemoMessage: Sendable {
    init(wire: ProtoFields) throws
    var wire: ProtoFields { get }
}

/// A message's length-delimited fields in order; other wire types are skipped when read, as
/// protobuf skips unknown fields.
public struct ProtoFields: Sendable {
    public var fields: [(number: Int, bytes: [UInt8])]

    public init(_ fields: [(Int, [UInt8])] = []) {
        self.fields = fields.map { (number: $0.0, bytes: $0.1) }
    }

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public init<Bytes: Collection<UInt8>>(decoding bytes: Bytes) throws {
        let bytes = Array(bytes)
        var at = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard at < bytes.count else { throw Malformed(description: "protobuf: truncated varint") }
                let byte = bytes[at]
                at += 1
                // The tenth byte carries the 64th bit alone (as protobuf's own readers insist).
                guard shift < 63 || byte <= 1 else { throw Malformed(description: "protobuf: varint past 64 bits") }
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte & 0x80 == 0 { return value }
            }
            throw Malformed(description: "protobuf: varint past 64 bits")
        }
        func skip(_ n: UInt64) throws {
            guard n <= UInt64(bytes.count - at) else { throw Malformed(description: "protobuf: field runs past the message") }
            at += Int(n)
        }
        fields = []
        while at < bytes.count {
            let key = try varint()
            let number = key >> 3
            guard number > 0, number < 1 << 29 else { throw Malformed(description: "protobuf: field number \(number)") }
            switch key & 7 {
            case 0: _ = try varint()
            case 1: try skip(8)
            case 5: try skip(4)
            case 2:
                let length = try varint()
                let start = at
                try skip(length)
                fields.append((number: Int(number), bytes: Array(bytes[start..<at])))
            default: throw Malformed(description: "protobuf: wire type \(key & 7)")
            }
        }
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        func varint(_ value: Int) {
            var v = UInt64(truncatingIfNeeded: value)
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        for field in fields {
            varint(field.number << 3 | 2)
            varint(field.bytes.count)
            out += field.bytes
        }
        return out
    }

    /// Every value of field `number`, in order (repeated fields).
    public func all(_ number: Int) -> [[UInt8]] { fields.filter { $0.number == number }.map(\.bytes) }

    /// Field `number` as UTF-8 text (the last value wins, as in protobuf).
    public func string(_ number: Int) throws -> String? {
        guard let bytes = all(number).last else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Malformed(description: "protobuf: field \(number) is not UTF-8") }
        return text
    }
}

/// grpc-swift's coder for a `DemoMessage`.
struct ProtoCoder<Message: DemoMessage>: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        Bytes(message.wire.encoded)
    }

    /// Bytes that are not the message are INTERNAL, as grpc-go and grpc-java answer them.
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        do {
            return try serializedMessageBytes.withUnsafeBytes { try Message(wire: ProtoFields(decoding: $0)) }
        } catch {
            throw RPCError(code: .internalError, message: "cannot decode \(Message.self): \(error)")
        }
    }
}

/// One unary method and what answers it. A thrown `RPCError` reaches the caller as its
/// `grpc-status`; any other error as `UNKNOWN`.
public struct UnaryMethod<Request: DemoMessage, Response: DemoMessage>: RegistrableRPCService {
    public var method: MethodDescriptor
    public var handle: @Sendable (Request) async throws -> Response

    public init(_ method: MethodDescriptor, handle: @escaping @Sendable (Request) async throws -> Response) {
        self.method = method
        self.handle = handle
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let handle = self.handle
        router.registerHandler(forMethod: method, deserializer: ProtoCoder<Request>(), serializer: ProtoCoder<Response>()) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: try await handle(single.message)))
        }
    }
}

/// A gRPC server on loopback, h2c (its proxy's inbound side talks to it in plaintext, as a pod's
/// app and its sidecar do).
public final class DemoGRPCServer: Sendable {
    public let address: HostPort
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let serving: Task<Void, any Error>

    private init(address: HostPort, server: GRPCServer<HTTP2ServerTransport.Posix>, serving: Task<Void, any Error>) {
        self.address = address
        self.server = server
        self.serving = serving
    }

    public static func start(host: String = "127.0.0.1", services: [any RegistrableRPCService],
                             group: any EventLoopGroup) async throws -> DemoGRPCServer {
        let loops = group as? MultiThreadedEventLoopGroup ?? .singletonMultiThreadedEventLoopGroup
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: 0), transportSecurity: .plaintext, eventLoopGroup: loops)
        let server = GRPCServer(transport: transport, services: services)
        let serving = Task { try await server.serve() }
        do {
            guard let bound = try await transport.listeningAddress.ipv4 else { throw DemoError("gRPC server did not report an IPv4 address") }
            return DemoGRPCServer(address: HostPort(host: bound.host, port: bound.port), server: server, serving: serving)
        } catch {
            server.beginGracefulShutdown()
            _ = await serving.result
            throw error
        }
    }

    public func stop() async {
        server.beginGracefulShutdown()
        _ = await serving.result
    }
}

/// A gRPC client whose connections go to `proxy` (a proxy's outbound listener, h2c with prior
/// knowledge) with `:authority` set to the service it calls, so the proxy routes by it.
public final class DemoGRPCClient: Sendable {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, any Error>
    private let timeout: Duration

    public init(proxy: HostPort, authority: String, timeout: Duration = .seconds(5), group: any EventLoopGroup) throws {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: proxy.host, port: proxy.port), transportSecurity: .plaintext,
            config: .defaults { $0.http2.authority = authority }, eventLoopGroup: group)
        let client = GRPCClient(transport: transport)
        self.client = client
        self.timeout = timeout
        connections = Task { try await client.runConnections() }
    }

    public func call<Request: DemoMessage, Response: DemoMessage>(_ method: MethodDescriptor, _ request: Request,
                                                                  as: Response.Type = Response.self) async throws -> Response {
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await client.unary(request: ClientRequest(message: request), descriptor: method, serializer: ProtoCoder<Request>(),
                                      deserializer: ProtoCoder<Response>(), options: options) { try $0.message }
    }

    public func stop() async {
        client.beginGracefulShutdown()
        _ = await connections.result
    }
}
