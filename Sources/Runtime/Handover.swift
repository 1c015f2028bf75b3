import Foundation

/// Starts a thread that runs `body` once.
///
/// `body` is `sending`: what it captures moves to the new thread, and the compiler refuses a
/// caller that keeps using it. This is how a thread-confined value (a `Database`, an `Epoll`, a
/// recording reader) is made on one thread and handed to the one that will own it.
public func startThread(named name: String, _ body: sending @escaping () -> Void) {
    // `Locked` takes the closure as `sending` and gives it back out once, to the new thread.
    let handover = Locked<(() -> Void)?>(body)
    let thread = Thread {
        let body = handover.withLock { $0.take() }
        body?()
    }
    thread.name = name
    thread.start()
}
