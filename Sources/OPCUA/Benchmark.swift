import Foundation
import Runtime

/// Throughput measurements of the client and server, for `tools/bench` (figures, not pass/fail).
public enum OPCUABenchmark {
    public struct ReadFigures: Sendable, CustomStringConvertible {
        /// One Read of one value per round trip, sequentially.
        public var singleReadsPerSecond: Double
        /// Values per second when reading `batchSize` values per request.
        public var batchedValuesPerSecond: Double
        public var batchSize: Int
        public var description: String {
            String(format: "single reads/s %.0f, batched values/s %.0f (batch %d)", singleReadsPerSecond, batchedValuesPerSecond, batchSize)
        }
    }

    /// Measures reads against a connected client: `seconds` of single reads, then `seconds` of batches of `batch`.
    public static func reads(client: OPCUAClient, single: NodeId, batch: [NodeId], seconds: Double = 2) async throws -> ReadFigures {
        var count = 0
        var started = Monotonic.nanoseconds()
        var deadline = started + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            _ = try await client.read([single])
            count += 1
        }
        let single = Double(count) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        count = 0
        started = Monotonic.nanoseconds()
        deadline = started + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            count += try await client.read(batch).count
        }
        let batched = Double(count) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        return ReadFigures(singleReadsPerSecond: single, batchedValuesPerSecond: batched, batchSize: batch.count)
    }

    public struct NotificationFigures: Sendable, CustomStringConvertible {
        public var items: Int
        public var notificationsPerSecond: Double
        /// Items whose last value arrived at the end.
        public var itemsUpToDate: Int
        public var description: String {
            String(format: "%d items: %.0f notifications/s, %d/%d items up to date", items, notificationsPerSecond, itemsUpToDate, items)
        }
    }

    /// Starts a server on an ephemeral loopback port with `items` variables, subscribes to all of them
    /// (sampling `samplingMs`, publishing `publishingMs`) and changes every value every `updateMs` for `seconds`.
    public static func notifications(items: Int = 1000, seconds: Double = 3, updateMs: Double = 20,
                                     samplingMs: Double = 10, publishingMs: Double = 20) async throws -> NotificationFigures {
        let server = OPCUAServer()
        let nodes = (0..<items).map { NodeId("Bench.\($0)", namespace: 2) }
        for node in nodes { try server.addVariable(nodeId: node, browseName: "\(node.identifier)", value: .int64(0)) }
        try server.start()
        defer { server.stop() }
        let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 3000)
        let counter = NotificationCounter(items: items)
        let subscription = try await client.subscribe(items: nodes.map { ($0, samplingMs) }, publishingMs: publishingMs) { handle, value in
            counter.record(handle, value)
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        counter.reset()
        let started = Monotonic.nanoseconds()
        let deadline = started + UInt64(seconds * 1e9)
        var round: Int64 = 0
        while Monotonic.nanoseconds() < deadline {
            round += 1
            for node in nodes { try server.setValue(nodeId: node, value: .int64(round)) }
            try await Task.sleep(nanoseconds: UInt64(updateMs * 1e6))
        }
        let elapsed = Double(Monotonic.nanoseconds() - started) / 1e9
        let received = counter.total
        // Let the last round arrive.
        let settle = Monotonic.nanoseconds() + 2_000_000_000
        while counter.upToDate(round) < items && Monotonic.nanoseconds() < settle {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        let upToDate = counter.upToDate(round)
        try await client.unsubscribe(subscription.handle)
        await client.close()
        return NotificationFigures(items: items, notificationsPerSecond: Double(received) / elapsed, itemsUpToDate: upToDate)
    }
}

final class NotificationCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var last: [Int64]

    init(items: Int) { last = Array(repeating: -1, count: items) }

    func record(_ handle: UInt32, _ value: DataValue) {
        lock.withLock {
            count += 1
            if Int(handle) < last.count, case .int64(let v) = value.value { last[Int(handle)] = v }
        }
    }

    func reset() { lock.withLock { count = 0 } }
    var total: Int { lock.withLock { count } }
    func upToDate(_ round: Int64) -> Int { lock.withLock { last.filter { $0 == round }.count } }
}
