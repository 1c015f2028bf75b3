import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport

/// Many clients served by one event loop (docs/ARCHITECTURE.md, "OPC UA clients on event loops"): each
/// gets its own values; a hung or dead server, or one client's reconnect, does not hold up the others.
final class ClientEventLoopTests: XCTestCase {
    /// What one client's poll reported so far.
    final class PollLog: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [[DataValue]] = []
        private var failures: [String] = []

        func record(_ outcome: PollOutcome) {
            lock.withLock {
                switch outcome {
                case .values(let v, _): values.append(v)
                case .failed(let error): failures.append("\(error)")
                }
            }
        }

        var valueCount: Int { lock.withLock { values.count } }
        var failureCount: Int { lock.withLock { failures.count } }
        var lastValues: [DataValue]? { lock.withLock { values.last } }
        var failureTexts: [String] { lock.withLock { failures } }
    }

    final class StateLog: @unchecked Sendable {
        private let lock = NSLock()
        private var states: [ConnectionState] = []
        func record(_ state: ConnectionState) { lock.withLock { states.append(state) } }
        var all: [ConnectionState] { lock.withLock { states } }
    }

    func makeClient(port: UInt16, group: OPCUAClientLoopGroup, requestTimeoutMs: Int = 2000, autoReconnect: Bool = true,
                    states: StateLog? = nil) async throws -> OPCUAClient {
        var options = OPCUAClient.Options(endpointURL: "opc.tcp://127.0.0.1:\(port)")
        options.requestTimeoutMs = requestTimeoutMs
        options.connectTimeoutMs = 2000
        options.autoReconnect = autoReconnect
        options.maxReconnectDelayMs = 200
        options.loops = group
        let client = try OPCUAClient(options: options)
        if let states { client.onStateChange { states.record($0) } }
        try await client.connect()
        return client
    }

    /// Three clients on `group` reading `V.1` … `V.3` every 20 ms straight from the server: the ones a
    /// troubled client on the same loop must not disturb.
    func startHealthyPollers(port: UInt16, group: OPCUAClientLoopGroup) async throws -> [(OPCUAClient, OPCUAPoll, PollLog)] {
        var pollers: [(OPCUAClient, OPCUAPoll, PollLog)] = []
        for i in 1..<4 {
            let client = try await makeClient(port: port, group: group)
            let log = PollLog()
            pollers.append((client, client.startPolling([NodeId("V.\(i)", namespace: 2)], intervalMs: 20) { log.record($0) }, log))
        }
        return pollers
    }

    func stop(_ pollers: [(OPCUAClient, OPCUAPoll, PollLog)]) async {
        for (client, poll, _) in pollers {
            poll.stop()
            await client.close()
        }
    }

    /// Twenty clients on one loop, each polling its own node every 20 ms: every client reads its own value,
    /// the loop owns all twenty sockets, and once they are closed and their polls stopped it lets them go.
    func testManyClientsShareOneLoopAndEachReadsItsOwnValue() async throws {
        let count = 20
        let server = try makeVariableServer(variables: count)
        addTeardownBlock { server.stop() }
        let group = OPCUAClientLoopGroup(threads: 1)
        var clients: [OPCUAClient] = []
        var polls: [OPCUAPoll] = []
        let logs = (0..<count).map { _ in PollLog() }
        for i in 0..<count {
            let client = try await makeClient(port: server.port, group: group)
            clients.append(client)
            polls.append(client.startPolling([NodeId("V.\(i)", namespace: 2)], intervalMs: 20) { logs[i].record($0) })
        }
        let allRead = await waitUntil(timeout: 20) { logs.allSatisfy { $0.valueCount >= 3 } }
        XCTAssertTrue(allRead, "polls per client: \(logs.map(\.valueCount))")
        for i in 0..<count {
            XCTAssertEqual(logs[i].lastValues?.first?.value, .double(Double(i)), "client \(i) read another node's value")
        }
        let attached = await group.loops[0].attachedCount
        XCTAssertEqual(attached, count)
        for poll in polls { poll.stop() }
        for client in clients { await client.close() }
        let released = await waitUntil(timeout: 10) { await group.loops[0].attachedCount == 0 }
        XCTAssertTrue(released)
        let ended = await waitUntil(timeout: 10) { !group.loops[0].isRunning }
        XCTAssertTrue(ended, "the loop thread ends when it has no client and no poll")
    }

    /// A server that stops answering (its answers held by a proxy): that client's reads time out, while the
    /// other clients on the same loop keep reading every slot.
    func testAHungServerDoesNotHoldUpTheOthers() async throws {
        let server = try makeVariableServer(variables: 4)
        addTeardownBlock { server.stop() }
        let proxy = try GateProxy(upstreamPort: server.port)
        addTeardownBlock { proxy.stop() }
        let group = OPCUAClientLoopGroup(threads: 1)
        let hung = try await makeClient(port: proxy.port, group: group, requestTimeoutMs: 300, autoReconnect: false)
        let hungLog = PollLog()
        let hungPoll = hung.startPolling([NodeId("V.0", namespace: 2)], intervalMs: 20) { hungLog.record($0) }
        let others = try await startHealthyPollers(port: server.port, group: group)
        let started = await waitUntil(timeout: 20) { hungLog.valueCount >= 2 && others.allSatisfy { $0.2.valueCount >= 2 } }
        XCTAssertTrue(started)

        proxy.hold(1_000_000)  // never reached: every answer from now on is kept back
        let before = others.map { $0.2.valueCount }
        let carriedOn = await waitUntil(timeout: 20) {
            hungLog.failureCount >= 3 && zip(others, before).allSatisfy { $0.2.valueCount >= $1 + 20 }
        }
        XCTAssertTrue(carriedOn, "hung client failures \(hungLog.failureCount); others \(others.map { $0.2.valueCount }) from \(before)")
        XCTAssertTrue(hungLog.failureTexts.contains("\(ClientError.timeout)"), "\(hungLog.failureTexts.prefix(3))")
        XCTAssertTrue(others.allSatisfy { $0.2.failureCount == 0 }, "the healthy clients never failed")

        hungPoll.stop()
        await stop(others)
        await hung.close()
    }

    /// One client loses its connection (the proxy drops it): it reconnects by itself, with a new session,
    /// and reads again; the others on the loop read all along, and the reconnected socket is back on the loop.
    func testOneClientReconnectingLeavesTheOthersReading() async throws {
        let server = try makeVariableServer(variables: 4)
        addTeardownBlock { server.stop() }
        let proxy = try GateProxy(upstreamPort: server.port)
        addTeardownBlock { proxy.stop() }
        let group = OPCUAClientLoopGroup(threads: 1)
        let states = StateLog()
        let flaky = try await makeClient(port: proxy.port, group: group, states: states)
        let flakyLog = PollLog()
        let flakyPoll = flaky.startPolling([NodeId("V.0", namespace: 2)], intervalMs: 20) { flakyLog.record($0) }
        let others = try await startHealthyPollers(port: server.port, group: group)
        let started = await waitUntil(timeout: 20) { flakyLog.valueCount >= 2 && others.allSatisfy { $0.2.valueCount >= 2 } }
        XCTAssertTrue(started)

        let before = others.map { $0.2.valueCount }
        proxy.dropConnections()
        let lost = await waitUntil(timeout: 20) { states.all.contains { if case .disconnected = $0 { true } else { false } } }
        XCTAssertTrue(lost, "states \(states.all)")
        let valuesAtLoss = flakyLog.valueCount
        let back = await waitUntil(timeout: 20) {
            states.all.last == .connected && flakyLog.valueCount >= valuesAtLoss + 3
        }
        XCTAssertTrue(back, "states \(states.all); values \(flakyLog.valueCount) from \(valuesAtLoss)")
        XCTAssertEqual(flakyLog.lastValues?.first?.value, .double(0))
        XCTAssertTrue(zip(others, before).allSatisfy { $0.2.valueCount > $1 }, "the others read during the reconnect")
        XCTAssertTrue(others.allSatisfy { $0.2.failureCount == 0 }, "the others never failed")
        let attached = await waitUntil(timeout: 10) { await group.loops[0].attachedCount == 4 }
        XCTAssertTrue(attached, "the reconnected client is served by the loop again")

        flakyPoll.stop()
        await flaky.close()
        await stop(others)
    }

    /// A server that is gone: its client fails every slot at once (not connected) and keeps retrying (a
    /// thread only for each attempt, the back-off on the loop), the others read on; closing it returns.
    func testADeadServerFailsItsSlotsAndTheOthersReadOn() async throws {
        let server = try makeVariableServer(variables: 4)
        addTeardownBlock { server.stop() }
        let doomed = try makeVariableServer(variables: 1)
        let group = OPCUAClientLoopGroup(threads: 1)
        let states = StateLog()
        let dead = try await makeClient(port: doomed.port, group: group, states: states)
        let deadLog = PollLog()
        let deadPoll = dead.startPolling([NodeId("V.0", namespace: 2)], intervalMs: 20) { deadLog.record($0) }
        let client = try await makeClient(port: server.port, group: group)
        let log = PollLog()
        let poll = client.startPolling([NodeId("V.1", namespace: 2)], intervalMs: 20) { log.record($0) }
        let started = await waitUntil(timeout: 20) { deadLog.valueCount >= 2 && log.valueCount >= 2 }
        XCTAssertTrue(started)

        doomed.stop()
        let before = log.valueCount
        let failing = await waitUntil(timeout: 20) { deadLog.failureCount >= 5 && log.valueCount >= before + 10 }
        XCTAssertTrue(failing, "dead client failures \(deadLog.failureCount); other \(log.valueCount) from \(before)")
        XCTAssertTrue(deadLog.failureTexts.contains("\(ClientError.notConnected)"), "\(deadLog.failureTexts.suffix(3))")
        XCTAssertEqual(log.failureCount, 0)
        // Between attempts the dead client waits on the loop, with no thread of its own.
        let waits = await waitUntil(timeout: 10) { await group.loops[0].waitingCount == 1 }
        XCTAssertTrue(waits)

        deadPoll.stop()
        await dead.close()
        XCTAssertEqual(dead.state, .closed)
        poll.stop()
        await client.close()
    }

    /// `published` runs after the changes of each publish response went to the handler, on the same thread.
    func testPublishedFollowsTheChangesOfEachResponse() async throws {
        let server = try makeVariableServer(variables: 2)
        addTeardownBlock { server.stop() }
        let group = OPCUAClientLoopGroup(threads: 1)
        let client = try await makeClient(port: server.port, group: group)
        final class Order: @unchecked Sendable {
            let lock = NSLock()
            var events: [String] = []
            func add(_ event: String) { lock.withLock { events.append(event) } }
            var all: [String] { lock.withLock { events } }
        }
        let order = Order()
        _ = try await client.subscribe(items: [MonitoredItemSpec(NodeId("V.0", namespace: 2), samplingIntervalMs: 10),
                                               MonitoredItemSpec(NodeId("V.1", namespace: 2), samplingIntervalMs: 10)],
                                       publishingIntervalMs: 20,
                                       handler: { handle, _ in order.add("item\(handle)") },
                                       published: { order.add("published") })
        let initial = await waitUntil(timeout: 10) { order.all.contains("published") }
        XCTAssertTrue(initial)
        // The initial values of both items come before the first `published`.
        let first = order.all.prefix { $0 != "published" }
        XCTAssertEqual(Set(first), ["item0", "item1"])
        try server.setValue(nodeId: NodeId("V.1", namespace: 2), value: .double(42))
        let changed = await waitUntil(timeout: 10) {
            let events = order.all
            guard let index = events.lastIndex(of: "item1"), index > first.count else { return false }
            return events[(index + 1)...].contains("published")
        }
        XCTAssertTrue(changed, "\(order.all)")
        await client.close()
    }
}
