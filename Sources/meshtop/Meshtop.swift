import ArgumentParser
import Foundation
import Dashboard
import MeshtopApp
import MeshSources

@main
struct Meshtop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshtop",
        abstract: "A terminal dashboard for a service mesh: golden metrics per workload and edge, live.",
        discussion: """
        Reads Linkerd-shaped proxy metrics (meshproxy's or linkerd2-proxy's /metrics) and shows \
        success rate, requests per second and latency percentiles as linkerd viz does.

        Start with `meshtop demo`: it runs a small mesh in this process and opens the dashboard on it.
        Exit codes: 0 ok, 1 check failed, 2 usage or input error, 3 sources unreachable.

        Configuration: \(UserConfig.defaultPath()) (\(FileManager.default.fileExists(atPath: UserConfig.defaultPath()) ? "read" : "not found")); \
        $MESHTOP_CONFIG names another file. It may set scrape, targets, prometheus, tap, theme, slos, \
        refresh and window; flags win over it.
        """,
        subcommands: [DashboardCommand.self, Demo.self, Stat.self, Edges.self, Routes.self, Top.self, Tap.self, Record.self, Replay.self, Canary.self, Check.self, SLO.self, Timeline.self],
        defaultSubcommand: DashboardCommand.self)

    static func main() async {
        do {
            if case .failure(let error) = loadedConfig { throw Exit.input("config: \(error.description)") }
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error as OneShotError {
            FileHandle.standardError.write(Data(("meshtop: " + error.description + "\n").utf8))
            Foundation.exit(Exit(error).code)
        } catch let exit as Exit {
            FileHandle.standardError.write(Data(("meshtop: " + exit.message + "\n").utf8))
            Foundation.exit(exit.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            // Usage mistakes exit 2, as DESIGN promises (ArgumentParser's own default is 64).
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
