import Foundation
import OPCUA
import XCTest

/// The channel state machines, wired to each other in memory: no sockets.
final class ChannelTests: XCTestCase {
    struct Pair {
        var client: ClientSecureChannel
        var server: ServerSecureChannel
        var clientEvents: [ChannelAction] = []
        var serverEvents: [ChannelAction] = []
        var clientChunks = 0
        var serverChunks = 0

        init(clientLimits: TransportLimits = TransportLimits(), serverLimits: TransportLimits = TransportLimits()) {
            client = ClientSecureChannel(endpointUrl: "opc.tcp://127.0.0.1:4840", limits: clientLimits, requestedLifetimeMs: 60_000)
            server = ServerSecureChannel(channelId: 7, limits: serverLimits)
        }

        /// Delivers actions back and forth until both sides are quiet.
        mutating func run(fromClient: [ChannelAction], now: UInt64 = 0) {
            var toServer = fromClient
            var toClient: [ChannelAction] = []
            while !toServer.isEmpty || !toClient.isEmpty {
                for action in toServer {
                    if case .send(let bytes) = action {
                        clientChunks += 1
                        toClient += server.receive(bytes, nowNs: now)
                    } else {
                        clientEvents.append(action)
                    }
                }
                toServer = []
                for action in toClient {
                    if case .send(let bytes) = action {
                        serverChunks += 1
                        toServer += client.receive(bytes, nowNs: now)
                    } else {
                        serverEvents.append(action)
                    }
                }
                toClient = []
            }
        }

        mutating func open() {
            run(fromClient: client.start())
        }
    }

    func testHandshakeOpensBothSides() {
        var pair = Pair()
        pair.open()
        XCTAssertEqual(pair.client.state, .open)
        XCTAssertEqual(pair.server.state, .open)
        XCTAssertEqual(pair.client.token?.channelId, 7)
        XCTAssertEqual(pair.client.token?.revisedLifetime, 60_000)
        XCTAssertTrue(pair.clientEvents.contains { if case .opened = $0 { return true } else { return false } })
        // The renewal is due at 75% of the lifetime.
        XCTAssertEqual(pair.client.renewDeadlineNs, 45_000 * 1_000_000)
    }

    func testLargeMessagesAreChunkedAndReassembled() throws {
        var pair = Pair(clientLimits: TransportLimits(receiveBufferSize: 8192, sendBufferSize: 8192),
                        serverLimits: TransportLimits(receiveBufferSize: 8192, sendBufferSize: 8192))
        pair.open()
        let nodes = (0..<2000).map { ReadValueId(nodeId: NodeId("node-\($0)", namespace: 2)) }
        let requestId = pair.client.makeRequestId()
        pair.clientChunks = 0
        pair.run(fromClient: try pair.client.send(ReadRequest(nodesToRead: nodes), requestId: requestId))
        XCTAssertGreaterThan(pair.clientChunks, 4, "a 40 kB request takes several 8 kB chunks")
        guard case .message(let id, let body)? = pair.serverEvents.last else { return XCTFail("no message") }
        XCTAssertEqual(id, requestId)
        var reader = BinaryReader(body)
        XCTAssertEqual(try readServiceTypeId(&reader), ReadRequest.encodingId)
        XCTAssertEqual(try ReadRequest(from: &reader).nodesToRead, nodes)

        // And a large response back.
        let response = ReadResponse(results: (0..<3000).map { DataValue(.string("value \($0)")) })
        pair.serverChunks = 0
        let actions = pair.server.respond(response, encodingId: ReadResponse.encodingId, requestId: id)
        var delivered: [UInt8]?
        for case .send(let bytes) in actions {
            pair.serverChunks += 1
            for case .message(let rid, let body) in pair.client.receive(bytes, nowNs: 0) where rid == id { delivered = body }
        }
        XCTAssertGreaterThan(pair.serverChunks, 4)
        XCTAssertEqual(try decodeServiceResponse(XCTUnwrap(delivered), as: ReadResponse.self).results, response.results)
    }

    func testChunkCountLimitIsEnforced() throws {
        var pair = Pair(clientLimits: TransportLimits(receiveBufferSize: 8192, sendBufferSize: 8192, maxMessageSize: 0, maxChunkCount: 2),
                        serverLimits: TransportLimits(receiveBufferSize: 8192, sendBufferSize: 8192, maxMessageSize: 0, maxChunkCount: 2))
        pair.open()
        let nodes = (0..<2000).map { ReadValueId(nodeId: NodeId("node-\($0)", namespace: 2)) }
        XCTAssertThrowsError(try pair.client.send(ReadRequest(nodesToRead: nodes), requestId: pair.client.makeRequestId())) {
            XCTAssertEqual($0 as? StatusCode, .badTcpMessageTooLarge)
        }
    }

    func testTokenRenewalAtThreeQuartersOfLifetime() throws {
        var pair = Pair()
        pair.open()
        let first = try XCTUnwrap(pair.client.token)
        XCTAssertTrue(pair.client.tick(nowNs: 44_000 * 1_000_000).isEmpty)
        let renew = pair.client.tick(nowNs: 45_000 * 1_000_000)
        XCTAssertEqual(renew.count, 1)
        XCTAssertTrue(pair.client.tick(nowNs: 45_001 * 1_000_000).isEmpty, "one renewal at a time")
        pair.run(fromClient: renew, now: 45_000 * 1_000_000)
        let second = try XCTUnwrap(pair.client.token)
        XCTAssertEqual(second.channelId, first.channelId)
        XCTAssertEqual(second.tokenId, first.tokenId + 1)
        XCTAssertEqual(pair.client.renewDeadlineNs, 90_000 * 1_000_000)
        // Requests under the new token still flow.
        let requestId = pair.client.makeRequestId()
        pair.run(fromClient: try pair.client.send(ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId(2258))]), requestId: requestId))
        guard case .message(let id, _)? = pair.serverEvents.last else { return XCTFail("no message") }
        XCTAssertEqual(id, requestId)
        // The server closes a channel whose token expired without renewal.
        XCTAssertTrue(pair.server.tick(nowNs: 100_000 * 1_000_000).isEmpty)
        let expired = pair.server.tick(nowNs: 45_000 * 1_000_000 + 76_000 * 1_000_000)
        XCTAssertTrue(expired.contains { if case .closed(.badSecureChannelTokenUnknown, _) = $0 { return true } else { return false } })
    }

    func testOutOfOrderSequenceNumberClosesTheChannel() throws {
        var pair = Pair()
        pair.open()
        let a = try pair.client.send(ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId(1))]), requestId: pair.client.makeRequestId())
        let b = try pair.client.send(ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId(2))]), requestId: pair.client.makeRequestId())
        guard case .send(let second) = b[0], case .send(let first) = a[0] else { return XCTFail() }
        let actions = pair.server.receive(second, nowNs: 0) + pair.server.receive(first, nowNs: 0)
        XCTAssertTrue(actions.contains { if case .closed(.badSequenceNumberInvalid, _) = $0 { return true } else { return false } })
        XCTAssertEqual(pair.server.state, .closed)
        // The server says why in an ERR message.
        guard case .send(let error) = actions.first else { return XCTFail("no ERR") }
        XCTAssertEqual(Array(error.prefix(3)), Array("ERR".utf8))
    }

    func testWrongMessagesAreRejected() {
        // MSG before HEL.
        var server = ServerSecureChannel(channelId: 1)
        let frame = TCPFrame(type: .message, chunkType: UInt8(ascii: "F"), body: [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertTrue(server.receive(frame.encoded, nowNs: 0).contains { if case .closed = $0 { return true } else { return false } })
        // A frame larger than the receive buffer.
        server = ServerSecureChannel(channelId: 1, limits: TransportLimits(receiveBufferSize: 8192))
        XCTAssertTrue(server.receive(Array("HELF".utf8) + [0, 0, 1, 0], nowNs: 0).contains { if case .closed = $0 { return true } else { return false } })
        // A client receiving ERR reports the server's status.
        var client = ClientSecureChannel(endpointUrl: "opc.tcp://x:1")
        _ = client.start()
        let error = TCPFrame(type: .error, chunkType: UInt8(ascii: "F"), body: ErrorMessage(error: .badTcpEndpointUrlInvalid, reason: "no").encoded)
        XCTAssertEqual(client.receive(error.encoded, nowNs: 0), [.closed(.badTcpEndpointUrlInvalid, "no")])
    }

    func testFrameDecoderNeedsMoreBytes() throws {
        var decoder = FrameDecoder(maxFrameSize: 65536)
        let frame = TCPFrame(type: .hello, chunkType: UInt8(ascii: "F"),
                             body: HelloMessage(limits: TransportLimits(), endpointUrl: "opc.tcp://a:1").encoded).encoded
        for byte in frame.dropLast() {
            decoder.append([byte])
            XCTAssertNil(try decoder.next())
        }
        decoder.append([frame.last!])
        XCTAssertEqual(try decoder.next()?.type, .hello)
        XCTAssertNil(try decoder.next())
        decoder.append(Array("XYZF".utf8) + [8, 0, 0, 0])
        XCTAssertThrowsError(try decoder.next())
    }

    func testEndpointURLs() {
        XCTAssertEqual(EndpointURL("opc.tcp://127.0.0.1:4840"), EndpointURL(host: "127.0.0.1", port: 4840))
        XCTAssertEqual(EndpointURL("opc.tcp://localhost/path/x"), EndpointURL(host: "localhost", port: 4840, path: "/path/x"))
        XCTAssertNil(EndpointURL("http://x:1"))
        XCTAssertNil(EndpointURL("opc.tcp://x:99999"))
    }
}
