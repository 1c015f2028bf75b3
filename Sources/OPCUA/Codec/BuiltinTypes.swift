import Foundation

/// An OPC UA DateTime: 100 ns ticks since 1601-01-01 UTC. Zero is the null time.
public struct DateTime: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var ticks: Int64

    /// Ticks between 1601-01-01 and 1970-01-01.
    static let unixEpochTicks: Int64 = 116_444_736_000_000_000

    public init(ticks: Int64) { self.ticks = ticks }

    public init(_ date: Date) {
        let ticks = (date.timeIntervalSince1970 * 10_000_000).rounded() + Double(DateTime.unixEpochTicks)
        self.ticks = ticks <= 0 ? 0 : (ticks >= Double(Int64.max) ? Int64.max : Int64(ticks))
    }

    public static var now: DateTime { DateTime(Date()) }
    public static let null = DateTime(ticks: 0)
    public var isNull: Bool { ticks == 0 }

    public var date: Date { Date(timeIntervalSince1970: Double(ticks - DateTime.unixEpochTicks) / 10_000_000) }

    public static func < (a: DateTime, b: DateTime) -> Bool { a.ticks < b.ticks }
    public var description: String { isNull ? "null" : date.description }
}

/// An OPC UA StatusCode: the top two bits give the severity (00 good, 01 uncertain, 10 bad).
public struct StatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Error {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public var isGood: Bool { rawValue & 0xC000_0000 == 0 }
    public var isUncertain: Bool { rawValue & 0xC000_0000 == 0x4000_0000 }
    public var isBad: Bool { rawValue & 0x8000_0000 != 0 }

    public static let good = StatusCode(0)
    public static let uncertain = StatusCode(0x4000_0000)
    public static let bad = StatusCode(0x8000_0000)
    public static let badUnexpectedError = StatusCode(0x8001_0000)
    public static let badInternalError = StatusCode(0x8002_0000)
    public static let badOutOfMemory = StatusCode(0x8003_0000)
    public static let badCommunicationError = StatusCode(0x8005_0000)
    public static let badEncodingError = StatusCode(0x8006_0000)
    public static let badDecodingError = StatusCode(0x8007_0000)
    public static let badEncodingLimitsExceeded = StatusCode(0x8008_0000)
    public static let badTimeout = StatusCode(0x800A_0000)
    public static let badServiceUnsupported = StatusCode(0x800B_0000)
    public static let badShutdown = StatusCode(0x800C_0000)
    public static let badServerNotConnected = StatusCode(0x800D_0000)
    public static let badNothingToDo = StatusCode(0x800F_0000)
    public static let badTooManyOperations = StatusCode(0x8010_0000)
    public static let badSecureChannelIdInvalid = StatusCode(0x8022_0000)
    public static let badSessionIdInvalid = StatusCode(0x8025_0000)
    public static let badSessionClosed = StatusCode(0x8026_0000)
    public static let badSessionNotActivated = StatusCode(0x8027_0000)
    public static let badSubscriptionIdInvalid = StatusCode(0x8028_0000)
    public static let badRequestHeaderInvalid = StatusCode(0x802A_0000)
    public static let badTimestampsToReturnInvalid = StatusCode(0x802B_0000)
    public static let badIdentityTokenInvalid = StatusCode(0x8020_0000)
    public static let badIdentityTokenRejected = StatusCode(0x8021_0000)
    public static let badUserAccessDenied = StatusCode(0x801F_0000)
    public static let badNodeIdInvalid = StatusCode(0x8033_0000)
    public static let badNodeIdUnknown = StatusCode(0x8034_0000)
    public static let badAttributeIdInvalid = StatusCode(0x8035_0000)
    public static let badIndexRangeInvalid = StatusCode(0x8036_0000)
    public static let badNotReadable = StatusCode(0x803A_0000)
    public static let badNotWritable = StatusCode(0x803B_0000)
    public static let badOutOfRange = StatusCode(0x803C_0000)
    public static let badNotSupported = StatusCode(0x803D_0000)
    public static let badNotFound = StatusCode(0x803E_0000)
    public static let badMonitoredItemIdInvalid = StatusCode(0x8042_0000)
    public static let badMonitoredItemFilterUnsupported = StatusCode(0x8044_0000)
    public static let badContinuationPointInvalid = StatusCode(0x804A_0000)
    public static let badNoContinuationPoints = StatusCode(0x804B_0000)
    public static let badReferenceTypeIdInvalid = StatusCode(0x804C_0000)
    public static let badBrowseDirectionInvalid = StatusCode(0x804D_0000)
    public static let badNoMatch = StatusCode(0x806F_0000)
    public static let badTooManySubscriptions = StatusCode(0x8077_0000)
    public static let badTooManyPublishRequests = StatusCode(0x8078_0000)
    public static let badNoSubscription = StatusCode(0x8079_0000)
    public static let badSequenceNumberUnknown = StatusCode(0x807A_0000)
    public static let badMessageNotAvailable = StatusCode(0x807B_0000)
    public static let badTcpMessageTypeInvalid = StatusCode(0x807E_0000)
    public static let badTcpSecureChannelUnknown = StatusCode(0x807F_0000)
    public static let badTcpMessageTooLarge = StatusCode(0x8080_0000)
    public static let badTcpInternalError = StatusCode(0x8082_0000)
    public static let badTcpEndpointUrlInvalid = StatusCode(0x8083_0000)
    public static let badRequestInterrupted = StatusCode(0x8084_0000)
    public static let badRequestTimeout = StatusCode(0x8085_0000)
    public static let badSecureChannelClosed = StatusCode(0x8086_0000)
    public static let badSecureChannelTokenUnknown = StatusCode(0x8087_0000)
    public static let badSequenceNumberInvalid = StatusCode(0x8088_0000)
    public static let badProtocolVersionUnsupported = StatusCode(0x80BE_0000)
    public static let badConnectionClosed = StatusCode(0x80AE_0000)
    public static let badInvalidState = StatusCode(0x80AF_0000)
    public static let badTypeMismatch = StatusCode(0x8074_0000)
    public static let badWriteNotSupported = StatusCode(0x8073_0000)
    public static let badWaitingForInitialData = StatusCode(0x8032_0000)
    public static let badMaxConnectionsReached = StatusCode(0x80B7_0000)
    public static let badSecurityPolicyRejected = StatusCode(0x8055_0000)
    public static let badTooManySessions = StatusCode(0x8056_0000)
    public static let goodSubscriptionTransferred = StatusCode(0x002D_0000)

    static let names: [UInt32: String] = [
        0: "Good", 0x4000_0000: "Uncertain", 0x8000_0000: "Bad",
        0x8001_0000: "BadUnexpectedError", 0x8002_0000: "BadInternalError", 0x8003_0000: "BadOutOfMemory",
        0x8005_0000: "BadCommunicationError", 0x8006_0000: "BadEncodingError", 0x8007_0000: "BadDecodingError",
        0x8008_0000: "BadEncodingLimitsExceeded", 0x800A_0000: "BadTimeout", 0x800B_0000: "BadServiceUnsupported",
        0x800C_0000: "BadShutdown", 0x800D_0000: "BadServerNotConnected", 0x800F_0000: "BadNothingToDo",
        0x8010_0000: "BadTooManyOperations", 0x8022_0000: "BadSecureChannelIdInvalid",
        0x8025_0000: "BadSessionIdInvalid", 0x8026_0000: "BadSessionClosed", 0x8027_0000: "BadSessionNotActivated",
        0x8028_0000: "BadSubscriptionIdInvalid", 0x802A_0000: "BadRequestHeaderInvalid",
        0x8020_0000: "BadIdentityTokenInvalid", 0x8021_0000: "BadIdentityTokenRejected",
        0x801F_0000: "BadUserAccessDenied", 0x8033_0000: "BadNodeIdInvalid", 0x8034_0000: "BadNodeIdUnknown",
        0x8035_0000: "BadAttributeIdInvalid", 0x8036_0000: "BadIndexRangeInvalid", 0x803A_0000: "BadNotReadable",
        0x803B_0000: "BadNotWritable", 0x803C_0000: "BadOutOfRange", 0x803D_0000: "BadNotSupported",
        0x803E_0000: "BadNotFound", 0x8042_0000: "BadMonitoredItemIdInvalid",
        0x8044_0000: "BadMonitoredItemFilterUnsupported", 0x804A_0000: "BadContinuationPointInvalid",
        0x804B_0000: "BadNoContinuationPoints", 0x804C_0000: "BadReferenceTypeIdInvalid",
        0x804D_0000: "BadBrowseDirectionInvalid", 0x806F_0000: "BadNoMatch", 0x8077_0000: "BadTooManySubscriptions",
        0x8078_0000: "BadTooManyPublishRequests", 0x8079_0000: "BadNoSubscription",
        0x807A_0000: "BadSequenceNumberUnknown", 0x807B_0000: "BadMessageNotAvailable",
        0x807E_0000: "BadTcpMessageTypeInvalid", 0x807F_0000: "BadTcpSecureChannelUnknown",
        0x8080_0000: "BadTcpMessageTooLarge", 0x8082_0000: "BadTcpInternalError",
        0x8083_0000: "BadTcpEndpointUrlInvalid", 0x8084_0000: "BadRequestInterrupted",
        0x8085_0000: "BadRequestTimeout", 0x8086_0000: "BadSecureChannelClosed",
        0x8087_0000: "BadSecureChannelTokenUnknown", 0x8088_0000: "BadSequenceNumberInvalid",
        0x80BE_0000: "BadProtocolVersionUnsupported", 0x80AE_0000: "BadConnectionClosed",
        0x80AF_0000: "BadInvalidState", 0x8074_0000: "BadTypeMismatch", 0x8073_0000: "BadWriteNotSupported",
        0x8032_0000: "BadWaitingForInitialData", 0x80B7_0000: "BadMaxConnectionsReached",
        0x8055_0000: "BadSecurityPolicyRejected", 0x8056_0000: "BadTooManySessions",
        0x002D_0000: "GoodSubscriptionTransferred",
    ]

    /// The symbolic name (`BadNodeIdUnknown`), or the hex code when unknown.
    public var name: String {
        StatusCode.names[rawValue] ?? StatusCode.names[rawValue & 0xFFFF_0000] ?? StatusCode.securityNames[rawValue & 0xFFFF_0000] ?? String(format: "0x%08X", rawValue)
    }
    public var description: String { name }
}

extension StatusCode: UACodable {
    public func encode(to writer: inout BinaryWriter) { writer.write(rawValue) }
    public init(from reader: inout BinaryReader) throws { rawValue = try reader.readUInt32() }
}

/// A name qualified by a namespace index.
public struct QualifiedName: Hashable, Sendable, CustomStringConvertible {
    public var namespace: UInt16
    public var name: String?
    public init(_ name: String?, namespace: UInt16 = 0) {
        self.namespace = namespace
        self.name = name
    }
    public var description: String { namespace == 0 ? (name ?? "") : "\(namespace):\(name ?? "")" }
}

extension QualifiedName: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        writer.write(namespace)
        writer.write(name)
    }
    public init(from reader: inout BinaryReader) throws {
        namespace = try reader.readUInt16()
        name = try reader.readString()
    }
}

/// A text with an optional locale.
public struct LocalizedText: Hashable, Sendable, CustomStringConvertible {
    public var locale: String?
    public var text: String?
    public init(_ text: String?, locale: String? = nil) {
        self.text = text
        self.locale = locale
    }
    public var description: String { text ?? "" }
}

extension LocalizedText: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        writer.write(UInt8((locale != nil ? 1 : 0) | (text != nil ? 2 : 0)))
        if let locale { writer.write(locale) }
        if let text { writer.write(text) }
    }
    public init(from reader: inout BinaryReader) throws {
        let mask = try reader.readUInt8()
        guard mask & ~0x03 == 0 else { throw DecodeError.invalid("LocalizedText mask \(mask)") }
        locale = mask & 1 != 0 ? try reader.readString() : nil
        text = mask & 2 != 0 ? try reader.readString() : nil
    }
}

/// A structure wrapped with the NodeId of its encoding; the body is kept as raw bytes.
public struct ExtensionObject: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case none
        case binary([UInt8])
        case xml(String?)
    }
    public var typeId: NodeId
    public var body: Body

    public init(typeId: NodeId = .null, body: Body = .none) {
        self.typeId = typeId
        self.body = body
    }

    /// Wraps an encodable structure under its binary encoding id.
    public init<T: UAEncodable>(encodingId: UInt32, _ value: T) {
        self.init(typeId: NodeId(encodingId), body: .binary(value.encoded))
    }

    public static let empty = ExtensionObject()

    /// Decodes the binary body as `T`, if the body is binary.
    public func decodeBody<T: UADecodable>(_ type: T.Type, limits: DecodeLimits = .standard) throws -> T? {
        guard case .binary(let bytes) = body else { return nil }
        var reader = BinaryReader(bytes, limits: limits)
        return try T(from: &reader)
    }
}

extension ExtensionObject: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        writer.write(typeId)
        switch body {
        case .none:
            writer.write(UInt8(0))
        case .binary(let bytes):
            writer.write(UInt8(1))
            writer.writeByteString(bytes)
        case .xml(let xml):
            writer.write(UInt8(2))
            writer.write(xml)
        }
    }
    public init(from reader: inout BinaryReader) throws {
        typeId = try reader.read()
        switch try reader.readUInt8() {
        case 0: body = .none
        case 1: body = .binary(try reader.readByteString() ?? [])
        case 2: body = .xml(try reader.readString())
        case let other: throw DecodeError.invalid("ExtensionObject encoding \(other)")
        }
    }
}

/// Extra information about a StatusCode, indexing the response's string table.
public final class DiagnosticInfo: Hashable, Sendable, UACodable {
    public let symbolicId: Int32?
    public let namespaceUri: Int32?
    public let locale: Int32?
    public let localizedText: Int32?
    public let additionalInfo: String?
    public let innerStatusCode: StatusCode?
    public let innerDiagnosticInfo: DiagnosticInfo?

    public init(symbolicId: Int32? = nil, namespaceUri: Int32? = nil, locale: Int32? = nil, localizedText: Int32? = nil,
                additionalInfo: String? = nil, innerStatusCode: StatusCode? = nil, innerDiagnosticInfo: DiagnosticInfo? = nil) {
        self.symbolicId = symbolicId
        self.namespaceUri = namespaceUri
        self.locale = locale
        self.localizedText = localizedText
        self.additionalInfo = additionalInfo
        self.innerStatusCode = innerStatusCode
        self.innerDiagnosticInfo = innerDiagnosticInfo
    }

    public func encode(to writer: inout BinaryWriter) {
        var mask: UInt8 = 0
        if symbolicId != nil { mask |= 0x01 }
        if namespaceUri != nil { mask |= 0x02 }
        if localizedText != nil { mask |= 0x04 }
        if locale != nil { mask |= 0x08 }
        if additionalInfo != nil { mask |= 0x10 }
        if innerStatusCode != nil { mask |= 0x20 }
        if innerDiagnosticInfo != nil { mask |= 0x40 }
        writer.write(mask)
        if let symbolicId { writer.write(symbolicId) }
        if let namespaceUri { writer.write(namespaceUri) }
        if let locale { writer.write(locale) }
        if let localizedText { writer.write(localizedText) }
        if let additionalInfo { writer.write(additionalInfo) }
        if let innerStatusCode { writer.write(innerStatusCode) }
        if let innerDiagnosticInfo { innerDiagnosticInfo.encode(to: &writer) }
    }

    public convenience init(from reader: inout BinaryReader) throws {
        let mask = try reader.readUInt8()
        guard mask & 0x80 == 0 else { throw DecodeError.invalid("DiagnosticInfo mask \(mask)") }
        let symbolicId = mask & 0x01 != 0 ? try reader.readInt32() : nil
        let namespaceUri = mask & 0x02 != 0 ? try reader.readInt32() : nil
        let locale = mask & 0x08 != 0 ? try reader.readInt32() : nil
        let localizedText = mask & 0x04 != 0 ? try reader.readInt32() : nil
        let additionalInfo = mask & 0x10 != 0 ? try reader.readString() : nil
        let innerStatusCode: StatusCode? = mask & 0x20 != 0 ? try reader.read() : nil
        let inner: DiagnosticInfo? = mask & 0x40 != 0 ? try reader.nested { try DiagnosticInfo(from: &$0) } : nil
        self.init(symbolicId: symbolicId, namespaceUri: namespaceUri, locale: locale, localizedText: localizedText,
                  additionalInfo: additionalInfo, innerStatusCode: innerStatusCode, innerDiagnosticInfo: inner)
    }

    public static func == (a: DiagnosticInfo, b: DiagnosticInfo) -> Bool {
        a.symbolicId == b.symbolicId && a.namespaceUri == b.namespaceUri && a.locale == b.locale
            && a.localizedText == b.localizedText && a.additionalInfo == b.additionalInfo
            && a.innerStatusCode == b.innerStatusCode && a.innerDiagnosticInfo == b.innerDiagnosticInfo
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(symbolicId)
        hasher.combine(additionalInfo)
        hasher.combine(innerStatusCode)
    }
}

/// A value with its status and timestamps.
public struct DataValue: Hashable, Sendable {
    public var value: Variant?
    public var status: StatusCode?
    public var sourceTimestamp: DateTime?
    public var sourcePicoseconds: UInt16?
    public var serverTimestamp: DateTime?
    public var serverPicoseconds: UInt16?

    public init(_ value: Variant? = nil, status: StatusCode? = nil, sourceTimestamp: DateTime? = nil,
                serverTimestamp: DateTime? = nil, sourcePicoseconds: UInt16? = nil, serverPicoseconds: UInt16? = nil) {
        self.value = value
        self.status = status
        self.sourceTimestamp = sourceTimestamp
        self.serverTimestamp = serverTimestamp
        self.sourcePicoseconds = sourcePicoseconds
        self.serverPicoseconds = serverPicoseconds
    }

    /// The status, Good when absent.
    public var statusCode: StatusCode { status ?? .good }
}

extension DataValue: UACodable {
    public func encode(to writer: inout BinaryWriter) {
        var mask: UInt8 = 0
        if value != nil { mask |= 0x01 }
        if status != nil && status != .good { mask |= 0x02 }
        if sourceTimestamp != nil { mask |= 0x04 }
        if serverTimestamp != nil { mask |= 0x08 }
        if sourcePicoseconds != nil { mask |= 0x10 }
        if serverPicoseconds != nil { mask |= 0x20 }
        writer.write(mask)
        if let value { value.encode(to: &writer) }
        if mask & 0x02 != 0, let status { writer.write(status) }
        if let sourceTimestamp { writer.write(sourceTimestamp.ticks) }
        if let sourcePicoseconds { writer.write(sourcePicoseconds) }
        if let serverTimestamp { writer.write(serverTimestamp.ticks) }
        if let serverPicoseconds { writer.write(serverPicoseconds) }
    }

    public init(from reader: inout BinaryReader) throws {
        let mask = try reader.readUInt8()
        guard mask & 0xC0 == 0 else { throw DecodeError.invalid("DataValue mask \(mask)") }
        value = mask & 0x01 != 0 ? try reader.nested { try Variant(from: &$0) } : nil
        status = mask & 0x02 != 0 ? try reader.read() : nil
        sourceTimestamp = mask & 0x04 != 0 ? DateTime(ticks: try reader.readInt64()) : nil
        sourcePicoseconds = mask & 0x10 != 0 ? try reader.readUInt16() : nil
        serverTimestamp = mask & 0x08 != 0 ? DateTime(ticks: try reader.readInt64()) : nil
        serverPicoseconds = mask & 0x20 != 0 ? try reader.readUInt16() : nil
    }
}
