import ArgumentParser
import FoundationEssentials
import MeshProxy
import MeshIdentity
#if canImport(Glibc)
import Glibc
#endif

@main
struct Meshproxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshproxy",
        abstract: "A sidecar HTTP proxy that exports Linkerd's metrics.",
        discussion: """
        `meshproxy --inbound 127.0.0.1:4143 --app 127.0.0.1:8080` runs the proxy (serve is the \
        default command: `meshproxy serve --help` lists every flag). `meshproxy identity init --dir \
        DIR` creates the certificate authority; `meshproxy identity serve` signs proxies' CSRs with \
        it, and proxies started with --identity-service turn mTLS on.
        """,
        subcommands: [Serve.self, IdentityCommand.self],
        defaultSubcommand: Serve.self)

    /// Usage mistakes exit 2 (ArgumentParser's own default is 64), as meshtop's do.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            sayOnStderr("meshproxy: " + fullMessage(for: error))
            Glibc.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// The proxy itself (the default command).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy (the default command).",
        discussion: """
        Inbound: requests to --inbound are forwarded to the local app at --app. Outbound: the app \
        sends requests to --outbound, and they are routed by their Host header through the \
        --destinations file. The admin listener serves /metrics (Linkerd's names and labels), \
        /ready and /live. Every listener binds to loopback unless told otherwise.

        mTLS: with --identity-service (see `meshproxy identity serve`), --trust-anchor and \
        --identity-token-file the proxy makes its own key, gets a short-lived certificate for its \
        identity by CSR, and renews it at two thirds of its life; it never sees the issuer's key. Inbound \
        then accepts mTLS from meshed peers (and plaintext from others), and outbound reaches \
        endpoints that have an `identity:` in the destinations file over mTLS, checking it.
        """)

    @Option(help: ArgumentHelp("Inbound listener: requests for the local app arrive here.", valueName: "host:port"))
    var inbound: String?

    @Option(help: ArgumentHelp("The local app the inbound listener forwards to.", valueName: "host:port"))
    var app: String?

    @Option(help: ArgumentHelp("A service profile (YAML) of the app's routes: inbound requests are also counted per route.", valueName: "FILE"))
    var profile: String?

    @Option(help: ArgumentHelp("Outbound listener: the app sends its requests for other services here.", valueName: "host:port"))
    var outbound: String?

    @Option(help: ArgumentHelp("The destinations file (YAML) that routes outbound requests by authority.", valueName: "FILE"))
    var destinations: String?

    @Option(help: ArgumentHelp("Admin listener: /metrics, /ready, /live.", valueName: "host:port"))
    var admin = "127.0.0.1:4191"

    @Option(help: ArgumentHelp("Tap listener: streams requests live to meshtop tap/top (loopback by default, as Linkerd's 4190).", valueName: "host:port"))
    var tap: String?

    @Option(help: "A token tap subscribers must send.")
    var tapToken: String?

    @Option(name: .customLong("tap-redact"), help: ArgumentHelp(
        "A header whose value tap hides (repeatable), besides authorization, cookie, set-cookie, x-api-key, x-auth-token and names with token, secret or password in them.",
        valueName: "name"))
    var tapRedact: [String] = []

    @Option(help: "The most tap subscribers served at once.")
    var tapMaxSubscribers = 16

    @Option(help: "The most connections the tap listener holds at once, subscribers and those yet to send their filter line (which must come within --header-timeout-ms).")
    var tapMaxConnections = 64

    @Option(help: "A bearer token POST /split must carry (changing the traffic split).")
    var adminToken: String?

    @Option(name: .customLong("label"), help: ArgumentHelp("This workload's labels, shown by tap (repeatable): namespace=emojivoto, deployment=web, pod=web-0.", valueName: "name=value"))
    var labels: [String] = []

    @Option(help: "Event-loop threads (1 is Linkerd's default for a sidecar).")
    var threads = 1

    @Option(help: "How long connecting to an upstream may take, in milliseconds, before 504.")
    var connectTimeoutMs: Int64 = 1000

    @Option(help: ArgumentHelp("The identity service (`meshproxy identity serve`) that signs this proxy's CSRs: turns on mTLS.", valueName: "host:port"))
    var identityService: String?

    @Option(help: ArgumentHelp("The mesh's trust anchor (ca.crt from `meshproxy identity init`): peers and the certificates the service signs must chain to it.", valueName: "FILE"))
    var trustAnchor: String?

    @Option(help: ArgumentHelp("The file holding this service account's bootstrap token, which the identity service checks.", valueName: "FILE"))
    var identityTokenFile: String?

    @Option(help: ArgumentHelp("This proxy's identity (default: SERVICEACCOUNT.NAMESPACE.serviceaccount.identity.linkerd.DOMAIN from --label serviceaccount= or deployment= and namespace=).", valueName: "NAME"))
    var identity: String?

    @Option(help: "On SIGTERM, SIGINT or POST /shutdown: how long open requests may take to finish, in seconds.")
    var drainSeconds: Double = 10

    @Option(help: "The most connections each proxy listener holds open; more are closed at once and counted in meshproxy_connections_refused_total.")
    var maxConnections = 10_000

    @Option(help: "How long a new connection may take to show its protocol (TLS handshake included), in milliseconds, before it is closed.")
    var detectTimeoutMs: Int64 = 10_000

    @Option(help: "How long a connection may sit idle between requests, in milliseconds, before it is closed.")
    var idleTimeoutMs: Int64 = 60_000

    @Option(help: "How long a client may take to send a request's headers once it began, in milliseconds (then 408 and close: slowloris).")
    var headerTimeoutMs: Int64 = 10_000

    /// The flags as the proxy library takes them.
    var settings: ProxySettings {
        var s = ProxySettings()
        (s.inbound, s.app, s.profile, s.outbound, s.destinations) = (inbound, app, profile, outbound, destinations)
        (s.admin, s.tap, s.tapToken, s.adminToken, s.labels) = (admin, tap, tapToken, adminToken, labels)
        (s.tapRedact, s.tapMaxSubscribers, s.tapMaxConnections) = (tapRedact, tapMaxSubscribers, tapMaxConnections)
        (s.identityService, s.trustAnchor, s.identityTokenFile, s.identity) = (identityService, trustAnchor, identityTokenFile, identity)
        (s.connectTimeoutMs, s.maxConnections) = (connectTimeoutMs, maxConnections)
        (s.detectTimeoutMs, s.idleTimeoutMs, s.headerTimeoutMs) = (detectTimeoutMs, idleTimeoutMs, headerTimeoutMs)
        return s
    }

    func validate() throws {
        do { try ProxySettings.checkDrain(seconds: drainSeconds) } catch { throw ValidationError(error.description) }
        guard (1...64).contains(threads) else { throw ValidationError("--threads \(threads): expected 1 to 64") }
    }

    func run() async throws {
        let config: ProxyConfiguration
        do { config = try settings.configuration() } catch { throw ValidationError(error.description) }
        do {
            try await ProxyProcess.run(config, threads: threads, drainSeconds: drainSeconds, destinationsFile: destinations) { line in
                sayOnStderr("meshproxy: \(line)")
            }
        } catch {
            sayOnStderr("meshproxy: \(error)")
            Glibc.exit(3)
        }
    }
}

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity",
        abstract: "The mesh's certificate authority: a trust anchor and an issuer, as linkerd-identity has them.",
        subcommands: [IdentityInit.self, IdentityServe.self])
}

struct IdentityInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a trust anchor (ca.crt) and an issuer (issuer.crt) with their keys (0600) in --dir.",
        discussion: "`meshproxy identity serve --dir DIR` signs proxies' CSRs with this issuer; proxies trust this anchor (--trust-anchor DIR/ca.crt).")

    @Option(help: ArgumentHelp("Where to write ca.crt, ca.key, issuer.crt and issuer.key.", valueName: "DIR"))
    var dir: String
    @Option(help: "The trust domain in every identity name.") var trustDomain = "cluster.local"
    @Option(help: "Days the trust anchor is valid.") var anchorDays: Double = 365
    @Option(help: "Days the issuer is valid.") var issuerDays: Double = 180
    @Flag(help: "Replace an authority already in --dir.") var force = false

    func validate() throws {
        for (flag, days) in [("--anchor-days", anchorDays), ("--issuer-days", issuerDays)] where !(days.isFinite && days > 0 && days <= 36_500) {
            throw ValidationError("\(flag) \(days): expected more than 0 and at most 36500 (a hundred years)")
        }
        guard issuerDays <= anchorDays else { throw ValidationError("--issuer-days \(issuerDays) must be no longer than --anchor-days \(anchorDays)") }
    }

    func run() throws {
        if !force, FileManager.default.fileExists(atPath: dir + "/ca.crt") {
            throw ValidationError("\(dir) already holds an authority (ca.crt); --force replaces it, and every proxy then needs the new anchor")
        }
        do {
            let authority = try IdentityAuthority.create(trustDomain: trustDomain, anchorDays: anchorDays, issuerDays: issuerDays)
            try authority.write(to: dir)
            print("wrote \(dir)/ca.crt (trust anchor, \(Int(anchorDays)) days), issuer.crt (\(Int(issuerDays)) days); keys 0600")
        } catch {
            throw ValidationError(error.description)
        }
    }
}

struct IdentityServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "The identity service: holds the issuer's key and signs proxies' CSRs (POST /v1/certify), as linkerd-identity.",
        discussion: """
        A proxy proves its service account with that account's bootstrap token (--tokens: lines \
        NAMESPACE/SERVICEACCOUNT TOKEN) and gets a certificate for that account's identity only; \
        a request for another identity is refused (403) and counted in GET /metrics \
        (identity_certify_total{result="refused_foreign"}). Proxies never hold the issuer's key: \
        run them with --identity-service, --trust-anchor DIR/ca.crt and --identity-token-file.
        """)

    @Option(help: ArgumentHelp("The authority from `meshproxy identity init` (its issuer key stays here).", valueName: "DIR"))
    var dir: String
    @Option(help: ArgumentHelp("The tokens file: NAMESPACE/SERVICEACCOUNT TOKEN per line.", valueName: "FILE"))
    var tokens: String
    @Option(help: ArgumentHelp("Where to listen (loopback by default).", valueName: "host:port"))
    var listen = "127.0.0.1:8080"
    @Option(help: "How long each certificate is valid, in hours, up to 8760 and never past the issuer's own end (proxies renew at two thirds).")
    var certHours: Double = 24

    func validate() throws {
        guard certHours.isFinite, certHours > 0, certHours <= 8_760 else {
            throw ValidationError("--cert-hours \(certHours): expected more than 0 and at most 8760 (a year; Linkerd's default is 24)")
        }
    }

    func run() async throws {
        let service: IdentityService
        let address: HostPort
        do {
            let authority = try IdentityAuthority.load(from: dir)
            guard let text = try? String(contentsOfFile: tokens, encoding: .utf8) else { throw IdentityError("cannot read the tokens file \(tokens)") }
            service = IdentityService(authority: authority, tokens: try IdentityTokens.parse(text, file: tokens), certificateLifetime: certHours * 3600)
            guard let a = HostPort(listen) else { throw IdentityError("--listen \(listen): expected host:port") }
            address = a
        } catch {
            throw ValidationError("\(error)")
        }
        try await service.serve(address) { bound in
            sayOnStderr("meshproxy identity: signing CSRs on \(bound) (TLS as \(service.serviceName))")
        }
    }
}
