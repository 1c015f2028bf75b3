import CModbus
import Foundation
import PlantModel
import Runtime
import XCTest

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
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if condition(self) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition(self)
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

/// Repository root, from this file's path.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The Python interpreter with the test peers (MES_TEST_PYTHON, else the repo venv).
func peerPython() -> String {
    if let p = ProcessInfo.processInfo.environment["MES_TEST_PYTHON"], !p.isEmpty { return p }
    return repositoryRoot.appendingPathComponent(".build/venv/bin/python3").path
}

/// A free TCP port on loopback (bound, read, closed: a peer process then binds it).
func freePort() throws -> UInt16 {
    let fd = try Socket.listen(host: "127.0.0.1", port: 0)
    defer { Socket.close(fd) }
    return try Socket.localPort(fd)
}

/// A child process (peer) with captured output; `stop()` kills it and waits.
final class PeerProcess: @unchecked Sendable {
    let process = Process()
    private let outPipe = Pipe()
    private let lock = NSLock()
    private var output = ""

    init(executable: String, arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw NSError(domain: "peer", code: 1, userInfo: [NSLocalizedDescriptionKey: "peer interpreter missing: \(executable)"])
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = outPipe
        process.standardError = outPipe
        outPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock(); self.output += String(decoding: data, as: UTF8.self); self.lock.unlock()
        }
        try process.run()
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return output }

    /// Waits until the output contains `marker`.
    func waitFor(_ marker: String, timeout: TimeInterval = 20) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if text.contains(marker) { return true }
            if !process.isRunning { return text.contains(marker) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func kill() {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        outPipe.fileHandleForReading.readabilityHandler = nil
    }
}
