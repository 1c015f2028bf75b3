import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport

/// Several OPC UA servers on one ``OPCUAServerLoop`` thread (what the station simulators do):
/// each serves its own address space, subscriptions run on the shared thread, one stopping or
/// restarting leaves the others serving.
final class ServerLoopTests: XCTestCase {
    func makeServer(_ value: UInt32, loop: OPCUAServerLoop, port: UInt16 = 0) throws -> OPCUAServer {
        var options = OPCUAServer.Options()
        options.port = port
        options.loop = loop
        let server = OPCUAServer(options: options)
        try server.addVariable(nodeId: NodeId("Counter", namespace: 2), browseName: "Counter", value: .uint32(value))
        try server.start()
        return server
    }

    func testServersShareOneLoopAndStopOneByOne() async throws {
        let loop = OPCUAServerLoop(name: "opcua-test-loop")
        let counter = NodeId("Counter", namespace: 2)
        var servers: [OPCUAServer] = []
        for i in 0..<5 { servers.append(try makeServer(UInt32(100 + i), loop: loop)) }
        let all = servers
        addTeardownBlock { for server in all { server.stop() } }
        XCTAssertTrue(loop.isRunning)
        var clients: [OPCUAClient] = []
        for (i, server) in servers.enumerated() {
            XCTAssertNotEqual(server.port, 0)
            let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
            clients.append(client)
            let values = try await client.read([counter])
            XCTAssertEqual(values.first?.value, .uint32(UInt32(100 + i)), "server \(i)")
        }
        let connected = clients
        addTeardownBlock { for client in connected { await client.close() } }

        // Subscriptions are sampled and published on the shared thread.
        let collected = Collected()
        _ = try await clients[0].subscribe(items: [(counter, 10)], publishingMs: 20) { collected.add($0, $1) }
        for n in UInt32(1)...5 {
            try servers[0].setValue(nodeId: counter, value: .uint32(n))
            let arrived = await collected.wait(timeout: 5) { $0.contains { $0.1.value == .uint32(n) } }
            XCTAssertTrue(arrived, "value \(n)")
        }

        // One stops: its client loses the connection, the others still read.
        let port = servers[1].port
        servers[1].stop()
        let down = await waitUntil(timeout: 5) { if case .disconnected = clients[1].state { return true } else { return false } }
        XCTAssertTrue(down)
        for i in [0, 2, 3, 4] {
            let values = try await clients[i].read([counter])
            XCTAssertNotNil(values.first?.value, "server \(i) still serves")
        }
        XCTAssertTrue(loop.isRunning)

        // A new server on the same port and loop: the client comes back to it.
        let restarted = try makeServer(777, loop: loop, port: port)
        addTeardownBlock { restarted.stop() }
        XCTAssertEqual(restarted.port, port)
        let back = await waitUntil(timeout: 10) { ((try? await clients[1].read([counter]))?.first?.value) == .uint32(777) }
        XCTAssertTrue(back, "the client reads the restarted server")

        for server in servers + [restarted] { server.stop() }
        XCTAssertTrue(eventually(timeout: 5) { !loop.isRunning }, "the loop thread ends with its last server")
    }

    func testStopBeforeAnyClientAndStartAgain() throws {
        let loop = OPCUAServerLoop(name: "opcua-test-loop2")
        let server = try makeServer(1, loop: loop)
        let port = server.port
        server.stop()
        server.stop()
        XCTAssertThrowsError(try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 500), "the listener is closed once stop() returns")
        try server.start()
        defer { server.stop() }
        let fd = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutMs: 2000)
        Socket.close(fd)
    }
}
