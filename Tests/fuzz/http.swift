import HTTP

/// libFuzzer entry: feeds the bytes to the HTTP request parser in two split points, then checks
/// that the same bytes in one piece give the same outcome (requests and final state).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let whole = run([bytes])
    let cut = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    let split = run([Array(bytes[..<cut]), Array(bytes[cut...])])
    if whole != split { fatalError("split feed differs: \(whole) vs \(split)") }
    return 0
}

private func run(_ pieces: [[UInt8]]) -> [String] {
    var parser = HTTPRequestParser(maxHeaderBytes: 2048, maxBodyBytes: 4096)
    var out: [String] = []
    outer: for piece in pieces {
        parser.append(piece)
        while true {
            switch parser.next(remoteAddress: "fuzz") {
            case .needMore: continue outer
            case .request(let r): out.append("\(r.method) \(r.path) \(r.query.sorted { $0.key < $1.key }) \(r.body.count) \(r.keepAlive)")
            case .error(let e):
                // A failed parser stays failed: ask once more.
                guard case .error(let again) = parser.next(), again == e else { fatalError("error not sticky") }
                out.append("error \(e.status)")
                break outer
            }
        }
    }
    return out
}
