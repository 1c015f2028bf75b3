import Foundation
import PlantModel
import Quality
import Runtime
import XCTest
import TestSupport

final class AuthTests: XCTestCase {
    func testRolesAreOrdered() {
        XCTAssertTrue(Role.viewer < Role.quality && Role.quality < Role.engineer && Role.engineer < Role.admin)
        let engineer = Principal(user: "zhang.min", role: .engineer)
        XCTAssertTrue(engineer.has(.viewer))
        XCTAssertTrue(engineer.has(.quality))
        XCTAssertTrue(engineer.has(.engineer))
        XCTAssertFalse(engineer.has(.admin))
        XCTAssertFalse(Principal(user: "screen", role: .viewer).has(.quality))
    }

    func testLoadTokensFileAndLookUp() throws {
        let folder = makeTempDirectory(self, prefix: "auth")
        let file = folder.appendingPathComponent("tokens.json")
        try Data("""
        [{"token": "demo-quality-token", "user": "li.wei", "role": "quality"},
         {"token": "demo-admin-token", "user": "admin", "role": "admin"}]
        """.utf8).write(to: file)
        let store = try TokenStore.load(path: file.path)
        XCTAssertEqual(store.count, 2)
        XCTAssertEqual(store.principal(forToken: "demo-quality-token"), Principal(user: "li.wei", role: .quality))
        XCTAssertEqual(store.principal(forToken: "demo-admin-token"), Principal(user: "admin", role: .admin))
        XCTAssertNil(store.principal(forToken: "demo-quality-tokeN"), "case matters")
        XCTAssertNil(store.principal(forToken: "demo-quality-token-longer"), "prefix")
        XCTAssertNil(store.principal(forToken: ""))
        // The description never shows a token.
        XCTAssertFalse("\(store)".contains("demo"))
        XCTAssertFalse(String(reflecting: store).contains("demo"))
        XCTAssertNil(TokenStore.empty.principal(forToken: "demo-quality-token"))
    }

    func testTokensFileErrorsNameThePath() throws {
        func error(_ text: String) -> ConfigError? {
            do { _ = try TokenStore.decode(ConfigNode(json: JSON.parse(text), path: "", file: "tokens.json")); return nil }
            catch { return error as? ConfigError }
        }
        XCTAssertEqual(error(#"[{"token": "abcdefgh1", "user": "a", "role": "boss"}]"#)?.path, "[0].role")
        XCTAssertEqual(error(#"[{"token": "abcdefgh1", "user": "a", "role": "admin"}, {"token": "x", "user": "b", "role": "viewer"}]"#)?.path, "[1].token")
        XCTAssertEqual(error(#"[{"token": "abcdefgh1", "role": "admin"}]"#)?.path, "[0].user")
        XCTAssertEqual(error(#"{"token": "abcdefgh1"}"#)?.path, "")
        let duplicate = error(#"[{"token": "abcdefgh1", "user": "a", "role": "admin"}, {"token": "abcdefgh1", "user": "b", "role": "viewer"}]"#)
        XCTAssertEqual(duplicate?.path, "[1].token")
        XCTAssertFalse(duplicate?.description.contains("abcdefgh1") ?? true, "errors never show a token")
        XCTAssertThrowsError(try TokenStore.load(path: "/nonexistent/tokens.json"))
    }

    func testConstantTimeCompare() {
        let a = Array("secret-token-1".utf8)
        XCTAssertTrue(TokenStore.constantTimeEquals(a, a))
        XCTAssertFalse(TokenStore.constantTimeEquals(a, Array("secret-token-2".utf8)))
        XCTAssertFalse(TokenStore.constantTimeEquals(a, Array("secret-token-1x".utf8)))
        XCTAssertFalse(TokenStore.constantTimeEquals(a, []))
        XCTAssertTrue(TokenStore.constantTimeEquals([], []))

        // A mismatch at any position, first to last, is found (the loop visits every byte; its time
        // depends only on the lengths by construction, so no wall-clock ratio is asserted here).
        let reference = [UInt8](repeating: 65, count: 64)
        for position in reference.indices {
            var candidate = reference
            candidate[position] = 66
            XCTAssertFalse(TokenStore.constantTimeEquals(reference, candidate), "mismatch at \(position)")
        }
    }

    func testAuditEntriesNeverHoldTheToken() {
        let entry = AuditEntry.authenticationFailed(at: Date(timeIntervalSince1970: 0), method: "POST", path: "/api/defects", reason: "unknown token")
        XCTAssertEqual(entry.action, "auth.failed")
        XCTAssertEqual(entry.user, "unknown")
        XCTAssertNil(entry.role)
        XCTAssertEqual(entry.json["role"], .null)
    }
}
