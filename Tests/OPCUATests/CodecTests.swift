import Foundation
import OPCUA
import XCTest

final class CodecTests: XCTestCase {
    func roundTrip<T: UACodable & Equatable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = value.encoded
        var reader = BinaryReader(bytes)
        let decoded = try T(from: &reader)
        XCTAssertEqual(decoded, value, file: file, line: line)
        XCTAssertTrue(reader.isAtEnd, "all bytes consumed", file: file, line: line)
        // Every proper prefix is short input, never a crash or a wrong value.
        for cut in 0..<bytes.count {
            var short = BinaryReader(Array(bytes[..<cut]))
            XCTAssertThrowsError(try T(from: &short), file: file, line: line) { error in
                XCTAssertEqual(error as? DecodeError, .needMoreBytes, "cut at \(cut)", file: file, line: line)
            }
        }
    }

    static let guid = UUID(uuidString: "72962B91-FA75-4AE6-8D28-B404DC7DAF63")!

    static let scalars: [Variant] = [
        .boolean(true), .boolean(false), .sbyte(-128), .byte(255), .int16(-32768), .uint16(65535), .int32(.min), .uint32(.max),
        .int64(.min), .uint64(.max), .float(-1.25), .double(.pi), .double(.infinity), .string("héllo"), .string(nil), .string(""),
        .dateTime(DateTime(ticks: 133_000_000_000_000_000)), .dateTime(.null), .guid(guid), .byteString([0, 1, 255]),
        .byteString(nil), .xmlElement("<a/>"), .nodeId(NodeId("x", namespace: 2)),
        .expandedNodeId(ExpandedNodeId(NodeId(5, namespace: 3), namespaceUri: "urn:x", serverIndex: 7)),
        .statusCode(.badNodeIdUnknown), .qualifiedName(QualifiedName("name", namespace: 4)),
        .localizedText(LocalizedText("text", locale: "de")), .localizedText(LocalizedText(nil)),
        .extensionObject(ExtensionObject(typeId: NodeId(811), body: .binary([1, 2, 3]))),
        .extensionObject(ExtensionObject(typeId: NodeId(1), body: .xml("<x/>"))), .extensionObject(.empty),
        .dataValue(DataValue(.int32(5), status: .uncertain, sourceTimestamp: DateTime(ticks: 1), serverTimestamp: DateTime(ticks: 2),
                             sourcePicoseconds: 3, serverPicoseconds: 4)),
        .diagnosticInfo(DiagnosticInfo(symbolicId: 1, namespaceUri: 2, locale: 3, localizedText: 4, additionalInfo: "more",
                                       innerStatusCode: .bad, innerDiagnosticInfo: DiagnosticInfo(symbolicId: 9))),
    ]

    func testEveryBuiltinTypeRoundTripsAsVariant() throws {
        for value in CodecTests.scalars { try roundTrip(value) }
        XCTAssertEqual(Set(CodecTests.scalars.compactMap(\.type)), Set(BuiltinType.allCases).subtracting([.variant]))
        try roundTrip(Variant.null)
    }

    func testArraysAndMatrices() throws {
        try roundTrip(Variant.array(.double, [.double(1), .double(2)]))
        try roundTrip(Variant.array(.string, [.string("a"), .string(nil)]))
        try roundTrip(Variant.array(.variant, [.int32(1), .string("two"), .array(.byte, [.byte(3)])]))
        try roundTrip(Variant.array(.int32, []))
        try roundTrip(Variant.matrix(.int16, (0..<6).map { .int16(Int16($0)) }, dimensions: [2, 3]))
        // A matrix whose dimensions disagree with its element count is invalid.
        var bad = Variant.matrix(.int16, [.int16(1)], dimensions: [2, 3]).encoded
        var reader = BinaryReader(bad)
        XCTAssertThrowsError(try Variant(from: &reader)) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
        // An array length past the limit is refused before allocating.
        bad = [0x86, 0xFF, 0xFF, 0xFF, 0x7F]
        reader = BinaryReader(bad)
        XCTAssertThrowsError(try Variant(from: &reader)) { XCTAssertEqual($0 as? DecodeError, .invalid("array of 2147483647 elements exceeds limit")) }
    }

    func testKnownEncodings() {
        XCTAssertEqual(NodeId(2258).encoded, [0x01, 0x00, 0xD2, 0x08])
        XCTAssertEqual(NodeId(72).encoded, [0x00, 72])
        XCTAssertEqual(NodeId(1025, namespace: 5).encoded, [0x01, 5, 0x01, 0x04])
        XCTAssertEqual(NodeId(70000, namespace: 1).encoded, [0x02, 1, 0, 0x70, 0x11, 0x01, 0x00])
        XCTAssertEqual(NodeId("Hi", namespace: 1).encoded, [0x03, 1, 0, 2, 0, 0, 0, 0x48, 0x69])
        // Guid 72962B91-FA75-4AE6-8D28-B404DC7DAF63 as in Part 6 §5.1.3.
        XCTAssertEqual(NodeId(namespace: 0, .guid(CodecTests.guid)).encoded,
                       [0x04, 0, 0, 0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A, 0x8D, 0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63])
        XCTAssertEqual(Variant.int32(1).encoded, [6, 1, 0, 0, 0])
        XCTAssertEqual(Variant.string(nil).encoded, [12, 0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertEqual(DataValue(.boolean(true)).encoded, [0x01, 1, 1])
        XCTAssertEqual(LocalizedText("a").encoded, [0x02, 1, 0, 0, 0, 0x61])
        XCTAssertEqual(DateTime(Date(timeIntervalSince1970: 0)).ticks, 116_444_736_000_000_000)
    }

    func testNodeIdForms() throws {
        for (text, node) in [
            ("i=2258", NodeId(2258)),
            ("ns=2;i=1007", NodeId(1007, namespace: 2)),
            ("ns=2;s=Paint.VehicleId", NodeId("Paint.VehicleId", namespace: 2)),
            ("ns=2;s=a;b=c", NodeId("a;b=c", namespace: 2)),
            ("ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", NodeId(namespace: 3, .guid(CodecTests.guid))),
            ("ns=1;b=AQID/w==", NodeId(namespace: 1, .opaque([1, 2, 3, 255]))),
            ("s=plain", NodeId("plain", namespace: 0)),
        ] {
            XCTAssertEqual(NodeId(text), node, text)
            XCTAssertEqual(node.description, text)
            try roundTrip(node)
            try roundTrip(ExpandedNodeId(node))
        }
        // Lower-case GUIDs parse, every form encodes.
        XCTAssertEqual(NodeId("ns=3;g=72962b91-fa75-4ae6-8d28-b404dc7daf63"), NodeId(namespace: 3, .guid(CodecTests.guid)))
        for bad in ["", "x=1", "ns=;i=1", "ns=70000;i=1", "i=-1", "i=abc", "ns=1;g=nope", "ns=1;b=!!", "ns=1", "i"] {
            XCTAssertNil(NodeId(bad), bad)
        }
        try roundTrip(ExpandedNodeId(NodeId(1), namespaceUri: "urn:a", serverIndex: 0))
        try roundTrip(ExpandedNodeId(NodeId("s", namespace: 1), namespaceUri: nil, serverIndex: 3))
        // A NodeId with ExpandedNodeId flags is invalid where a NodeId is expected.
        var reader = BinaryReader([0x80, 5, 0, 0, 0, 0])
        XCTAssertThrowsError(try NodeId(from: &reader)) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
        reader = BinaryReader([0x09, 0, 0])
        XCTAssertThrowsError(try NodeId(from: &reader)) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
    }

    func testStructuresRoundTrip() throws {
        try roundTrip(StatusCode.badTimeout)
        try roundTrip(QualifiedName("q", namespace: 2))
        try roundTrip(LocalizedText("t", locale: "en"))
        try roundTrip(ExtensionObject(typeId: NodeId(811), body: .binary([9])))
        try roundTrip(DataValue())
        try roundTrip(DataValue(.double(1), status: .badNodeIdUnknown, sourceTimestamp: .now))
        try roundTrip(DiagnosticInfo(additionalInfo: "x", innerDiagnosticInfo: DiagnosticInfo(innerStatusCode: .bad)))
        XCTAssertEqual(StatusCode.badNodeIdUnknown.name, "BadNodeIdUnknown")
        XCTAssertTrue(StatusCode(0x4000_0000).isUncertain)
    }

    func testGarbageAndLimits() {
        // Strings past the limit are refused, not allocated.
        var reader = BinaryReader([0xFF, 0xFF, 0xFF, 0x7F], limits: DecodeLimits(maxStringLength: 1000))
        XCTAssertThrowsError(try reader.readString()) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
        // Negative lengths other than -1 are invalid.
        reader = BinaryReader([0xFE, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try reader.readArrayLength()) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
        // Unknown Variant type id.
        reader = BinaryReader([30, 0, 0])
        XCTAssertThrowsError(try Variant(from: &reader)) { XCTAssertNotEqual($0 as? DecodeError, .needMoreBytes) }
        // Deep nesting: variants inside variant arrays past maxDepth.
        var nested: [UInt8] = []
        for _ in 0..<200 { nested += [0x80 | 24, 1, 0, 0, 0] }
        nested += [0]
        reader = BinaryReader(nested)
        XCTAssertThrowsError(try Variant(from: &reader)) { error in
            XCTAssertEqual(error as? DecodeError, .invalid("nesting deeper than 64"))
        }
        // DataValue with unknown mask bits.
        reader = BinaryReader([0x80])
        XCTAssertThrowsError(try DataValue(from: &reader))
    }

    func testServiceMessagesRoundTrip() throws {
        var read = ReadRequest(nodesToRead: [ReadValueId(nodeId: NodeId(2258)), ReadValueId(nodeId: NodeId("a", namespace: 2), attributeId: .displayName)])
        read.requestHeader.requestHandle = 42
        let bytes = encodeServiceMessage(read, encodingId: ReadRequest.encodingId)
        var reader = BinaryReader(bytes)
        XCTAssertEqual(try readServiceTypeId(&reader), 631)
        let decoded = try ReadRequest(from: &reader)
        XCTAssertEqual(decoded.nodesToRead, read.nodesToRead)
        XCTAssertEqual(decoded.requestHeader, read.requestHeader)

        var response = ReadResponse(results: [DataValue(.double(1))])
        response.responseHeader.requestHandle = 42
        let encoded = encodeServiceMessage(response, encodingId: ReadResponse.encodingId)
        XCTAssertEqual(try decodeServiceResponse(encoded, as: ReadResponse.self).results, response.results)
        let fault = encodeServiceMessage(ServiceFault(responseHeader: ResponseHeader(requestHandle: 1, serviceResult: .badSessionIdInvalid)),
                                         encodingId: ServiceFault.encodingId)
        XCTAssertThrowsError(try decodeServiceResponse(fault, as: ReadResponse.self)) { XCTAssertEqual($0 as? StatusCode, .badSessionIdInvalid) }
    }
}
