import Foundation

/// libFuzzer entry: any bytes through the Prometheus text parser. It must return a value or a
/// ParseError, never trap, whatever the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let e = try? PromTextParser.parse(bytes) {
        // Whatever parsed must print and parse again to the same samples.
        let text = e.samples.map(PromTextWriter.line).joined()
        if let again = try? PromTextParser.parse(text) {
            precondition(again.samples.count == e.samples.count, "round trip lost samples")
        }
    }
    return 0
}
