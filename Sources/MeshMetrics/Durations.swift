/// Parses durations as linkerd and Prometheus write them: `500ms`, `10s`, `1m`, `1h30m`, `2d`.
public enum DurationText {
    public static func milliseconds(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let n = Double(number), n >= 0 else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 1
            case "s", "": scale = 1000
            case "m": scale = 60_000
            case "h": scale = 3_600_000
            case "d": scale = 86_400_000
            default: return false
            }
            // Beyond about 30,000 years it is not a duration (and would overflow).
            guard n * scale < 1e15, total < 1_000_000_000_000_000 else { return false }
            total += Int64(n * scale)
            number = ""
            unit = ""
            sawAny = true
            return true
        }
        for ch in text {
            if ch.isNumber || ch == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(ch)
            } else {
                return nil
            }
        }
        if !number.isEmpty { guard flush() else { return nil } }
        return sawAny ? total : nil
    }

    /// `1m`, `10s`, `1m30s`, `500ms`: the shortest way to write a window.
    /// Windows under a minute that are not whole seconds round to the nearest second.
    public static func format(_ ms: Int64) -> String {
        if ms < 1000 { return "\(ms)ms" }
        var s = ms % 1000 == 0 || ms >= 60_000 ? ms / 1000 : (ms + 500) / 1000
        var out = ""
        if s >= 3600 { out += "\(s / 3600)h"; s %= 3600 }
        if s >= 60 { out += "\(s / 60)m"; s %= 60 }
        if s > 0 || out.isEmpty { out += "\(s)s" }
        return out
    }
}
