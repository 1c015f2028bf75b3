import Foundation
import OPCUA
import Runtime
import XCTest
import TestSupport

final class FuzzTests: XCTestCase {
    /// Valid service messages to truncate and mutate.
    static func corpus() -> [[UInt8]] {
        var messages: [[UInt8]] = []
        messages.append(encodeServiceMessage(ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId("a", namespace: 2)), ReadValueId(nodeId: NodeId(2258))]),
                                             encodingId: ReadRequest.encodingId))
        messages.append(encodeServiceMessage(ReadResponse(results: CodecTests.scalars.map { DataValue($0, sourceTimestamp: .now) }),
                                             encodingId: ReadResponse.encodingId))
        messages.append(encodeServiceMessage(WriteRequest(nodesToWrite: [WriteValue(nodeId: NodeId(1), value: DataValue(.array(.variant, [.int32(1), .string("x")])))]),
                                             encodingId: WriteRequest.encodingId))
        messages.append(encodeServiceMessage(BrowseRequest(nodesToBrowse: [BrowseDescription(nodeId: WellKnown.objectsFolder)]),
                                             encodingId: BrowseRequest.encodingId))
        let notification = ExtensionObject(encodingId: DataChangeNotification.encodingId,
                                           DataChangeNotification(monitoredItems: [MonitoredItemNotification(clientHandle: 1, value: DataValue(.matrix(.int16, [.int16(1), .int16(2)], dimensions: [1, 2])))]))
        messages.append(encodeServiceMessage(PublishResponse(subscriptionId: 1, availableSequenceNumbers: [1, 2], moreNotifications: false,
                                                             notificationMessage: NotificationMessage(sequenceNumber: 1, publishTime: .now, notificationData: [notification]),
                                                             results: [.good]), encodingId: PublishResponse.encodingId))
        messages.append(encodeServiceMessage(CreateMonitoredItemsRequest(subscriptionId: 1, itemsToCreate: [
            MonitoredItemCreateRequest(itemToMonitor: ReadValueId(nodeId: NodeId(5)), requestedParameters: MonitoringParameters(clientHandle: 1, samplingInterval: 10))]),
                                             encodingId: CreateMonitoredItemsRequest.encodingId))
        messages.append(encodeServiceMessage(ActivateSessionRequest(userIdentityToken: ExtensionObject(encodingId: 321, AnonymousIdentityToken(policyId: "anonymous"))),
                                             encodingId: ActivateSessionRequest.encodingId))
        return messages
    }

    /// Decodes `bytes` as every message type we know; returns how many decoded.
    static func decodeAll(_ bytes: [UInt8]) -> Int {
        var decoded = 0
        func attempt<T: UADecodable>(_ type: T.Type) {
            var reader = BinaryReader(bytes, limits: DecodeLimits(maxStringLength: 1 << 16, maxByteStringLength: 1 << 16, maxArrayLength: 1 << 16, maxDepth: 32))
            if (try? T(from: &reader)) != nil { decoded += 1 }
        }
        var reader = BinaryReader(bytes)
        if (try? readServiceTypeId(&reader)) != nil { decoded += 1 }
        attempt(Variant.self); attempt(DataValue.self); attempt(NodeId.self); attempt(ExpandedNodeId.self)
        attempt(DiagnosticInfo.self); attempt(ExtensionObject.self); attempt(LocalizedText.self)
        attempt(ReadRequest.self); attempt(ReadResponse.self); attempt(WriteRequest.self); attempt(BrowseRequest.self)
        attempt(BrowseResponse.self); attempt(PublishRequest.self); attempt(PublishResponse.self)
        attempt(CreateMonitoredItemsRequest.self); attempt(CreateSessionRequest.self); attempt(CreateSessionResponse.self)
        attempt(ActivateSessionRequest.self); attempt(GetEndpointsResponse.self); attempt(OpenSecureChannelRequest.self)
        attempt(HelloMessage.self)
        for message in [bytes] { _ = try? decodeServiceResponse(message, as: ReadResponse.self) }
        return decoded
    }

    func testSeededFuzzOfDecodersAndChannels() {
        var random = SplitMix64(seed: 0x5EED_0C0A)
        let corpus = FuzzTests.corpus()
        var server = ServerSecureChannel(channelId: 1)
        var client = ClientSecureChannel(endpointUrl: "opc.tcp://127.0.0.1:1")
        _ = client.start()
        var decodedSomething = 0
        for iteration in 0..<20_000 {
            let input: [UInt8]
            switch iteration % 3 {
            case 0:
                input = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:
                let message = corpus[Int.random(in: 0..<corpus.count, using: &random)]
                input = Array(message.prefix(Int.random(in: 0...message.count, using: &random)))
            default:
                var message = corpus[Int.random(in: 0..<corpus.count, using: &random)]
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    message[Int.random(in: 0..<message.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                input = message
            }
            decodedSomething += FuzzTests.decodeAll(input) > 0 ? 1 : 0
            // The same bytes as a stream to both channel ends; restart an end once it closed.
            _ = server.receive(input, nowNs: 0)
            if server.state == .closed { server = ServerSecureChannel(channelId: 1) }
            _ = client.receive(input, nowNs: 0)
            if client.state == .closed {
                client = ClientSecureChannel(endpointUrl: "opc.tcp://127.0.0.1:1")
                _ = client.start()
            }
        }
        XCTAssertGreaterThan(decodedSomething, 1000, "mutations of valid messages often still decode")
    }

    /// Hostile bytes at a live server must not take it down: afterwards a real client still works.
    func testServerSurvivesGarbageConnections() async throws {
        let server = try makeStationServer()
        addTeardownBlock { server.stop() }
        var random = SplitMix64(seed: 42)
        let corpus = FuzzTests.corpus()
        for round in 0..<200 {
            // 200 quick connections against a backlog of 128: on a loaded machine the accept loop may lag
            // and the kernel drops a SYN, retried after 1 s; the wait allows that, a dead server still fails.
            let fd = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutMs: 5000)
            var bytes: [UInt8] = []
            if round % 2 == 0 {
                // A valid HEL then a mutated MSG.
                bytes = TCPFrame(type: .hello, chunkType: UInt8(ascii: "F"),
                                 body: HelloMessage(limits: TransportLimits(), endpointUrl: server.endpointURL).encoded).encoded
            }
            var message = corpus[Int.random(in: 0..<corpus.count, using: &random)]
            for _ in 0..<4 { message[Int.random(in: 0..<message.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            bytes += TCPFrame(type: [.open, .message, .close, .hello][round % 4], chunkType: UInt8(ascii: "F"), body: message).encoded
            try? bytes.withUnsafeBytes { try Socket.writeAll(fd, $0) }
            Socket.close(fd)
        }
        let client = try await OPCUAClient.connect(server.endpointURL, timeoutMs: 2000)
        let value = try await client.read([NodeId("Station.Temperature", namespace: 2)])
        XCTAssertEqual(value.first?.value, .double(21.5))
        await client.close()
    }
}
