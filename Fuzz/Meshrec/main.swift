import Foundation
import MeshSources

/// libFuzzer entry: any bytes as a meshrec recording (plain, or gzip when they start like gzip),
/// read to the end as replay reads it. It must give events, warnings or a RecordingError, never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b
    let path = "/dev/shm/meshtop-fuzz-\(getpid()).meshrec" + (gzip ? ".gz" : "")
    guard FileManager.default.createFile(atPath: path, contents: bytes) else { return 0 }
    defer { unlink(path) }
    if let reader = try? RecordingReader(path: path) {
        while let event = try? reader.next() {
            if case .scrape(let s) = event, let body = s.body { _ = body.count }
        }
        _ = reader.warnings
    }
    if let span = try? RecordingReader(path: path) {
        while (try? span.nextTime()) != nil {}
    }
    return 0
}
