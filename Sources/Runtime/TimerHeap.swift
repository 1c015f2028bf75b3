/// Something with one wake-up time on an event loop's ``TimerHeap`` (docs/ARCHITECTURE.md: the
/// Modbus and OPC UA client event loops). A class: the heap keeps each element's place in it.
public protocol HeapTimed: AnyObject {
    /// When the loop next fires it (monotonic ns), while `heapIndex >= 0`.
    var wakeAt: UInt64 { get set }
    /// Its place in the heap; -1 when no time is set.
    var heapIndex: Int { get set }
}

/// A binary min-heap of timers by ``HeapTimed/wakeAt``, each holding its index so that setting a
/// new time or removing one is O(log n). Owned by one loop thread.
public struct TimerHeap<Element: HeapTimed> {
    @usableFromInline var items: [Element] = []

    public init() {}

    /// The earliest timer.
    @inlinable public var first: Element? { items.first }
    @inlinable public var count: Int { items.count }

    /// Moves every timer due by `horizon` off the heap into `due`, earliest first. A loop takes them
    /// off first and fires them after, so a timer a handler sets again within the horizon waits for
    /// the next turn instead of firing in a loop.
    @inlinable public mutating func takeDue(by horizon: UInt64, into due: inout [Element]) {
        while let top = items.first, top.wakeAt <= horizon {
            remove(top)
            due.append(top)
        }
    }

    /// How long a loop may wait for its descriptors from now: until the earliest timer (0 if it is
    /// due), at most `limit`.
    @inlinable public func waitNs(atMost limit: UInt64) -> UInt64 {
        guard let next = items.first?.wakeAt else { return limit }
        let now = Monotonic.nanoseconds()
        return next <= now ? 0 : min(limit, next - now)
    }

    /// Sets (or moves) `timer` to `deadline`.
    @inlinable public mutating func set(_ timer: Element, at deadline: UInt64) {
        if timer.heapIndex < 0 {
            timer.wakeAt = deadline
            timer.heapIndex = items.count
            items.append(timer)
            up(timer.heapIndex)
        } else {
            let earlier = deadline < timer.wakeAt
            timer.wakeAt = deadline
            if earlier { up(timer.heapIndex) } else { down(timer.heapIndex) }
        }
    }

    /// Takes `timer` out (nothing if it has no time set here).
    @inlinable public mutating func remove(_ timer: Element) {
        let index = timer.heapIndex
        guard index >= 0, index < items.count, items[index] === timer else { return }
        let last = items.count - 1
        if index != last { swapAt(index, last) }
        items.removeLast()
        timer.heapIndex = -1
        if index < items.count {
            up(index)
            down(index)
        }
    }

    @inlinable mutating func swapAt(_ a: Int, _ b: Int) {
        items.swapAt(a, b)
        items[a].heapIndex = a
        items[b].heapIndex = b
    }

    @inlinable mutating func up(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].wakeAt < items[parent].wakeAt else { break }
            swapAt(child, parent)
            child = parent
        }
    }

    @inlinable mutating func down(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].wakeAt < items[smallest].wakeAt { smallest = left }
            if right < items.count && items[right].wakeAt < items[smallest].wakeAt { smallest = right }
            if smallest == parent { break }
            swapAt(parent, smallest)
            parent = smallest
        }
    }
}
