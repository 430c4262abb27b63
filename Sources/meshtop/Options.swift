import ArgumentParser
import Foundation
import Dashboard
import MeshSources
import PromText

/// Where metrics come from: proxies scraped directly.
struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("scrape"), help: ArgumentHelp(
        "A proxy's metrics URL, with the target's labels after ';' (repeatable).",
        discussion: "e.g. --scrape 'http://127.0.0.1:4191/metrics;namespace=emojivoto,deployment=web'",
        valueName: "URL[;name=value,…]"))
    var scrape: [String] = []

    @Option(name: .customLong("targets"), help: ArgumentHelp(
        "A Prometheus file_sd file (JSON or YAML) listing proxies and their labels.", valueName: "FILE"))
    var targetsFile: String?

    func targets() throws -> [ScrapeTarget] {
        var out: [ScrapeTarget] = []
        do {
            for argument in scrape { out.append(try TargetsFile.parseScrapeArgument(argument)) }
            if let file = targetsFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw Exit.input("cannot read the targets file \(file)")
                }
                out += try TargetsFile.parse(text, file: file)
            }
        } catch let e as SourceError {
            throw Exit.input(e.description)
        }
        guard !out.isEmpty else {
            throw Exit.input("no sources: give --scrape URL or --targets FILE (or try `meshtop demo`)")
        }
        return out
    }
}

/// `-t/--time-window`, as linkerd viz takes it.
struct WindowOption: ParsableArguments {
    @Option(name: [.customShort("t"), .customLong("time-window")], help: "The window metrics are computed over (e.g. 10s, 1m, 5m).")
    var timeWindow = "1m"

    var milliseconds: Int64 {
        get throws {
            guard let ms = DurationText.milliseconds(timeWindow), ms > 0 else {
                throw Exit.input("-t \(timeWindow): not a duration (try 10s, 1m or 5m)")
            }
            return ms
        }
    }
}

func parseDuration(_ text: String, flag: String) throws -> Int64 {
    guard let ms = DurationText.milliseconds(text), ms > 0 else {
        throw Exit.input("\(flag) \(text): not a duration (try 500ms, 10s or 1m)")
    }
    return ms
}

/// The Prometheus label for a linkerd resource kind: `deploy` → `deployment`, `po` → `pod`.
func kindLabel(_ kind: String) throws -> String {
    switch kind.lowercased() {
    case "deploy", "deployment", "deployments": return "deployment"
    case "po", "pod", "pods": return "pod"
    case "ns", "namespace", "namespaces": return "namespace"
    case "sts", "statefulset", "statefulsets": return "statefulset"
    case "ds", "daemonset", "daemonsets": return "daemonset"
    default: throw Exit.input("unknown resource kind \"\(kind)\" (use deploy, pod, ns, sts or ds)")
    }
}

/// Writes to stderr, for progress and warnings that must not mix with output.
func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
