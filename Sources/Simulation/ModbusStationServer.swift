import Foundation
import PlantModel
import Runtime

/// How a simulated Modbus PLC behaves (fault tests).
public enum ModbusServerBehavior: Sendable, Equatable {
    /// Answers requests.
    case normal
    /// Accepts connections and reads requests but never answers.
    case stall
    /// Answers every request with bytes that are not a Modbus response.
    case garbage
    /// Closes every connection as soon as it is accepted or sends a request.
    case closeConnections
}

/// A simulated Modbus TCP PLC for one station: its listener and client connections are served
/// by one of the process's few ``ModbusServerLoop`` threads (``ModbusServerLoopGroup``), with any
/// number of clients at once; requests are answered from its ``ModbusRegisterMap``.
///
/// It answers only the station's unit id; any other unit id gets the exception
/// "gateway target device failed to respond" (0x0B). ``start()`` binds and returns the port;
/// ``stop()`` closes the listener and every client connection before it returns. It can be
/// started again after a stop (on the same port). Thread-safe.
public final class ModbusStationServer: Sendable {
    private struct State {
        var requestedPort: UInt16
        var boundPort: UInt16?
        var behavior: ModbusServerBehavior = .normal
        /// The loop (index in the group) serving it while it runs.
        var loop: Int?
        var requestsServed: UInt64 = 0
    }

    public let station: StationConfig
    /// The values served; write them with ``set(signal:value:)``.
    public let map: ModbusRegisterMap
    public let host: String
    public let unit: Int

    private let logger: Logger
    private let loops: ModbusServerLoopGroup
    private let state: Locked<State>

    /// - Parameters:
    ///   - station: a `modbus` station with a TCP endpoint (its host, port and unit are used).
    ///   - port: overrides the endpoint's port (0 picks a free one); tests use this.
    ///   - map: the register map to serve (default: a new one sized from the station).
    ///   - loops: the loop threads that serve it (default: the process's shared group).
    public init(station: StationConfig, host: String? = nil, port: UInt16? = nil, map: ModbusRegisterMap? = nil,
                logger: Logger = Logger(label: "modbus-sim"), loops: ModbusServerLoopGroup = .shared) {
        self.station = station
        self.map = map ?? ModbusRegisterMap(station: station)
        var endpointHost = "127.0.0.1", endpointPort: UInt16 = 502
        if case let .modbusTCP(h, p, _) = station.endpoint { endpointHost = h; endpointPort = p }
        self.host = host ?? endpointHost
        self.state = Locked(State(requestedPort: port ?? endpointPort))
        self.unit = station.endpoint.unit ?? 1
        self.logger = logger.with("station.id", station.id)
        self.loops = loops
    }

    deinit { assert(state.value.loop == nil, "ModbusStationServer of \(station.id) dropped while running: call stop()") }

    /// The port bound by the last ``start()``.
    public var port: UInt16? { state.value.boundPort }

    /// How the server answers (switch at any time).
    public var behavior: ModbusServerBehavior {
        get { state.value.behavior }
        set { state.withLock { $0.behavior = newValue } }
    }

    /// Requests answered so far.
    public var requestCount: UInt64 { state.value.requestsServed }

    /// Writes a signal's value (see ``ModbusRegisterMap/set(signal:value:)``).
    public func set(signal: String, value: SignalValue) throws {
        try map.set(signal: signal, value: value)
    }

    /// Binds and starts serving; returns the bound port. A restart reuses the first bound port.
    @discardableResult
    public func start() throws -> UInt16 {
        let (runningPort, wantedPort) = state.withLock { state in
            (state.loop != nil ? state.boundPort : nil, state.boundPort ?? state.requestedPort)
        }
        if let runningPort { return runningPort }

        let listenFd = try Socket.listen(host: host, port: wantedPort, backlog: 128, nonBlocking: true)
        let port: UInt16
        do {
            port = try Socket.localPort(listenFd)
        } catch {
            Socket.close(listenFd)
            throw error
        }
        let index = loops.take()
        do {
            try loops.loops[index].send(.add(self, listenFd: listenFd))
        } catch {
            loops.give(back: index)
            Socket.close(listenFd)
            throw error
        }
        state.withLock { state in
            state.boundPort = port
            state.loop = index
        }
        logger.debug("serving Modbus TCP on \(host):\(port) unit \(unit) (\(loops.loops[index].name))")
        return port
    }

    /// Stops serving: closes the listener and every client connection (on the loop thread) and returns once they are closed.
    public func stop() {
        let index: Int? = state.withLock { state in
            defer { state.loop = nil }
            return state.loop
        }
        guard let index else { return }
        let done = DispatchSemaphore(value: 0)
        do {
            try loops.loops[index].send(.remove(self, done: done))
            done.wait()
        } catch {
            // No loop thread runs and none can start: nothing is served any more.
            logger.error("stop: \(error)")
        }
        loops.give(back: index)
    }

    /// Answers one whole request frame (MBAP header + PDU) into `out` as its ``behavior`` says; on the loop thread.
    /// Returns false when the connection is to be closed.
    func answer(_ request: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        let behavior = state.withLock { state -> ModbusServerBehavior in
            if state.behavior == .normal { state.requestsServed += 1 }
            return state.behavior
        }
        switch behavior {
        case .stall:
            return true
        case .closeConnections:
            return false
        case .garbage:
            out.append(contentsOf: [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0xFF, 0x83, 0x7F])
            return true
        case .normal:
            let start = ModbusServerFrame.beginAnswer(to: request, into: &out)
            let pdu = UnsafeRawBufferPointer(rebasing: request[ModbusServerFrame.headerLength...])
            if Int(request[6]) != unit {
                ModbusServerFrame.appendException(function: pdu[0], code: ModbusExceptionCode.gatewayTargetFailed, into: &out)
            } else {
                map.answer(pdu, into: &out)
            }
            ModbusServerFrame.finish(&out, from: start)
            return true
        }
    }
}
