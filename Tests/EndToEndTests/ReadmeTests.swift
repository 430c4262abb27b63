import Foundation
import Testing
import MeshTesting

/// The README's examples run as written: every `meshtop` line of its shell blocks that needs no
/// running mesh and no terminal (recordings in Fixtures/, the demo without a screen) is run from
/// the repository's root and exits as its comment says (`exit N`, else 0).
@Suite struct ReadmeExamples {
    /// The `meshtop …` command lines of the README's ```sh blocks, continuations joined, each with
    /// its trailing comment.
    static func commandLines() throws -> [(command: String, comment: String)] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        var out: [(String, String)] = []
        var inShell = false
        var pending = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("```") {
                inShell = line == "```sh" || line == "```bash"
                continue
            }
            guard inShell else { continue }
            let joined = pending + line.trimmingCharacters(in: .whitespaces)
            if joined.hasSuffix("\\") {
                pending = String(joined.dropLast())
                continue
            }
            pending = ""
            guard joined.hasPrefix("meshtop ") else { continue }
            let parts = joined.components(separatedBy: "  #")
            out.append((parts[0].trimmingCharacters(in: .whitespaces), parts.dropFirst().joined(separator: "#")))
        }
        return out
    }

    /// Words as a shell splits them (quotes only; the README uses nothing else).
    static func words(_ command: String) -> [String] {
        var out: [String] = [], word = "", quote: Character?
        var any = false
        for c in command {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c
                any = true
            } else if c == " " {
                if !word.isEmpty || any { out.append(word) }
                word = ""
                any = false
            } else {
                word.append(c)
            }
        }
        if !word.isEmpty || any { out.append(word) }
        return out
    }

    /// Lines that run here: over a recording in the repository, or the demo without a screen.
    static func runnable(_ command: String) -> Bool {
        let w = words(command)
        if w.contains("--replay"), let i = w.firstIndex(of: "--replay"), i + 1 < w.count {
            return FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent(w[i + 1]).path)
        }
        return w.count > 1 && w[1] == "demo" && w.contains("--headless")
    }

    @Test func everyRunnableExampleRunsAsWritten() throws {
        let lines = try Self.commandLines().filter { Self.runnable($0.command) }
        #expect(lines.count >= 6, "the README's runnable examples: \(lines.map(\.command))")
        #expect(lines.contains { $0.command.contains("--at -") }, "an --at with a negative time, as written")
        for (command, comment) in lines {
            let expected: Int32 = comment.range(of: #"exit (\d)"#, options: .regularExpression)
                .flatMap { Int32(comment[$0].dropFirst(5)) } ?? 0
            let r = try run(meshtopBinary, Array(Self.words(command).dropFirst()), timeout: 120, directory: repositoryRoot)
            #expect(r.status == expected, "\(command)\nexit \(r.status), expected \(expected)\n\(r.stderr.suffix(600))")
            #expect(!r.stdout.isEmpty, "\(command) printed nothing")
        }
    }

    /// README's module table names every module under Sources/, and no module that is gone.
    @Test func theModuleTableNamesEveryModule() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "| module | job |"), "README has a module table")
        let rows = readme[section.upperBound...].split(separator: "\n").drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        let named = Set(rows.flatMap { row in
            (row.split(separator: "|").first ?? "").split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        })
        let modules = Set(try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Sources").path)
            .filter { !$0.hasPrefix(".") })
        #expect(modules.subtracting(named).isEmpty, "modules missing from README's table: \(modules.subtracting(named).sorted())")
        #expect(named.subtracting(modules).isEmpty, "README's table names modules that are gone: \(named.subtracting(modules).sorted())")
    }
}
