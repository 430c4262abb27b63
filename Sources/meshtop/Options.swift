import MeshtopApp
import LinkerdViz
import ArgumentParser
import Foundation
import Dashboard
import MeshSources
import MeshMetrics

/// Where metrics come from: proxies scraped directly.
struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("scrape"), help: ArgumentHelp(
        "A proxy's metrics URL, with the target's labels after ';' (repeatable).",
        discussion: "e.g. --scrape 'http://127.0.0.1:4191/metrics;namespace=emojivoto,deployment=web'",
        valueName: "URL[;name=value,…]"))
    var scrapeFlag: [String] = []

    @Option(name: .customLong("targets"), help: ArgumentHelp(
        "A Prometheus file_sd file (JSON or YAML) listing proxies and their labels.", valueName: "FILE"))
    var targetsFlag: String?

    @Option(help: ArgumentHelp("Read a meshrec recording instead of scraping.", valueName: "FILE"))
    var replay: String?

    @Option(name: .customLong("prometheus"), help: ArgumentHelp("Ask a Prometheus-compatible server that scrapes the proxies (linkerd viz's PromQL).", valueName: "URL"))
    var prometheusFlag: String?

    /// No source on the command line: the config file's sources apply (its proxies before its Prometheus).
    private var fromConfig: Bool { scrapeFlag.isEmpty && targetsFlag == nil && prometheusFlag == nil && replay == nil }
    private var configScrapes: Bool { !userConfig.scrape.isEmpty || userConfig.targets != nil }

    var scrape: [String] { fromConfig ? userConfig.scrape : scrapeFlag }
    var targetsFile: String? { fromConfig ? userConfig.targets : targetsFlag }
    var prometheus: String? { fromConfig ? (configScrapes ? nil : userConfig.prometheus) : prometheusFlag }

    // `.unconditional`: `-5m` is a value here, not an option (as the README writes it).
    @Option(parsing: .unconditional, help: ArgumentHelp("With --replay: the moment to report (-5m, +30s, 21:30:05, RFC 3339, unix seconds; default: the last event).", valueName: "TIME"))
    var at: String?

    /// The targets given; without `includingFile`, only the --scrape ones (a follower reads the file).
    func targets(includingFile: Bool = true) throws -> [ScrapeTarget] {
        var out: [ScrapeTarget] = []
        do {
            for argument in scrape { out.append(try TargetsFile.parseScrapeArgument(argument)) }
            if includingFile, let file = targetsFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw Exit.input("cannot read the targets file \(file)")
                }
                out += try TargetsFile.parse(text, file: file)
            }
        } catch let e as SourceError {
            throw Exit.input(e.description)
        }
        guard !out.isEmpty || (!includingFile && targetsFile != nil) else {
            throw Exit.input("no sources: give --scrape URL or --targets FILE, or list them in \(UserConfig.defaultPath()) (or try `meshtop demo`)")
        }
        return out
    }
}

/// `-t/--time-window`, as linkerd viz takes it.
struct WindowOption: ParsableArguments {
    @Option(name: [.customShort("t"), .customLong("time-window")], help: "The window metrics are computed over (e.g. 10s, 1m, 5m; default: the config's window, else 1m).")
    var timeWindow: String?

    var milliseconds: Int64 {
        get throws {
            guard let timeWindow else { return userConfig.windowMs ?? 60_000 }
            guard let ms = DurationText.milliseconds(timeWindow), ms > 0 else {
                throw Exit.input("-t \(timeWindow): not a duration (try 10s, 1m or 5m)")
            }
            return ms
        }
    }
}

extension SourceOptions {
    /// The moment a Prometheus server is asked about: `--at` against now (default: now).
    func prometheusAtMs() throws -> Int64 {
        let now = WallClock().nowMs()
        guard let at else { return now }
        guard let t = TimeSpec.milliseconds(at, startMs: now, endMs: now) else {
            throw Exit.input("--at \(at): not a time (try -5m, 2026-11-25T21:30:05Z or unix seconds)")
        }
        return t
    }

    /// A Prometheus server, a recording up to `--at`, or the live targets scraped twice `sampleMs` apart.
    /// `windowMs`: the longest window the command will ask for (a recording is held that far back).
    func source(sampleMs: Int64, windowMs: Int64 = 0) throws -> any OneShotSource {
        if let url = prometheus {
            guard scrape.isEmpty, targetsFile == nil, replay == nil else {
                throw Exit.input("--prometheus asks a server: leave out --scrape, --targets and --replay")
            }
            return PrometheusAt(source: PrometheusSource(client: PrometheusClient(baseURL: url)), atMs: try prometheusAtMs())
        }
        if let path = replay {
            guard scrape.isEmpty, targetsFile == nil else { throw Exit.input("--replay reads a recording: leave out --scrape and --targets") }
            return try ScrapedAt.replay(path: path, at: at, windowMs: windowMs) { warn("meshtop: \($0)") }
        }
        guard at == nil else { throw Exit.input("--at goes with --replay or --prometheus") }
        return try ScrapedAt.live(targets: try targets(), sampleMs: sampleMs) { warn("meshtop: \($0)") }
    }
}

/// What every one-shot query (`stat`, `edges`, `routes`, `slo`) takes: namespace, output format
/// and sources.
struct QueryOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Only this namespace (all namespaces by default).")
    var namespace: String?

    @Option(name: .shortAndLong, help: "Output format: table, wide or json.")
    var output = "table"

    @Option(help: "Time between the two scrapes a live command takes.")
    var sample = "2s"

    @OptionGroup var sources: SourceOptions

    var format: OutputFormat {
        get throws {
            guard let f = OutputFormat(rawValue: output) else { throw Exit.input("-o \(output): use table, wide or json") }
            return f
        }
    }

    /// The source to ask, holding `windowMs` of a recording.
    func source(windowMs: Int64) throws -> any OneShotSource {
        try sources.source(sampleMs: try parseDuration(sample, flag: "--sample"), windowMs: windowMs)
    }
}

/// What `stat`, `edges` and `routes` share: the query options and one window.
struct OneShotOptions: ParsableArguments {
    @OptionGroup var query: QueryOptions
    @OptionGroup var window: WindowOption

    var namespace: String? { query.namespace }
    var format: OutputFormat { get throws { try query.format } }

    /// The source to ask, and the window, checked.
    func resolve() throws -> (source: any OneShotSource, windowMs: Int64) {
        let windowMs = try window.milliseconds
        let source = try query.source(windowMs: windowMs)
        if window.timeWindow != nil, let scraped = source as? ScrapedAt, let note = scraped.shortWindowNote(windowMs) {
            warn("meshtop: \(note)")
        }
        return (source, windowMs)
    }
}

/// What the full-screen commands share: colours and scripted runs.
struct DisplayOptions: ParsableArguments {
    @Flag(help: "Monochrome: no colours (also when NO_COLOR is set).")
    var noColor = false

    @Option(help: ArgumentHelp("Colours: default-dark, light, tty16, okabe-ito (colour-blind safe), monochrome, or a YAML file (default: the config's theme, else default-dark).", valueName: "NAME|PATH"))
    var theme: String?

    /// How often the dashboard refreshes (the config's `refresh`, else 1 s).
    var refreshMs: Int { Int(userConfig.refreshMs ?? 1000) }

    @Option(help: "Stop after drawing this many frames (for scripted runs).")
    var maxFrames: Int?

    /// The display as the app takes it.
    var settings: DisplaySettings {
        DisplaySettings(noColor: noColor, theme: theme ?? userConfig.theme ?? "default-dark", refreshMs: refreshMs, maxFrames: maxFrames,
                        slos: userConfig.slos)
    }
}

/// The user's config file (see `UserConfig`), read once at start, before arguments are parsed.
/// Read once, on first use (before arguments are parsed, as `main` checks it first); a file that
/// does not parse is `main`'s input error, and the defaults apply meanwhile.
let loadedConfig = Result { () throws(ConfigError) in try UserConfig.load(path: UserConfig.defaultPath()) }
var userConfig: UserConfig { (try? loadedConfig.get()) ?? UserConfig() }
