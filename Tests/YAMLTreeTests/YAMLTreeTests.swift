import Foundation
import Testing
import Yams
@testable import YAMLTree

/// YAMLTree reads libyaml's events itself (so the proxy links no Foundation); these hold it to
/// what Yams, which it replaced there, makes of the same text.
@Suite struct YAMLTreeTests {
    /// Yams' tree in YAMLTree's terms: its NSNull is `YAMLTree.Null`, the rest compared as text.
    static func canonical(_ value: Any?) -> String {
        switch value {
        case nil: return "nil"
        case is NSNull, is YAMLTree.Null: return "null"
        case let b as Bool: return "bool:\(b)"
        case let i as Int: return "int:\(i)"
        case let d as Double: return d.isNaN ? "float:nan" : "float:\(d)"
        case let s as String: return "str:\(s)"
        case let list as [Any]: return "[" + list.map { canonical($0) }.joined(separator: ", ") + "]"
        case let map as [String: Any]:
            return "{" + map.keys.sorted().map { "\($0): \(canonical(map[$0]))" }.joined(separator: ", ") + "}"
        default: return "other:\(String(describing: value!))"
        }
    }

    /// Yams' reading, as the previous YAMLTree built it from Yams' composed nodes.
    static func yams(_ text: String) throws -> Any? {
        func tree(_ node: Node) -> Any {
            switch node {
            case .scalar(let scalar):
                // As the previous YAMLTree: integers read by its own `integer` (decimal `017`, and
                // overflow a string where Yams traps).
                if node.tag.rawValue == Tag.Name.int.rawValue { return YAMLTree.integer(scalar.string).map { $0 as Any } ?? scalar.string }
                return node.any
            case .sequence(let items): return items.map(tree)
            case .mapping(let pairs):
                var out: [String: Any] = [:]
                for (k, v) in pairs { out["\(tree(k) is NSNull ? "null" : tree(k))"] = tree(v) }
                return out
            case .alias: return "alias"
            }
        }
        return try Yams.compose(yaml: text).map(tree)
    }

    static let plainScalars = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "y", "n", "tRUE",
        "0", "1", "-1", "+1", "42", "017", "0o17", "0x1F", "0x1f", "-0x10", "0b101", "-0b11", "1_000",
        "1:30", "190:20:30", "-1:30", "1:60", "1:5:7", "017",
        "1.5", "-1.5e3", "1e5", "1E+5", "1.", ".5", ".5e+3", "+.inf", ".inf", "-.Inf", ".INF", ".NaN", "1:30.5",
        "08", "09.5", "1_0.5_0",
        "~", "null", "Null", "NULL", "nULL",
        "hello", "1.2.3", "0x", "0b", "0o", "+", ".", "12e", "1__2", "e5", "0x1G", ":30", "1:3a",
        "2026-11-28", "web:8080", "10.0.0.1:8080", "500ms", "1m",
    ]

    @Test(arguments: plainScalars)
    func plainScalarsResolveAsYamsResolvesThem(_ scalar: String) throws {
        let text = "v: \(scalar)\n"
        let ours = try YAMLTree.load(text) as? [String: Any]
        let theirs = try Self.yams(text) as? [String: Any]
        var expected = Self.canonical(theirs?["v"])
        if expected.hasPrefix("other:") { expected = "str:\(scalar)" }  // Yams' Date for a timestamp: a string here
        #expect(Self.canonical(ours?["v"]) == expected, "\(scalar)")
    }

    @Test(arguments: ["\"1\"", "'yes'", "\"\"", "!!str 12", "!!int \"12\"", "!!float \"1.5\"", "!!float 1", "!!bool yes", "!!null ~", "! 12", "|\n  12\n", ">\n  on\n"])
    func quotedAndTaggedScalarsToo(_ scalar: String) throws {
        let text = "v: \(scalar)\n"
        let ours = try YAMLTree.load(text) as? [String: Any]
        let theirs = try Self.yams(text) as? [String: Any]
        #expect(Self.canonical(ours?["v"]) == Self.canonical(theirs?["v"]), "\(scalar)")
    }

    @Test func documentsOfTheShapesTheProgramsReadAreTheSameTree() throws {
        let documents = [
            """
            destinations:
              - authority: web.emojivoto:80
                timeout: 2s
                retries: 2
                backends:
                  - name: web
                    weight: 90
                    endpoints:
                      - {address: "127.0.0.1:8080", identity: web.emojivoto, labels: {pod: web-0, zone: a}}
                  - name: web-canary
                    weight: 10
                    endpoints: [{address: "[::1]:8081"}]
            """,
            "- targets: ['127.0.0.1:4191', 'localhost:4192']\n  labels:\n    namespace: prod\n    tls: true\n",
            "{\"destinations\": [{\"authority\": \"a:1\", \"backends\": [{\"endpoints\": [{\"address\": \"b:2\"}]}]}]}",
            "base: &b {a: 1, b: [x, y]}\nagain: *b\nlist: &l [1, 2]\nl2: *l\nempty:\nn: ~\n",
            "authority: web.emojivoto.svc.cluster.local:80\nroutes:\n- name: GET /api/list\n  condition: {method: GET, pathRegex: '/api/list'}\n",
            "# only a comment\n",
            "---\nkey: value\n...\n",
        ]
        for text in documents {
            #expect(Self.canonical(try YAMLTree.load(text)) == Self.canonical(try Self.yams(text)), "\(text)")
        }
    }

    @Test func anEmptyDocumentIsNil() throws {
        #expect(try YAMLTree.load("") == nil)
        #expect(try YAMLTree.load("\n# nothing\n") == nil)
    }

    /// What Yams traps or stops the process on, and malformed text, are errors that say where.
    @Test(arguments: [
        ("a: 1\na: 2\n", "'a' twice in one map (line 2)"),
        ("a: *nowhere\n", "an alias (*nowhere) that does not name an anchor (line 1)"),
        ("? [a, b]\n: 1\n", "a key that is a list or a map (line 1)"),
        ("? {a: 1}\n: 1\n", "a key that is a list or a map (line 1)"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
        ("a: [1, 2\n", "line 2"),
        ("a: b: c\n", "line 1"),
        ("\t- x\n", "line 1"),
        ("a: \"unterminated\n", "line"),
    ])
    func badDocumentsAreErrorsThatSayWhere(_ text: String, _ says: String) {
        do {
            _ = try YAMLTree.load(text)
            Issue.record("\(text.debugDescription) was read")
        } catch {
            #expect("\(error)".contains(says), "\(text.debugDescription): \(error)")
        }
    }

    @Test func deepNestingIsAnErrorNotAStackOverflow() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: YAMLTree.Problem.self) { try YAMLTree.load(deep) }
        let ok = String(repeating: "[", count: YAMLTree.maxDepth) + String(repeating: "]", count: YAMLTree.maxDepth)
        #expect(try YAMLTree.load(ok) != nil)
    }

    /// "Billion laughs": each anchor repeats the one before ten times. Shared values cost nothing
    /// to build, but whoever prints or walks the tree would walk all of it.
    @Test func aliasesThatExpandBeyondALimitAreAnError() throws {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (name, previous) in zip(["b", "c", "d", "e", "f", "g"], ["a", "b", "c", "d", "e", "f"]) {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        do {
            _ = try YAMLTree.load(text)
            Issue.record("a billion laughs was read")
        } catch {
            #expect("\(error)".contains("aliases repeat more than 100000 nodes"), "\(error)")
        }
        // Within the limit, aliases still work.
        let small = try #require(try YAMLTree.load("a: &a [1, 2]\nb: [*a, *a]\n") as? [String: Any])
        #expect(Self.canonical(small["b"]) == "[[int:1, int:2], [int:1, int:2]]")
    }

    @Test func integersThatOverflowAreStringsNotTraps() throws {
        let tree = try YAMLTree.load("a: 99999999999999999999\nb: -551364444449444436:46\nc: 0x1FFFFFFFFFFFFFFFF\n") as? [String: Any]
        #expect(tree?["a"] as? String == "99999999999999999999")
        #expect(tree?["b"] as? String == "-551364444449444436:46")
        #expect(tree?["c"] as? String == "0x1FFFFFFFFFFFFFFFF")
    }
}
