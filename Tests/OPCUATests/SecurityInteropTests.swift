import Foundation
import OPCUA
import TestSupport
import XCTest

// Helpers of the secured end-to-end tests.

func makeSecureServer(_ security: ServerSecurity) throws -> OPCUAServer {
    var options = OPCUAServer.Options()
    options.security = security
    options.applicationUri = security.applicationURI
    let server = OPCUAServer(options: options)
    let folder = NodeId("Station", namespace: 2)
    try server.addFolder(nodeId: folder, browseName: "Station")
    try server.addVariable(nodeId: NodeId("Station.Temperature", namespace: 2), browseName: "Temperature", parent: folder, value: .double(21.5))
    try server.addVariable(nodeId: NodeId("Station.Setpoint", namespace: 2), browseName: "Setpoint", parent: folder, value: .double(0), writable: true)
    try server.start()
    return server
}

func clientOptions(_ url: String, _ security: ClientSecurity?) -> OPCUAClient.Options {
    var options = OPCUAClient.Options(endpointURL: url)
    options.security = security
    options.autoReconnect = false
    options.connectTimeoutMs = 5000
    options.requestTimeoutMs = 5000
    return options
}

func connect(_ url: String, _ security: ClientSecurity?) async throws -> OPCUAClient {
    let client = try OPCUAClient(options: clientOptions(url, security))
    try await client.connect()
    return client
}

/// The error a failed connect threw.
func connectError(_ url: String, _ security: ClientSecurity?) async -> (any Error)? {
    do {
        let client = try await connect(url, security)
        await client.close()
        return nil
    } catch {
        return error
    }
}

/// Secured sessions end to end over loopback: our client and our server with each other, with an asyncua
/// server that requires security, and with the asyncua client.
final class SecurityInteropTests: XCTestCase {
    static let combos: [(SecurityPolicy, MessageSecurityMode)] =
        SecurityFixtures.securedPolicies.flatMap { policy in SecurityFixtures.securedModes.map { (policy, $0) } }

    func testOurClientAndServerInEveryPolicyAndMode() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity())
        defer { server.stop() }
        for (policy, mode) in Self.combos {
            let client = try await connect(server.endpointURL, SecurityFixtures.clientSecurity(policy, mode))
            let values = try await client.read([NodeId("Station.Temperature", namespace: 2)])
            XCTAssertEqual(values.first?.value, .double(21.5), "\(policy) \(mode)")
            let written = try await client.write([(NodeId("Station.Setpoint", namespace: 2), .double(4.5))])
            XCTAssertEqual(written, [.good])
            await client.close()
            XCTAssertEqual(server.sessionActivations.last, SessionActivation(policy: policy, mode: mode, user: "li.wei"))
        }
        XCTAssertEqual(server.sessionActivations.count, Self.combos.count)
    }

    func testRefusedLoginsCertificatesAndNoneSessions() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity(endpoints: [(.basic256Sha256, .signAndEncrypt)]))
        defer { server.stop() }
        let url = server.endpointURL
        // Wrong password, unknown user, anonymous where only users may log in.
        for user in [UserIdentity.userName("li.wei", password: "wrong"), .userName("nobody", password: "s3cret")] {
            let error = await connectError(url, SecurityFixtures.clientSecurity(.basic256Sha256, .signAndEncrypt, user: user))
            XCTAssertEqual(error as? ClientError, .security(.badUserAccessDenied, "ActivateSession refused"), "\(user)")
        }
        let anonymous = await connectError(url, SecurityFixtures.clientSecurity(.basic256Sha256, .signAndEncrypt, user: .anonymous))
        XCTAssertEqual(anonymous as? ClientError, .noSuitableEndpoint("server offers no anonymous login"))
        // A session over None when None is not offered.
        let none = await connectError(url, nil)
        XCTAssertEqual(none as? StatusCode, .badSecurityPolicyRejected, "\(String(describing: none))")
        // A policy or mode the server does not offer: no such endpoint.
        let sign = await connectError(url, SecurityFixtures.clientSecurity(.basic256Sha256, .sign))
        guard case .noSuitableEndpoint(let text)? = sign as? ClientError else { return XCTFail("\(String(describing: sign))") }
        XCTAssertTrue(text.contains("Basic256Sha256/SignAndEncrypt"), text)
        // Our trust refuses the server's certificate: its status, and nothing was sent but GetEndpoints.
        let untrusted = await connectError(url, SecurityFixtures.clientSecurity(.basic256Sha256, .signAndEncrypt,
                                                                                trust: RefuseAll(status: .badCertificateUntrusted)))
        XCTAssertEqual(untrusted as? ClientError, .security(.badCertificateUntrusted, "server certificate refused"))
        // The server's trust refuses our certificate: the ERR status it sent.
        server.stop()
        let strict = try makeSecureServer(SecurityFixtures.serverSecurity(endpoints: [(.aes256Sha256RsaPss, .sign)],
                                                                          trust: RefuseAll(status: .badCertificateTimeInvalid)))
        defer { strict.stop() }
        let refused = await connectError(strict.endpointURL, SecurityFixtures.clientSecurity(.aes256Sha256RsaPss, .sign))
        guard case .security(let status, _)? = refused as? ClientError else { return XCTFail("\(String(describing: refused))") }
        XCTAssertEqual(status, .badCertificateTimeInvalid)
        XCTAssertTrue(server.sessionActivations.isEmpty && strict.sessionActivations.isEmpty)
    }

    func testServerRefusesAnInconsistentConfiguration() {
        var options = OPCUAServer.Options()
        var security = SecurityFixtures.serverSecurity()
        security.privateKey = SecurityFixtures.clientKey
        options.security = security
        XCTAssertThrowsError(try OPCUAServer(options: options).start()) { error in
            XCTAssertTrue("\(error)".contains("does not belong to the certificate"), "\(error)")
        }
        options.security = SecurityFixtures.serverSecurity(endpoints: [(.basic256Sha256, .none)])
        XCTAssertThrowsError(try OPCUAServer(options: options).start()) { error in
            XCTAssertTrue("\(error)".contains("cannot go with mode None"), "\(error)")
        }
    }

    func testNoneStaysAvailableWhenOffered() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity(endpoints: [(.none, .none), (.basic256Sha256, .sign)], users: [:]))
        defer { server.stop() }
        let plain = try await connect(server.endpointURL, nil)
        let plainValue = try await plain.read([NodeId("Station.Temperature", namespace: 2)])
        XCTAssertEqual(plainValue.first?.value, .double(21.5))
        await plain.close()
        let signed = try await connect(server.endpointURL, SecurityFixtures.clientSecurity(.basic256Sha256, .sign, user: .anonymous))
        let signedValue = try await signed.read([NodeId("Station.Temperature", namespace: 2)])
        XCTAssertEqual(signedValue.first?.value, .double(21.5))
        await signed.close()
        XCTAssertEqual(server.sessionActivations, [SessionActivation(policy: .none, mode: .none, user: nil),
                                                   SessionActivation(policy: .basic256Sha256, mode: .sign, user: nil)])
    }

    func testPasswordOverNoneIsEncryptedWithTheSecuredPolicy() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity(endpoints: [(.none, .none), (.aes256Sha256RsaPss, .signAndEncrypt)]))
        defer { server.stop() }
        // No client security: a None channel; the user token policy names Aes256_Sha256_RsaPss, so the
        // password goes out encrypted (OAEP-SHA-256) for the server's certificate with the server nonce.
        var options = clientOptions(server.endpointURL, nil)
        options.identity = .userName("li.wei", password: "s3cret")
        let client = try OPCUAClient(options: options)
        try await client.connect()
        let value = try await client.read([NodeId("Station.Temperature", namespace: 2)])
        XCTAssertEqual(value.first?.value, .double(21.5))
        await client.close()
        options.identity = .userName("li.wei", password: "guess")
        let wrong = try OPCUAClient(options: options)
        do {
            try await wrong.connect()
            XCTFail("a wrong password was accepted")
        } catch {
            XCTAssertEqual(error as? ClientError, .security(.badUserAccessDenied, "ActivateSession refused"))
        }
        XCTAssertEqual(server.sessionActivations, [SessionActivation(policy: .none, mode: .none, user: "li.wei")])
    }

    func testOurClientAgainstAsyncuaServerRequiringSecurity() async throws {
        let folder = TempFolder(prefix: "uasec-asyncua")
        let peer = try PeerProcess(script: "opcua_asyncua_secure_server.py", arguments: [folder.path])
        defer { peer.stop() }
        let url = "opc.tcp://127.0.0.1:\(peer.port)/"
        let serverCertificate = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.path + "/server.der")))
        /// Trusts exactly the asyncua server's certificate, for the URI it made it with.
        struct PinnedTrust: CertificateTrust {
            let der: [UInt8]
            func check(peerCertificate: [UInt8], expectedApplicationURI: String?) -> StatusCode? {
                guard peerCertificate == der else { return .badCertificateUntrusted }
                return expectedApplicationURI == "urn:linemes:test:asyncua-server" ? nil : .badCertificateUriInvalid
            }
        }
        // asyncua (patched by the peer) refuses sessions on a None channel.
        let none = await connectError(url, nil)
        XCTAssertEqual(none as? StatusCode, .badSecurityPolicyRejected, "\(String(describing: none))")
        for (policy, mode) in Self.combos {
            let security = SecurityFixtures.clientSecurity(policy, mode, trust: PinnedTrust(der: serverCertificate))
            let client = try await connect(url, security)
            let value = try await client.read([NodeId("Demo.Double", namespace: 2)])
            XCTAssertEqual(value.first?.value, .double(3.25), "\(policy) \(mode)")
            let written = try await client.write([(NodeId("Demo.Writable", namespace: 2), .double(6.5))])
            XCTAssertEqual(written, [.good])
            await client.close()
            // The server says which policy and mode the session used.
            let line = "SESSION \(policy.rawValue) \(mode) li.wei"
            XCTAssertTrue(peer.waitFor(line, timeout: 10), "\(line) not in \(peer.printedLines)")
        }
        let wrong = await connectError(url, SecurityFixtures.clientSecurity(.basic256Sha256, .signAndEncrypt,
                                                                            user: .userName("li.wei", password: "nope"),
                                                                            trust: PinnedTrust(der: serverCertificate)))
        guard case .security(let status, _)? = wrong as? ClientError else { return XCTFail("\(String(describing: wrong))") }
        XCTAssertTrue([StatusCode.badUserAccessDenied, .badIdentityTokenRejected, .badIdentityTokenInvalid].contains(status), "\(status)")
        XCTAssertTrue(peer.waitFor("DENIED li.wei", timeout: 5))
    }

    func testAsyncuaClientAgainstOurServer() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity())
        defer { server.stop() }
        let combos = Self.combos.map { "\($0.0.rawValue.replacingOccurrences(of: "_", with: ""))/\($0.1)" }
        let peer = try PeerProcess(script: "opcua_asyncua_secure_client.py",
                                   arguments: [server.endpointURL, SecurityFixtures.client.certificateDER, SecurityFixtures.client.keyPEM,
                                               "li.wei", "s3cret"] + combos)
        defer { peer.stop() }
        XCTAssertTrue(peer.waitFor("DONE", timeout: 90), peer.text)
        for ((policy, mode), combo) in zip(Self.combos, combos) {
            XCTAssertTrue(peer.printedLines.contains("OK \(combo) 21.5 \(policy.uri) \(mode)"), "\(combo): \(peer.printedLines)")
        }
        XCTAssertEqual(Array(server.sessionActivations.prefix(Self.combos.count)),
                       Self.combos.map { SessionActivation(policy: $0.0, mode: $0.1, user: "li.wei") })
        XCTAssertEqual(server.value(of: NodeId("Station.Setpoint", namespace: 2))?.value, .double(7.5))
        // A wrong password from asyncua is refused.
        let wrong = try PeerProcess(script: "opcua_asyncua_secure_client.py",
                                    arguments: [server.endpointURL, SecurityFixtures.client.certificateDER, SecurityFixtures.client.keyPEM,
                                                "li.wei", "bad", "Aes256Sha256RsaPss/SignAndEncrypt"])
        defer { wrong.stop() }
        XCTAssertTrue(wrong.waitFor("DONE", timeout: 30), wrong.text)
        XCTAssertNotNil(wrong.printedLines.first { $0.hasPrefix("FAIL ") && $0.contains("BadUserAccessDenied") }, wrong.text)
    }
}

/// open62541 (o6) as the second peer: its build links OpenSSL and offers the three policies.
final class SecurityO6InteropTests: XCTestCase {
    func testOurClientAgainstO6ServerRequiringSecurity() async throws {
        let folder = TempFolder(prefix: "uasec-o6")
        let peer = try PeerProcess(script: "opcua_o6_secure_server.py", arguments: [folder.path])
        defer { peer.stop() }
                // o6 advertises opc.tcp://localhost:PORT; we connect by address.
        let url = "opc.tcp://127.0.0.1:\(peer.port)"
        // A user name session over None (the password in clear, as o6 allows it here) is refused by the peer.
        let none = await connectError(url, SecurityFixtures.clientSecurity(.none, .none))
        XCTAssertEqual(none as? ClientError, .security(.badSecurityPolicyRejected, "ActivateSession refused"))
        XCTAssertTrue(peer.waitFor("REFUSED None", timeout: 5), peer.text)
        for (policy, mode) in SecurityInteropTests.combos {
            let client = try await connect(url, SecurityFixtures.clientSecurity(policy, mode))
            let value = try await client.read([NodeId("Demo.Double", namespace: 1)])
            XCTAssertEqual(value.first?.value, .double(3.25), "\(policy) \(mode)")
            await client.close()
            let line = "SESSION \(policy.rawValue) \(mode == .sign ? "SIGN" : "SIGN_AND_ENCRYPT") li.wei"
            XCTAssertTrue(peer.waitFor(line, timeout: 5), "\(line) not in \(peer.printedLines)")
        }
    }

    func testO6ClientAgainstOurServer() async throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity())
        defer { server.stop() }
        let combos = SecurityInteropTests.combos.map { "\($0.0.rawValue)/\($0.1)" }
        let peer = try PeerProcess(script: "opcua_o6_secure_client.py",
                                   arguments: [server.endpointURL, SecurityFixtures.client.certificateDER, SecurityFixtures.client.keyPEM,
                                               "li.wei", "s3cret"] + combos)
        defer { peer.stop() }
        XCTAssertTrue(peer.waitFor("DONE", timeout: 90), peer.text)
        for combo in combos {
            XCTAssertTrue(peer.printedLines.contains("OK \(combo) 21.5"), "\(combo): \(peer.printedLines)")
        }
        XCTAssertEqual(server.sessionActivations, SecurityInteropTests.combos.map { SessionActivation(policy: $0.0, mode: $0.1, user: "li.wei") })
    }
}

final class SecureTokenRenewalTests: XCTestCase {
    /// A 2 s channel lifetime with an asyncua server requiring security: the client renews at ~1.5 s with new
    /// nonces and keys, repeatedly, and every read in between is answered on the same connection.
    func testRenewalAgainstAsyncuaInSignAndEncryptAndSign() async throws {
        let folder = TempFolder(prefix: "uasec-renew")
        let peer = try PeerProcess(script: "opcua_asyncua_secure_server.py", arguments: [folder.path])
        addTeardownBlock { peer.stop() }
        for (policy, mode) in [(SecurityPolicy.aes256Sha256RsaPss, MessageSecurityMode.signAndEncrypt), (.basic256Sha256, .sign)] {
            var options = clientOptions("opc.tcp://127.0.0.1:\(peer.port)/", SecurityFixtures.clientSecurity(policy, mode))
            options.channelLifetimeMs = 2000
            options.autoReconnect = true
            let client = try OPCUAClient(options: options)
            let collected = Collected()
            client.onStateChange { collected.add($0) }
            try await client.connect()
            var values: [Variant?] = []
            let renewed = try await waitUntil(timeout: 15) {
                values.append(try await client.read([NodeId("Demo.Double", namespace: 2)]).first?.value)
                return client.tokenRenewals >= 3
            }
            await client.close()
            XCTAssertTrue(renewed, "\(policy) \(mode): \(client.tokenRenewals) renewals")
            XCTAssertEqual(values, Array(repeating: .double(3.25), count: values.count), "every read answered across the renewals")
            XCTAssertEqual(Array(collected.allStates.prefix(2)), [.connecting, .connected], "no reconnect across three renewals")
            XCTAssertFalse(collected.allStates.dropFirst(2).contains(.connecting), "\(collected.allStates)")
        }
    }

    /// asyncua renews its token (10 s lifetime: at 7.5 s) with our server while it reads every 0.5 s.
    func testAsyncuaClientRenewsWithOurServer() throws {
        let server = try makeSecureServer(SecurityFixtures.serverSecurity())
        defer { server.stop() }
        let peer = try PeerProcess(script: "opcua_asyncua_secure_client.py",
                                   arguments: ["--hold", "9", server.endpointURL, SecurityFixtures.client.certificateDER,
                                               SecurityFixtures.client.keyPEM, "li.wei", "s3cret", "Basic256Sha256/SignAndEncrypt"])
        defer { peer.stop() }
        XCTAssertTrue(peer.waitFor("DONE", timeout: 40), peer.text)
        XCTAssertNotNil(peer.printedLines.first { $0.hasPrefix("OK Basic256Sha256/SignAndEncrypt 21.5") }, peer.text)
        XCTAssertNotNil(peer.printedLines.first { $0.hasPrefix("HELD ") }, peer.text)
        XCTAssertEqual(server.tokenRenewals, 1, "asyncua renewed its token once (at 7.5 s of 9)")
    }

}

/// 4096-bit keys with asyncua both ways: ExtraPaddingSize in the OPN chunks each side encrypts for the other.
final class SecurityLargeKeyInteropTests: XCTestCase {
    func testOurClientWith4096BitKeyAgainstAsyncua() async throws {
        let folder = TempFolder(prefix: "uasec-4096")
        let peer = try PeerProcess(script: "opcua_asyncua_secure_server.py", arguments: [folder.path])
        defer { peer.stop() }
        let big = SecurityFixtures.client4096
        for mode in SecurityFixtures.securedModes {
            let security = ClientSecurity(policy: .basic256Sha256, mode: mode, certificate: big.der, privateKey: try RSAPrivateKey(file: big.keyPEM),
                                          applicationURI: big.applicationURI, trust: AcceptAllCertificates(),
                                          user: .userName("li.wei", password: "s3cret"))
            let client = try await connect("opc.tcp://127.0.0.1:\(peer.port)/", security)
            let value = try await client.read([NodeId("Demo.Double", namespace: 2)])
            XCTAssertEqual(value.first?.value, .double(3.25), "\(mode)")
            await client.close()
            XCTAssertTrue(peer.waitFor("SESSION Basic256Sha256 \(mode) li.wei", timeout: 10), peer.text)
        }
    }

    func testAsyncuaClientAgainstOurServerWith4096BitKey() throws {
        let big = SecurityFixtures.server4096
        let security = ServerSecurity(endpoints: [(.aes256Sha256RsaPss, .signAndEncrypt), (.aes128Sha256RsaOaep, .sign)], certificate: big.der,
                                      privateKey: try RSAPrivateKey(file: big.keyPEM), applicationURI: big.applicationURI,
                                      trust: AcceptAllCertificates(), users: ["li.wei": "s3cret"])
        let server = try makeSecureServer(security)
        defer { server.stop() }
        let peer = try PeerProcess(script: "opcua_asyncua_secure_client.py",
                                   arguments: [server.endpointURL, SecurityFixtures.client.certificateDER, SecurityFixtures.client.keyPEM,
                                               "li.wei", "s3cret", "Aes256Sha256RsaPss/SignAndEncrypt", "Aes128Sha256RsaOaep/Sign"])
        defer { peer.stop() }
        XCTAssertTrue(peer.waitFor("DONE", timeout: 60), peer.text)
        XCTAssertTrue(peer.printedLines.contains("OK Aes256Sha256RsaPss/SignAndEncrypt 21.5 \(SecurityPolicy.aes256Sha256RsaPss.uri) SignAndEncrypt"), peer.text)
        XCTAssertTrue(peer.printedLines.contains("OK Aes128Sha256RsaOaep/Sign 21.5 \(SecurityPolicy.aes128Sha256RsaOaep.uri) Sign"), peer.text)
        XCTAssertEqual(server.sessionActivations, [SessionActivation(policy: .aes256Sha256RsaPss, mode: .signAndEncrypt, user: "li.wei"),
                                                   SessionActivation(policy: .aes128Sha256RsaOaep, mode: .sign, user: "li.wei")])
    }
}
