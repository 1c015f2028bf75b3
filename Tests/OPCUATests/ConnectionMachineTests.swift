import OPCUA
import XCTest

final class ConnectionMachineTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    func testFirstConnectFailureGoesToTheCallerWithoutRetry() {
        var machine = ClientConnectionMachine(autoReconnect: true)
        XCTAssertEqual(machine.start(), [.notify(.connecting), .connect])
        XCTAssertEqual(machine.connectionFailed("refused", nowNs: 0),
                       [.notify(.disconnected("refused")), .completeFirstConnect(failure: "refused"), .stop])
        XCTAssertEqual(machine.state, .closed)
        XCTAssertEqual(machine.tick(nowNs: 10_000 * ms), [])
    }

    func testLossReconnectsAtOnceThenBacksOffAndCaps() {
        var machine = ClientConnectionMachine(autoReconnect: true, initialDelayMs: 100, maxDelayMs: 1000)
        _ = machine.start()
        XCTAssertEqual(machine.connectSucceeded(), [.notify(.connected), .completeFirstConnect(failure: nil)])
        // A lost connection: retry immediately.
        XCTAssertEqual(machine.connectionFailed("reset", nowNs: 5 * ms), [.notify(.disconnected("reset"))])
        XCTAssertEqual(machine.tick(nowNs: 5 * ms), [.notify(.connecting), .connect])
        // Failed attempts wait 100, 200, 400, 800, 1000, 1000 ms.
        var now: UInt64 = 5 * ms
        for expected in [100, 200, 400, 800, 1000, 1000] {
            _ = machine.connectionFailed("refused", nowNs: now)
            XCTAssertEqual(machine.tick(nowNs: now + UInt64(expected - 1) * ms), [], "not before \(expected) ms")
            now += UInt64(expected) * ms
            XCTAssertEqual(machine.tick(nowNs: now), [.notify(.connecting), .connect])
        }
        // Success resets; the later connect does not complete the first connect again.
        XCTAssertEqual(machine.connectSucceeded(), [.notify(.connected)])
        XCTAssertEqual(machine.state, .connected)
    }

    func testWithoutAutoReconnectOnlyAnExplicitReconnectTriesAgain() {
        var machine = ClientConnectionMachine(autoReconnect: false)
        _ = machine.start()
        _ = machine.connectSucceeded()
        _ = machine.connectionFailed("gone", nowNs: 0)
        XCTAssertEqual(machine.tick(nowNs: .max - 1), [])
        XCTAssertEqual(machine.reconnectRequested(), [.notify(.connecting), .connect])
        XCTAssertEqual(machine.connectSucceeded(), [.notify(.connected)])
        XCTAssertEqual(machine.reconnectRequested(), [.notify(.connecting), .connect], "a forced reconnect from connected")
    }

    func testCloseFromAnyState() {
        var machine = ClientConnectionMachine(autoReconnect: true)
        _ = machine.start()
        _ = machine.connectSucceeded()
        XCTAssertEqual(machine.close(), [.notify(.closed), .stop])
        XCTAssertEqual(machine.close(), [])
        XCTAssertEqual(machine.reconnectRequested(), [])
    }
}
