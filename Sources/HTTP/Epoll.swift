#if canImport(Glibc)
import Glibc
#endif
import Runtime

// Glibc's Swift module map does not include <sys/epoll.h> or <sys/eventfd.h>, and the package has
// no C target for them, so the three epoll calls and eventfd are declared here by symbol. They take
// only integers and pointers, which the Swift and C calling conventions pass identically on the
// supported Linux targets (x86_64, aarch64). A `CEpoll` system module would replace this file.

@_silgen_name("epoll_create1")
private func c_epoll_create1(_ flags: Int32) -> Int32

@_silgen_name("epoll_ctl")
private func c_epoll_ctl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ event: UnsafeMutableRawPointer?) -> Int32

@_silgen_name("epoll_wait")
private func c_epoll_wait(_ epfd: Int32, _ events: UnsafeMutableRawPointer, _ maxEvents: Int32, _ timeout: Int32) -> Int32

@_silgen_name("eventfd")
private func c_eventfd(_ initial: UInt32, _ flags: Int32) -> Int32

/// A minimal epoll wrapper: level-triggered interest per fd, the fd as the event's data.
///
/// Owned by one thread; every call goes through ``syscall(_:context:_:)``.
struct Epoll {
    static let readable: UInt32 = 0x001   // EPOLLIN
    static let writable: UInt32 = 0x004   // EPOLLOUT
    static let error: UInt32 = 0x008      // EPOLLERR
    static let hangup: UInt32 = 0x010     // EPOLLHUP
    private static let cloexec: Int32 = 0x80000   // EPOLL_CLOEXEC = O_CLOEXEC
    private static let ctlAdd: Int32 = 1, ctlDel: Int32 = 2, ctlMod: Int32 = 3

    // struct epoll_event is packed (12 bytes) on x86_64 and naturally aligned (16 bytes) elsewhere.
    #if arch(x86_64)
    static let eventSize = 12
    static let dataOffset = 4
    #else
    static let eventSize = 16
    static let dataOffset = 8
    #endif

    let fd: Int32
    private let events: UnsafeMutableRawPointer
    private let capacity: Int

    init(capacity: Int = 256) throws {
        fd = try syscallOrThrow("epoll_create1", context: "http loop") { c_epoll_create1(Self.cloexec) }
        self.capacity = capacity
        events = .allocate(byteCount: capacity * Self.eventSize, alignment: 8)
    }

    /// Closes the epoll descriptor and frees the event buffer; call once.
    func close() {
        Socket.close(fd)
        events.deallocate()
    }

    func add(_ target: Int32, _ interest: UInt32) throws { try control(Self.ctlAdd, target, interest) }
    func modify(_ target: Int32, _ interest: UInt32) throws { try control(Self.ctlMod, target, interest) }
    func remove(_ target: Int32) throws { try control(Self.ctlDel, target, 0) }

    private func control(_ op: Int32, _ target: Int32, _ interest: UInt32) throws {
        var event = [UInt8](repeating: 0, count: Self.eventSize)
        try event.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: interest, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt64(UInt32(bitPattern: target)), toByteOffset: Self.dataOffset, as: UInt64.self)
            _ = try syscallOrThrow("epoll_ctl", context: "fd \(target)") { c_epoll_ctl(fd, op, target, raw.baseAddress) }
        }
    }

    /// Waits up to `timeoutMs` (-1: forever) and calls `body(fd, events)` for each ready descriptor.
    func wait(timeoutMs: Int32, _ body: (Int32, UInt32) -> Void) throws {
        let count: Int32
        switch try syscall("epoll_wait", context: "http loop", { c_epoll_wait(fd, events, Int32(capacity), timeoutMs) }) {
        case .done(let n): count = n
        case .wouldBlock: count = 0
        }
        for i in 0..<Int(count) {
            let base = events + i * Self.eventSize
            let flags = base.loadUnaligned(as: UInt32.self)
            let data = (base + Self.dataOffset).loadUnaligned(as: UInt64.self)
            body(Int32(bitPattern: UInt32(truncatingIfNeeded: data)), flags)
        }
    }
}

/// A non-blocking eventfd used to wake a thread blocked in epoll_wait or poll.
struct WakeFd {
    let fd: Int32

    init() throws {
        fd = try syscallOrThrow("eventfd", context: "http wake") { c_eventfd(0, 0x800 | 0x80000) } // EFD_NONBLOCK | EFD_CLOEXEC
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
