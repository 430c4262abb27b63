/// libFuzzer entry: any bytes as meshproxy's destinations file (`--destinations FILE`, reloaded on
/// SIGHUP). A table or an error naming the file; never a trap (ports, weights and identities all
/// come from outside).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let table = try? DestinationTable.parse(yaml: text, file: "fuzz.yaml") else { return 0 }
    for name in ["web", "web:80", "web.ns.svc.cluster.local:8080", text] { _ = table.lookup(name) }
    return 0
}
