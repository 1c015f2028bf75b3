import OPCUA

/// libFuzzer entry: the bytes are a UA-TCP stream. Frames are cut, HEL/ACK/ERR bodies decoded,
/// OPN/MSG/CLO chunks assembled and their service messages decoded as every request and response
/// type the server or client reads. Errors are fine, crashes and hangs are not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    var frames = FrameDecoder(maxFrameSize: 1 << 16)
    var assembler = ChunkAssembler(maxMessageSize: 1 << 18, maxChunkCount: 16)
    frames.append(bytes)
    while let frame = try? frames.next() {
        var reader = BinaryReader(frame.body)
        switch frame.type {
        case .hello: _ = try? HelloMessage(from: &reader)
        case .acknowledge: _ = try? AcknowledgeMessage(from: &reader)
        case .error: _ = try? ErrorMessage(from: &reader)
        case .open, .message, .close:
            guard let chunk = try? SecureChunk(frame: frame) else { continue }
            guard let message = try? assembler.add(chunk) ?? nil else { continue }
            decodeService(message)
        case .reverseHello: break
        }
    }
    // The same bytes read as one service message directly (most coverage per input).
    decodeService(bytes)
    return 0
}

private func decodeService(_ message: [UInt8]) {
    var reader = BinaryReader(message)
    guard let id = try? readServiceTypeId(&reader) else { return }
    for type in types {
        var copy = reader
        _ = try? type.init(from: &copy)
    }
    _ = id
}

nonisolated(unsafe) private let types: [any UADecodable.Type] = [
    ServiceFault.self, OpenSecureChannelRequest.self, OpenSecureChannelResponse.self, CloseSecureChannelRequest.self,
    GetEndpointsRequest.self, GetEndpointsResponse.self, FindServersRequest.self, FindServersResponse.self,
    CreateSessionRequest.self, CreateSessionResponse.self, ActivateSessionRequest.self, ActivateSessionResponse.self,
    CloseSessionRequest.self, CloseSessionResponse.self, ReadRequest.self, ReadResponse.self, WriteRequest.self,
    BrowseRequest.self, BrowseResponse.self, BrowseNextRequest.self, BrowseNextResponse.self,
    TranslateBrowsePathsRequest.self, TranslateBrowsePathsResponse.self, CreateSubscriptionRequest.self,
    CreateSubscriptionResponse.self, ModifySubscriptionRequest.self, ModifySubscriptionResponse.self,
    SetPublishingModeRequest.self, DeleteSubscriptionsRequest.self, CreateMonitoredItemsRequest.self,
    CreateMonitoredItemsResponse.self, DeleteMonitoredItemsRequest.self, PublishRequest.self, PublishResponse.self,
    RepublishRequest.self, RepublishResponse.self, DataChangeNotification.self, StatusChangeNotification.self,
    DataValue.self, Variant.self, ExtensionObject.self, NodeId.self,
]
