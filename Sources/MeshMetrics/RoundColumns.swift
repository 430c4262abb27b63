/// The points of rolled-up series, stored by round: every series gets its points in the same
/// rounds (`MetricStore.commit`), so a round's time is kept once and a point is its 8-byte value.
///
/// A big mesh holds close to a million rolled-up series. Kept as an array of `Point`s each, a
/// series cost 16 bytes a point plus ~48 bytes of array header and malloc; here it costs 8 bytes a
/// point and nothing more, so the same memory holds twice the window.
///
/// The rounds form a ring of `capacity` slots; series are laid out in chunks of `chunkSeries`
/// rows of `capacity` values. A series the round did not touch is `absent` in that slot.
struct RoundColumns: Sendable {
    /// The value of "no point in this round": a signalling NaN's bit pattern, which no sum,
    /// parse or arithmetic produces (they give the quiet NaN), so a NaN sample stays a value.
    static let absent = Double(bitPattern: 0x7FF4_0000_0000_0A85)
    static let chunkSeries = 4096

    /// Rounds the ring holds.
    private(set) var capacity = 0
    /// Each slot's round time, in milliseconds.
    private var times: [Int64] = []
    /// Rounds committed so far.
    private(set) var rounds = 0
    private var chunks: [[Double]] = []

    /// Rounds held: at most `capacity`, the newest.
    private(set) var held = 0

    /// The time of the oldest round held.
    var oldestMs: Int64? { held == 0 ? nil : times[(rounds - held) % capacity] }

    /// Starts a round at `t` with room for series ids below `series`, every series absent from
    /// it until `set`. The ring holds `keep` rounds (it keeps the newest when that shrinks it).
    mutating func startRound(at t: Int64, series: Int, keep: Int) {
        let keep = max(1, keep)
        if keep != capacity { resize(keep) }
        while chunks.count * Self.chunkSeries < series {
            chunks.append([Double](repeating: Self.absent, count: Self.chunkSeries * capacity))
        }
        let slot = rounds % capacity
        times[slot] = t
        let stride = capacity
        for c in chunks.indices {
            chunks[c].withUnsafeMutableBufferPointer { values in
                var i = slot
                while i < values.count {
                    values[i] = Self.absent
                    i += stride
                }
            }
        }
        rounds += 1
        held = min(held + 1, capacity)
    }

    /// Sets series `id`'s value in the round started last.
    mutating func set(_ id: Int, _ value: Double) {
        let slot = (rounds - 1) % capacity
        chunks[id / Self.chunkSeries][(id % Self.chunkSeries) * capacity + slot] = value
    }

    /// The points of series `id` from oldest to newest, until `body` returns false.
    func forEachPoint(of id: Int, newestFirst: Bool = false, _ body: (Point) -> Bool) {
        let n = held
        guard n > 0, id / Self.chunkSeries < chunks.count else { return }
        chunks[id / Self.chunkSeries].withUnsafeBufferPointer { values in
            let base = (id % Self.chunkSeries) * capacity
            for k in 0..<n {
                let slot = (rounds - n + (newestFirst ? n - 1 - k : k)) % capacity
                let v = values[base + slot]
                if v.bitPattern == Self.absent.bitPattern { continue }
                if !body(Point(t: times[slot], v: v)) { return }
            }
        }
    }

    /// The points of series `id` in [start, end], oldest first.
    func points(of id: Int, from start: Int64, through end: Int64) -> [Point] {
        var out: [Point] = []
        forEachPoint(of: id) { p in
            if p.t > end { return false }
            if p.t >= start { out.append(p) }
            return true
        }
        return out
    }

    /// The newest `count` points of series `id` at or before `end` (and at or after `start`), newest first.
    func newest(_ count: Int, of id: Int, from start: Int64, through end: Int64) -> [Point] {
        var out: [Point] = []
        forEachPoint(of: id, newestFirst: true) { p in
            if p.t > end { return true }
            if p.t < start { return false }
            out.append(p)
            return out.count < count
        }
        return out
    }

    /// Points held, over every series.
    var pointCount: Int {
        var n = 0
        for id in 0..<(chunks.count * Self.chunkSeries) {
            forEachPoint(of: id) { _ in
                n += 1
                return true
            }
        }
        return n
    }

    /// A ring of `newCapacity` rounds holding the newest of the rounds held now.
    private mutating func resize(_ newCapacity: Int) {
        let kept = min(held, newCapacity)
        var newTimes = [Int64](repeating: 0, count: newCapacity)
        for k in 0..<kept {
            let r = rounds - kept + k
            newTimes[r % newCapacity] = times[r % capacity]
        }
        for c in chunks.indices {
            var fresh = [Double](repeating: Self.absent, count: Self.chunkSeries * newCapacity)
            chunks[c].withUnsafeBufferPointer { old in
                for row in 0..<Self.chunkSeries {
                    for k in 0..<kept {
                        let r = rounds - kept + k
                        fresh[row * newCapacity + r % newCapacity] = old[row * capacity + r % capacity]
                    }
                }
            }
            chunks[c] = fresh
        }
        times = newTimes
        capacity = newCapacity
        held = kept
    }
}
