import Runtime

/// libFuzzer entry: parses the bytes as JSON; whatever parses must serialize and parse back equal.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let buffer = UnsafeRawBufferPointer(start: data, count: size)
    guard let value = try? JSON.parse(bytes: buffer) else { return 0 }
    let text = value.serialized()
    guard let again = try? JSON.parse(text) else { fatalError("serialized text does not parse: \(text)") }
    // Infinite doubles serialize as null; compare only values without them.
    if !text.contains("null") || !hasInfinity(value), again != value { fatalError("round trip differs: \(text)") }
    return 0
}

private func hasInfinity(_ value: JSON) -> Bool {
    switch value {
    case .double(let d): return !d.isFinite
    case .array(let items): return items.contains(where: hasInfinity)
    case .object(let members): return members.contains { hasInfinity($0.1) }
    default: return false
    }
}
