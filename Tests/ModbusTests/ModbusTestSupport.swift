import CModbus
import Foundation
import PlantModel
import Runtime
import XCTest
import TestSupport

let CMODBUS_EMBXILADD_forTest = CMODBUS_EMBXILADD
let CMODBUS_EMBBADDATA_forTest = CMODBUS_EMBBADDATA
let CMODBUS_GTAR_forTest = CMODBUS_EMBXGTAR

/// Collects adapter events (thread-safe) and waits for conditions.
final class EventRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [AdapterEvent] = []

    var sink: AdapterSink { { [self] event in lock.lock(); events.append(event); lock.unlock() } }

    var all: [AdapterEvent] { lock.lock(); defer { lock.unlock() }; return events }
    var polls: [StationPoll] { all.compactMap { if case .poll(let p) = $0 { return p } else { return nil } } }
    var goodPolls: [StationPoll] { polls.filter { $0.readings.allSatisfy { $0.quality != .stale } } }
    var changes: [ConnectionChange] { all.compactMap { if case .connection(let c) = $0 { return c } else { return nil } } }
    func clear() { lock.lock(); events.removeAll(); lock.unlock() }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held.
    @discardableResult
    func wait(_ timeout: TimeInterval, _ condition: (EventRecorder) -> Bool) -> Bool {
        eventually(timeout: timeout) { condition(self) }
    }
}

/// Runs a service on a task; `stop()` cancels it and waits until `run()` returned.
final class RunningService: @unchecked Sendable {
    private let task: Task<Void, any Error>
    init(_ service: any Service) {
        task = Task.detached { try await service.run() }
    }
    func stop() async {
        task.cancel()
        _ = await task.result
    }
}

/// A station config for tests.
func testStation(id: String = "T-01", port: UInt16, unit: Int = 1, pollMs: Int = 50, timeoutMs: Int = 300,
                 signals: [SignalConfig]) -> StationConfig {
    StationConfig(id: id, name: id, process: "welding", protocol: .modbus,
                  endpoint: .modbusTCP(host: "127.0.0.1", port: port, unit: unit),
                  pollIntervalMs: pollMs, timeoutMs: timeoutMs, signals: signals)
}

func sig(_ name: String, _ address: String, _ type: DataType, order: WordOrder = .abcd, length: Int? = nil,
         scale: Double? = nil, offset: Double? = nil) -> SignalConfig {
    SignalConfig(name: name, address: ModbusAddress.parse(address)!, type: type, length: length, wordOrder: order,
                 scale: scale, offset: offset)
}

/// Signals for a pymodbus PLC (Tests/peers/modbus_plc.py): each one's config, the value the PLC
/// serves (encoded by Python's `struct`) and what it must decode to.
struct PymodbusSignals {
    var signals: [SignalConfig] = []
    var spec: [[String: Any]] = []
    var expected: [String: SignalValue] = [:]

    mutating func add(_ name: String, _ table: String, _ address: Int, _ type: DataType, _ value: Any, order: WordOrder = .abcd,
                      length: Int? = nil, expect: SignalValue) {
        signals.append(sig(name, "\(table):\(address)", type, order: order, length: length))
        var entry: [String: Any] = ["table": table, "address": address, "type": type.rawValue, "value": value, "order": order.rawValue]
        if let length { entry["length"] = length }
        spec.append(entry)
        expected[name] = expect
    }
}

extension XCTestCase {
    /// Starts pymodbus 3.16 (Tests/peers/modbus_plc.py) as a PLC on `port`; see the script for `spec`.
    func startPymodbusPLC(port: UInt16, spec: [[String: Any]] = [], size: Int = 200, silent: Bool = false) throws -> PeerProcess {
        let script = repoRoot.appendingPathComponent("Tests/peers/modbus_plc.py").path
        var arguments = [script, "--port", String(port), "--size", String(size)]
        if silent { arguments.append("--silent") }
        if !spec.isEmpty {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("modbus-spec-\(UUID().uuidString).json")
            try JSONSerialization.data(withJSONObject: spec).write(to: file)
            addTeardownBlock { try? FileManager.default.removeItem(at: file) }
            arguments += ["--spec", file.path]
        }
        let peer = try PeerProcess(executable: peerPython(), arguments: arguments)
        guard peer.waitFor("READY") else {
            peer.kill()
            throw NSError(domain: "peer", code: 2, userInfo: [NSLocalizedDescriptionKey: "pymodbus PLC did not start: \(peer.text)"])
        }
        return peer
    }
}
