import Foundation

/// libFuzzer entry: any bytes through the tap stream decoder (as garbage on the tap socket or a
/// mangled `linkerd viz tap -o json` file would arrive), fed in uneven chunks, then each object
/// through the event decoder. Nothing may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var decoder = TapStreamDecoder()
    decoder.maxObjectBytes = 4096
    var i = 0
    var chunk = 1
    while i < bytes.count {
        for piece in decoder.feed(bytes[i..<min(bytes.count, i + chunk)]) {
            if case .object(let o) = piece, case .success(let e) = TapJSON.decode(line: o) {
                _ = TapText.line(e, wide: true)
                _ = TapJSON.encode(e, pretty: true)
                var top = TopAggregator()
                top.add(e)
            }
        }
        i += chunk
        chunk = chunk % 7 + 1
    }
    _ = decoder.finish()
    return 0
}
