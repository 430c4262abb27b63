import Foundation
import Testing
import Dashboard
import MeshtopApp
import MeshTesting

/// `~/.config/meshtop/config.yaml`: sources and display without flags; flags win; mistakes named by line.
@Suite struct UserConfigFile {
    func temporaryFile(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("meshtop-config-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func parsesEveryKeyAndNamesTheLineOfAMistake() throws {
        let c = try UserConfig.parse("""
        scrape:
          - "http://10.0.0.5:4191/metrics;namespace=emojivoto,deployment=web"
        targets: /etc/meshtop/targets.yaml
        prometheus: http://127.0.0.1:9090
        tap: 127.0.0.1:4190
        theme: okabe-ito
        refresh: 2s
        window: 5m
        """, file: "c.yaml")
        #expect(c.scrape == ["http://10.0.0.5:4191/metrics;namespace=emojivoto,deployment=web"])
        #expect(c.targets == "/etc/meshtop/targets.yaml" && c.prometheus == "http://127.0.0.1:9090")
        #expect(c.tap == ["127.0.0.1:4190"] && c.theme == "okabe-ito" && c.refreshMs == 2000 && c.windowMs == 300_000)
        #expect(try UserConfig.parse("", file: "empty.yaml") == UserConfig())

        #expect(throws: ConfigError.self) { try UserConfig.parse("theme: light\nrefersh: 2s\n", file: "c.yaml") }
        do {
            _ = try UserConfig.parse("theme: light\nrefersh: 2s\n", file: "c.yaml")
        } catch {
            #expect(error.description.contains("c.yaml:2: unknown key \"refersh\""), "\(error)")
        }
        do {
            _ = try UserConfig.parse("window: soon\n", file: "c.yaml")
        } catch {
            #expect(error.description.contains("c.yaml:1: window: \"soon\" is not a duration"), "\(error)")
        }
        do {
            _ = try UserConfig.parse("scrape: [unclosed\n", file: "c.yaml")
        } catch {
            #expect(error.description.contains("c.yaml: not valid YAML"), "\(error)")
        }
    }

    @Test func whereItLooks() {
        #expect(UserConfig.defaultPath(environment: ["HOME": "/home/a"]) == "/home/a/.config/meshtop/config.yaml")
        #expect(UserConfig.defaultPath(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "/x"]) == "/x/meshtop/config.yaml")
        #expect(UserConfig.defaultPath(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "relative"]) == "/home/a/.config/meshtop/config.yaml")
        #expect(UserConfig.defaultPath(environment: ["MESHTOP_CONFIG": "/etc/m.yaml", "XDG_CONFIG_HOME": "/x"]) == "/etc/m.yaml")
    }

    @Test func theCLIReadsItFlagsWinAndHelpSaysWhere() throws {
        let recording = repositoryRoot.path + "/Fixtures/recordings/demo-emojivoto.meshrec.gz"
        // The config's window applies when -t is not given.
        let config = try temporaryFile("window: 10s\nscrape: [\"127.0.0.1:1;deployment=web,namespace=x\"]\n")
        defer { try? FileManager.default.removeItem(at: config) }
        let env = ["MESHTOP_CONFIG": config.path]
        let fromConfig = try run(meshtopBinary, ["stat", "deploy", "--replay", recording, "-o", "json", "--at", "+45s"], environment: env)
        let flagged = try run(meshtopBinary, ["stat", "deploy", "--replay", recording, "-o", "json", "--at", "+45s", "-t", "10s"])
        #expect(fromConfig.status == 0 && fromConfig.stdout == flagged.stdout, "\(fromConfig.stderr)")
        let minute = try run(meshtopBinary, ["stat", "deploy", "--replay", recording, "-o", "json", "--at", "+45s", "-t", "1m"], environment: env)
        #expect(minute.stdout != fromConfig.stdout, "-t on the command line wins over the config's window")
        // Its scrape targets are used when no source flag is given: here, a proxy that is not there.
        let unreachable = try run(meshtopBinary, ["stat", "deploy"], environment: env)
        #expect(unreachable.status == 3 && unreachable.stderr.contains("127.0.0.1:1"), "\(unreachable.stderr)")

        let help = try run(meshtopBinary, ["--help"], environment: env)
        // (Help wraps at 80 columns: compare with the line breaks undone.)
        func unwrapped(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        #expect(unwrapped(help.stdout).contains("Configuration: \(config.path) (read)"), "\(help.stdout)")
        let none = try run(meshtopBinary, ["--help"], environment: ["MESHTOP_CONFIG": "/nonexistent/meshtop.yaml"])
        #expect(unwrapped(none.stdout).contains("Configuration: /nonexistent/meshtop.yaml (not found)"))

        let broken = try temporaryFile("theme: light\ncolour: red\n")
        defer { try? FileManager.default.removeItem(at: broken) }
        let bad = try run(meshtopBinary, ["stat", "deploy", "--replay", recording], environment: ["MESHTOP_CONFIG": broken.path])
        #expect(bad.status == 2 && bad.stderr.contains("\(broken.path):2: unknown key \"colour\""), "\(bad.stderr)")
    }
}
