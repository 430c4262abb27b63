/// Reads a chunked body (RFC 9112 §7.1) as it arrives, in pieces of any size, and says where its
/// data is and where it ends: the proxy forwards the data and frames it again itself, so the next
/// hop sees the body boundary this reader saw, never another.
///
/// Strict where parsers have disagreed (the chunked-smuggling research): a chunk size is 1 to 16
/// hex digits with nothing before them (no `0x`, sign or space) and must fit in 63 bits; only
/// whitespace before a `;` may follow it; a chunk's data must be followed by CRLF exactly;
/// every line ends in CRLF (a bare LF or CR is refused); extensions and trailer lines are
/// visible ASCII, obs-text, space and tab only, and bounded.
public struct ChunkedBodyReader: Sendable {
    /// The most bytes of chunk extensions per chunk line, and of trailers in all.
    public static let maxExtensionBytes = 4096
    public static let maxTrailerBytes = 16 * 1024

    enum State: Sendable {
        case size(digits: Int, value: Int64)
        case sizeSpace
        case extensionText(count: Int)
        case sizeLF
        case data(remaining: Int64)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine
        case trailerLF(empty: Bool)
        case done
    }

    var state = State.size(digits: 0, value: 0)
    /// The chunk size being read was 0: the next line begins the trailers.
    var last = false
    /// The size read on the chunk line being read.
    var pendingSize: Int64 = 0
    /// Payload bytes read so far.
    public private(set) var dataBytes: Int64 = 0
    /// The trailer section's lines, as they came (each ending in CRLF), without the final empty line.
    public private(set) var trailers: [UInt8] = []
    var trailerLineStart = 0
    var trailerSawColon = false

    public init() {}

    /// The body ended (its last chunk and trailers were read).
    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Reads `bytes`, calling `data` with each run of chunk data (as offsets into `bytes`).
    /// Returns how many bytes the body took: all of them while it goes on, fewer when it ended
    /// inside `bytes` (what follows is the next request).
    public mutating func read(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws -> Int {
        var i = 0
        let n = bytes.count
        func bad(_ why: String) -> WireRefusal { WireRefusal(400, "a malformed chunked body: " + why) }
        while i < n {
            let c = bytes[i]
            switch state {
            case .size(let digits, let value):
                if let d = hexValue(c) {
                    guard digits < 16, value <= (Int64.max - d) / 16 else { throw bad("a chunk size too large") }
                    state = .size(digits: digits + 1, value: value * 16 + d)
                    i += 1
                    continue
                }
                guard digits > 0 else { throw bad("a chunk size that is not hex digits") }
                last = value == 0
                pendingSize = value  // taken once the line ends
                switch c {
                case 13: state = .sizeLF
                case 59: state = .extensionText(count: 0)
                case 32, 9: state = .sizeSpace
                default: throw bad("a chunk size followed by \(describe(c))")
                }
                i += 1
            case .sizeSpace:
                switch c {
                case 32, 9: break
                case 59: state = .extensionText(count: 0)
                default: throw bad("whitespace after a chunk size not followed by ';'")
                }
                i += 1
            case .extensionText(let count):
                if c == 13 {
                    state = .sizeLF
                } else {
                    guard c == 9 || (c >= 32 && c != 127) else { throw bad("\(describe(c)) in a chunk extension") }
                    guard count < Self.maxExtensionBytes else { throw bad("chunk extensions longer than \(Self.maxExtensionBytes) bytes") }
                    state = .extensionText(count: count + 1)
                }
                i += 1
            case .sizeLF:
                guard c == 10 else { throw bad("a chunk size line not ended by CRLF") }
                i += 1
                if last {
                    state = .trailerLineStart
                } else {
                    state = .data(remaining: pendingSize)
                }
            case .data(let remaining):
                let take = Int(min(Int64(n - i), remaining))
                data(i..<(i + take))
                dataBytes += Int64(take)
                i += take
                state = remaining - Int64(take) == 0 ? .dataCR : .data(remaining: remaining - Int64(take))
            case .dataCR:
                guard c == 13 else { throw bad("chunk data longer than its size") }
                state = .dataLF
                i += 1
            case .dataLF:
                guard c == 10 else { throw bad("chunk data not followed by CRLF") }
                state = .size(digits: 0, value: 0)
                i += 1
            case .trailerLineStart:
                if c == 13 {
                    state = .trailerLF(empty: true)
                } else {
                    guard isTokenByte(c) else { throw bad("a malformed trailer line") }
                    trailerLineStart = trailers.count
                    trailerSawColon = false
                    try appendTrailer(c)
                    state = .trailerLine
                }
                i += 1
            case .trailerLine:
                if c == 13 {
                    guard trailerSawColon else { throw bad("a trailer line without a colon") }
                    state = .trailerLF(empty: false)
                } else {
                    if !trailerSawColon {
                        if c == 58 {
                            trailerSawColon = true
                        } else if !isTokenByte(c) {
                            throw bad("a malformed trailer name")
                        }
                    } else if !(c == 9 || (c >= 32 && c != 127)) {
                        throw bad("\(describe(c)) in a trailer value")
                    }
                    try appendTrailer(c)
                }
                i += 1
            case .trailerLF(let empty):
                guard c == 10 else { throw bad("a trailer line not ended by CRLF") }
                i += 1
                if empty {
                    state = .done
                    return i
                }
                try appendTrailer(13)
                try appendTrailer(10)
                state = .trailerLineStart
            case .done:
                return i
            }
        }
        return i
    }

    private mutating func appendTrailer(_ c: UInt8) throws {
        guard trailers.count < Self.maxTrailerBytes else {
            throw WireRefusal(400, "a malformed chunked body: trailers longer than \(Self.maxTrailerBytes) bytes")
        }
        trailers.append(c)
    }
}

private func hexValue(_ c: UInt8) -> Int64? {
    switch c {
    case 48...57: return Int64(c - 48)
    case 65...70: return Int64(c - 55)
    case 97...102: return Int64(c - 87)
    default: return nil
    }
}

private func describe(_ c: UInt8) -> String {
    c >= 33 && c < 127 ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
}

extension ChunkedBodyReader {
    /// The trailer fields read, as (name, value) pairs, values trimmed.
    public var trailerFields: [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        var rest = trailers[...]
        while let cr = rest.firstIndex(of: 13) {
            let line = rest[rest.startIndex..<cr]
            rest = rest[(cr + 2)...]
            guard let colon = line.firstIndex(of: 58) else { continue }
            var value = line[(colon + 1)...]
            while let c = value.first, c == 32 || c == 9 { value.removeFirst() }
            while let c = value.last, c == 32 || c == 9 { value.removeLast() }
            out.append((String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return out
    }
}
