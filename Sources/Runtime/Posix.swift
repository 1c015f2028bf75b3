#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from a system call, with the call's name and what it was doing.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let call: String
    public let errno: Int32
    public let context: String

    public init(call: String, errno: Int32, context: String = "") {
        self.call = call
        self.errno = errno
        self.context = context
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        return context.isEmpty ? "\(call): \(reason) (errno \(errno))" : "\(context): \(call): \(reason) (errno \(errno))"
    }

    /// True for EAGAIN / EWOULDBLOCK: a non-blocking call that would block.
    public var wouldBlock: Bool { errno == EAGAIN || errno == EWOULDBLOCK }
}

/// What a non-blocking I/O call returned.
public enum IOResult<T: Sendable>: Sendable {
    case done(T)
    case wouldBlock
}

/// Runs one system call: retries EINTR, reports EAGAIN as `.wouldBlock`, throws any other errno
/// as a ``SystemError`` naming the call and `context`.
///
/// Every socket call of the project goes through here.
@inline(__always)
public func syscall<T: FixedWidthInteger & Sendable>(
    _ name: String, context: @autoclosure () -> String = "", _ body: () -> T
) throws -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        throw SystemError(call: name, errno: code, context: context())
    }
}

/// Like ``syscall(_:context:_:)`` for calls that must not block (or where blocking is an error).
@inline(__always)
@discardableResult
public func syscallOrThrow<T: FixedWidthInteger & Sendable>(
    _ name: String, context: @autoclosure () -> String = "", _ body: () -> T
) throws -> T {
    switch try syscall(name, context: context(), body) {
    case .done(let value): return value
    case .wouldBlock: throw SystemError(call: name, errno: EAGAIN, context: context())
    }
}

/// Small socket helpers over POSIX, all through ``syscall(_:context:_:)``.
public enum Socket {
    /// A parsed `HOST:PORT` IPv4 address.
    public static func ipv4Address(host: String, port: UInt16) throws -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let name = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, name, &address.sin_addr) == 1 else {
            throw SystemError(call: "inet_pton", errno: EINVAL, context: "address \(host) is not an IPv4 address")
        }
        return address
    }

    /// Creates a TCP socket bound to `host:port` and listening. Port 0 picks a free port.
    public static func listen(host: String, port: UInt16, backlog: Int32 = 1024, nonBlocking: Bool = true) throws -> Int32 {
        var address = try ipv4Address(host: host, port: port)
        let fd = try syscallOrThrow("socket", context: "listen \(host):\(port)") {
            Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
        }
        do {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            try withUnsafePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    _ = try syscallOrThrow("bind", context: "listen \(host):\(port)") {
                        Glibc.bind(fd, raw, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            _ = try syscallOrThrow("listen", context: "listen \(host):\(port)") { Glibc.listen(fd, backlog) }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// The local port a socket is bound to.
    public static func localPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                _ = try syscallOrThrow("getsockname") { getsockname(fd, raw, &length) }
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Connects a blocking TCP socket to `host:port`, giving up after `timeoutMs`.
    public static func connect(host: String, port: UInt16, timeoutMs: Int) throws -> Int32 {
        var address = try ipv4Address(host: host, port: port)
        let fd = try syscallOrThrow("socket", context: "connect \(host):\(port)") {
            Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        }
        do {
            let started: Int32 = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    Glibc.connect(fd, raw, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if started != 0 {
                guard errno == EINPROGRESS || errno == EINTR else {
                    throw SystemError(call: "connect", errno: errno, context: "connect \(host):\(port)")
                }
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = try syscallOrThrow("poll", context: "connect \(host):\(port)") { poll(&poller, 1, Int32(timeoutMs)) }
                if ready == 0 { throw SystemError(call: "connect", errno: ETIMEDOUT, context: "connect \(host):\(port)") }
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                if soError != 0 { throw SystemError(call: "connect", errno: soError, context: "connect \(host):\(port)") }
            }
            // Back to blocking mode; callers set their own timeouts.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
            setNoDelay(fd)
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Turns Nagle's algorithm off (small request/response protocols want that).
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sets SO_RCVTIMEO / SO_SNDTIMEO on a blocking socket.
    public static func setTimeouts(_ fd: Int32, milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Makes a socket non-blocking.
    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Writes all of `bytes` to a blocking socket.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, context: String = "") throws {
        var offset = 0
        while offset < bytes.count {
            let written = try syscallOrThrow("send", context: context) {
                send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            offset += written
        }
    }

    /// Reads up to `count` bytes from a blocking socket; 0 means the peer closed.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, context: String = "") throws -> Int {
        try syscallOrThrow("recv", context: context) { recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// One HTTP/1.1 exchange on a blocking socket whose request says `Connection: close`: writes
    /// `request`, reads until the peer closes, and returns the status code (0 if none could be
    /// read) and the body text. For small local clients (simulated orders, benchmarks); no chunked
    /// decoding.
    public static func exchangeClosing(_ fd: Int32, request: [UInt8]) throws -> (status: Int, body: String) {
        try request.withUnsafeBytes { try writeAll(fd, $0) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try read(fd, into: $0) }
            if n == 0 { break }
            data += buffer[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
        return (status, text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? text)
    }

    /// Closes a descriptor, ignoring EINTR (the descriptor is gone either way on Linux).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
