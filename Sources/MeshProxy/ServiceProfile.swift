import YAMLTree
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX extended regular expression that must match a whole string. `@unchecked Sendable`:
/// the compiled pattern is never changed after `regcomp`, and `regexec` on it is thread-safe.
final class WholeMatchRegex: @unchecked Sendable {
    private var compiled = regex_t()

    init?(_ pattern: String) {
        guard regcomp(&compiled, "^(" + pattern + ")$", REG_EXTENDED | REG_NOSUB) == 0 else { return nil }
    }

    deinit { regfree(&compiled) }

    func matches(_ s: String) -> Bool {
        regexec(&compiled, s, 0, nil, 0) == 0
    }
}

/// A route of a service profile, as Linkerd's ServiceProfile declares it: a name, and a
/// condition on the method and the path (a regular expression the whole path, without its
/// query, must match).
public struct ProfileRoute: Sendable {
    public var name: String
    public var method: String?
    public var pathRegex: String
    let regex: WholeMatchRegex

    public init(name: String, method: String? = nil, pathRegex: String) throws(ConfigError) {
        self.name = name
        self.method = method?.uppercased()
        self.pathRegex = pathRegex
        guard let regex = WholeMatchRegex(pathRegex) else {
            throw ConfigError("route \(name): pathRegex \(pathRegex) is not a (POSIX extended) regular expression")
        }
        self.regex = regex
    }

    func matches(method: String, path: String) -> Bool {
        if let m = self.method, m != method { return false }
        return regex.matches(path)
    }
}

/// The inbound routes of a service: requests are counted per route in Linkerd's `route_*`
/// families (labels `dst` and `rt_route`); a request no route matches is counted without
/// `rt_route`, which linkerd viz routes shows as `[DEFAULT]`.
///
/// ```yaml
/// authority: web-svc.emojivoto.svc.cluster.local:8080
/// routes:
///   - name: GET /api/list
///     condition: {method: GET, pathRegex: /api/list}
///   - name: GET /api/vote
///     condition: {method: GET, pathRegex: /api/vote}
/// ```
public struct ServiceProfile: Sendable {
    public var authority: String
    public var routes: [ProfileRoute]

    public init(authority: String, routes: [ProfileRoute]) {
        self.authority = authority
        self.routes = routes
    }

    public static func parse(yaml text: String, file: String = "profile") throws(ConfigError) -> ServiceProfile {
        let root: Any?
        do { root = try YAMLTree.load(text) } catch { throw ConfigError("\(file): not valid YAML: \(error)") }
        guard let map = root as? [String: Any], let authority = map["authority"] as? String else {
            throw ConfigError("\(file): needs 'authority: host:port' (the service's name, the routes' dst label)")
        }
        var routes: [ProfileRoute] = []
        for (i, item) in ((map["routes"] as? [Any]) ?? []).enumerated() {
            guard let r = item as? [String: Any], let name = r["name"] as? String else {
                throw ConfigError("\(file): routes[\(i)] needs a 'name'")
            }
            let condition = (r["condition"] as? [String: Any]) ?? [:]
            guard let regex = condition["pathRegex"] as? String else {
                throw ConfigError("\(file): routes[\(i)] (\(name)) needs 'condition: {pathRegex: …}'")
            }
            routes.append(try ProfileRoute(name: name, method: condition["method"] as? String, pathRegex: regex))
        }
        return ServiceProfile(authority: authority, routes: routes)
    }
}
