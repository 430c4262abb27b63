import Foundation
import Testing
import Dashboard
import MeshtopApp
import TerminalUI
import MeshTesting

@Suite struct Themes {
    let directory = repositoryRoot.appendingPathComponent("themes").path

    @Test(arguments: ["default-dark", "light", "tty16", "okabe-ito", "monochrome"])
    func shippedThemesLoad(name: String) throws {
        let theme = try ThemeLoader.load(name, searchDirectories: [directory])
        #expect(theme.name == name)
        if name != "monochrome" {
            // Good, warn and bad are told apart by colour as well as by symbol.
            let fg = [Role.good, .warn, .bad].map { theme.style($0).foreground }
            #expect(Set(fg.map { $0.index(colors: 256) }).count == 3)
        } else {
            #expect(theme.monochrome)
        }
    }

    @Test func shippedDefaultEqualsTheBuiltIn() throws {
        #expect(try ThemeLoader.parse(String(contentsOfFile: directory + "/default-dark.yaml", encoding: .utf8), file: "x").styles == Theme.defaultDark.styles)
    }

    @Test func badThemesNameTheLine() {
        let cases: [(String, String)] = [
            ("name: x\nroles:\n  good: {fg: \"#12345\"}\n", "x.yaml:3: \"#12345\" is not a colour"),
            ("name: x\nroles:\n  text: {fg: red}\n  shiny: {fg: red}\n", "x.yaml:4: unknown role \"shiny\""),
            ("name: x\nroles:\n  bad: {fg: red, blink: true}\n", "x.yaml:3: unknown field \"blink\""),
            ("name: x\nroles: [\n", "x.yaml: not valid YAML"),
            ("name: x\n", "x.yaml: needs 'roles:'"),
        ]
        for (text, message) in cases {
            #expect {
                try ThemeLoader.parse(text, file: "x.yaml")
            } throws: { error in
                (error as? ThemeError)?.description.hasPrefix(message) == true
            }
        }
        #expect(throws: ThemeError.self) { try ThemeLoader.load("no-such-theme", searchDirectories: [directory]) }
    }

    @Test func coloursMapToWhatTheTerminalHas() {
        #expect(ThemeColor("#ff0000")?.index(colors: 256) == 9 || ThemeColor("#ff0000")?.index(colors: 256) == 196)
        #expect(ThemeColor("#5fafff")?.index(colors: 256) == 75)
        #expect(ThemeColor("#5fafff")!.index(colors: 8) < 8)
        #expect(ThemeColor("brightred") == .ansi(9))
        #expect(ThemeColor("brightred")!.index(colors: 8) == 1)
        #expect(ThemeColor("default")!.index(colors: 256) == -1)
        #expect(ThemeColor("#zzzzzz") == nil && ThemeColor("300") == nil)
    }
}
