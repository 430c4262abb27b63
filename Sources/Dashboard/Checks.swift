import PromText
public import MeshSources

/// One check of `meshtop check`, as `linkerd check` shows it: √ passed, ‼ warning, × failed.
public struct CheckOutcome: Sendable, Equatable {
    public enum Status: String, Sendable { case ok, warning, error }
    public var category: String
    public var description: String
    public var status: Status
    /// What to do about it (for warnings and errors).
    public var hint: String?

    public init(_ category: String, _ description: String, _ status: Status, hint: String? = nil) {
        self.category = category
        self.description = description
        self.status = status
        self.hint = hint
    }
}

extension ProxyChecks {
    /// Each proxy's clock (its `Date` header) against this machine's at the middle of the scrape:
    /// certificates and windows go wrong when clocks disagree. Dates have whole seconds, so a
    /// second of difference is noise.
    static func clockSkew(_ results: [ScrapeResult], maxSeconds: Double) -> CheckOutcome {
        let cat = "meshtop-proxies"
        let skews = results.compactMap { r -> (String, Double)? in
            guard let date = r.serverDateMs else { return nil }
            let middle = Double(r.startedMs) + r.durationSeconds * 500
            // The header drops the fraction of a second: compare with the middle of that second.
            return (r.target.instance, (Double(date) + 500 - middle) / 1000)
        }
        guard !skews.isEmpty else {
            return CheckOutcome(cat, "proxy clocks: no proxy sent a Date header, skew not checked", results.contains { $0.body != nil } ? .warning : .ok,
                                hint: results.contains { $0.body != nil } ? "meshproxy's admin sends one; other servers may not" : nil)
        }
        let bad = skews.filter { abs($0.1) > maxSeconds }
        let largest = skews.map { abs($0.1) }.max() ?? 0
        let spread = (skews.map(\.1).max() ?? 0) - (skews.map(\.1).min() ?? 0)
        func seconds(_ v: Double) -> String { (v >= 0 ? "+" : "") + String(Int(v.rounded())) + "s" }
        if bad.isEmpty && spread <= maxSeconds {
            return CheckOutcome(cat, "proxy clocks agree with this machine and each other (within \(Int(max(1, largest.rounded())))s)", .ok)
        }
        let list = (bad.isEmpty ? skews : bad).sorted { abs($0.1) > abs($1.1) }.map { "\($0.0) \(seconds($0.1))" }.joined(separator: ", ")
        return CheckOutcome(cat, "proxy clocks are not skewed", .warning,
                            hint: "clocks differ by more than \(Int(maxSeconds))s: \(list) (relative to this machine) — run NTP on those hosts; skew breaks certificate validity and rate windows")
    }
}

/// The checks that need only scrapes: reachability, formats, versions, certificate expiry.
public enum ProxyChecks {
    /// Judges one round of scrapes taken at `nowMs`.
    public static func run(_ results: [ScrapeResult], nowMs: Int64, warnDays: Double = 60, maxSkewSeconds: Double = 5) -> [CheckOutcome] {
        let cat = "meshtop-proxies"
        var out: [CheckOutcome] = []
        let down = results.filter { $0.body == nil }
        out.append(down.isEmpty
            ? CheckOutcome(cat, "\(results.count) proxies are reachable", .ok)
            : CheckOutcome(cat, "\(results.count - down.count) of \(results.count) proxies are reachable", .error,
                           hint: down.map { $0.error ?? $0.target.url }.joined(separator: "; ") + " — is the proxy running, and its admin listener at that address?"))
        var parsed: [(ScrapeResult, Exposition)] = []
        var bad: [String] = []
        for r in results {
            guard let body = r.body else { continue }
            do { parsed.append((r, try PromTextParser.parse(body))) } catch { bad.append("\(r.target.url): line \(error.line), column \(error.column): \(error.message)") }
        }
        out.append(bad.isEmpty
            ? CheckOutcome(cat, "metrics parse", .ok)
            : CheckOutcome(cat, "metrics parse", .error, hint: bad.joined(separator: "; ")))
        let families = ["request_total", "response_total", "response_latency_ms_bucket"]
        let missing = parsed.filter { _, e in !families.allSatisfy { f in e.samples.contains { $0.name == f } } }.map { $0.0.target.url }
        out.append(missing.isEmpty
            ? CheckOutcome(cat, "proxies export Linkerd's HTTP metrics", .ok)
            : CheckOutcome(cat, "proxies export Linkerd's HTTP metrics", .warning,
                           hint: "no request_total/response_total/response_latency_ms yet at \(missing.joined(separator: ", ")) (no traffic, or not a Linkerd-shaped proxy)"))
        var versions: [String: [String]] = [:]
        for (r, e) in parsed {
            let s = e.samples.first { $0.name == "proxy_build_info" }
            let v = s.flatMap { $0[label: "git_version"] ?? $0[label: "version"] } ?? "unknown"
            versions[v, default: []].append(r.target.instance)
        }
        out.append(versions.count <= 1
            ? CheckOutcome(cat, "proxy versions are consistent (\(versions.keys.first ?? "none"))", .ok)
            : CheckOutcome(cat, "proxy versions are consistent", .warning,
                           hint: versions.map { "\($0.key): \($0.value.joined(separator: ", "))" }.sorted().joined(separator: "; ")))
        out.append(clockSkew(results, maxSeconds: maxSkewSeconds))
        // Identity: the certificate each proxy holds, by the expiry gauge (classic and newer names).
        let cert = "meshtop-identity"
        var expiring: [String] = []
        var expired: [String] = []
        var seen = 0
        for (r, e) in parsed {
            guard let s = e.samples.first(where: { $0.name == "identity_cert_expiration_timestamp_seconds" || $0.name == "control_identity_cert_expiration_timestamp_seconds" }) else { continue }
            seen += 1
            let daysLeft = (s.value * 1000 - Double(nowMs)) / 86_400_000
            if daysLeft <= 0 { expired.append("\(r.target.instance) (expired \(Int(-daysLeft)) days ago)") }
            else if daysLeft < warnDays { expiring.append("\(r.target.instance) (\(Int(daysLeft)) days left)") }
        }
        if seen == 0 {
            out.append(CheckOutcome(cert, "no proxy reports an identity certificate (mTLS is off)", .ok))
        } else if !expired.isEmpty {
            out.append(CheckOutcome(cert, "identity certificates are valid", .error, hint: "expired: \(expired.joined(separator: ", ")) — rotate the issuer and restart the proxies"))
        } else if !expiring.isEmpty {
            out.append(CheckOutcome(cert, "identity certificates are not expiring soon", .warning,
                                    hint: "expiring within \(Int(warnDays)) days: \(expiring.joined(separator: ", ")) — rotate before they expire"))
        } else {
            out.append(CheckOutcome(cert, "\(seen) identity certificates are valid for more than \(Int(warnDays)) days", .ok))
        }
        return out
    }

    /// `linkerd check`'s layout: categories underlined, √ / ‼ / × per check, hints indented.
    public static func text(_ outcomes: [CheckOutcome], unicode: Bool = true) -> String {
        var out = ""
        var category = ""
        for o in outcomes {
            if o.category != category {
                if !category.isEmpty { out += "\n" }
                category = o.category
                out += "\(category)\n\(String(repeating: "-", count: category.count))\n"
            }
            let mark: String
            switch o.status {
            case .ok: mark = unicode ? "√" : "ok"
            case .warning: mark = unicode ? "‼" : "!!"
            case .error: mark = unicode ? "×" : "XX"
            }
            out += "\(mark) \(o.description)\n"
            if let hint = o.hint, o.status != .ok { out += "    \(hint)\n" }
        }
        let errors = outcomes.filter { $0.status == .error }.count, warnings = outcomes.filter { $0.status == .warning }.count
        out += "\nStatus check results are " + (errors > 0 ? "\(unicode ? "×" : "XX") (\(errors) failed, \(warnings) warnings)" : (warnings > 0 ? "\(unicode ? "√" : "ok") with \(warnings) warnings" : (unicode ? "√" : "ok"))) + "\n"
        return out
    }

    public static func json(_ outcomes: [CheckOutcome]) -> String {
        let items = outcomes.map { o in
            "{\"category\":\(JSONText.string(o.category)),\"description\":\(JSONText.string(o.description)),\"result\":\(JSONText.string(o.status.rawValue))"
                + (o.hint.map { ",\"hint\":\(JSONText.string($0))" } ?? "") + "}"
        }
        let success = !outcomes.contains { $0.status == .error }
        return "{\"success\":\(success),\"checks\":[\n  " + items.joined(separator: ",\n  ") + "\n]}\n"
    }
}
