#if canImport(Glibc)
import Glibc
#endif
import CEpoll

/// A minimal epoll wrapper: level-triggered interest per fd, the fd as the event's data.
///
/// The one readiness loop of the package: the HTTP event loops, the OPC UA client and server and the
/// simulators all wait in one of these, woken from other threads by a ``WakeFd``.
/// Thread-confined, so not `Sendable`: the thread that waits in it owns it; one made on another
/// thread is handed over with ``startThread(named:_:)``. Every call goes through ``syscall(_:context:_:)``.
public struct Epoll {
    public static let readable: UInt32 = CEPOLL_IN
    public static let writable: UInt32 = CEPOLL_OUT
    public static let error: UInt32 = CEPOLL_ERR
    public static let hangup: UInt32 = CEPOLL_HUP
    /// Readable, or the peer hung up or failed: a read will not block.
    public static let input: UInt32 = CEPOLL_IN | CEPOLL_ERR | CEPOLL_HUP

    public let fd: Int32
    fileprivate let events: UnsafeMutablePointer<epoll_event>
    fileprivate let capacity: Int
    fileprivate let context: String

    /// `context` names the owner in error messages ("http loop", "opcua server :4840").
    public init(capacity: Int = 256, context: String = "http loop") throws {
        fd = try syscallOrThrow("epoll_create1", context: context) { epoll_create1(CEPOLL_CLOEXEC) }
        self.capacity = capacity
        self.context = context
        events = .allocate(capacity: capacity)
    }

    /// Closes the epoll descriptor and frees the event buffer; call once.
    public func close() {
        Socket.close(fd)
        events.deallocate()
    }

    public func add(_ target: Int32, _ interest: UInt32) throws { try control(CEPOLL_CTL_ADD, target, interest) }
    public func modify(_ target: Int32, _ interest: UInt32) throws { try control(CEPOLL_CTL_MOD, target, interest) }
    public func remove(_ target: Int32) throws { try control(CEPOLL_CTL_DEL, target, 0) }

    private func control(_ op: Int32, _ target: Int32, _ interest: UInt32) throws {
        _ = try syscallOrThrow("epoll_ctl", context: "fd \(target)") { cepoll_ctl_fd(fd, op, target, interest) }
    }

    /// Waits up to `timeoutMs` (-1: forever) and calls `body(fd, events)` for each ready descriptor.
    public func wait(timeoutMs: Int32, _ body: (Int32, UInt32) throws -> Void) throws {
        let count: Int32
        switch try syscall("epoll_wait", context: context, { epoll_wait(fd, events, Int32(capacity), timeoutMs) }) {
        case .done(let n): count = n
        case .wouldBlock: count = 0
        }
        for i in 0..<Int(count) {
            try body(cepoll_event_fd(events, Int32(i)), cepoll_event_flags(events, Int32(i)))
        }
    }
}

extension Epoll {
    /// Like ``wait(timeoutMs:_:)`` with a timeout in nanoseconds (nil: forever), for loops that keep
    /// sub-millisecond deadlines (the Modbus event loops).
    public func wait(timeoutNs: UInt64?, _ body: (Int32, UInt32) throws -> Void) throws {
        let timeout = timeoutNs.map { Int64(min($0, 3_600_000_000_000)) } ?? -1
        let count: Int32
        switch try syscall("epoll_pwait2", context: context, { cepoll_wait_ns(fd, events, Int32(capacity), timeout) }) {
        case .done(let n): count = n
        case .wouldBlock: count = 0
        }
        for i in 0..<Int(count) {
            try body(cepoll_event_fd(events, Int32(i)), cepoll_event_flags(events, Int32(i)))
        }
    }
}

/// A non-blocking eventfd used to wake a thread blocked in ``Epoll/wait(timeoutMs:_:)``: the one wake-up
/// mechanism of the package.
public struct WakeFd: Sendable {
    public let fd: Int32

    public init() throws {
        fd = try syscallOrThrow("eventfd", context: "wake fd") { eventfd(0, CEVENTFD_NONBLOCK | CEVENTFD_CLOEXEC) }
    }

    /// Makes the descriptor readable. Any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = try? syscall("write", context: "wake fd") { Glibc.write(fd, &one, 8) }
    }

    /// Resets it to not readable.
    public func drain() {
        var counter: UInt64 = 0
        _ = try? syscall("read", context: "wake fd") { Glibc.read(fd, &counter, 8) }
    }

    public func close() { Socket.close(fd) }
}
