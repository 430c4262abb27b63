public import MeshMetrics
import MeshTap
import PromText

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
    /// mTLS: each proxy's own certificate (short-lived and rotated: it must not be expired or
    /// overdue for renewal), the trust anchor and issuer behind it (warn `warnDays` ahead), that all
    /// proxies trust one anchor, and failed handshakes.
    static func identityChecks(_ proxies: [(instance: String, metrics: Exposition)], nowMs: Int64, warnDays: Double) -> [CheckOutcome] {
        let cat = "meshtop-identity"
        var out: [CheckOutcome] = []
        func value(_ e: Exposition, _ names: String...) -> Double? { e.samples.first { names.contains($0.name) }?.value }
        func left(_ seconds: Double) -> Double { (seconds * 1000 - Double(nowMs)) / 1000 }
        func duration(_ s: Double) -> String {
            let a = abs(s)
            return a >= 86_400 ? "\(Int(a / 86_400)) days" : (a >= 3600 ? "\(Int(a / 3600)) hours" : "\(Int(a / 60)) minutes")
        }
        // Identity services among the targets (`meshproxy identity serve`'s /metrics): what they
        // signed, and CSRs refused for another service account's identity.
        for (instance, e) in proxies where e.samples.contains(where: { $0.name == "identity_certify_total" }) {
            func certified(_ result: String) -> Int {
                Int(e.samples.first { $0.name == "identity_certify_total" && $0.labels.contains(Label("result", result)) }?.value ?? 0)
            }
            let foreign = certified("refused_foreign"), badToken = certified("refused_token")
            if foreign + badToken > 0 {
                out.append(CheckOutcome(cat, "the identity service at \(instance) signs only what each service account may have", .warning,
                                        hint: "it refused \(foreign) CSR(s) for another account's identity and \(badToken) with an unknown token: "
                                            + "a proxy with the wrong token file, or a workload asking for an identity not its own"))
            } else {
                out.append(CheckOutcome(cat, "the identity service at \(instance) signed \(certified("issued")) certificate(s), refused none", .ok))
            }
        }
        // The proxies' own certificates.
        var expired: [String] = [], overdue: [String] = [], soonest: Double?
        var seen = 0
        for (instance, e) in proxies {
            guard let t = value(e, "identity_cert_expiration_timestamp_seconds", "control_identity_cert_expiration_timestamp_seconds") else { continue }
            seen += 1
            let l = left(t)
            soonest = min(soonest ?? l, l)
            if l <= 0 { expired.append("\(instance) (expired \(duration(l)) ago)") }
            else if l < 3600 { overdue.append("\(instance) (\(duration(l)) left)") }
        }
        if seen == 0 {
            out.append(CheckOutcome(cat, "no proxy reports an identity certificate (mTLS is off)", .ok))
            return out
        }
        if !expired.isEmpty {
            out.append(CheckOutcome(cat, "proxy identity certificates are valid", .error,
                                    hint: "expired: \(expired.joined(separator: ", ")) — the proxy could not renew it: is its issuer valid and reachable? Restart it"))
        } else if !overdue.isEmpty {
            out.append(CheckOutcome(cat, "proxy identity certificates are being renewed", .warning,
                                    hint: "under an hour left, so renewal is overdue: \(overdue.joined(separator: ", "))"))
        } else {
            out.append(CheckOutcome(cat, "\(seen) proxy identity certificates are valid (renewed automatically; the soonest expires in \(duration(soonest ?? 0)))", .ok))
        }
        // The trust anchor and the issuer: long-lived, replaced by hand, so warned about early.
        for (name, gauge, fix) in [("trust anchor", "meshproxy_trust_anchor_expiration_timestamp_seconds", "create a new anchor, distribute it beside the old one, then reissue"),
                                   ("issuer certificate", "meshproxy_issuer_expiration_timestamp_seconds", "issue a new issuer from the trust anchor and restart the proxies")] {
            let times = proxies.compactMap { p in value(p.metrics, gauge).map { (p.instance, left($0)) } }
            guard let worst = times.min(by: { $0.1 < $1.1 }) else { continue }
            if worst.1 <= 0 {
                out.append(CheckOutcome(cat, "the \(name) is valid", .error, hint: "it expired \(duration(worst.1)) ago (\(worst.0)) — \(fix)"))
            } else if worst.1 < warnDays * 86_400 {
                out.append(CheckOutcome(cat, "the \(name) is not expiring soon", .warning,
                                        hint: "it expires in \(duration(worst.1)), within \(Int(warnDays)) days (\(worst.0)) — \(fix)"))
            } else {
                out.append(CheckOutcome(cat, "the \(name) is valid for \(duration(worst.1))", .ok))
            }
        }
        // One trust anchor for everyone.
        var anchors: [String: [String]] = [:]
        for (instance, e) in proxies {
            for s in e.samples where s.name == "meshproxy_identity_info" {
                if let a = s[label: "trust_anchor_sha256"] { anchors[a, default: []].append(instance) }
            }
        }
        if anchors.count > 1 {
            out.append(CheckOutcome(cat, "proxies trust the same trust anchor", .error,
                                    hint: anchors.sorted { $0.key < $1.key }.map { "anchor \($0.key.prefix(12))…: \($0.value.joined(separator: ", "))" }.joined(separator: "; ")
                                        + " — proxies with different anchors refuse each other's mTLS"))
        } else if let only = anchors.first {
            out.append(CheckOutcome(cat, "\(only.value.count) proxies trust the same trust anchor (\(only.key.prefix(12))…)", .ok))
        }
        // Handshakes that failed, by proxy.
        var failures: [String] = []
        for (instance, e) in proxies {
            for s in e.samples where s.name == "meshproxy_tls_handshake_errors_total" && s.value > 0 {
                let peer = s[label: "peer_id"].flatMap { $0.isEmpty ? nil : $0 }
                failures.append("\(instance) \(s[label: "direction"] ?? "?")\(peer.map { " to \($0)" } ?? ""): \(Int(s.value))")
            }
        }
        if !failures.isEmpty {
            out.append(CheckOutcome(cat, "mTLS handshakes succeed", .warning,
                                    hint: "failed handshakes: \(failures.joined(separator: "; ")) — a peer with another trust anchor, or not the identity expected"))
        }
        return out
    }

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
        // As linkerd check: what depends on a failed check is not run, so nothing reads as
        // passed that was never looked at.
        if parsed.isEmpty && bad.isEmpty { return out }
        let of = down.isEmpty ? "" : " (\(results.count - down.count) of \(results.count) proxies answered)"
        out.append(bad.isEmpty
            ? CheckOutcome(cat, "metrics parse" + of, .ok)
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
        out += identityChecks(parsed.map { ($0.0.target.instance, $0.1) }, nowMs: nowMs, warnDays: warnDays)
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

extension ProxyChecks {
    /// A tap listener's check: it took a subscriber, or `problem` says why not.
    public static func tapListener(_ address: String, problem: String?) -> CheckOutcome {
        let description = "tap listener \(address) accepts subscribers"
        guard let problem else { return CheckOutcome("meshtop-tap", description, .ok) }
        return CheckOutcome("meshtop-tap", description, .error, hint: "\(problem) — start meshproxy with --tap \(address)")
    }

    /// A Prometheus server's checks from what it answered: how many targets it scrapes and how
    /// many proxy series (`request_total`) it holds, or why it did not answer.
    public static func prometheus(_ baseURL: String, answer: Result<(targets: Int, proxySeries: Int), PrometheusUnanswered>) -> [CheckOutcome] {
        switch answer {
        case .failure(let e):
            return [CheckOutcome("meshtop-prometheus", "Prometheus answers", .error, hint: e.description)]
        case .success(let a):
            return [
                CheckOutcome("meshtop-prometheus", "Prometheus at \(baseURL) answers (\(a.targets) targets)", .ok),
                a.proxySeries == 0
                    ? CheckOutcome("meshtop-prometheus", "Prometheus has proxy metrics", .warning, hint: "no request_total series: is it scraping the proxies' admin ports?")
                    : CheckOutcome("meshtop-prometheus", "Prometheus has proxy metrics", .ok),
            ]
        }
    }
}

/// Why a Prometheus server gave no answer, in words.
public struct PrometheusUnanswered: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
