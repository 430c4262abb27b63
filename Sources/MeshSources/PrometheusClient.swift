import MeshMetrics
import Foundation
import PromText

/// One series of an instant query's answer.
public struct PromSample: Sendable {
    public var labels: [String: String]
    public var value: Double
}

/// Sends PromQL to a Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics)
/// and reads instant-vector answers.
public struct PrometheusClient: Sendable {
    public var baseURL: String
    public var timeoutSeconds: Double

    public init(baseURL: String, timeoutSeconds: Double = 10) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        if !url.contains("://") { url = "http://" + url }
        self.baseURL = url
        self.timeoutSeconds = timeoutSeconds
    }

    /// `GET /api/v1/query?query=…&time=…`: the vector the query gives at `atMs`.
    public func query(_ promql: String, atMs: Int64) throws(SourceError) -> [PromSample] {
        try queries([promql], atMs: atMs)[0].get()
    }

    /// Sends every query at once, each with its own timeout, and returns the answers in order:
    /// a round of queries takes as long as its slowest, not as long as all of them.
    public func queries(_ list: [String], atMs: Int64) -> [Result<[PromSample], SourceError>] {
        let time = PromTextWriter.seconds(atMs)
        let targets = list.map { ScrapeTarget(url: baseURL + "/api/v1/query?query=" + Self.encode($0) + "&time=" + time) }
        let results = Scraper(timeoutSeconds: timeoutSeconds).scrape(targets) { 0 }
        return zip(list, results).map { promql, result in
            Result { () throws(SourceError) in
                do throws(SourceError) {
                    return try decode(result, promql: promql)
                } catch {
                    throw SourceError("Prometheus at \(baseURL): \(error.description)")
                }
            }
        }
    }

    private func decode(_ result: ScrapeResult, promql: String) throws(SourceError) -> [PromSample] {
        guard let body = result.body else {
            let why = result.error ?? "no answer"
            if why.hasPrefix("timed out") { throw SourceError("no answer within \(Self.seconds(timeoutSeconds)) to \(promql)") }
            let url = result.target.url
            throw SourceError(why.replacingAll(" by " + url, "").replacingAll(" of " + url, "").replacingAll(" (" + url + ")", "").replacingAll(url, baseURL))
        }
        return try PrometheusAnswer.vector(body, promql: promql)
    }

    /// `2s`, `0.5s`.
    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s))s" : "\(s)s"
    }

    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
