import CModbus
import Foundation
import PlantModel
import Runtime

/// A simulated Modbus RTU PLC: a libmodbus RTU server on a serial device (or a pty made by
/// `socat`), on its own thread, serving a station's register map for its unit id.
///
/// Requests for other unit ids are ignored, as on a real RS-485 bus. Thread-safe.
public final class ModbusRTUStationServer: Sendable {
    private struct State {
        var running = false
        var finished: DispatchSemaphore?
        var requestsServed: UInt64 = 0
    }

    public let station: StationConfig
    public let map: ModbusRegisterMap
    public let device: String
    private let baud: Int, parity: Character, dataBits: Int, stopBits: Int, unit: Int
    private let logger: Logger
    private let state = Locked(State())

    /// - Parameters:
    ///   - station: a station with a `modbus-rtu://` endpoint (its line settings and unit are used).
    ///   - device: overrides the endpoint's device path.
    public init(station: StationConfig, device: String? = nil, map: ModbusRegisterMap? = nil,
                logger: Logger = Logger(label: "modbus-sim")) {
        self.station = station
        self.map = map ?? ModbusRegisterMap(station: station)
        if case let .modbusRTU(d, b, p, data, stop, u) = station.endpoint {
            self.device = device ?? d
            (baud, parity, dataBits, stopBits, unit) = (b, p, data, stop, u)
        } else {
            self.device = device ?? "/dev/null"
            (baud, parity, dataBits, stopBits, unit) = (19200, "N", 8, 1, station.endpoint.unit ?? 1)
        }
        self.logger = logger.with("station.id", station.id)
    }

    deinit { assert(!state.value.running, "ModbusRTUStationServer of \(station.id) dropped while running: call stop()") }

    public func set(signal: String, value: SignalValue) throws { try map.set(signal: signal, value: value) }

    /// Requests answered so far.
    public var requestCount: UInt64 { state.value.requestsServed }

    private var isRunning: Bool { state.value.running }

    /// Opens the serial device and starts answering. Throws if the device cannot be opened.
    public func start() throws {
        if isRunning { return }
        guard let ctx = modbus_new_rtu(device, Int32(baud), CChar(parity.asciiValue ?? 78), Int32(dataBits), Int32(stopBits)) else {
            throw SystemError(call: "modbus_new_rtu", errno: cmodbus_errno(), context: "RTU server \(station.id) on \(device)")
        }
        modbus_set_slave(ctx, Int32(unit))
        if modbus_connect(ctx) != 0 {
            let code = cmodbus_errno()
            modbus_free(ctx)
            throw SystemError(call: "modbus_connect", errno: code, context: "RTU server \(station.id) on \(device)")
        }
        // The device opens: the thread makes its own context (contexts are not Sendable).
        modbus_close(ctx)
        modbus_free(ctx)
        let done = DispatchSemaphore(value: 0)
        state.withLock { state in
            state.running = true
            state.finished = done
        }
        let thread = Thread { [self] in
            serve()
            done.signal()
        }
        thread.name = "modbus-rtu-sim.\(station.id)"
        thread.start()
    }

    /// Stops answering, closes the device and joins the thread (within ~100 ms).
    public func stop() {
        let done: DispatchSemaphore? = state.withLock { state in
            guard state.running, let done = state.finished else { return nil }
            state.running = false
            return done
        }
        guard let done else { return }
        done.wait()
        state.withLock { $0.finished = nil }
    }

    private func serve() {
        guard let ctx = modbus_new_rtu(device, Int32(baud), CChar(parity.asciiValue ?? 78), Int32(dataBits), Int32(stopBits)) else {
            logger.error("modbus_new_rtu failed on \(device)")
            return
        }
        defer { modbus_close(ctx); modbus_free(ctx) }
        modbus_set_slave(ctx, Int32(unit))
        guard modbus_connect(ctx) == 0 else {
            logger.error("cannot open \(device): errno \(cmodbus_errno())")
            return
        }
        modbus_set_byte_timeout(ctx, 0, 100_000)
        let query = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        defer { query.deallocate() }
        let epoll: Epoll
        do {
            epoll = try Epoll(capacity: 1, context: "modbus rtu \(device)")
            try epoll.add(modbus_get_socket(ctx), Epoll.readable)
        } catch {
            logger.error("\(error)")
            return
        }
        defer { epoll.close() }
        while isRunning {
            var readable = false
            try? epoll.wait(timeoutMs: 100) { _, _ in readable = true }
            guard readable else { continue }
            let length = modbus_receive(ctx, query)
            if length <= 0 { continue }   // other unit, bad CRC, or a partial frame: ignore
            if map.reply(ctx, request: query, length: length) >= 0 {
                state.withLock { $0.requestsServed += 1 }
            }
        }
    }
}
