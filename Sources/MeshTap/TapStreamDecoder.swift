/// Splits a byte stream of JSON objects written one after another — compact lines (the wire
/// protocol) or pretty-printed objects (what `linkerd viz tap -o json` prints) — into whole
/// objects, as bytes arrive. Strings and escapes are respected; anything between objects that
/// is not white space is reported, not guessed at.
public struct TapStreamDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var objectStart: Int?
    /// Where unreported stray bytes begin: reported whole at the end of their line or at the next object.
    private var garbageStart: Int?
    private var scanned = 0
    /// Bytes received so far, for error positions.
    public private(set) var offset = 0
    /// The largest object accepted (a peer that never closes a brace cannot grow memory without bound).
    public var maxObjectBytes = 1 << 20

    public init() {}

    public enum Piece: Sendable {
        case object([UInt8])
        /// Stray bytes outside any object (garbage), with the stream offset where they began.
        case garbage(offset: Int, bytes: [UInt8])
        /// An object over `maxObjectBytes`: dropped.
        case oversized(offset: Int)
    }

    /// Feeds bytes; returns the pieces they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Piece] {
        buffer.append(contentsOf: bytes)
        var pieces: [Piece] = []
        var i = scanned
        while i < buffer.count {
            let b = buffer[i]
            if objectStart == nil {
                if b == UInt8(ascii: "{") {
                    if let g = garbageStart {
                        pieces.append(.garbage(offset: offset + g, bytes: Array(buffer[g..<i])))
                        garbageStart = nil
                    }
                    objectStart = i
                    depth = 1
                } else if !(b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == UInt8(ascii: ",") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")) {
                    // Commas and brackets are tolerated so a JSON array of events reads too.
                    if garbageStart == nil { garbageStart = i }
                } else if let g = garbageStart, b == 0x0A {
                    pieces.append(.garbage(offset: offset + g, bytes: Array(buffer[g..<i])))
                    garbageStart = nil
                }
            } else if inString {
                if escaped { escaped = false }
                else if b == UInt8(ascii: "\\") { escaped = true }
                else if b == UInt8(ascii: "\"") { inString = false }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "{") {
                depth += 1
            } else if b == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0, let start = objectStart {
                    pieces.append(.object(Array(buffer[start...i])))
                    objectStart = nil
                }
            }
            if let start = objectStart, i - start > maxObjectBytes {
                pieces.append(.oversized(offset: offset + start))
                objectStart = nil
                depth = 0
                inString = false
                escaped = false
            }
            i += 1
        }
        if let g = garbageStart, buffer.count - g > 4096 {  // a long run without newline: report it now
            pieces.append(.garbage(offset: offset + g, bytes: Array(buffer[g...])))
            garbageStart = nil
        }
        // Keep only an open object or unreported garbage.
        let keepFrom = objectStart ?? garbageStart ?? buffer.count
        if keepFrom > 0 {
            buffer.removeFirst(keepFrom)
            offset += keepFrom
            if objectStart != nil { objectStart! -= keepFrom }
            if garbageStart != nil { garbageStart! -= keepFrom }
        }
        scanned = buffer.count
        return pieces
    }

    /// Whether the stream ended inside an object (a truncated last event).
    public var hasPartialObject: Bool { objectStart != nil }

    /// At the end of the stream: stray bytes not yet reported.
    public mutating func finish() -> [Piece] {
        guard let g = garbageStart else { return [] }
        garbageStart = nil
        return [.garbage(offset: offset + g, bytes: Array(buffer[g...]))]
    }
}
