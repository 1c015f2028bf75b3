/// A one-way stop flag shared between threads.
public final class Flag: Sendable {
    private let value = Locked(false)
    public init() {}
    public var isSet: Bool { value.value }
    public func set() { value.set(true) }
}

/// A count added to from many threads.
public final class Counter: Sendable {
    private let count = Locked(0)
    public init() {}
    public var value: Int { count.value }
    public func add(_ n: Int) { count.withLock { $0 += n } }
}
