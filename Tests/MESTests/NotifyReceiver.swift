import Foundation
import Runtime
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A scripted HTTP receiver on 127.0.0.1 (real sockets, Nagle off) for the notification tests.
///
/// Each request is read in full (headers and Content-Length body), recorded, then answered as
/// `script` says: an answer, a stall (no answer until the client gives up), or a dropped connection.
/// With `keepAliveRequests` N > 0 an answer says `Connection: keep-alive` and the connection serves
/// further requests, but after its N-th answer the receiver closes it without a word, as a server
/// whose idle timeout ran out does.
final class NotifyReceiver: @unchecked Sendable {
    enum Action: Sendable {
        case answer(Int, String)
        case stall
        case drop
    }

    struct Request: Sendable {
        var path: String
        var headers: [String: String]
        var body: String
        /// The action taken (a 2xx answer means the client got a success).
        var action: Action
        var json: JSON? { try? JSON.parse(body) }
        var idempotencyKey: String? { headers["idempotency-key"] }
        var succeeded: Bool {
            guard case .answer(let status, let text) = action, (200..<300).contains(status) else { return false }
            // A robot's 200 with a non-zero errcode is a failure.
            if let code = (try? JSON.parse(text))?["errcode"]?.intValue { return code == 0 }
            return true
        }
    }

    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var requests: [Request] = []
    private var closed = false
    private var stalled: [Int32] = []
    private var countByPath: [String: Int] = [:]
    /// Chooses the action for the n-th request (0-based) to a path.
    private var script: @Sendable (Int, String) -> Action

    let keepAliveRequests: Int
    /// Connections accepted so far.
    var connections: Int { lock.withLock { accepted } }
    private var accepted = 0

    /// Listens on `port` (0: a free one; a given port is taken again, to stand for a receiver back up).
    init(port: UInt16 = 0, keepAliveRequests: Int = 0, script: @escaping @Sendable (Int, String) -> Action) throws {
        self.script = script
        self.keepAliveRequests = keepAliveRequests
        listener = try Socket.listen(host: "127.0.0.1", port: port, nonBlocking: false)
        self.port = try Socket.localPort(listener)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test.receiver"
        thread.start()
    }

    func setScript(_ script: @escaping @Sendable (Int, String) -> Action) {
        lock.withLock { self.script = script }
    }

    var received: [Request] { lock.withLock { requests } }

    func close() {
        lock.lock()
        closed = true
        let held = stalled
        stalled = []
        lock.unlock()
        for fd in held { Socket.close(fd) }
        shutdown(listener, Int32(SHUT_RDWR))
        Socket.close(listener)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            if lock.withLock({ closed }) { Socket.close(fd); return }
            lock.withLock { accepted += 1 }
            Socket.setNoDelay(fd)
            let thread = Thread { [self] in serve(fd) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        Socket.setTimeouts(fd, milliseconds: 5000)
        var data: [UInt8] = []
        var served = 0
        while true {
            guard let (head, body, rest) = readRequest(fd, data) else { Socket.close(fd); return }
            data = rest
            let lines = head.components(separatedBy: "\r\n")
            let path = lines[0].split(separator: " ").dropFirst().first.map(String.init) ?? ""
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                if let colon = line.firstIndex(of: ":") {
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            lock.lock()
            let nth = countByPath[path, default: 0]
            countByPath[path] = nth + 1
            let action = script(nth, path)
            requests.append(Request(path: path, headers: headers, body: body, action: action))
            lock.unlock()
            served += 1
            switch action {
            case .answer(let status, let text):
                let keep = keepAliveRequests > 0
                let answer = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(text.utf8.count)\r\n"
                    + "Connection: \(keep ? "keep-alive" : "close")\r\n\r\n\(text)"
                try? Array(answer.utf8).withUnsafeBytes { try Socket.writeAll(fd, $0) }
                if !keep || served >= keepAliveRequests { Socket.close(fd); return }
            case .drop:
                Socket.close(fd)
                return
            case .stall:
                lock.withLock { stalled.append(fd) }
                return
            }
        }
    }

    /// Reads one request (head and Content-Length body) from `fd` after the bytes already `buffered`;
    /// nil when the connection ends first.
    private func readRequest(_ fd: Int32, _ buffered: [UInt8]) -> (head: String, body: String, rest: [UInt8])? {
        var data = buffered
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            if let end = Self.headerEnd(data) {
                let head = String(decoding: data[0..<end], as: UTF8.self)
                var length = 0
                for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
                if data.count >= end + 4 + length {
                    let body = String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                    return (head, body, Array(data[(end + 4 + length)...]))
                }
            }
            guard let n = try? buffer.withUnsafeMutableBytes({ try Socket.read(fd, into: $0) }), n > 0 else { return nil }
            data.append(contentsOf: buffer[0..<n])
        }
    }

    static func headerEnd(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 { return i }
        return nil
    }
}
