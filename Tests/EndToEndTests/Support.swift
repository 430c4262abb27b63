import Foundation
import Testing
import MeshTesting

/// Compares `actual` with a golden file under Tests/EndToEndTests/Goldens; with
/// `UPDATE_GOLDENS=1` in the environment the golden is rewritten instead (review the diff).
func assertGolden(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let url = repositoryRoot.appendingPathComponent("Tests/EndToEndTests/Goldens/" + name)
    if ProcessInfo.processInfo.environment["UPDATE_GOLDENS"] == "1" {
        try actual.write(to: url, atomically: true, encoding: .utf8)
        return
    }
    let expected = try String(contentsOf: url, encoding: .utf8)
    #expect(actual == expected, "screen differs from \(name); rerun with UPDATE_GOLDENS=1 to accept", sourceLocation: sourceLocation)
}

/// The built `meshtop` binary, beside the test bundle.
var meshtopBinary: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshtop")
}

/// Runs a command to completion, with a time limit, and returns its exit code and output
/// (captured in temporary files, so a chatty child never blocks on a full pipe).
func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval = 60, environment: [String: String] = [:],
         directory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("stdout")
    let errURL = dir.appendingPathComponent("stderr")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    waitForExit(process, within: timeout)
    return (process.terminationStatus,
            (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}
