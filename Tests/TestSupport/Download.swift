import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// A streamed HTTP/1.1 GET on a raw socket that hands the body over as it arrives, decoding
/// `Transfer-Encoding: chunked` (what exports answer; README "Exports (CSV)"), so a test can read
/// a large body without holding it.
public struct Download {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    /// Whether the body ended as its framing says (the last chunk, or the declared length); false
    /// when the connection closed early.
    public var complete: Bool
    /// Body bytes received.
    public var bodyBytes: Int

    /// Sends `GET path` (with `Connection: close`) and calls `onBody` with each piece of the body.
    public static func get(port: UInt16, _ path: String, headers: [String: String] = [:], timeoutMs: Int = 60_000,
                           onBody: ([UInt8]) throws -> Void) throws -> Download {
        let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 2000)
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: timeoutMs)
        var text = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        try Array(text.utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }

        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var eof = false
        func fill() throws {
            let n = try chunk.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            if n == 0 { eof = true } else { buffer.append(contentsOf: chunk[0..<n]) }
        }
        func find(_ pattern: [UInt8], from: Int = 0) -> Int? {
            guard buffer.count >= pattern.count + from else { return nil }
            var i = from
            while i + pattern.count <= buffer.count {
                if buffer[i] == pattern[0] && Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
                i += 1
            }
            return nil
        }
        var headEnd: Int?
        while headEnd == nil {
            headEnd = find([13, 10, 13, 10])
            if headEnd == nil {
                if eof { throw SystemError(call: "download", errno: EPROTO, context: "no header end") }
                try fill()
            }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        buffer.removeSubrange(0..<(headEnd! + 4))
        var result = Download(status: Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0, headers: [:],
                              complete: false, bodyBytes: 0)
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                result.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        if result.headers["transfer-encoding"]?.lowercased() == "chunked" {
            // `start` is where unread bytes begin; bytes are dropped in bulk (memmove), never one by one.
            var start = 0
            func compact() {
                guard start > 0 else { return }
                let count = buffer.count - start
                buffer.withUnsafeMutableBytes { raw in
                    if count > 0 { memmove(raw.baseAddress!, raw.baseAddress! + start, count) }
                }
                buffer.removeLast(start)
                start = 0
            }
            func lineEnd() -> Int? {
                buffer.withUnsafeBytes { raw -> Int? in
                    guard raw.count > start else { return nil }
                    guard let p = memchr(raw.baseAddress! + start, 10, raw.count - start) else { return nil }
                    return raw.baseAddress!.distance(to: UnsafeRawPointer(p))
                }
            }
            while true {
                var end = lineEnd()
                while end == nil {
                    if eof { return result }
                    compact()
                    try fill()
                    end = lineEnd()
                }
                let sizeText = String(decoding: buffer[start..<end!], as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? ""
                guard let size = Int(sizeText, radix: 16) else {
                    throw SystemError(call: "download", errno: EPROTO, context: "bad chunk size \(sizeText)")
                }
                start = end! + 1
                if size == 0 {
                    result.complete = true
                    return result
                }
                while buffer.count - start < size + 2 {
                    if eof { return result }
                    compact()
                    try fill()
                }
                let piece = buffer.withUnsafeBytes { [UInt8](UnsafeRawBufferPointer(rebasing: $0[start..<(start + size)])) }
                try onBody(piece)
                result.bodyBytes += size
                start += size + 2
            }
        }
        let length = result.headers["content-length"].flatMap { Int($0) }
        while true {
            if !buffer.isEmpty {
                try onBody(buffer)
                result.bodyBytes += buffer.count
                buffer.removeAll(keepingCapacity: true)
            }
            if let length, result.bodyBytes >= length { result.complete = true; return result }
            if eof { result.complete = length == nil; return result }
            try fill()
        }
    }

    /// The whole body of a GET (for small answers).
    public static func body(port: UInt16, _ path: String, headers: [String: String] = [:]) throws -> (Download, [UInt8]) {
        var body = [UInt8]()
        let download = try get(port: port, path, headers: headers) { body += $0 }
        return (download, body)
    }
}

/// The resident memory of a process in bytes (`VmRSS` of /proc/PID/status), nil if unreadable.
public func residentBytes(pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
}
