/// The sample lines of an exposition, each read as the hash of its series text (the name and
/// labels exactly as written) and its value, without parsing the labels.
///
/// A proxy sends the same series in the same order scrape after scrape. Once a scrape has been
/// parsed (and so validated) in full, the next one can be matched line by line against it: a line
/// whose series text hashes the same is the same, already validated series, and only its value
/// needs reading. This is what Prometheus' scrape cache does; it turns most of a scrape's cost,
/// the labels, into one hash per line.
public enum SeriesLines {
    /// Calls `line` with each sample line's series hash and value, in order, until it returns
    /// false. Returns false when a line cannot be read this simply (an exemplar, a value that is
    /// not a number, no value at all), or `line` stopped: the caller then parses the exposition in
    /// full, which says what is wrong, if anything. Comment lines are skipped; `# EOF` ends.
    public static func scan(_ bytes: UnsafeRawBufferPointer, _ line: (_ hash: UInt64, _ value: Double) -> Bool) -> Bool {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return true }
        let count = bytes.count
        var i = 0
        while i < count {
            var end = i
            while end < count, base[end] != 0x0A { end += 1 }
            let next = end + 1
            while i < end, base[i] == 0x20 || base[i] == 0x09 { i += 1 }
            while end > i, base[end - 1] == 0x20 || base[end - 1] == 0x09 || base[end - 1] == 0x0D { end -= 1 }
            defer { i = next }
            if i == end { continue }
            if base[i] == 0x23 {  // '#'
                if end - i == 5, base[i + 1] == 0x20, base[i + 2] == 0x45, base[i + 3] == 0x4F, base[i + 4] == 0x46 { return true }  // "# EOF"
                continue
            }
            guard let (seriesEnd, value) = split(base, from: i, to: end) else { return false }
            guard line(hash(base + i, seriesEnd - i), value) else { return false }
        }
        return true
    }

    /// Every sample line's series hash, in order; nil when a line cannot be read simply.
    public static func hashes(_ bytes: [UInt8]) -> [UInt64]? {
        var out: [UInt64] = []
        out.reserveCapacity(bytes.count / 100)
        let ok = bytes.withUnsafeBytes { buffer in
            scan(buffer) { h, _ in
                out.append(h)
                return true
            }
        }
        return ok ? out : nil
    }

    /// Where the series text of the line [start, end) ends, and its value. The series text ends
    /// at the line's last `}` when it has labels (values, timestamps and blanks never hold one),
    /// else with the name; after it: blanks, the value, and optionally blanks and a timestamp.
    private static func split(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) -> (Int, Double)? {
        var seriesEnd = start
        while seriesEnd < end, p[seriesEnd] != 0x20, p[seriesEnd] != 0x09, p[seriesEnd] != 0x7B { seriesEnd += 1 }  // name
        var k = seriesEnd
        while k < end, p[k] == 0x20 || p[k] == 0x09 { k += 1 }
        if k < end, p[k] == 0x7B {  // '{'
            var close = end - 1
            while close > k, p[close] != 0x7D { close -= 1 }
            guard p[close] == 0x7D else { return nil }
            // An OpenMetrics exemplar (`… value # {labels} value`) ends in a brace too: `# {`
            // before the last `{` sends the line to the full parse.
            var open = close
            while open > k, p[open] != 0x7B { open -= 1 }
            var before = open - 1
            while before > k, p[before] == 0x20 || p[before] == 0x09 { before -= 1 }
            if open > k, p[before] == 0x23 { return nil }
            seriesEnd = close + 1
        }
        // The value, then at most a timestamp.
        var v = seriesEnd
        guard v < end, p[v] == 0x20 || p[v] == 0x09 else { return nil }
        while v < end, p[v] == 0x20 || p[v] == 0x09 { v += 1 }
        var valueEnd = v
        while valueEnd < end, p[valueEnd] != 0x20, p[valueEnd] != 0x09 { valueEnd += 1 }
        guard valueEnd > v, let value = parseDouble(UnsafeRawBufferPointer(start: p + v, count: valueEnd - v)) else { return nil }
        var t = valueEnd
        while t < end, p[t] == 0x20 || p[t] == 0x09 { t += 1 }
        if t < end {
            // A timestamp: the samples it stamps take the slow path, which keeps it.
            return nil
        }
        return (seriesEnd, value)
    }

    /// A 64-bit hash of `count` bytes, eight at a time.
    static func hash(_ p: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(count)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < count {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        return h
    }
}
