/// PromQL's range functions and `histogram_quantile`, with Prometheus' own semantics.
public enum PromQL {
    /// `increase()` (or `rate()` when `perSecond`) over the range [start, end] in milliseconds:
    /// counter resets corrected, and the result extrapolated towards the range's edges exactly as
    /// Prometheus' `extrapolatedRate` does. Nil with fewer than two points.
    public static func increase(_ points: ArraySlice<Point>, start: Int64, end: Int64, perSecond: Bool = false) -> Double? {
        guard points.count >= 2, let first = points.first, let last = points.last else { return nil }
        var result = last.v - first.v
        var previous = first.v
        for p in points.dropFirst() {
            if p.v < previous { result += previous }
            previous = p.v
        }
        let sampled = Double(last.t - first.t) / 1000
        guard sampled > 0 else { return nil }
        var toStart = Double(first.t - start) / 1000
        let toEnd = Double(end - last.t) / 1000
        let average = sampled / Double(points.count - 1)
        if result > 0, first.v >= 0 {
            let toZero = sampled * (first.v / result)
            if toZero < toStart { toStart = toZero }
        }
        let threshold = average * 1.1
        var interval = sampled
        interval += toStart < threshold ? toStart : average / 2
        interval += toEnd < threshold ? toEnd : average / 2
        result *= interval / sampled
        if perSecond { result /= Double(end - start) / 1000 }
        return result
    }

    /// `irate()`: the per-second rate between the last two points of the range. Nil with fewer than two.
    public static func irate(_ points: ArraySlice<Point>) -> Double? {
        guard points.count >= 2 else { return nil }
        return irate(last: points[points.endIndex - 1], previous: points[points.endIndex - 2])
    }

    /// The per-second rate between two consecutive points, a reset counting from zero.
    @inline(__always)
    static func irate(last: Point, previous: Point) -> Double? {
        let delta = last.v < previous.v ? last.v : last.v - previous.v
        let seconds = Double(last.t - previous.t) / 1000
        guard seconds > 0 else { return nil }
        return delta / seconds
    }

    /// `histogram_quantile(q, …)` over cumulative buckets `(le, count)`, as Prometheus' `bucketQuantile`:
    /// needs a `+Inf` bucket, repairs non-monotonic counts, interpolates linearly inside the bucket.
    public static func histogramQuantile(_ q: Double, _ input: [(le: Double, count: Double)]) -> Double {
        if q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        var buckets = input.sorted { $0.le < $1.le }
        guard buckets.count >= 2, buckets.last!.le == .infinity else { return .nan }
        // Merge buckets with the same bound (Prometheus' coalesceBuckets).
        var merged: [(le: Double, count: Double)] = []
        for b in buckets {
            if let lastLE = merged.last?.le, lastLE == b.le {
                merged[merged.count - 1].count += b.count
            } else {
                merged.append(b)
            }
        }
        buckets = merged
        // Make cumulative counts monotonic (ensureMonotonic).
        var maximum = -Double.infinity
        for i in buckets.indices {
            if buckets[i].count > maximum { maximum = buckets[i].count } else { buckets[i].count = maximum }
        }
        guard buckets.count >= 2 else { return .nan }
        let observations = buckets.last!.count
        if observations == 0 { return .nan }
        var rank = q * observations
        let b = buckets.partitioningIndex { $0.count >= rank }
        if b == buckets.count - 1 { return buckets[buckets.count - 2].le }
        if b == 0, buckets[0].le <= 0 { return buckets[0].le }
        var bucketStart = 0.0
        let bucketEnd = buckets[b].le
        var count = buckets[b].count
        if b > 0 {
            bucketStart = buckets[b - 1].le
            count -= buckets[b - 1].count
            rank -= buckets[b - 1].count
        }
        return bucketStart + (bucketEnd - bucketStart) * (rank / count)
    }
}
