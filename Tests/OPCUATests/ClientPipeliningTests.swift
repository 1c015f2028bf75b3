import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Many requests in flight on one secure channel: each gets its own answer, whatever the order;
/// a lost connection fails them all at once; a silent server times them out.
final class ClientPipeliningTests: XCTestCase {
    func connect(through proxy: GateProxy, requestTimeoutMs: Int = 10_000) async throws -> OPCUAClient {
        var options = OPCUAClient.Options(endpointURL: "opc.tcp://127.0.0.1:\(proxy.port)")
        options.requestTimeoutMs = requestTimeoutMs
        options.autoReconnect = false
        let client = try OPCUAClient(options: options)
        try await client.connect()
        return client
    }

    /// 64 reads are sent before any is answered (the proxy holds the answers until it has all 64), then the
    /// answers arrive in reverse order; every read still gets its own node's value. Half the readers run on
    /// Swift's pool, half on the client's task executor.
    func testSixtyFourReadsInFlightGetTheirOwnAnswersInReverseOrder() async throws {
        let count = 64
        let server = try makeVariableServer(variables: count)
        addTeardownBlock { server.stop() }
        let proxy = try GateProxy(upstreamPort: server.port)
        addTeardownBlock { proxy.stop() }
        let client = try await connect(through: proxy)
        addTeardownBlock { await client.close() }

        proxy.hold(count)
        let results = try await withThrowingTaskGroup(of: (Int, DataValue).self) { group in
            for i in 0..<count {
                let body: @Sendable () async throws -> (Int, DataValue) = {
                    (i, try await client.read([NodeId("V.\(i)", namespace: 2)])[0])
                }
                if i % 2 == 0 { group.addTask(operation: body) } else { group.addTask(executorPreference: client.taskExecutor, operation: body) }
            }
            var all: [Int: DataValue] = [:]
            for try await (i, value) in group { all[i] = value }
            return all
        }
        XCTAssertEqual(proxy.releasedBatches, [count], "all \(count) requests were on the wire before the first answer")
        XCTAssertEqual(results.count, count)
        for i in 0..<count { XCTAssertEqual(results[i]?.value, .double(Double(i)), "read \(i)") }

        // The channel still works afterwards (sequence numbers and request ids intact).
        let again = try await client.read([NodeId("V.5", namespace: 2)])
        XCTAssertEqual(again.first?.value, .double(5))
    }

    /// A connection lost with 16 reads in flight fails every one of them at once with connectionLost,
    /// long before their 30 s timeout.
    func testLostConnectionFailsEveryReadInFlight() async throws {
        let server = try makeVariableServer(variables: 16)
        addTeardownBlock { server.stop() }
        let proxy = try GateProxy(upstreamPort: server.port)
        addTeardownBlock { proxy.stop() }
        let client = try await connect(through: proxy, requestTimeoutMs: 30_000)
        addTeardownBlock { await client.close() }

        proxy.hold(Int.max)
        let before = proxy.requestsSeen
        let outcomes = await withTaskGroup(of: String.self) { group in
            for i in 0..<16 {
                group.addTask(executorPreference: i % 2 == 0 ? client.taskExecutor : nil) {
                    do {
                        let value = try await client.read([NodeId("V.\(i)", namespace: 2)])
                        return "answered \(value)"
                    } catch ClientError.connectionLost {
                        return "lost"
                    } catch {
                        return "other error \(error)"
                    }
                }
            }
            group.addTask {
                // Drop the connection once all 16 requests are on the wire.
                _ = await waitUntil(timeout: 5) { proxy.requestsSeen >= before + 16 }
                proxy.dropConnections()
                return "dropped with \(proxy.requestsSeen - before) in flight"
            }
            var all: [String] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        XCTAssertTrue(outcomes.contains("dropped with 16 in flight"), "\(outcomes)")
        XCTAssertEqual(outcomes.filter { $0 == "lost" }.count, 16, "\(outcomes)")
        // Down now: new requests fail at once too.
        do {
            _ = try await client.read([NodeId("V.0", namespace: 2)])
            XCTFail("read on a lost connection must fail")
        } catch let error as ClientError {
            XCTAssertTrue(error == .notConnected || error == .closed, "\(error)")
        }
    }

    /// A server that never answers: the request fails with a timeout after its requestTimeoutMs.
    func testUnansweredReadTimesOut() async throws {
        let server = try makeVariableServer(variables: 1)
        addTeardownBlock { server.stop() }
        let proxy = try GateProxy(upstreamPort: server.port)
        addTeardownBlock { proxy.stop() }
        let client = try await connect(through: proxy, requestTimeoutMs: 300)
        addTeardownBlock { await client.close() }
        proxy.hold(Int.max)
        do {
            _ = try await client.read([NodeId("V.0", namespace: 2)])
            XCTFail("an unanswered read must time out")
        } catch let error as ClientError {
            XCTAssertEqual(error, .timeout)
        }
    }

    /// A task preferring the client's executor keeps running after the client closed (on the global pool).
    func testTaskExecutorOutlivesTheClient() async throws {
        let server = try makeVariableServer(variables: 1)
        addTeardownBlock { server.stop() }
        let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
        let value = try await Task(executorPreference: client.taskExecutor) {
            try await client.read([NodeId("V.0", namespace: 2)])[0].value
        }.value
        XCTAssertEqual(value, .double(0))
        await client.close()
        let after = await Task(executorPreference: client.taskExecutor) { () -> String in
            await Task.yield() // suspend, so the rest runs as a new job on the closed client's executor
            do { _ = try await client.read([NodeId("V.0", namespace: 2)]); return "answered" } catch { return "\(error)" }
        }.value
        XCTAssertEqual(after, "\(ClientError.notConnected)")
    }
}

/// A running server with `variables` Double nodes `ns=2;s=V.i` holding i (the client loop and
/// pipelining tests read them).
func makeVariableServer(variables: Int) throws -> OPCUAServer {
    let server = OPCUAServer()
    for i in 0..<variables {
        try server.addVariable(nodeId: NodeId("V.\(i)", namespace: 2), browseName: "V\(i)", value: .double(Double(i)))
    }
    try server.start()
    return server
}

/// A TCP proxy in front of an OPC UA server that can hold the server's MSG answers: `hold(n)` keeps answers
/// back until n are held, then sends them in reverse order (sequence numbers rewritten to stay consecutive).
/// Counts the MSG requests it forwarded; `dropConnections()` closes both sides, as a lost network would.
final class GateProxy: @unchecked Sendable {
    private let listener: Int32
    private let upstreamPort: UInt16
    let port: UInt16
    private let lock = NSLock()
    private var holdCount = 0
    private var held: [[UInt8]] = []
    private var released: [Int] = []
    private var seen = 0
    private var dropRequested = false
    private var stopRequested = false
    private let done = DispatchSemaphore(value: 0)

    init(upstreamPort: UInt16) throws {
        self.upstreamPort = upstreamPort
        listener = try Socket.listen(host: "127.0.0.1", port: 0, nonBlocking: false)
        port = try Socket.localPort(listener)
        let thread = Thread { [self] in run() }
        thread.name = "gate-proxy"
        thread.start()
    }

    var requestsSeen: Int { lock.withLock { seen } }
    var releasedBatches: [Int] { lock.withLock { released } }

    func hold(_ count: Int) { lock.withLock { holdCount = count } }
    func dropConnections() { lock.withLock { dropRequested = true } }

    func stop() {
        lock.withLock { stopRequested = true }
        done.wait()
        Socket.close(listener)
    }

    private func run() {
        defer { done.signal() }
        var pollers = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        while !lock.withLock({ stopRequested }) {
            guard poll(&pollers, 1, 20) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            guard let server = try? Socket.connect(host: "127.0.0.1", port: upstreamPort, timeoutMs: 2000) else {
                Socket.close(client)
                continue
            }
            relay(client: client, server: server)
            Socket.close(client)
            Socket.close(server)
        }
    }

    private func relay(client: Int32, server: Int32) {
        var fromClient: [UInt8] = []
        var fromServer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let (stop, drop) = lock.withLock { (stopRequested, dropRequested) }
            if stop { return }
            if drop {
                lock.withLock { dropRequested = false; held = [] }
                return
            }
            var pollers = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: server, events: Int16(POLLIN), revents: 0)]
            guard poll(&pollers, 2, 10) > 0 else { continue }
            for (index, fd) in [client, server].enumerated() where pollers[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count <= 0 { return }
                if fd == client {
                    fromClient += buffer[0..<count]
                    for frame in Self.frames(&fromClient) {
                        if frame.starts(with: Array("MSG".utf8)) { lock.withLock { seen += 1 } }
                        send(frame, to: server)
                    }
                } else {
                    fromServer += buffer[0..<count]
                    for frame in Self.frames(&fromServer) {
                        let release: [[UInt8]]? = lock.withLock {
                            guard frame.starts(with: Array("MSG".utf8)), holdCount > 0 else { return [frame] }
                            held.append(frame)
                            guard held.count >= holdCount else { return nil }
                            defer { held = []; holdCount = 0 }
                            released.append(held.count)
                            return Self.reversed(held)
                        }
                        for out in release ?? [] { send(out, to: client) }
                    }
                }
            }
        }
    }

    private func send(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { try? Socket.writeAll(fd, $0) }
    }

    /// Whole UA-TCP frames cut from the front of `buffer`.
    static func frames(_ buffer: inout [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while buffer.count - offset >= 8 {
            let size = Int(UInt32(buffer[offset + 4]) | UInt32(buffer[offset + 5]) << 8 | UInt32(buffer[offset + 6]) << 16 | UInt32(buffer[offset + 7]) << 24)
            guard size >= 8, buffer.count - offset >= size else { break }
            out.append(Array(buffer[offset..<offset + size]))
            offset += size
        }
        buffer.removeFirst(offset)
        return out
    }

    /// The frames in reverse order, their sequence numbers (bytes 16..<20 of a MSG chunk) renumbered in sending order.
    static func reversed(_ frames: [[UInt8]]) -> [[UInt8]] {
        func sequence(_ frame: [UInt8]) -> UInt32 {
            UInt32(frame[16]) | UInt32(frame[17]) << 8 | UInt32(frame[18]) << 16 | UInt32(frame[19]) << 24
        }
        let first = sequence(frames[0])
        return frames.reversed().enumerated().map { index, frame in
            var frame = frame
            let number = first &+ UInt32(index)
            for byte in 0..<4 { frame[16 + byte] = UInt8(truncatingIfNeeded: number >> (8 * UInt32(byte))) }
            return frame
        }
    }
}
