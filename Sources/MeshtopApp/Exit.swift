import Foundation
public import MeshSources
import MeshMetrics

/// The exit codes meshtop promises scripts: 0 ok, 1 check or canary failed, 2 usage or input
/// error, 3 sources unreachable.
public struct Exit: Error {
    public var code: Int32
    public var message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    public static func input(_ message: String) -> Exit { Exit(code: 2, message: message) }
    public static func unreachable(_ message: String) -> Exit { Exit(code: 3, message: message) }
}

extension Exit {
    /// A source's input error exits 2, an unreachable source 3.
    public init(_ error: OneShotError) {
        self.init(code: error.kind == .input ? 2 : 3, message: error.description)
    }
}

/// Writes to stderr, for progress and warnings that must not mix with output.
public func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// A line on standard output, written at once (a pipeline reads progress as it happens).
public func sayLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A positive duration flag (`500ms`, `10s`, `1m`), or an input error naming the flag.
public func parseDuration(_ text: String, flag: String) throws(Exit) -> Int64 {
    guard let ms = DurationText.milliseconds(text), ms > 0 else {
        throw Exit.input("\(flag) \(text): not a duration (try 500ms, 10s or 1m)")
    }
    return ms
}

/// The Prometheus label for a linkerd resource kind: `deploy` → `deployment`, `po` → `pod`.
public func kindLabel(_ kind: String) throws(Exit) -> String {
    switch kind.lowercased() {
    case "deploy", "deployment", "deployments": return "deployment"
    case "po", "pod", "pods": return "pod"
    case "ns", "namespace", "namespaces": return "namespace"
    case "sts", "statefulset", "statefulsets": return "statefulset"
    case "ds", "daemonset", "daemonsets": return "daemonset"
    default: throw Exit.input("unknown resource kind \"\(kind)\" (use deploy, pod, ns, sts or ds)")
    }
}
