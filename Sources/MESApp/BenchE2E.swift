import CEpoll
import Foundation
import PlantModel
import Runtime
import Simulation
#if canImport(Glibc)
import Glibc
#endif

/// End to end: a register change in a simulated PLC → the `sample` event at every one of 1,000
/// connected event-stream clients, through the real adapter, pipeline, storage and SSE.
extension BenchSuite {
    func endToEnd() throws {
        raiseFileLimit()
        let clients = short ? 100 : 1000
        let changes = short ? 10 : 100
        let pollMs = 100
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-e2e-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let probe = SignalConfig(name: "probe", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 0), type: .uint16)
        let template = StationConfig(id: "E2E-01", name: "probe PLC", process: "welding", protocol: .modbus,
                                     endpoint: .modbusTCP(host: "127.0.0.1", port: 1, unit: 1), pollIntervalMs: pollMs, signals: [probe])
        let plc = ModbusStationServer(station: template, port: 0, logger: Logger(label: "bench", level: .error))
        let plcPort = try plc.start()
        defer { plc.stop() }
        try plc.set(signal: "probe", value: .int(0))
        let configPath = dir.appendingPathComponent("plant.json").path
        try """
        {"plant": "e2e bench", "route": ["welding"], "stations": [{"id": "E2E-01", "process": "welding", "protocol": "modbus",
          "endpoint": "modbus://127.0.0.1:\(plcPort)?unit=1", "pollIntervalMs": \(pollMs),
          "signals": [{"name": "probe", "role": "measurement", "address": "hr:0", "type": "uint16"}]}]}
        """.write(toFile: configPath, atomically: true, encoding: .utf8)

        var options = ServerOptions()
        options.config = configPath
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
        let done = DispatchSemaphore(value: 0)
        Thread {
            let finished = DispatchSemaphore(value: 0)
            Task.detached {
                try? await server.run(installSignalHandlers: false)
                finished.signal()
            }
            finished.wait()
            done.signal()
        }.start()
        defer { server.shutdown(); done.wait() }

        let readers = try ProbeReaders(port: server.port, count: clients)
        defer { readers.close() }
        guard readers.waitForHeaders(seconds: 30) else {
            throw UsageError("end to end: only some of \(clients) clients connected")
        }
        var latencies: [Double] = []
        for i in 1...changes {
            let value = 1000 + i
            readers.expect("\"probe\":\(value)")
            let t0 = Monotonic.nanoseconds()
            try plc.set(signal: "probe", value: .int(Int64(value)))
            latencies += readers.collect(since: t0, timeout: 3)
            usleep(UInt32.random(in: 20_000...90_000)) // different points of the poll cycle
        }
        latencies.sort()
        let p99 = percentile(latencies, 0.99)
        Self.figure("end to end: PLC register change → SSE event at each of \(clients) clients, p99", p99, unit: "ms",
                    target: Double(pollMs + 15), higherIsBetter: false,
                    reference: String(format: "poll interval %d ms; p50 %.1f ms; %d of %d deliveries", pollMs, percentile(latencies, 0.5),
                                      latencies.count, clients * changes))
    }
}

/// Event-stream clients that look for one byte pattern at a time and time its arrival.
final class ProbeReaders {
    private var fds: [Int32] = []
    private var headerDone: [Bool]
    private var tails: [[UInt8]]
    private var found: [Bool]
    private var pattern: [UInt8] = []
    private let epfd: Int32
    private let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: 1024)
    private var index: [Int32: Int] = [:]
    private var buffer = [UInt8](repeating: 0, count: 65536)

    init(port: UInt16, count: Int) throws {
        headerDone = Array(repeating: false, count: count)
        tails = Array(repeating: [], count: count)
        found = Array(repeating: false, count: count)
        epfd = try syscallOrThrow("epoll_create1") { epoll_create1(CEPOLL_CLOEXEC) }
        let request = Array("GET /api/events?types=sample HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n".utf8)
        for i in 0..<count {
            let fd = try Socket.connect(host: "127.0.0.1", port: port, timeoutMs: 5000)
            try request.withUnsafeBytes { try Socket.writeAll(fd, $0) }
            Socket.setNonBlocking(fd)
            _ = cepoll_ctl_fd(epfd, CEPOLL_CTL_ADD, fd, CEPOLL_IN)
            fds.append(fd)
            index[fd] = i
        }
    }

    func expect(_ text: String) {
        pattern = Array(text.utf8)
        for i in found.indices { found[i] = false }
    }

    /// Reads until every client saw the pattern or `timeout` passed; returns latencies in ms.
    func collect(since t0: UInt64, timeout: Double) -> [Double] {
        var latencies: [Double] = []
        let deadline = t0 + UInt64(timeout * 1e9)
        while latencies.count < fds.count && Monotonic.nanoseconds() < deadline {
            let n = epoll_wait(epfd, events, 1024, 20)
            guard n > 0 else { continue }
            let now = Monotonic.nanoseconds()
            for e in 0..<Int(n) {
                guard let i = index[cepoll_event_fd(events, Int32(e))] else { continue }
                if read(i) && !found[i] {
                    found[i] = true
                    latencies.append(Double(now - t0) / 1e6)
                }
            }
        }
        return latencies
    }

    /// Drains client `i`; true if the current pattern appeared.
    private func read(_ i: Int) -> Bool {
        var hit = false
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fds[i], $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return hit }
            var data = tails[i] + buffer[0..<n]
            if !headerDone[i], let end = find([13, 10, 13, 10], in: data) {
                headerDone[i] = true
                data.removeFirst(end + 4)
            }
            if !pattern.isEmpty, find(pattern, in: data) != nil { hit = true }
            tails[i] = Array(data.suffix(pattern.count + 8))
        }
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count, let first = needle.first else { return nil }
        var i = 0
        while i + needle.count <= haystack.count {
            if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    func waitForHeaders(seconds: Double) -> Bool {
        let deadline = Monotonic.nanoseconds() + UInt64(seconds * 1e9)
        while headerDone.contains(false) && Monotonic.nanoseconds() < deadline {
            let n = epoll_wait(epfd, events, 1024, 20)
            for e in 0..<Int(max(n, 0)) {
                if let i = index[cepoll_event_fd(events, Int32(e))] { _ = read(i) }
            }
        }
        return !headerDone.contains(false)
    }

    func close() {
        for fd in fds { Socket.close(fd) }
        Socket.close(epfd)
        events.deallocate()
    }
}
