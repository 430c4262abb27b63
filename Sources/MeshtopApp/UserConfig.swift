import MeshMetrics
import Yams
import Foundation

/// `~/.config/meshtop/config.yaml`: the sources and display a user wants without typing flags.
/// Every field is optional; flags given on the command line win over it.
///
/// ```yaml
/// scrape:                 # proxies' metrics URLs, with labels after ';'
///   - "http://10.0.0.5:4191/metrics;namespace=emojivoto,deployment=web"
/// targets: /etc/meshtop/targets.yaml    # or a Prometheus file_sd file
/// prometheus: http://prometheus.linkerd-viz:9090
/// tap: ["127.0.0.1:4190"]
/// theme: okabe-ito
/// refresh: 2s
/// window: 5m
/// slos:                   # success objectives `meshtop slo` checks when no --objective is given
///   - {workload: deploy/voting, namespace: emojivoto, objective: 99.9}
///   - {workload: deploy/web, objective: "99.5%"}    # every namespace's web
/// ```
public struct UserConfig: Sendable, Equatable {
    public var scrape: [String] = []
    public var targets: String?
    public var prometheus: String?
    public var tap: [String] = []
    public var theme: String?
    public var refreshMs: Int64?
    public var windowMs: Int64?
    public var slos: [SLODeclaration] = []
    /// Where it was read from (nil: no file).
    public var path: String?

    public init() {}

    /// Where meshtop looks: `$MESHTOP_CONFIG`, else `$XDG_CONFIG_HOME/meshtop/config.yaml`, else
    /// `~/.config/meshtop/config.yaml`.
    public static func defaultPath(environment: [String: String]? = nil) -> String {
        let environment = environment ?? ProcessInfo.processInfo.environment
        if let explicit = environment["MESHTOP_CONFIG"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/meshtop/config.yaml" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/meshtop/config.yaml"
    }

    /// The file at `path`, or an empty config when there is none; a file that exists but is wrong
    /// is an error naming the line.
    public static func load(path: String) throws(ConfigError) -> UserConfig {
        guard FileManager.default.fileExists(atPath: path) else { return UserConfig() }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigError("\(path): cannot be read") }
        var config = try parse(text, file: path)
        config.path = path
        return config
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> UserConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw ConfigError("\(file): not valid YAML: \(e)")
        } catch {
            throw ConfigError("\(file): not valid YAML: \(error)")
        }
        var config = UserConfig()
        guard let root else { return config }
        guard let map = root.mapping else { throw ConfigError("\(file):\(root.mark?.line ?? 1): expected keys (scrape, targets, prometheus, tap, theme, refresh, window, slos)") }
        for (keyNode, value) in map {
            let key = keyNode.string ?? ""
            let at = "\(file):\(keyNode.mark?.line ?? 0)"
            func string() throws(ConfigError) -> String {
                guard let s = value.scalar?.string, !s.isEmpty else { throw ConfigError("\(at): \(key) needs a value") }
                return s
            }
            func strings() throws(ConfigError) -> [String] {
                if let s = value.scalar?.string { return [s] }
                guard let seq = value.sequence else { throw ConfigError("\(at): \(key) needs a list") }
                var out: [String] = []
                for item in seq {
                    guard let s = item.scalar?.string else { throw ConfigError("\(file):\(item.mark?.line ?? 0): \(key) entries must be strings") }
                    out.append(s)
                }
                return out
            }
            func duration() throws(ConfigError) -> Int64 {
                let s = try string()
                guard let ms = DurationText.milliseconds(s), ms > 0 else { throw ConfigError("\(at): \(key): \"\(s)\" is not a duration (try 2s, 1m)") }
                return ms
            }
            switch key {
            case "scrape": config.scrape = try strings()
            case "targets": config.targets = try string()
            case "prometheus": config.prometheus = try string()
            case "tap": config.tap = try strings()
            case "theme": config.theme = try string()
            case "refresh": config.refreshMs = try duration()
            case "window": config.windowMs = try duration()
            case "slos":
                guard let seq = value.sequence else { throw ConfigError("\(at): slos needs a list of {workload, namespace, objective}") }
                config.slos = try seq.map { item throws(ConfigError) in try SLODeclaration(item, file: file) }
            default:
                throw ConfigError("\(at): unknown key \"\(key)\" (known: scrape, targets, prometheus, tap, theme, refresh, window, slos)")
            }
        }
        return config
    }
}

/// A success objective declared in the config file: `{workload: deploy/voting, namespace: emojivoto, objective: 99.9}`.
public struct SLODeclaration: Sendable, Equatable {
    /// The kind as written (`deploy`), and the name.
    public var kind: String
    public var name: String
    /// nil: the workload of that name in every namespace.
    public var namespace: String?
    /// The objective as a percentage, strictly between 0 and 100.
    public var percent: Double

    public init(kind: String, name: String, namespace: String?, percent: Double) {
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.percent = percent
    }

    init(_ node: Node, file: String) throws(ConfigError) {
        let at = "\(file):\(node.mark?.line ?? 0)"
        guard let map = node.mapping else { throw ConfigError("\(at): an slo is {workload: deploy/NAME, namespace: NS, objective: 99.9}") }
        var fields: [String: String] = [:]
        for (k, v) in map {
            let key = k.string ?? ""
            guard ["workload", "namespace", "objective"].contains(key) else {
                throw ConfigError("\(file):\(k.mark?.line ?? 0): unknown slo key \"\(key)\" (known: workload, namespace, objective)")
            }
            guard let text = v.scalar?.string, !text.isEmpty else { throw ConfigError("\(file):\(k.mark?.line ?? 0): slo \(key) needs a value") }
            fields[key] = text
        }
        guard let workload = fields["workload"] else { throw ConfigError("\(at): an slo needs workload: deploy/NAME") }
        let parts = workload.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { throw ConfigError("\(at): slo workload \"\(workload)\": write it KIND/NAME, e.g. deploy/voting") }
        guard let text = fields["objective"] else { throw ConfigError("\(at): slo \(workload) needs objective: a percentage such as 99.9") }
        var digits = Substring(text)
        if digits.hasSuffix("%") { digits = digits.dropLast() }
        guard let p = Double(digits), p.isFinite, p > 0, p < 100 else {
            throw ConfigError("\(at): slo \(workload) objective \"\(text)\": a percentage between 0 and 100, e.g. 99.9")
        }
        self.init(kind: String(parts[0]), name: String(parts[1]), namespace: fields["namespace"], percent: p)
    }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
