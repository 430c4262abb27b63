import FoundationEssentials
import MeshIdentity
import MeshTap
import NIOCore
import NIOPosix
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The proxy's settings as a command line gives them: addresses, labels and files as text.
/// `configuration()` checks and loads them into a `ProxyConfiguration`, each problem named by
/// its flag.
public struct ProxySettings: Sendable {
    public var inbound: String?
    public var app: String?
    public var profile: String?
    public var outbound: String?
    public var destinations: String?
    public var admin = "127.0.0.1:4191"
    public var tap: String?
    public var tapToken: String?
    /// More headers whose values tap hides, besides the built-in credential headers.
    public var tapRedact: [String] = []
    public var tapMaxSubscribers = 16
    public var adminToken: String?
    /// `name=value` each.
    public var labels: [String] = []
    public var connectTimeoutMs: Int64 = 1000
    /// The identity service (host:port) that signs this proxy's CSRs, the trust anchor (PEM file)
    /// its certificates must chain to, and the file holding this service account's token.
    public var identityService: String?
    public var trustAnchor: String?
    public var identityTokenFile: String?
    public var identity: String?
    public var maxConnections = 10_000
    public var detectTimeoutMs: Int64 = 10_000
    public var idleTimeoutMs: Int64 = 60_000
    public var headerTimeoutMs: Int64 = 10_000
    public var tapMaxConnections = 64

    /// The longest any `-ms` flag may be: a day.
    public static let maxMilliseconds: Int64 = 86_400_000
    /// The longest a drain may take: an hour.
    public static let maxDrainSeconds: Double = 3_600

    public init() {}

    /// `--drain-seconds` checked: a number of seconds from 0 up to an hour.
    public static func checkDrain(seconds: Double) throws(SettingsError) {
        guard seconds.isFinite, seconds >= 0, seconds <= maxDrainSeconds else {
            throw SettingsError("--drain-seconds \(seconds): expected 0 to \(Int(maxDrainSeconds)) seconds")
        }
    }

    /// The configuration these settings describe, with the profile, destinations and identity
    /// files read; throws the first problem, naming its flag.
    public func configuration() throws(SettingsError) -> ProxyConfiguration {
        func address(_ text: String, _ flag: String) throws(SettingsError) -> HostPort {
            guard let a = HostPort(text) else { throw SettingsError("\(flag) \(text): expected host:port") }
            return a
        }
        /// A duration flag in milliseconds: above 0 and at most a day (NIO's clock would overflow long before Int64 does).
        func milliseconds(_ value: Int64, _ flag: String) throws(SettingsError) -> TimeAmount {
            guard value > 0, value <= Self.maxMilliseconds else { throw SettingsError("\(flag) \(value): expected 1 to \(Self.maxMilliseconds) (a day)") }
            return .milliseconds(value)
        }
        func count(_ value: Int, _ flag: String, max: Int) throws(SettingsError) -> Int {
            guard value > 0, value <= max else { throw SettingsError("\(flag) \(value): expected 1 to \(max)") }
            return value
        }
        var config = ProxyConfiguration(admin: try address(admin, "--admin"), connectTimeout: try milliseconds(connectTimeoutMs, "--connect-timeout-ms"))
        config.maxConnections = try count(maxConnections, "--max-connections", max: 1_000_000)
        config.detectTimeout = try milliseconds(detectTimeoutMs, "--detect-timeout-ms")
        config.idleTimeout = try milliseconds(idleTimeoutMs, "--idle-timeout-ms")
        config.headerTimeout = try milliseconds(headerTimeoutMs, "--header-timeout-ms")
        if let tap { config.tap = try address(tap, "--tap") }
        config.tapToken = tapToken
        config.tapMaxSubscribers = try count(tapMaxSubscribers, "--tap-max-subscribers", max: 1024)
        config.tapMaxConnections = try count(tapMaxConnections, "--tap-max-connections", max: 100_000)
        guard tapMaxConnections >= tapMaxSubscribers else {
            throw SettingsError("--tap-max-connections \(tapMaxConnections) must be at least --tap-max-subscribers \(tapMaxSubscribers)")
        }
        if let bad = tapRedact.first(where: { $0.isEmpty || !$0.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") } }) {
            throw SettingsError("--tap-redact \"\(bad)\": expected a header name")
        }
        config.tapRedaction = TapRedaction(extraHeaders: tapRedact)
        config.adminToken = adminToken
        for pair in labels {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw SettingsError("--label \(pair): expected name=value") }
            config.workloadLabels[kv[0]] = kv[1]
        }
        switch (inbound, app) {
        case (let i?, let a?): config.inbound = (try address(i, "--inbound"), try address(a, "--app"))
        case (nil, nil): break
        default: throw SettingsError("--inbound and --app go together")
        }
        if let file = profile {
            guard config.inbound != nil else { throw SettingsError("--profile describes inbound routes: it needs --inbound and --app") }
            do {
                config.inboundProfile = try ServiceProfile.parse(yaml: try Self.read(file, "the profile"), file: file)
            } catch {
                throw SettingsError(String(describing: error))
            }
        }
        if let outbound {
            var table = DestinationTable()
            if let file = destinations { table = try Self.destinations(file) }
            config.outbound = (try address(outbound, "--outbound"), table)
        } else if destinations != nil {
            throw SettingsError("--destinations needs --outbound")
        }
        if let service = identityService {
            guard let anchorFile = trustAnchor, let tokenFile = identityTokenFile else {
                throw SettingsError("--identity-service needs --trust-anchor (the mesh's ca.crt) and --identity-token-file (this service account's token)")
            }
            let address = try address(service, "--identity-service")
            let anchorPEM = try Self.read(anchorFile, "the trust anchor")
            let token = String(try Self.read(tokenFile, "the identity token").trimmed())
            guard !token.isEmpty else { throw SettingsError("\(tokenFile): the identity token is empty") }
            let domain: String
            do {
                domain = try IdentityAuthority.trustDomain(anchorPEM: anchorPEM)
            } catch {
                throw SettingsError("\(anchorFile): \(error)")
            }
            let name = identity ?? IdentityAuthority.identityName(
                serviceAccount: config.workloadLabels["serviceaccount"] ?? config.workloadLabels["deployment"] ?? "default",
                namespace: config.workloadLabels["namespace"] ?? "default", trustDomain: domain)
            do {
                _ = try identityServiceClientContext(trustAnchorPEM: anchorPEM)
            } catch {
                throw SettingsError("\(anchorFile): \(error)")
            }
            // The first certificate is asked for once the proxy serves (not ready until then).
            config.identity = ProxyIdentity(client: IdentityClient(service: address, name: name, token: token, trustAnchorPEM: anchorPEM))
        } else if identity != nil || trustAnchor != nil || identityTokenFile != nil {
            throw SettingsError("--identity, --trust-anchor and --identity-token-file go with --identity-service (the service that signs this proxy's CSR)")
        }
        return config
    }

    /// The destinations file, read and parsed.
    static func destinations(_ file: String) throws(SettingsError) -> DestinationTable {
        do {
            return try DestinationTable.parse(yaml: try read(file, "the destinations file"), file: file)
        } catch let e as SettingsError {
            throw e
        } catch {
            throw SettingsError(String(describing: error))
        }
    }

    private static func read(_ file: String, _ what: String) throws(SettingsError) -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw SettingsError("cannot read \(what) \(file)") }
        return text
    }
}

/// A setting that cannot be used, in words naming its flag.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The proxy as a process: listens, says where, serves until SIGINT, SIGTERM or `POST /shutdown`
/// (SIGHUP reloads the destinations file), then drains for up to `drainSeconds` and stops.
public enum ProxyProcess {
    /// The listeners could not be opened (the process exits 3).
    public struct ListenError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func run(_ config: ProxyConfiguration, threads: Int, drainSeconds: Double, destinationsFile: String?,
                           say: @escaping @Sendable (String) -> Void) async throws(ListenError) {
        // Checked where the flag is parsed; out of range here still drains for at most an hour.
        let drainTimeout = TimeAmount.milliseconds(Int64(((try? ProxySettings.checkDrain(seconds: drainSeconds)) != nil ? drainSeconds : ProxySettings.maxDrainSeconds) * 1000))
        raiseOpenFileLimit(toHold: config.maxConnections, say: say)
        // Signals and POST /shutdown arrive here.
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        let proxy: MeshProxyServer
        do {
            proxy = try await MeshProxyServer.start(config, group: MultiThreadedEventLoopGroup(numberOfThreads: threads),
                                                    onShutdownRequest: { continuation.yield(SIGTERM) })
        } catch {
            throw ListenError(description: "cannot listen: \(error)")
        }
        var lines = ["admin \(proxy.adminAddress)"]
        if let i = proxy.inboundAddress, let app = config.inbound?.app { lines.append("inbound \(i) -> \(app)") }
        if let o = proxy.outboundAddress { lines.append("outbound \(o)") }
        if let t = proxy.tapAddress { lines.append("tap \(t)") }
        if let id = config.identity { lines.append("identity \(id.name)" + (id.usable == nil ? " (not ready: asking the identity service)" : "")) }
        say("listening: " + lines.joined(separator: ", "))
        let sources = [SIGINT, SIGTERM, SIGHUP].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            return source
        }
        // Started: what start-up alone ran (argument parsing, TLS and identity setup, the loader's
        // tables) leaves the RSS; what serving runs faults back in from the page cache.
        StartupPages.release()
        for await sig in signals {
            if sig == SIGHUP {
                reloadDestinations(proxy, from: destinationsFile, say: say)
                continue
            }
            break
        }
        say("draining (up to \(drainSeconds) s): /ready answers 503, new connections are refused")
        let left = await proxy.drain(timeout: drainTimeout)
        say(left == 0 ? "drained; stopping" : "\(left) connections still open after \(drainSeconds) s; cutting them")
        for source in sources { source.cancel() }
        await proxy.stop()
    }

    private static func reloadDestinations(_ proxy: MeshProxyServer, from file: String?, say: (String) -> Void) {
        guard let file else {
            say("SIGHUP: no --destinations file to reload")
            return
        }
        do {
            let table = try ProxySettings.destinations(file)
            proxy.updateDestinations(table)
            say("SIGHUP: reloaded \(file) (\(table.destinations.count) destinations); open connections keep going")
        } catch {
            say("SIGHUP: kept the destinations in use: \(error)")
        }
    }

    /// Raises the open-file limit to its hard maximum, and says so when that still cannot hold
    /// `connections` (each is a descriptor, twice when proxied).
    private static func raiseOpenFileLimit(toHold connections: Int, say: (String) -> Void) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        if limit.rlim_cur < rlim_t(connections + 64) {
            say("open-file limit \(limit.rlim_cur) is low for --max-connections \(connections)")
        }
    }
}
