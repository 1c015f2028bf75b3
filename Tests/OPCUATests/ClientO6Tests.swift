import Foundation
import OPCUA
import XCTest
import TestSupport

/// Our client against o6 (open62541 inside).
final class ClientO6Tests: XCTestCase {
    func demo(_ name: String) -> NodeId { NodeId("Demo.\(name)", namespace: 1) }

    func testEndpointsBrowseReadWriteSubscribeAgainstO6() async throws {
        let peer = try PeerProcess(script: "opcua_o6_server.py", timeout: 60)
        addTeardownBlock { peer.stop() }
        let url = "opc.tcp://127.0.0.1:\(peer.port)"

        let endpoints = try await OPCUAClient.getEndpoints(url)
        XCTAssertTrue(endpoints.contains { $0.securityPolicyUri == securityPolicyNoneUri && $0.securityMode == .none })

        let client = try await OPCUAClient.connect(url, timeoutMs: 5000)
        addTeardownBlock { await client.close() }

        let objects = try await client.browse(WellKnown.objectsFolder)
        XCTAssertTrue(objects.contains { $0.browseName.name == "Server" })
        XCTAssertTrue(objects.contains { $0.browseName.name == "Demo" })
        let demoRefs = try await client.browse(NodeId("Demo", namespace: 1))
        XCTAssertGreaterThanOrEqual(demoRefs.count, 1007)
        let paged = try await client.browse(NodeId("Demo", namespace: 1), maxReferencesPerNode: 100)
        XCTAssertEqual(paged.count, demoRefs.count, "BrowseNext pages through all references")

        let values = try await client.read([demo("Double"), demo("Int32"), demo("String"), demo("Boolean"), demo("DoubleArray"),
                                            demo("Missing"), WellKnown.serverStatusState])
        XCTAssertEqual(values[0].value, .double(3.25))
        XCTAssertEqual(values[1].value, .int32(-42))
        XCTAssertEqual(values[2].value, .string("hello o6"))
        XCTAssertEqual(values[3].value, .boolean(true))
        XCTAssertEqual(values[4].value, .array(.double, [.double(1), .double(2), .double(3.5)]))
        XCTAssertEqual(values[5].statusCode, .badNodeIdUnknown)
        XCTAssertEqual(values[6].value, .int32(0))

        let bulk = try await client.read((0..<1000).map { NodeId(100_000 + UInt32($0), namespace: 1) })
        XCTAssertEqual(bulk.map(\.value), (0..<1000).map { .double(Double($0)) })

        let statuses = try await client.write([(demo("Writable"), .double(9.75)), (demo("Missing"), .double(1))])
        XCTAssertEqual(statuses.first, .good)
        XCTAssertEqual(statuses.last, .badNodeIdUnknown)
        let back = try await client.read([demo("Writable")])
        XCTAssertEqual(back.first?.value, .double(9.75))

        let collected = Collected()
        let result = try await client.subscribe(items: [(demo("Counter"), 50), (demo("Missing"), 50)], publishingMs: 100) {
            collected.add($0, $1)
        }
        XCTAssertEqual(result.itemStatuses.first, .good)
        XCTAssertEqual(result.itemStatuses.last, .badNodeIdUnknown)
        let changes = await collected.wait(timeout: 10) { values in
            Set(values.filter { $0.0 == 0 }.compactMap { $0.1.value }).count >= 5
        }
        XCTAssertTrue(changes, "o6 counter changes arrive: \(collected.all.count)")
        try await client.unsubscribe(result.handle)
    }
}
