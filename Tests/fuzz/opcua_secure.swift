import Foundation
import OPCUA

/// libFuzzer entry for secured OPC UA chunks: the first byte picks a policy and mode, the rest is a UA-TCP
/// stream fed to a server end holding fixed keys (Tests/fuzz/keys, `SecuredChunkHarness`): OPN chunks are
/// decrypted with the server's key and their signature checked with the client's, MSG/CLO chunks with the
/// token's symmetric keys. The seeds (Tests/fuzz/corpus/opcua_secure) are sealed with the same keys, so their
/// mutations reach padding, sequence and assembly code, and whole messages reach the service decoders.
/// Errors are fine, crashes and hangs are not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size > 0, !harnesses.isEmpty else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let harness = harnesses[Int(bytes[0]) % harnesses.count]
    let outcome = harness.receive(Array(bytes.dropFirst()))
    for message in outcome.messages {
        var reader = BinaryReader(message)
        guard (try? readServiceTypeId(&reader)) != nil else { continue }
        for type in types {
            var copy = reader
            _ = try? type.init(from: &copy)
        }
    }
    return 0
}

/// The (policy, mode) of each selector value, in the order of `SecuredChunkHarness.fuzzCases`.
private let harnesses: [SecuredChunkHarness] = {
    let folder = ProcessInfo.processInfo.environment["MES_FUZZ_KEYS"] ?? "Tests/fuzz/keys"
    do {
        return try SecuredChunkHarness.fuzzCases.map { policy, mode in
            try SecuredChunkHarness(policy: policy, mode: mode,
                                    clientCertificate: Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/client.der"))),
                                    clientKey: try RSAPrivateKey(file: folder + "/client-key.pem"),
                                    serverCertificate: Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/server.der"))),
                                    serverKey: try RSAPrivateKey(file: folder + "/server-key.pem"))
        }
    } catch {
        FileHandle.standardError.write(Data("opcua_secure: cannot load the keys in \(folder) (set MES_FUZZ_KEYS): \(error)\n".utf8))
        exit(2)
    }
}()

nonisolated(unsafe) private let types: [any UADecodable.Type] = [
    OpenSecureChannelRequest.self, OpenSecureChannelResponse.self, CloseSecureChannelRequest.self, ServiceFault.self,
    CreateSessionRequest.self, ActivateSessionRequest.self, ReadRequest.self, ReadResponse.self, WriteRequest.self,
    BrowseRequest.self, PublishRequest.self, PublishResponse.self, CreateMonitoredItemsRequest.self,
]
