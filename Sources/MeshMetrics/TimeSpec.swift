#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Parses the moments `--at` and `:goto` take, relative to a recording's span:
/// `-5m` (before its end), `+30s` (after its start), `21:30:05` or `21:30` (UTC, on the day it
/// started), `2026-11-25T21:30:05Z` (RFC 3339), or unix seconds.
public enum TimeSpec {
    public static func milliseconds(_ text: String, startMs: Int64, endMs: Int64) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t == "end" { return endMs }
        if t == "start" { return startMs }
        if t.hasPrefix("-"), let d = DurationText.milliseconds(String(t.dropFirst())) { return endMs - d }
        if t.hasPrefix("+"), let d = DurationText.milliseconds(String(t.dropFirst())) { return startMs + d }
        if let seconds = Double(t), seconds > 100_000_000 { return unixMilliseconds(seconds) }
        if t.contains("T") { return rfc3339(t) }
        let parts = t.split(separator: ":").map { Double($0) }
        if (2...3).contains(parts.count), parts.allSatisfy({ $0 != nil }) {
            let h = parts[0]!, m = parts[1]!, s = parts.count == 3 ? parts[2]! : 0
            guard h < 24, m < 60, s < 61 else { return nil }
            let dayStart = startMs - startMs % 86_400_000
            var at = dayStart + Int64(((h * 3600 + m * 60 + s) * 1000).rounded())
            if at < startMs - 60_000 { at += 86_400_000 }  // past midnight
            return at
        }
        return nil
    }

    static func rfc3339(_ text: String) -> Int64? {
        // YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)
        let chars = Array(text.utf8)
        func num(_ a: Int, _ b: Int) -> Int? {
            guard b <= chars.count else { return nil }
            return Int(String(decoding: chars[a..<b], as: UTF8.self))
        }
        guard chars.count >= 20, let year = num(0, 4), let month = num(5, 7), let day = num(8, 10),
              let hour = num(11, 13), let minute = num(14, 16), let second = num(17, 19) else { return nil }
        var i = 19
        var fraction = 0.0
        if i < chars.count, chars[i] == UInt8(ascii: ".") {
            let start = i
            i += 1
            while i < chars.count, chars[i] >= 0x30, chars[i] <= 0x39 { i += 1 }
            fraction = Double(String(decoding: chars[start..<i], as: UTF8.self)) ?? 0
        }
        var offset = 0
        if i < chars.count, chars[i] == UInt8(ascii: "+") || chars[i] == UInt8(ascii: "-") {
            guard let oh = num(i + 1, i + 3), let om = num(i + 4, i + 6) else { return nil }
            offset = (oh * 3600 + om * 60) * (chars[i] == UInt8(ascii: "-") ? -1 : 1)
        } else if !(i < chars.count && (chars[i] == UInt8(ascii: "Z") || chars[i] == UInt8(ascii: "z"))) {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = Int64(timegm(&parts)) - Int64(offset)
        return seconds * 1000 + Int64((fraction * 1000).rounded())
    }

    /// `2026-11-25T21:30:05.250Z`.
    public static func format(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func p(_ n: Int32, _ w: Int = 2) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let frac = ms % 1000
        return "\(p(parts.tm_year + 1900, 4))-\(p(parts.tm_mon + 1))-\(p(parts.tm_mday))T\(p(parts.tm_hour)):\(p(parts.tm_min)):\(p(parts.tm_sec))"
            + (frac == 0 ? "" : "." + p(Int32(frac), 3)) + "Z"
    }
}
