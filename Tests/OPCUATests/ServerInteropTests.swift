import Foundation
import OPCUA
import XCTest
import TestSupport

/// A small station address space used by server tests.
func makeStationServer() throws -> OPCUAServer {
    let server = OPCUAServer()
    let folder = NodeId("Station", namespace: 2)
    try server.addFolder(nodeId: folder, browseName: "Station")
    try server.addVariable(nodeId: NodeId("Station.Temperature", namespace: 2), browseName: "Temperature", parent: folder, value: .double(21.5))
    try server.addVariable(nodeId: NodeId(1007, namespace: 2), browseName: "FilmThickness", parent: folder, value: .double(110.25))
    try server.addVariable(nodeId: NodeId("Station.Name", namespace: 2), browseName: "Name", parent: folder, value: .string("PAINT-01"))
    try server.addVariable(nodeId: NodeId("Station.Flags", namespace: 2), browseName: "Flags", parent: folder,
                           value: .array(.int32, [.int32(1), .int32(2), .int32(3)]))
    try server.addVariable(nodeId: NodeId("Station.Setpoint", namespace: 2), browseName: "Setpoint", parent: folder,
                           value: .double(0), writable: true)
    try server.addVariable(nodeId: NodeId("Station.Counter", namespace: 2), browseName: "Counter", parent: folder, value: .uint32(0))
    try server.start()
    return server
}

final class ServerInteropTests: XCTestCase {
    func testAsyncuaClientAgainstOurServer() throws {
        let server = try makeStationServer()
        defer { server.stop() }
        let writes = Collected()
        server.onWrite { node, value in
            writes.add(0, DataValue(value))
            return node == NodeId("Station.Setpoint", namespace: 2) ? .good : .badUserAccessDenied
        }
        let peer = try PeerProcess(script: "opcua_asyncua_client.py", arguments: [server.endpointURL])
        defer { peer.stop() }

        guard let browse = peer.waitForLine(timeout: 20, { $0.hasPrefix("BROWSE ") }) else {
            return XCTFail("no browse: \(peer.printedLines)")
        }
        XCTAssertTrue(browse.contains("\"Server\"") && browse.contains("\"Station\""), browse)
        XCTAssertEqual(peer.waitForLine(timeout: 10) { $0.hasPrefix("PATH ") }, "PATH ns=2;s=Station.Temperature")
        guard let read = peer.waitForLine(timeout: 10, { $0.hasPrefix("READ ") }) else { return XCTFail("no read: \(peer.printedLines)") }
        let readJSON = try JSONSerialization.jsonObject(with: Data(read.dropFirst(5).utf8)) as! [String: Any]
        let values = readJSON["values"] as! [Any]
        XCTAssertEqual(values[0] as? Double, 21.5)
        XCTAssertEqual(values[1] as? Double, 110.25)
        XCTAssertEqual(values[2] as? String, "PAINT-01")
        XCTAssertEqual(values[3] as? [Int], [1, 2, 3])
        XCTAssertEqual(readJSON["state"] as? Int, 0)
        XCTAssertEqual((readJSON["ns"] as? [String])?.count, 3)
        XCTAssertEqual(readJSON["missing"] as? String, "BadNodeIdUnknown")

        guard let write = peer.waitForLine(timeout: 10, { $0.hasPrefix("WRITE ") }) else { return XCTFail("no write: \(peer.printedLines)") }
        XCTAssertTrue(write.contains("\"back\": 12.5"), write)
        XCTAssertTrue(write.contains("BadNotWritable"), write)
        XCTAssertEqual(server.value(of: NodeId("Station.Setpoint", namespace: 2))?.value, .double(12.5))
        XCTAssertEqual(writes.all.first?.1.value, .double(12.5))

        XCTAssertNotNil(peer.waitForLine(timeout: 10) { $0 == "SUBSCRIBED" })
        // Change the counter while the client listens: each value once asyncua reported the one before.
        // The peer says DONE after five distinct values (the initial one counts).
        for n in UInt32(1)...5 where !peer.printedLines.contains("DONE") {
            try server.setValue(nodeId: NodeId("Station.Counter", namespace: 2), value: .uint32(n))
            XCTAssertNotNil(peer.waitForLine(timeout: 10) { $0 == "CHANGE \(n)" || $0 == "DONE" },
                            "change \(n) reaches asyncua: \(peer.printedLines.suffix(5))")
        }
        XCTAssertNotNil(peer.waitForLine(timeout: 15) { $0 == "DONE" }, "data changes reach asyncua: \(peer.printedLines.suffix(5))")
        XCTAssertNotNil(peer.waitForLine(timeout: 10) { $0 == "CLOSED" })
    }

    func testOurClientAgainstOurServer() async throws {
        let server = try makeStationServer()
        addTeardownBlock { server.stop() }
        let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
        addTeardownBlock { await client.close() }

        let endpoints = try await client.getEndpoints()
        XCTAssertEqual(endpoints.first?.endpointUrl, server.endpointURL)
        let objects = try await client.browse(WellKnown.objectsFolder)
        XCTAssertEqual(Set(objects.compactMap(\.browseName.name)), ["Server", "Station"])
        let station = try await client.browse(NodeId("Station", namespace: 2), maxReferencesPerNode: 2)
        XCTAssertEqual(station.count, 6)

        let values = try await client.read([NodeId("Station.Temperature", namespace: 2), NodeId(1007, namespace: 2),
                                            NodeId("Missing", namespace: 2), WellKnown.serverStatusCurrentTime])
        XCTAssertEqual(values[0].value, .double(21.5))
        XCTAssertEqual(values[1].value, .double(110.25))
        XCTAssertEqual(values[2].statusCode, .badNodeIdUnknown)
        guard case .dateTime(let now) = values[3].value else { return XCTFail("CurrentTime") }
        XCTAssertEqual(now.date.timeIntervalSinceNow, 0, accuracy: 5)

        let statuses = try await client.write([(NodeId("Station.Setpoint", namespace: 2), .double(7)),
                                               (NodeId("Station.Setpoint", namespace: 2), .string("x")),
                                               (NodeId("Station.Name", namespace: 2), .string("y"))])
        XCTAssertEqual(statuses, [.good, .badTypeMismatch, .badNotWritable])

        let collected = Collected()
        let result = try await client.subscribe(items: [(NodeId("Station.Counter", namespace: 2), 10),
                                                        (NodeId("Nope", namespace: 2), 10)], publishingMs: 20) { collected.add($0, $1) }
        XCTAssertEqual(result.itemStatuses, [.good, .badNodeIdUnknown])
        // Each value is set once the one before arrived, so sampling cannot merge two: all 20 arrive, in order.
        for n in UInt32(1)...20 {
            try server.setValue(nodeId: NodeId("Station.Counter", namespace: 2), value: .uint32(n))
            let arrived = await collected.wait(timeout: 5) { $0.contains { $0.1.value == .uint32(n) } }
            XCTAssertTrue(arrived, "value \(n)")
        }
        let counterValues = collected.all.compactMap(\.1.value).filter { $0 != .uint32(0) }
        XCTAssertEqual(counterValues, (1...20).map { .uint32(UInt32($0)) })

        // The server goes away and comes back on the same port: the client recreates its subscription.
        let port = server.port
        server.stop()
        let down = await waitUntil(timeout: 5) { if case .disconnected = client.state { return true } else { return false } }
        XCTAssertTrue(down)
        do {
            _ = try await client.read([NodeId("Station.Counter", namespace: 2)])
            XCTFail("reads fail at once while disconnected")
        } catch let error as ClientError {
            XCTAssertEqual(error, .notConnected)
        }
        let restarted = OPCUAServer(options: { var o = OPCUAServer.Options(); o.port = port; return o }())
        try restarted.addVariable(nodeId: NodeId("Station.Counter", namespace: 2), browseName: "Counter", value: .uint32(1000))
        try restarted.start()
        addTeardownBlock { restarted.stop() }
        let resumed = await collected.wait(timeout: 10) { $0.contains { $0.1.value == .uint32(1000) } }
        XCTAssertTrue(resumed, "subscription recreated after restart")
    }
}

final class ServerMultiClientTests: XCTestCase {
    /// Several clients subscribe at once; each sees the changes, and one closing does not disturb the others.
    func testSeveralClientsAtOnce() async throws {
        let server = try makeStationServer()
        addTeardownBlock { server.stop() }
        let counter = NodeId("Station.Counter", namespace: 2)
        var clients: [OPCUAClient] = []
        var collectors: [Collected] = []
        for _ in 0..<4 {
            let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
            clients.append(client)
            let collected = Collected()
            collectors.append(collected)
            _ = try await client.subscribe(items: [(counter, 10)], publishingMs: 20) { collected.add($0, $1) }
        }
        let all = clients
        addTeardownBlock { for client in all { await client.close() } }
        await clients[0].close()
        for n in UInt32(1)...10 {
            try server.setValue(nodeId: counter, value: .uint32(n), sourceTime: Date(timeIntervalSince1970: 1_800_000_000))
            for collected in collectors.dropFirst() {
                let arrived = await collected.wait(timeout: 5) { $0.contains { $0.1.value == .uint32(n) } }
                XCTAssertTrue(arrived, "value \(n)")
            }
        }
        for collected in collectors.dropFirst() {
            let done = await collected.wait(timeout: 5) { $0.contains { $0.1.value == .uint32(10) } }
            XCTAssertTrue(done)
            let last = collected.all.last?.1
            XCTAssertEqual(last?.sourceTimestamp?.date, Date(timeIntervalSince1970: 1_800_000_000))
            XCTAssertNotNil(last?.serverTimestamp)
        }
        let reads = try await clients[1].read([counter])
        XCTAssertEqual(reads.first?.value, .uint32(10))
    }
}
