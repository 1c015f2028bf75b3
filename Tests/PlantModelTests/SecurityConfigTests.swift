import Foundation
import XCTest
import Runtime
@testable import PlantModel
import TestSupport

/// `stations[].security` and `pki` (docs/CONFIG.md): decoded, checked, errors naming the JSON path.
final class SecurityConfigTests: XCTestCase {
    private func decode(security: Any?, protocol proto: String = "opcua", extra: [String: Any] = [:]) -> Result<PlantConfig, ConfigError> {
        var station: [String: Any] = [
            "id": "W1", "process": "weld", "protocol": proto,
            "endpoint": proto == "opcua" ? "opc.tcp://127.0.0.1:4841" : "modbus://127.0.0.1:1502?unit=1",
            "signals": [proto == "opcua" ? ["name": "c", "node": "ns=2;s=C"] : ["name": "c", "address": "hr:0", "type": "int16"]],
        ]
        if let security { station["security"] = security }
        var root: [String: Any] = [
            "route": ["weld"],
            "stations": [["id": "P0", "process": "weld", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
                          "signals": [["name": "c", "node": "ns=2;s=C"]]], station],
        ]
        root.merge(extra) { $1 }
        let data = try! JSONSerialization.data(withJSONObject: root)
        do {
            return .success(try PlantConfig.decode(json: try JSON.parse(bytes: [UInt8](data)), file: "plant.json", directory: URL(fileURLWithPath: "/etc/mes")))
        } catch let error as ConfigError {
            return .failure(error)
        } catch {
            return .failure(ConfigError(file: "plant.json", path: "", message: "\(error)"))
        }
    }

    private func error(_ security: Any?, protocol proto: String = "opcua", extra: [String: Any] = [:]) -> String {
        if case .failure(let error) = decode(security: security, protocol: proto, extra: extra) { return "\(error)" }
        return "no error"
    }

    func testSecurityBlockDecodesWithDefaults() throws {
        let config = try decode(security: ["policy": "Basic256Sha256", "mode": "Sign", "user": "li.wei", "passwordEnv": "WELD_PW"]).get()
        let security = try XCTUnwrap(config.station("W1")?.security)
        XCTAssertEqual(security, OPCUASecurityConfig(policy: .basic256Sha256, mode: .sign, user: "li.wei", passwordEnv: "WELD_PW",
                                                     path: "stations[1].security"))
        XCTAssertNil(config.station("P0")?.security)
        XCTAssertEqual(config.secureOPCUAStations.map(\.id), ["W1"])

        let defaulted = try decode(security: ["policy": "Aes256_Sha256_RsaPss"]).get().station("W1")?.security
        XCTAssertEqual(defaulted?.mode, .signAndEncrypt, "a secure policy defaults to SignAndEncrypt")
        XCTAssertNil(defaulted?.user)
        XCTAssertEqual(try decode(security: ["policy": "None"]).get().station("W1")?.security?.mode, OPCUASecurityConfig.Mode.none)
        XCTAssertEqual(try decode(security: ["policy": "Aes128_Sha256_RsaOaep", "mode": "SignAndEncrypt"]).get().station("W1")?.security?.policy,
                       .aes128Sha256RsaOaep)
    }

    func testErrorsNameTheirPaths() {
        XCTAssertEqual(error(["policy": "Basic256Sha256", "mode": "Encrypt"]),
                       "plant.json: stations[1].security.mode: \"Encrypt\" is not a security mode (None, Sign, SignAndEncrypt)")
        XCTAssertEqual(error(["policy": "Basic256Sha256", "mode": "None"]),
                       "plant.json: stations[1].security.mode: mode None does not go with policy Basic256Sha256: use Sign or SignAndEncrypt, or policy None")
        XCTAssertEqual(error(["policy": "None", "mode": "Sign"]),
                       "plant.json: stations[1].security.mode: mode Sign needs a SecurityPolicy other than None (policy is None)")
        XCTAssertTrue(error(["policy": "Basic128Rsa15"]).hasPrefix("plant.json: stations[1].security.policy: \"Basic128Rsa15\" is not a SecurityPolicy (None, Basic256Sha256"))
        XCTAssertEqual(error(["mode": "Sign"]), "plant.json: stations[1].security.policy: is required")
        XCTAssertTrue(error(["policy": "None", "password": "x"]).hasPrefix("plant.json: stations[1].security.password: is not a known setting"))
        XCTAssertTrue(error(["policy": "Basic256Sha256", "user": "li.wei"]).hasPrefix("plant.json: stations[1].security.passwordEnv: is required with user"))
        XCTAssertEqual(error(["policy": "Basic256Sha256", "passwordEnv": "PW"]), "plant.json: stations[1].security.user: is required with passwordEnv")
        XCTAssertTrue(error(["policy": "Basic256Sha256", "user": "u", "passwordEnv": "1PW"]).hasPrefix("plant.json: stations[1].security.passwordEnv: \"1PW\" is not an environment variable name"))
        XCTAssertEqual(error(["policy": "Basic256Sha256"], protocol: "modbus"),
                       "plant.json: stations[1].security: security applies to OPC UA stations; this station speaks modbus")
        XCTAssertEqual(error("Basic256Sha256"), "plant.json: stations[1].security: must be an object, not a string")
        XCTAssertEqual(error(nil, extra: ["pki": ""]), "plant.json: pki: must not be empty")
    }

    func testPasswordsComeFromTheEnvironmentAndAMissingOneIsAClearError() throws {
        let config = try decode(security: ["policy": "Basic256Sha256", "user": "li.wei", "passwordEnv": "WELD_PW"]).get()
        XCTAssertEqual(try config.opcuaPasswords(environment: ["WELD_PW": "s3cret"]), ["W1": "s3cret"])
        XCTAssertThrowsError(try config.opcuaPasswords(environment: [:])) { error in
            XCTAssertEqual("\(error)", "plant.json: stations[1].security.passwordEnv: environment variable WELD_PW (the password of user \"li.wei\") is not set")
        }
        XCTAssertThrowsError(try config.opcuaPasswords(environment: ["WELD_PW": ""]))
        XCTAssertEqual(try decode(security: ["policy": "Basic256Sha256"]).get().opcuaPasswords(environment: [:]), [:])
    }

    func testPKIFolderDefaultsBesideTheDatabaseAndIsRelativeToTheConfig() throws {
        let plain = try decode(security: nil).get()
        XCTAssertNil(plain.pki)
        XCTAssertEqual(plain.pkiFolder(database: "var/mes.sqlite"), URL(fileURLWithPath: "var").appendingPathComponent("pki").path)
        XCTAssertEqual(plain.pkiFolder(database: "/data/mes/mes.sqlite"), "/data/mes/pki")
        XCTAssertEqual(try decode(security: nil, extra: ["pki": "certs"]).get().pkiFolder(database: "/x/y.sqlite"), "/etc/mes/certs")
        XCTAssertEqual(try decode(security: nil, extra: ["pki": "/srv/pki"]).get().pki, "/srv/pki")
    }

    func testSecurePlantSampleDecodes() throws {
        let config = try PlantConfig.load(path: repoRoot.appendingPathComponent("Stations/secure-plant.json").path)
        XCTAssertEqual(Set(config.secureOPCUAStations.compactMap { $0.security?.policy }),
                       [.basic256Sha256, .aes256Sha256RsaPss])
        XCTAssertTrue(config.secureOPCUAStations.contains { $0.security?.mode == .sign })
        XCTAssertTrue(config.secureOPCUAStations.contains { $0.security?.user != nil })
    }
}
