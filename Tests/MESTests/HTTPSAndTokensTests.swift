import Foundation
import XCTest
import MESApp
import PlantModel
import Quality
import Runtime
import TestSupport

/// `mes-server tokens add` and the assembled server over HTTPS with hashed tokens (README "HTTPS", "Tokens").
final class HTTPSAndTokensTests: XCTestCase {
    func testTokensAddStoresOnlyTheHashAndKeepsTheFileWhole() throws {
        let dir = makeTempDirectory(self, prefix: "tokens")
        let file = dir.appendingPathComponent("tokens.json").path
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try TokensCommand.run(["add", "--file", file, "--user", "chen", "--role", "engineer", "--days", "30"], now: now)
        XCTAssertEqual(first.token.count, 43, "32 random bytes, base64url")
        let second = try TokensCommand.run(["add", "--file", file, "--user", "screen-3", "--role", "viewer"], now: now)
        XCTAssertNotEqual(first.token, second.token)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertFalse(text.contains(first.token) || text.contains(second.token), "only hashes are stored")
        XCTAssertTrue(text.contains(TokenHash.sha256Hex(first.token)))
        let store = try TokenStore.load(path: file)
        XCTAssertEqual(store.count, 2)
        XCTAssertEqual(store.grant(forToken: first.token),
                       TokenGrant(principal: Principal(user: "chen", role: .engineer), expires: now.addingTimeInterval(30 * 86_400)))
        XCTAssertEqual(store.grant(forToken: second.token), TokenGrant(principal: Principal(user: "screen-3", role: .viewer)))
        XCTAssertNil(store.principal(forToken: first.token, at: now.addingTimeInterval(30 * 86_400)), "expired after 30 days")
        var info = stat()
        XCTAssertEqual(stat(file, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "a new tokens file is readable by its owner only")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(file).tmp-\(getpid())"))

        // A file the server would refuse is left as it is, and named.
        let bad = dir.appendingPathComponent("bad.json").path
        try Data(#"[{"token": "short", "user": "a", "role": "admin"}]"#.utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try TokensCommand.run(["add", "--file", bad, "--user", "x", "--role", "viewer"])) { error in
            XCTAssertEqual((error as? ConfigError)?.path, "[0].token", "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: bad, encoding: .utf8), #"[{"token": "short", "user": "a", "role": "admin"}]"#)
        XCTAssertThrowsError(try TokensCommand.run(["add", "--file", file, "--user", "x", "--role", "boss"])) { error in
            XCTAssertTrue(error is UsageError)
        }
        XCTAssertThrowsError(try TokensCommand.run(["add", "--file", file, "--user", "x", "--role", "viewer", "--days", "0"]))
        XCTAssertThrowsError(try TokensCommand.run(["add", "--user", "x", "--role", "viewer"]))
        XCTAssertEqual(try TokenStore.load(path: file).count, 2)
    }

    func testCommandLineTokenWorksAgainstTheServerOverHTTPS() async throws {
        let dir = makeTempDirectory(self, prefix: "https")
        let tokens = dir.appendingPathComponent("tokens.json").path
        let added = try runToEnd(productPath("mes-server"), ["tokens", "add", "--file", tokens, "--user", "chen", "--role", "engineer", "--days", "1"])
        XCTAssertEqual(added.status, 0, added.output)
        // Standard output holds the token alone; the note goes to standard error (both read together here).
        let token = try XCTUnwrap(added.output.split(separator: "\n").first { !$0.hasPrefix("mes-server:") }.map(String.init))
        XCTAssertEqual(token.count, 43, added.output)
        XCTAssertTrue(added.output.contains("only its SHA-256 is stored"), added.output)
        let usage = try runToEnd(productPath("mes-server"), ["tokens", "add", "--file", tokens, "--role", "engineer"])
        XCTAssertEqual(usage.status, 2, usage.output)

        let certificate = try TestCertificate(in: dir.path)
        let plant = try JSON.parse(bytes: Array(try Data(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"))))
        guard case .object(var members) = plant else { throw SystemError(call: "config", errno: EINVAL) }
        members.removeAll { $0.0 == "auth" }
        members.append(("auth", .obj([("tokensFile", .string(tokens)), ("anonymousRead", .bool(false))])))
        let config = dir.appendingPathComponent("plant.json")
        try JSON.object(members).serialized().write(to: config, atomically: true, encoding: .utf8)
        var options = ServerOptions()
        options.config = config.path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        options.tlsCertificate = certificate.certificate
        options.tlsKey = certificate.key
        let server = try MESServer(options: options, logger: Logger(label: "test", level: .error))
        let task = Task { try await server.run(installSignalHandlers: false) }
        let base = "https://127.0.0.1:\(server.port)"
        let tls = ["--cacert", certificate.certificate, "--max-time", "20"]
        XCTAssertTrue(eventually { (try? curl(tls + ["-f", "\(base)/api/health"]))?.status == 0 })
        let stations = try curl(tls + ["-w", "\n%{http_code}", "-H", "Authorization: Bearer \(token)", "\(base)/api/stations"])
        XCTAssertTrue(stations.output.hasSuffix("\n200"), stations.output)
        let anonymous = try curl(tls + ["-w", "\n%{http_code}", "\(base)/api/stations"])
        XCTAssertTrue(anonymous.output.hasSuffix("\n401"), anonymous.output)
        let page = try curl(tls + ["-w", "\n%{http_code}", "\(base)/"])
        XCTAssertTrue(page.output.hasSuffix("\n200") && page.output.contains("<html"), String(page.output.suffix(200)))
        let plain = try curl(["-w", "\n%{http_code}", "http://127.0.0.1:\(server.port)/api/health"])
        XCTAssertTrue(plain.output.hasSuffix("\n400") && plain.output.contains("https_required"), plain.output)
        server.shutdown()
        try await task.value
    }

    func testTLSOptionsGoTogether() {
        XCTAssertThrowsError(try ServerOptions.parse(["--tls-cert", "c.pem"]))
        XCTAssertThrowsError(try ServerOptions.parse(["--tls-key", "k.pem"]))
        XCTAssertEqual(try ServerOptions.parse(["--tls-cert", "c.pem", "--tls-key", "k.pem"]).tlsKey, "k.pem")
    }
}
