import Foundation
import PlantModel
import Runtime

/// libFuzzer entry: parses the bytes as JSON and decodes a plant config from it; any error is fine,
/// a crash is not. The error message must be one line and name the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard let json = try? JSON.parse(bytes: UnsafeRawBufferPointer(start: data, count: size)) else { return 0 }
    do {
        _ = try PlantConfig.decode(json: json, file: "fuzz.json", directory: URL(fileURLWithPath: "/nonexistent"))
    } catch {
        let text = "\(error)"
        if text.contains("\n") || !text.contains("fuzz.json") { fatalError("bad config error text: \(text)") }
    }
    return 0
}
