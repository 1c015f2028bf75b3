#if canImport(Glibc)
import Glibc
#endif
import CEpoll
import Runtime

/// A minimal epoll wrapper: level-triggered interest per fd, the fd as the event's data.
///
/// Owned by one thread; every call goes through ``syscall(_:context:_:)``.
struct Epoll {
    static let readable: UInt32 = CEPOLL_IN
    static let writable: UInt32 = CEPOLL_OUT
    static let error: UInt32 = CEPOLL_ERR
    static let hangup: UInt32 = CEPOLL_HUP

    let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity: Int

    init(capacity: Int = 256) throws {
        fd = try syscallOrThrow("epoll_create1", context: "http loop") { epoll_create1(CEPOLL_CLOEXEC) }
        self.capacity = capacity
        events = .allocate(capacity: capacity)
    }

    /// Closes the epoll descriptor and frees the event buffer; call once.
    func close() {
        Socket.close(fd)
        events.deallocate()
    }

    func add(_ target: Int32, _ interest: UInt32) throws { try control(CEPOLL_CTL_ADD, target, interest) }
    func modify(_ target: Int32, _ interest: UInt32) throws { try control(CEPOLL_CTL_MOD, target, interest) }
    func remove(_ target: Int32) throws { try control(CEPOLL_CTL_DEL, target, 0) }

    private func control(_ op: Int32, _ target: Int32, _ interest: UInt32) throws {
        _ = try syscallOrThrow("epoll_ctl", context: "fd \(target)") { cepoll_ctl_fd(fd, op, target, interest) }
    }

    /// Waits up to `timeoutMs` (-1: forever) and calls `body(fd, events)` for each ready descriptor.
    func wait(timeoutMs: Int32, _ body: (Int32, UInt32) -> Void) throws {
        let count: Int32
        switch try syscall("epoll_wait", context: "http loop", { epoll_wait(fd, events, Int32(capacity), timeoutMs) }) {
        case .done(let n): count = n
        case .wouldBlock: count = 0
        }
        for i in 0..<Int(count) {
            body(cepoll_event_fd(events, Int32(i)), cepoll_event_flags(events, Int32(i)))
        }
    }
}

/// A non-blocking eventfd used to wake a thread blocked in epoll_wait or poll.
struct WakeFd {
    let fd: Int32

    init() throws {
        fd = try syscallOrThrow("eventfd", context: "http wake") { eventfd(0, CEVENTFD_NONBLOCK | CEVENTFD_CLOEXEC) }
    }

    /// Makes the descriptor readable. Any thread.
    func signal() {
        var one: UInt64 = 1
        _ = try? syscall("write", context: "http wake") { Glibc.write(fd, &one, 8) }
    }

    /// Resets it to not readable.
    func drain() {
        var counter: UInt64 = 0
        _ = try? syscall("read", context: "http wake") { Glibc.read(fd, &counter, 8) }
    }

    func close() { Socket.close(fd) }
}
