import Foundation
public import MeshTap

/// Reads what `linkerd viz tap -o json` prints (pretty objects one after another; compact lines
/// and JSON arrays read too), from a file or standard input, as it arrives.
public enum TapImport {
    /// Reads `path` (`-` for standard input) to its end. Returns the problems met: garbage skipped,
    /// objects that are not tap events, a truncated last object.
    @discardableResult
    public static func read(_ path: String, onEvent: (TapEvent) -> Void) throws(SourceError) -> [String] {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: path) else { throw SourceError("cannot read \(path)") }
            handle = h
        }
        let name = path == "-" ? "standard input" : path
        var decoder = TapStreamDecoder()
        var problems: [String] = []
        var skipped = 0
        var events = 0
        var firstText = ""
        func take(_ pieces: [TapStreamDecoder.Piece]) {
            for piece in pieces {
                switch piece {
                case .object(let bytes):
                    switch TapJSON.decode(line: bytes) {
                    case .success(let e):
                        events += 1
                        onEvent(e)
                    case .failure(let why):
                        skipped += 1
                        if skipped <= 5 { problems.append("\(name): skipped an object that is \(why)") }
                    }
                case .garbage(let offset, let bytes):
                    skipped += 1
                    let text = String(decoding: bytes.prefix(60), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    if firstText.isEmpty { firstText = text }
                    if skipped <= 5 { problems.append("\(name): skipped text at byte \(offset) that is not a tap event: \"\(text)\"") }
                case .oversized(let offset):
                    problems.append("\(name): skipped an object over 1 MiB at byte \(offset)")
                }
            }
        }
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            take(decoder.feed(chunk))
        }
        take(decoder.finish())
        if skipped > 5 { problems.append("\(name): \(skipped - 5) more skipped") }
        if decoder.hasPartialObject { problems.append("\(name): the input ended inside an event (cut short?); it was left out") }
        // Nothing read and something skipped: the wrong format, not an empty tap.
        if events == 0 && skipped > 0 {
            let looksLikeText = ["req id=", "rsp id=", "end id="].contains { firstText.hasPrefix($0) }
            throw SourceError(looksLikeText
                ? "\(name) holds linkerd viz tap's text output; --tap-import reads its JSON: run `linkerd viz tap … -o json`"
                : "\(name): no tap events in it (\(skipped) pieces skipped; --tap-import reads `linkerd viz tap -o json` or meshtop's NDJSON)"
                    + (problems.first.map { "; the first: " + $0.replacingOccurrences(of: "\(name): ", with: "") } ?? ""))
        }
        return problems
    }
}
