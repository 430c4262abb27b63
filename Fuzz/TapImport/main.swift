import Foundation
import MeshSources
import MeshTap

/// libFuzzer entry: any bytes as the output of `linkerd viz tap -o json` (what
/// `meshtop top --tap-import FILE` reads). Events, problems or an error; never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = "/dev/shm/meshtop-fuzz-\(getpid()).json"
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size)) else { return 0 }
    defer { unlink(path) }
    var top = TopAggregator()
    _ = try? TapImport.read(path) { event in
        top.add(event)
        _ = TapText.line(event, wide: false)
    }
    return 0
}
