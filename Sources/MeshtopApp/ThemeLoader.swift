import Foundation
public import TerminalUI
import Yams

/// A theme file that cannot be used, with the file and line to look at.
public struct ThemeError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Reads themes: YAML with a `roles:` map of role → `{fg, bg, bold, dim, underline}`.
///
/// ```yaml
/// name: okabe-ito
/// roles:
///   good: {fg: "#009E73"}
///   bad:  {fg: "#D55E00", bold: true}
/// ```
/// Colours: `default`, ANSI names (`red`, `brightcyan`), `#rrggbb`, or 0-255. `monochrome: true`
/// makes a theme of attributes only. A theme file is data: nothing in it is ever run.
public enum ThemeLoader {
    /// Where `--theme NAME` is looked for: `$MESHTOP_THEMES`, `~/.config/meshtop/themes`, the
    /// install's `share/meshtop/themes`, and the source tree's `themes/` (for `swift run`).
    public static func searchDirectories(executable: String = CommandLine.arguments.first ?? "") -> [String] {
        let env = ProcessInfo.processInfo.environment
        var dirs: [String] = []
        if let d = env["MESHTOP_THEMES"] { dirs.append(d) }
        let config = env["XDG_CONFIG_HOME"] ?? ((env["HOME"] ?? "") + "/.config")
        dirs.append(config + "/meshtop/themes")
        let bin = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        dirs.append(bin.appendingPathComponent("../share/meshtop/themes").standardized.path)
        // .build/<config>/meshtop and .build/<triple>/<config>/meshtop both reach the checkout.
        for up in ["../../themes", "../../../themes"] { dirs.append(bin.appendingPathComponent(up).standardized.path) }
        dirs.append(FileManager.default.currentDirectoryPath + "/themes")
        return dirs
    }

    /// A theme by name (`okabe-ito`) or path (`./mine.yaml`).
    public static func load(_ nameOrPath: String, searchDirectories: [String] = searchDirectories()) throws(ThemeError) -> Theme {
        if nameOrPath == "default-dark" || nameOrPath == "default" { return .defaultDark }
        if nameOrPath == "monochrome" { return .monochromeTheme }
        let candidates = nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml")
            ? [nameOrPath]
            : searchDirectories.map { "\($0)/\(nameOrPath).yaml" }
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ThemeError("cannot read the theme \(path)") }
            return try parse(text, file: path)
        }
        let known = available(in: searchDirectories)
        throw ThemeError("no theme \"\(nameOrPath)\"" + (known.isEmpty ? "" : " (themes: \(known.joined(separator: ", ")))"))
    }

    /// The theme names found in `directories`, and the built-in ones.
    public static func available(in directories: [String] = searchDirectories()) -> [String] {
        var names: Set<String> = ["default-dark", "monochrome"]
        for d in directories {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] where f.hasSuffix(".yaml") {
                names.insert(String(f.dropLast(5)))
            }
        }
        return names.sorted()
    }

    public static func parse(_ text: String, file: String) throws(ThemeError) -> Theme {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ThemeError("\(file): not valid YAML: \(error)")
        }
        guard let map = root?.mapping else { throw ThemeError("\(file): a theme is a map with 'name' and 'roles'") }
        func at(_ node: Node) -> String { node.mark.map { "\(file):\($0.line)" } ?? file }
        let name = map["name"]?.string ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        if map["monochrome"]?.bool == true { return Theme(name: name, styles: Theme.monochromeTheme.styles, monochrome: true) }
        guard let rolesNode = map["roles"], let roles = rolesNode.mapping else {
            throw ThemeError("\(file): needs 'roles:' (\(Role.allCases.map { "\($0)" }.joined(separator: ", ")))")
        }
        var styles = Theme.defaultDark.styles
        for (keyNode, value) in roles {
            guard let key = keyNode.string, let role = Role.allCases.first(where: { "\($0)" == key || (key == "background" && $0 == .text) }) else {
                throw ThemeError("\(at(keyNode)): unknown role \"\(keyNode.string ?? "?")\" (roles: \(Role.allCases.map { "\($0)" }.joined(separator: ", ")))")
            }
            guard let fields = value.mapping else { throw ThemeError("\(at(value)): role \(key) needs a map like {fg: \"#5fafff\", bold: true}") }
            var style = RoleStyle()
            for (fieldNode, fieldValue) in fields {
                switch fieldNode.string {
                case "fg", "bg":
                    guard let text = fieldValue.string, let color = ThemeColor(text) else {
                        throw ThemeError("\(at(fieldValue)): \"\(fieldValue.string ?? "?")\" is not a colour (default, red, brightcyan, #rrggbb or 0-255)")
                    }
                    if fieldNode.string == "fg" { style.foreground = color } else { style.background = color }
                case "bold": style.bold = fieldValue.bool ?? false
                case "dim": style.dim = fieldValue.bool ?? false
                case "underline": style.underline = fieldValue.bool ?? false
                default:
                    throw ThemeError("\(at(fieldNode)): unknown field \"\(fieldNode.string ?? "?")\" for \(key) (fg, bg, bold, dim, underline)")
                }
            }
            styles[role] = style
        }
        return Theme(name: name, styles: styles)
    }
}
