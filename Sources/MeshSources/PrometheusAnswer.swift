import Foundation

/// Prometheus's HTTP API answers, read (the JSON of `/api/v1/query`). Everything in them comes from
/// outside: a value is a number, NaN or ±Inf as text, and anything else is a clear error naming
/// the query, never a trap.
public enum PrometheusAnswer {
    /// The samples of an instant vector answering `promql`; an error answer says why.
    public static func vector(_ body: [UInt8], promql: String) throws(SourceError) -> [PromSample] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw SourceError("it answered something that is not JSON (is it a Prometheus API?)")
        }
        guard object["status"] as? String == "success", let data = object["data"] as? [String: Any] else {
            throw SourceError("it refused the query: \(object["error"] as? String ?? "unknown error") (\(promql))")
        }
        guard data["resultType"] as? String == "vector", let items = data["result"] as? [[String: Any]] else {
            throw SourceError("expected a vector for \(promql)")
        }
        return items.compactMap { item in
            guard let metric = item["metric"] as? [String: String], let pair = item["value"] as? [Any], pair.count == 2,
                  let text = pair[1] as? String else { return nil }
            let value: Double
            switch text {
            case "NaN": value = .nan
            case "+Inf": value = .infinity
            case "-Inf": value = -.infinity
            default:
                guard let v = Double(text) else { return nil }
                value = v
            }
            return PromSample(labels: metric, value: value)
        }
    }

    /// A number of pods from an answer: a whole number from 0 up, else a bad answer naming the
    /// query (a NaN or an infinity from a misbehaving server must not trap a conversion).
    public static func podCount(_ value: Double, query: String) throws(SourceError) -> Int {
        guard value.isFinite, value >= 0, value < 1e12, value == value.rounded() else {
            let shown = value.isNaN ? "NaN" : value.isInfinite ? (value > 0 ? "+Inf" : "-Inf") : "\(value)"
            throw SourceError("Prometheus answered \(shown) for \(query): not a number of pods", badAnswer: true)
        }
        return Int(value)
    }
}
