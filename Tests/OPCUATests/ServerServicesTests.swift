import Foundation
import OPCUA
import XCTest

/// The less common services of our server, through the client's raw `call`.
final class ServerServicesTests: XCTestCase {
    func testDiscoveryTranslateModifyRepublishAndDelete() async throws {
        let server = try makeStationServer()
        addTeardownBlock { server.stop() }
        let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
        addTeardownBlock { await client.close() }

        let servers = try await client.call(FindServersRequest(endpointUrl: server.endpointURL), as: FindServersResponse.self)
        XCTAssertEqual(servers.servers.first?.applicationUri, server.options.applicationUri)

        let path = { (names: [String]) in
            BrowsePath(startingNode: WellKnown.objectsFolder, elements: names.map { RelativePathElement(targetName: QualifiedName($0, namespace: 2)) })
        }
        let translated = try await client.call(TranslateBrowsePathsRequest(browsePaths: [path(["Station", "Temperature"]), path(["Station", "Nope"])]),
                                               as: TranslateBrowsePathsResponse.self)
        XCTAssertEqual(translated.results[0].targets.first?.targetId.nodeId, NodeId("Station.Temperature", namespace: 2))
        XCTAssertEqual(translated.results[1].statusCode, .badNoMatch)

        let counter = NodeId("Station.Counter", namespace: 2)
        let created = try await client.call(CreateSubscriptionRequest(publishingInterval: 1), as: CreateSubscriptionResponse.self)
        XCTAssertEqual(created.revisedPublishingInterval, 10, "revised up to the server's minimum")
        let modified = try await client.call(ModifySubscriptionRequest(subscriptionId: created.subscriptionId, publishingInterval: 500),
                                             as: ModifySubscriptionResponse.self)
        XCTAssertEqual(modified.revisedPublishingInterval, 500)
        let items = try await client.call(CreateMonitoredItemsRequest(subscriptionId: created.subscriptionId, itemsToCreate: [
            MonitoredItemCreateRequest(itemToMonitor: ReadValueId(nodeId: counter), requestedParameters: MonitoringParameters(clientHandle: 9, samplingInterval: 0)),
        ]), as: CreateMonitoredItemsResponse.self)
        XCTAssertEqual(items.results.first?.statusCode, .good)
        XCTAssertEqual(items.results.first?.revisedSamplingInterval, 10)
        let itemId = try XCTUnwrap(items.results.first?.monitoredItemId)

        let mode = try await client.call(SetPublishingModeRequest(publishingEnabled: false, subscriptionIds: [created.subscriptionId, 999]),
                                         as: SetPublishingModeResponse.self)
        XCTAssertEqual(mode.results, [.good, .badSubscriptionIdInvalid])

        do {
            _ = try await client.call(RepublishRequest(subscriptionId: created.subscriptionId, retransmitSequenceNumber: 77), as: RepublishResponse.self)
            XCTFail("republish of an unknown sequence number must fail")
        } catch let status as StatusCode {
            XCTAssertEqual(status, .badMessageNotAvailable)
        }

        let deletedItems = try await client.call(DeleteMonitoredItemsRequest(subscriptionId: created.subscriptionId, monitoredItemIds: [itemId, itemId]),
                                                 as: DeleteMonitoredItemsResponse.self)
        XCTAssertEqual(deletedItems.results, [.good, .badMonitoredItemIdInvalid])
        let deleted = try await client.call(DeleteSubscriptionsRequest(subscriptionIds: [created.subscriptionId, created.subscriptionId]),
                                            as: DeleteSubscriptionsResponse.self)
        XCTAssertEqual(deleted.results, [.good, .badSubscriptionIdInvalid])

        // Publishing with acknowledgements through a real subscription; Republish returns a sent message.
        let collected = Collected()
        _ = try await client.subscribe(items: [(counter, 10)], publishingMs: 20) { collected.add($0, $1) }
        for n in UInt32(1)...5 {
            try server.setValue(nodeId: counter, value: .uint32(n))
            let arrived = await collected.wait(timeout: 3) { $0.contains { $0.1.value == .uint32(n) } }
            XCTAssertTrue(arrived, "value \(n)")
        }
        XCTAssertEqual(Array(collected.all.compactMap(\.1.value).suffix(5)), (1...5).map { .uint32(UInt32($0)) })

        // A request without a session is refused.
        let bare = try OPCUAClient(endpointURL: server.endpointURL)
        do {
            _ = try await bare.read([counter])
            XCTFail("not connected")
        } catch let error as ClientError {
            XCTAssertEqual(error, .notConnected)
        }
    }
}
