import Foundation
import Runtime

/// One `GET path` on a new connection to 127.0.0.1:`port`; its latency in ms, nil if it failed or was not 200.
public func healthOnce(port: UInt16, path: String = "/api/health") -> Double? {
    let start = Monotonic.nanoseconds()
    guard let response = getOnce(port: port, path: path), response.starts(with: Array("HTTP/1.1 200".utf8)) else { return nil }
    return Double(Monotonic.nanoseconds() - start) / 1e6
}

/// The whole answer (head and body, `Connection: close`) to one `GET path` on a new connection to
/// 127.0.0.1:`port`; nil when the connection or the request failed.
public func getOnce(port: UInt16, path: String, connectTimeoutMs: Int = 2000, timeoutMs: Int = 5000) -> [UInt8]? {
    guard let fd = try? Socket.connect(host: "127.0.0.1", port: port, timeoutMs: connectTimeoutMs) else { return nil }
    defer { Socket.close(fd) }
    Socket.setTimeouts(fd, milliseconds: timeoutMs)
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard (try? request.withUnsafeBytes({ try Socket.writeAll(fd, $0) })) != nil else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        guard let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 else { break }
        response += buffer[0..<n]
    }
    return response
}
