import BenchSupport
import Foundation
import ModbusAdapter
import OPCUA
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Throughput measurements of the client and server, for `tools/bench` (figures, not pass/fail).
public enum OPCUABenchmark {
    public struct ReadFigures: Sendable, CustomStringConvertible {
        /// One Read of one value per round trip, sequentially (one request in flight).
        public var singleReadsPerSecond: Double
        /// Process CPU time (user + system, all threads) per sequential single read, in microseconds.
        public var singleReadCPUMicroseconds: Double
        /// The same sequential reads from a task on Swift's global pool (a thread hop per response), when measured.
        public var singleReadsPerSecondOnGlobalPool: Double?
        /// Values per second when reading `batchSize` values per request.
        public var batchedValuesPerSecond: Double
        public var batchSize: Int
        /// Single-value reads/s with N tasks reading at once on the one client (N requests in flight), by N.
        public var concurrentReadsPerSecond: [Int: Double]
        public var description: String {
            let concurrent = concurrentReadsPerSecond.keys.sorted().map { String(format: "%d: %.0f", $0, concurrentReadsPerSecond[$0]!) }
            return String(format: "single reads/s %.0f (%.1f µs CPU each), batched values/s %.0f (batch %d)", singleReadsPerSecond,
                          singleReadCPUMicroseconds, batchedValuesPerSecond, batchSize)
                + (concurrent.isEmpty ? "" : ", concurrent reads/s by in-flight count " + concurrent.joined(separator: ", "))
        }
    }

    /// Measures reads against a connected client: `seconds` of sequential single reads, then `seconds` of batches of
    /// `batch`, then for each N in `concurrency`, `seconds` of N tasks each reading `single` one read after another.
    /// The reading tasks prefer the client's ``OPCUAClient/taskExecutor`` (they run on its I/O thread, as the
    /// coroutines of an event-loop client do); `alsoOnGlobalPool` adds `seconds` of sequential reads from a task
    /// on Swift's global pool, for comparison.
    public static func reads(client: OPCUAClient, single: NodeId, batch: [NodeId], seconds: Double = 2,
                             concurrency: [Int] = [], alsoOnGlobalPool: Bool = false) async throws -> ReadFigures {
        let cpuBefore = processCPUMicroseconds()
        var started = Monotonic.nanoseconds()
        let count = try await withTaskExecutorPreference(client.taskExecutor) {
            try await sequentialReads(client: client, node: single, until: started + UInt64(seconds * 1e9))
        }
        let cpuPerRead = (processCPUMicroseconds() - cpuBefore) / Double(max(count, 1))
        let singleRate = Double(count) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        var poolRate: Double?
        if alsoOnGlobalPool {
            started = Monotonic.nanoseconds()
            let poolDeadline = started + UInt64(seconds * 1e9)
            let poolCount = try await Task(executorPreference: globalConcurrentExecutor) {
                try await sequentialReads(client: client, node: single, until: poolDeadline)
            }.value
            poolRate = Double(poolCount) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        }
        var values = 0
        started = Monotonic.nanoseconds()
        let deadline = started + UInt64(seconds * 1e9)
        while Monotonic.nanoseconds() < deadline {
            values += try await client.read(batch).count
        }
        let batched = Double(values) / (Double(Monotonic.nanoseconds() - started) / 1e9)
        var concurrent: [Int: Double] = [:]
        for level in concurrency where level > 0 {
            concurrent[level] = try await concurrentReads(client: client, node: single, tasks: level, seconds: seconds)
        }
        return ReadFigures(singleReadsPerSecond: singleRate, singleReadCPUMicroseconds: cpuPerRead,
                           singleReadsPerSecondOnGlobalPool: poolRate, batchedValuesPerSecond: batched,
                           batchSize: batch.count, concurrentReadsPerSecond: concurrent)
    }

    private static func sequentialReads(client: OPCUAClient, node: NodeId, until deadline: UInt64) async throws -> Int {
        var count = 0
        while Monotonic.nanoseconds() < deadline {
            _ = try await client.read([node])
            count += 1
        }
        return count
    }

    /// `tasks` tasks on one client (preferring its task executor), each reading `node` in a loop for `seconds`:
    /// reads per second in all.
    public static func concurrentReads(client: OPCUAClient, node: NodeId, tasks: Int, seconds: Double) async throws -> Double {
        let started = Monotonic.nanoseconds()
        let deadline = started + UInt64(seconds * 1e9)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<tasks {
                group.addTask(executorPreference: client.taskExecutor) {
                    try await sequentialReads(client: client, node: node, until: deadline)
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / (Double(Monotonic.nanoseconds() - started) / 1e9)
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

final class NotificationCounter: Sendable {
    private struct State {
        var count = 0
        var last: [Int64]
    }

    private let state: Locked<State>

    init(items: Int) { state = Locked(State(last: Array(repeating: -1, count: items))) }

    func record(_ handle: UInt32, _ value: DataValue) {
        state.withLock { state in
            state.count += 1
            if Int(handle) < state.last.count, case .int64(let v) = value.value { state.last[Int(handle)] = v }
        }
    }

    func reset() { state.withLock { $0.count = 0 } }
    var total: Int { state.withLock { $0.count } }
    func upToDate(_ round: Int64) -> Int { state.withLock { state in state.last.filter { $0 == round }.count } }
}

/// Bare OPC UA pollers: one client per OPC UA station, each reading all of the station's nodes in
/// one Read on the station's phase grid (the Modbus adapter's ``PollGrid``), doing nothing with the
/// values. Stations read by subscription in the server are polled here too. The OPC UA half of the
/// plant-size benchmark's floor (the protocol stack alone, no server behind it).
public final class PlainOPCUAPollers: Sendable {
    private struct Station: Sendable {
        let client: OPCUAClient
        let nodes: [NodeId]
        let grid: PollGrid
    }

    private let stations: [Station]
    private let stopFlag = Flag()
    private let counts = Counter()
    private let tasks = Locked<[Task<Void, Never>]>([])

    /// Connects a client per OPC UA station (others are skipped), eight at a time.
    public static func connect(stations configs: [StationConfig]) async throws -> PlainOPCUAPollers {
        let wanted = configs.filter { $0.protocol == .opcua }
        var connected: [Station] = []
        for chunk in stride(from: 0, to: wanted.count, by: 8).map({ Array(wanted[$0..<min(wanted.count, $0 + 8)]) }) {
            connected += try await withThrowingTaskGroup(of: Station.self) { group in
                for config in chunk {
                    guard case let .opcua(url, _, _) = config.endpoint else { continue }
                    group.addTask {
                        let client = try await OPCUAClient.connect(url, timeoutMs: 5000)
                        return Station(client: client, nodes: config.signals.compactMap { $0.node.flatMap(NodeId.init) },
                                       grid: PollGrid(interval: UInt64(max(1, config.pollIntervalMs)) * 1_000_000, station: config.id))
                    }
                }
                var made: [Station] = []
                for try await station in group { made.append(station) }
                return made
            }
        }
        return PlainOPCUAPollers(stations: connected)
    }

    private init(stations: [Station]) { self.stations = stations }

    /// Starts polling.
    public func go() {
        let stop = stopFlag, counts = counts
        let started = stations.map { station in
            Task {
                var next = Monotonic.nanoseconds()
                var polls = 0
                while !stop.isSet {
                    _ = try? await station.client.read(station.nodes)
                    polls += 1
                    next = station.grid.slot(after: next)
                    let now = Monotonic.nanoseconds()
                    if next <= now { next = station.grid.slot(after: now) }
                    try? await Task.sleep(nanoseconds: next - now)
                }
                counts.add(polls)
            }
        }
        tasks.withLock { $0 = started }
    }

    /// Stops polling and closes every client; returns the reads made.
    public func stop() async -> Int {
        stopFlag.set()
        for task in tasks.withLock({ $0 }) { await task.value }
        for station in stations { await station.client.close() }
        return counts.value
    }
}
