import Foundation
@testable import API
import HTTP
import PlantModel
import Quality
import Runtime
import XCTest

/// Audit rows written by the policy under test.
private final class AuditRows: Sendable {
    private let rows = Locked<[AuditEntry]>([])
    func append(_ entry: AuditEntry) { rows.withLock { $0.append(entry) } }
    var all: [AuditEntry] { rows.value }
}

/// Hashed and expiring tokens, and the throttle of repeated failures, on a manual clock.
final class TokenAuthTests: XCTestCase {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    private func store(_ text: String) throws -> TokenStore {
        try TokenStore.decode(ConfigNode(json: JSON.parse(text), path: "", file: "tokens.json"))
    }

    private func request(token: String?, from address: String = "10.1.1.1:5000") -> HTTPRequest {
        var headers = HTTPHeaders()
        if let token { headers.set("Authorization", "Bearer \(token)") }
        return HTTPRequest(method: .post, path: "/api/defects", headers: headers, remoteAddress: address)
    }

    private func status(_ body: () throws -> Principal?) -> (Int, String?) {
        do {
            _ = try body()
            return (200, nil)
        } catch let error as HTTPError {
            return (error.status, error.code)
        } catch {
            return (-1, "\(error)")
        }
    }

    func testHashedAndExpiringTokens() throws {
        let hashed = TokenHash.sha256Hex("line-lead-token-1")
        let tokens = try store("""
        [{"tokenSha256": "\(hashed.uppercased())", "user": "chen", "role": "engineer"},
         {"token": "clear-token-2", "user": "wu", "role": "quality", "expires": "2027-01-15T08:00:00+08:00"}]
        """)
        let clock = ManualClock(Timestamp.parse("2027-01-15T00:00:00Z")!.addingTimeInterval(-1))
        let auth = AuthPolicy(tokens: tokens, anonymousRead: true, clock: clock)
        let rows = AuditRows()
        XCTAssertEqual(try auth.authorize(request(token: "line-lead-token-1"), role: .engineer, audit: rows.append), Principal(user: "chen", role: .engineer))
        XCTAssertEqual(try auth.authorize(request(token: "clear-token-2"), role: .quality, audit: rows.append), Principal(user: "wu", role: .quality))
        XCTAssertEqual(status { try auth.authorize(self.request(token: hashed), role: .viewer, audit: rows.append) }.0, 401,
                       "the hash itself is not a token")
        // 08:00 +08:00 is 00:00Z: expired from that second on.
        clock.advance(by: 1)
        XCTAssertEqual(status { try auth.authorize(self.request(token: "clear-token-2", from: "10.3.3.3:1"), role: .quality, audit: rows.append) }.1,
                       "token_expired")
        XCTAssertNil(auth.viewer(of: request(token: "clear-token-2")))
        XCTAssertEqual(auth.viewer(of: request(token: "line-lead-token-1")), Principal(user: "chen", role: .engineer))
        XCTAssertEqual(rows.all.map(\.action), ["auth.failed", "auth.expired"])
        XCTAssertFalse(rows.all.contains { $0.detail.contains("clear-token-2") || $0.target.contains("clear-token-2") })
    }

    func testTokensFileRulesForHashesAndExpiry() {
        func error(_ text: String) -> ConfigError? {
            do { _ = try store(text); return nil } catch { return error as? ConfigError }
        }
        let hash = TokenHash.sha256Hex("abcdefgh1")
        XCTAssertEqual(error(#"[{"tokenSha256": "abc", "user": "a", "role": "admin"}]"#)?.path, "[0].tokenSha256")
        XCTAssertEqual(error(#"[{"tokenSha256": "\#(String(repeating: "g", count: 64))", "user": "a", "role": "admin"}]"#)?.path, "[0].tokenSha256")
        XCTAssertEqual(error(#"[{"token": "abcdefgh1", "tokenSha256": "\#(hash)", "user": "a", "role": "admin"}]"#)?.path, "[0]")
        XCTAssertEqual(error(#"[{"user": "a", "role": "admin"}]"#)?.path, "[0]")
        XCTAssertEqual(error(#"[{"token": "abcdefgh1", "user": "a", "role": "admin", "expires": "tomorrow"}]"#)?.path, "[0].expires")
        // The same token in clear and as a hash is a duplicate.
        let duplicate = error(#"[{"token": "abcdefgh1", "user": "a", "role": "admin"}, {"tokenSha256": "\#(hash)", "user": "b", "role": "viewer"}]"#)
        XCTAssertEqual(duplicate?.path, "[1].tokenSha256")
        XCTAssertEqual(TokenHash.sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testTenFailuresInAMinuteAreAnsweredWith429ForAMinute() throws {
        let tokens = try store(#"[{"token": "good-token-1", "user": "li", "role": "quality"}]"#)
        let clock = ManualClock(t0)
        let auth = AuthPolicy(tokens: tokens, anonymousRead: true, clock: clock)
        let rows = AuditRows()
        for i in 0..<10 {
            XCTAssertEqual(status { try auth.authorize(self.request(token: "wrong-\(i)"), role: .quality, audit: rows.append) }.0, 401, "failure \(i + 1)")
            clock.advance(by: 5)
        }
        // The tenth failure (at +45 s) started a refusal until +105 s: even the right token waits.
        let refused = status { try auth.authorize(self.request(token: "good-token-1"), role: .quality, audit: rows.append) }
        XCTAssertEqual(refused.0, 429)
        do {
            _ = try auth.authorize(request(token: "good-token-1"), role: .quality, audit: rows.append)
        } catch let error as HTTPError {
            XCTAssertEqual(error.headers["Retry-After"], "55")
        }
        // Another address is not affected.
        XCTAssertEqual(try auth.authorize(request(token: "good-token-1", from: "10.2.2.2:6000"), role: .quality, audit: rows.append)?.user, "li")
        let throttled = rows.all.filter { $0.action == "auth.throttled" }
        XCTAssertEqual(throttled.count, 1, "the refusal is written when it starts; refused requests are counted with the failures")
        XCTAssertTrue(throttled.first?.detail.hasPrefix("10 failed authentications from 10.1.1.1 within 60 s") == true, "\(throttled)")
        clock.advance(by: 59)
        XCTAssertEqual(status { try auth.authorize(self.request(token: "good-token-1"), role: .quality, audit: rows.append) }.0, 200,
                       "a minute after the refusal began the address is served again")
        auth.failures.flushDue(now: clock.now())
        let counted = rows.all.last
        XCTAssertEqual(counted?.action, "auth.throttled")
        XCTAssertTrue(counted?.detail.hasPrefix("11 more failures from 10.1.1.1") == true, "9 failures and 2 refusals: \(String(describing: counted))")
        // Failures spread wider than a minute never add up to a refusal.
        for _ in 0..<30 {
            XCTAssertEqual(status { try auth.authorize(self.request(token: "nope"), role: .quality, audit: rows.append) }.0, 401)
            clock.advance(by: 7)
        }
    }

    func testThrottleTracksABoundedNumberOfAddresses() {
        let throttle = AuthThrottle(maxFailures: 2, windowSeconds: 60, refusalSeconds: 60, maxAddresses: 3)
        for host in ["a", "b", "c", "d"] { _ = throttle.recordFailure(host, now: t0) }
        XCTAssertEqual(throttle.trackedAddresses, 3)
        XCTAssertNil(throttle.recordFailure("d", now: t0), "past the cap a new address is not counted")
        XCTAssertNotNil(throttle.recordFailure("a", now: t0))
        // Old entries make room again.
        XCTAssertNil(throttle.recordFailure("e", now: t0.addingTimeInterval(61)))
        XCTAssertNotNil(throttle.recordFailure("e", now: t0.addingTimeInterval(62)))
    }
}
