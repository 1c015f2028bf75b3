import Foundation
import OPCUA
import XCTest
import TestSupport

/// Thread-safe collector of subscription callbacks.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [(UInt32, DataValue)] = []
    private var states: [ConnectionState] = []

    func add(_ handle: UInt32, _ value: DataValue) { lock.withLock { values.append((handle, value)) } }
    func add(_ state: ConnectionState) { lock.withLock { states.append(state) } }
    var all: [(UInt32, DataValue)] { lock.withLock { values } }
    var allStates: [ConnectionState] { lock.withLock { states } }
    func clear() { lock.withLock { values.removeAll() } }

    /// Polls until `predicate` holds or `timeout` passes.
    func wait(timeout: TimeInterval, _ predicate: ([(UInt32, DataValue)]) -> Bool) async -> Bool {
        await waitUntil(timeout: timeout) { predicate(all) }
    }
}

final class ClientAsyncuaTests: XCTestCase {
    func ns2(_ name: String) -> NodeId { NodeId("Demo.\(name)", namespace: 2) }

    func testEndpointsBrowseReadWriteAgainstAsyncua() async throws {
        let peer = try PeerProcess(script: "opcua_asyncua_server.py")
        addTeardownBlock { peer.stop() }
        let url = "opc.tcp://127.0.0.1:\(peer.port)/"

        let endpoints = try await OPCUAClient.getEndpoints(url)
        XCTAssertTrue(endpoints.contains { $0.securityPolicyUri == securityPolicyNoneUri })
        XCTAssertTrue(endpoints.flatMap(\.userIdentityTokens).contains { $0.tokenType == .anonymous })

        let client = try await OPCUAClient.connect(url, timeoutMs: 3000)
        addTeardownBlock { await client.close() }

        let objects = try await client.browse(WellKnown.objectsFolder)
        XCTAssertTrue(objects.contains { $0.browseName.name == "Server" })
        XCTAssertTrue(objects.contains { $0.browseName.name == "Demo" })
        let demo = try await client.browse(NodeId("Demo", namespace: 2))
        XCTAssertGreaterThanOrEqual(demo.count, 20)
        let paged = try await client.browse(NodeId("Demo", namespace: 2), maxReferencesPerNode: 3)
        XCTAssertEqual(Set(paged.map(\.nodeId)), Set(demo.map(\.nodeId)), "BrowseNext gives the same references")

        let expected: [(String, Variant)] = [
            ("Boolean", .boolean(true)), ("SByte", .sbyte(-5)), ("Byte", .byte(200)), ("Int16", .int16(-1234)),
            ("UInt16", .uint16(54321)), ("Int32", .int32(-123456)), ("UInt32", .uint32(3_000_000_000)),
            ("Int64", .int64(-9_000_000_000)), ("UInt64", .uint64(18_000_000_000_000_000_000)), ("Float", .float(1.5)),
            ("Double", .double(3.25)), ("String", .string("hello ü")),
            ("Guid", .guid(UUID(uuidString: "72962B91-FA75-4AE6-8D28-B404DC7DAF63")!)),
            ("ByteString", .byteString([1, 2, 3])), ("LocalizedText", .localizedText(LocalizedText("text", locale: "en"))),
            ("QualifiedName", .qualifiedName(QualifiedName("qn", namespace: 2))), ("NodeId", .nodeId(NodeId("x", namespace: 2))),
            ("StatusCode", .statusCode(.badNodeIdUnknown)),
            ("DoubleArray", .array(.double, [.double(1), .double(2), .double(3.5)])),
        ]
        let values = try await client.read(expected.map { ns2($0.0) } + [ns2("DateTime"), NodeId(1007, namespace: 2), ns2("Missing")])
        for (index, (name, value)) in expected.enumerated() {
            XCTAssertEqual(values[index].value, value, name)
            XCTAssertTrue(values[index].statusCode.isGood, name)
        }
        guard case .dateTime(let time) = values[expected.count].value else { return XCTFail("DateTime: \(values[expected.count])") }
        XCTAssertEqual(time.date.timeIntervalSince1970, 1_795_240_800.1, accuracy: 0.001)
        XCTAssertEqual(values[expected.count + 1].value, .double(110.5))
        XCTAssertEqual(values[expected.count + 2].statusCode, .badNodeIdUnknown)

        let statuses = try await client.write([(ns2("Writable"), .double(42.5)), (ns2("Missing"), .double(1))])
        XCTAssertEqual(statuses.first, .good)
        XCTAssertTrue(statuses.last?.isBad ?? false, "a missing node fails alone: \(statuses)")
        let written = try await client.read([ns2("Writable")])
        XCTAssertEqual(written.first?.value, .double(42.5))

        let status = try await client.read([WellKnown.serverStatusState, WellKnown.namespaceArray])
        XCTAssertEqual(status[0].value, .int32(0))
        guard case .array(.string, let namespaces) = status[1].value else { return XCTFail("namespace array") }
        XCTAssertEqual(namespaces[2], .string("urn:linemes:test:asyncua"))
    }

    func testSubscriptionAndReconnectAfterServerRestart() async throws {
        var peer = try PeerProcess(script: "opcua_asyncua_server.py")
        let port = peer.port
        let url = "opc.tcp://127.0.0.1:\(port)/"
        let collected = Collected()
        var options = OPCUAClient.Options(endpointURL: url)
        options.maxReconnectDelayMs = 500
        let client = try OPCUAClient(options: options)
        client.onStateChange { collected.add($0) }
        try await client.connect()

        let result = try await client.subscribe(items: [(ns2("Counter"), 50), (ns2("Missing"), 50)], publishingMs: 100) {
            collected.add($0, $1)
        }
        XCTAssertEqual(result.itemStatuses, [.good, .badNodeIdUnknown])
        let firstRound = await collected.wait(timeout: 5) { values in
            Set(values.filter { $0.0 == 0 }.compactMap { $0.1.value }).count >= 3
        }
        XCTAssertTrue(firstRound, "counter changes arrive: \(collected.all.count)")

        // Restart the server on the same port: the client notices, reconnects and recreates the subscription.
        peer.kill()
        let sawDisconnect = await waitUntil(timeout: 5) {
            collected.allStates.contains { if case .disconnected = $0 { return true } else { return false } }
        }
        XCTAssertTrue(sawDisconnect)
        collected.clear()
        peer = try PeerProcess(script: "opcua_asyncua_server.py", arguments: [String(port)])
        defer { peer.stop() }
        let secondRound = await collected.wait(timeout: 10) { values in
            Set(values.filter { $0.0 == 0 }.compactMap { $0.1.value }).count >= 3
        }
        XCTAssertTrue(secondRound, "values flow again after the restart")
        XCTAssertEqual(client.state, .connected)
        let value = try await client.read([ns2("Double")])
        XCTAssertEqual(value.first?.value, .double(3.25))
        try await client.unsubscribe(result.handle)
        await client.close()
        XCTAssertEqual(client.state, .closed)
    }
}

final class ClientTokenRenewalTests: XCTestCase {
    /// A 2 s channel lifetime: the client renews the token at ~1.5 s, repeatedly, without losing the connection.
    func testSecureChannelTokenRenewalAgainstAsyncua() async throws {
        let peer = try PeerProcess(script: "opcua_asyncua_server.py")
        addTeardownBlock { peer.stop() }
        var options = OPCUAClient.Options(endpointURL: "opc.tcp://127.0.0.1:\(peer.port)/")
        options.channelLifetimeMs = 2000
        let client = try OPCUAClient(options: options)
        let collected = Collected()
        client.onStateChange { collected.add($0) }
        try await client.connect()
        addTeardownBlock { await client.close() }
        // Reads go on until the token was renewed three times (at 75% of the 2 s lifetime: about 4.5 s).
        var values: [Variant?] = []
        let renewed = try await waitUntil(timeout: 15) {
            values.append(try await client.read([NodeId("Demo.Double", namespace: 2)]).first?.value)
            return client.tokenRenewals >= 3
        }
        XCTAssertTrue(renewed, "\(client.tokenRenewals) renewals")
        XCTAssertEqual(values, Array(repeating: .double(3.25), count: values.count), "every read answered across the renewals")
        XCTAssertEqual(collected.allStates, [.connecting, .connected], "no reconnect across three renewals")
    }
}

final class ClientUserNameTests: XCTestCase {
    func testUserNameLoginWhereOffered() async throws {
        let peer = try PeerProcess(script: "opcua_asyncua_server.py", arguments: ["0", "users"])
        addTeardownBlock { peer.stop() }
        let url = "opc.tcp://127.0.0.1:\(peer.port)/"
        let endpoints = try await OPCUAClient.getEndpoints(url)
        XCTAssertTrue(endpoints.flatMap(\.userIdentityTokens).contains { $0.tokenType == .userName })

        let client = try await OPCUAClient.connect(url, identity: .userName("li.wei", password: "s3cret"))
        let value = try await client.read([NodeId("Demo.Double", namespace: 2)])
        XCTAssertEqual(value.first?.value, .double(3.25))
        await client.close()

        do {
            let rejected = try await OPCUAClient.connect(url, identity: .userName("li.wei", password: "wrong"))
            await rejected.close()
            XCTFail("a wrong password must not connect")
        } catch {
            XCTAssertTrue("\(error)".contains("Bad"), "\(error)")
        }
    }
}
