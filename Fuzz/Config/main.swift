import Foundation

/// libFuzzer entry: any bytes as meshtop's config file and as a theme file (both YAML). Each
/// must load or give an error naming the line; never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? UserConfig.parse(text, file: "config.yaml")
    _ = try? ThemeLoader.parse(text, file: "theme.yaml")
    return 0
}
