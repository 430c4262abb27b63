public import Foundation

/// The repository's root, found from this file's path (`Sources/MeshTesting/`), so tests read
/// fixtures wherever the clone is.
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The text of `Fixtures/PATH`.
public func fixture(_ path: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("Fixtures/" + path), encoding: .utf8)
}
