/// Formats values and label sets the way Prometheus clients print them.
public enum PromTextWriter {
    /// A float as the exposition format prints it: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A label value with `\`, `"` and newlines escaped.
    public static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count + 4)
        for ch in value.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `{a="1",b="2"}`, or an empty string for no labels.
    public static func format(labels: [Label]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.name)=\"\(escape($0.value))\"" }.joined(separator: ",") + "}"
    }

    /// Milliseconds since the epoch as seconds with three decimals (`1700000000.250`), as
    /// OpenMetrics timestamps, Prometheus' API `time` and meshrec's `t` write them.
    public static func seconds(_ ms: Int64) -> String {
        let sign = ms < 0 ? "-" : ""
        let a = ms.magnitude
        let frac = a % 1000
        return sign + "\(a / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
    }

    /// One sample line, newline included.
    public static func line(_ sample: Sample) -> String {
        var s = sample.name + format(labels: sample.labels) + " " + format(sample.value)
        if let ts = sample.timestampMs { s += " \(ts)" }
        return s + "\n"
    }
}
