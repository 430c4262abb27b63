#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// Parses an optionally signed decimal integer that fits in Int64.
func parseInteger(_ token: UnsafeRawBufferPointer) -> Int64? {
    guard !token.isEmpty else { return nil }
    var i = 0
    var negative = false
    if token[0] == 0x2D || token[0] == 0x2B {
        negative = token[0] == 0x2D
        i = 1
    }
    guard i < token.count else { return nil }
    var value: Int64 = 0
    while i < token.count {
        let d = token[i] &- 0x30
        guard d <= 9 else { return nil }
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(Int64(d))
        if o1 || o2 { return nil }
        value = s
        i += 1
    }
    return negative ? -value : value
}

/// Parses a Prometheus float. Short decimals take an exact fast path (mantissa below 2^53 and a
/// power of ten that is itself exact); everything else goes through `strtod`, which rounds correctly.
func parseDouble(_ token: UnsafeRawBufferPointer) -> Double? {
    let n = token.count
    guard n > 0 else { return nil }
    var i = 0
    var negative = false
    if token[0] == 0x2D || token[0] == 0x2B {
        negative = token[0] == 0x2D
        i = 1
    }
    guard i < n else { return nil }
    let first = token[i] | 0x20
    if first == 0x6E || first == 0x69 {  // 'n' or 'i': NaN, Inf, +Inf, -Inf (any case)
        return special(token, from: i, negative: negative)
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var exponent = 0
    var sawDigit = false
    var sawDot = false
    while i < n {
        let b = token[i]
        let d = b &- 0x30
        if d <= 9 {
            sawDigit = true
            if digits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(d)
                if mantissa != 0 { digits += 1 }
                if sawDot { exponent -= 1 }
            } else {
                if !sawDot { exponent += 1 }
            }
            i += 1
        } else if b == 0x2E, !sawDot {
            sawDot = true
            i += 1
        } else {
            break
        }
    }
    guard sawDigit else { return nil }
    if i < n {
        guard token[i] | 0x20 == 0x65 else { return slow(token) }  // 'e'
        i += 1
        var expNegative = false
        if i < n, token[i] == 0x2D || token[i] == 0x2B {
            expNegative = token[i] == 0x2D
            i += 1
        }
        guard i < n else { return nil }
        var e = 0
        while i < n {
            let d = token[i] &- 0x30
            guard d <= 9 else { return nil }
            if e < 100_000 { e = e * 10 + Int(d) }
            i += 1
        }
        exponent += expNegative ? -e : e
    }
    if mantissa == 0 { return negative ? -0.0 : 0.0 }
    if mantissa < (1 << 53), digits < 19, exponent >= -22, exponent <= 22 {
        var v = Double(mantissa)
        v = exponent < 0 ? v / exactPowersOfTen[-exponent] : v * exactPowersOfTen[exponent]
        return negative ? -v : v
    }
    return slow(token)
}

private func special(_ token: UnsafeRawBufferPointer, from i: Int, negative: Bool) -> Double? {
    let rest = String(decoding: UnsafeRawBufferPointer(rebasing: token[i...]), as: UTF8.self).lowercased()
    switch rest {
    case "nan": return i == 0 ? Double.nan : nil
    case "inf", "infinity": return negative ? -Double.infinity : Double.infinity
    default: return nil
    }
}

private func slow(_ token: UnsafeRawBufferPointer) -> Double? {
    guard token.count < 128 else { return nil }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: token.count + 1) { buf -> Double? in
        for j in 0..<token.count {
            let b = token[j]
            // Only what a Prometheus float may contain; strtod would also accept hex and spaces.
            guard (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2B || b == 0x2D || b | 0x20 == 0x65 else { return nil }
            buf[j] = CChar(bitPattern: b)
        }
        buf[token.count] = 0
        var end: UnsafeMutablePointer<CChar>? = nil
        let v = strtod(buf.baseAddress!, &end)
        guard let end, end == buf.baseAddress! + token.count else { return nil }
        return v
    }
}
