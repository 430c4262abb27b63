import Foundation

/// The repository's root, found from this file's path, so tests read fixtures wherever the clone is.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func fixture(_ path: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("Fixtures/" + path), encoding: .utf8)
}
