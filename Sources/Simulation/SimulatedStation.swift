import Foundation
import OPCUA
import PlantModel
import Runtime

/// Serves one station's values over its configured protocol: a ``ModbusStationServer`` for a
/// `modbus://` endpoint, an `OPCUAServer` (one variable per signal `node`) for `opc.tcp://`.
/// Neither has a thread of its own: the Modbus servers run on the process's ``ModbusServerLoopGroup``,
/// the OPC UA servers on one shared `OPCUAServerLoop`.
///
/// Values are pushed with ``update(_:)`` (all signals, config order) or ``set(signal:value:)``;
/// only changed values reach the server. ``setOnline(_:)`` with false closes the server (clients
/// see connection refused) and true serves again on the same port. Thread-safe.
public final class SimulatedStation: Sendable {
    private struct State {
        var modbus: ModbusStationServer?
        var opcua: OPCUAServer?
        var current: [SignalValue?]
        var boundPort: UInt16?
        var online = false
        var started = false
    }

    public let station: StationConfig
    private let host: String
    private let requestedPort: UInt16
    private let logger: Logger
    private let nodes: [NodeId?]
    /// The OPC UA server's security (the station's `security` block), nil: SecurityPolicy None.
    private let security: ServerSecurity?
    /// Held while a server starts or stops, so start, stop and pushes happen one at a time.
    private let state: Locked<State>

    /// - Parameters:
    ///   - host, port: override the endpoint's (tests pass port 0 for a free port).
    /// - Throws: ``SimulationError`` for an endpoint that cannot be served (Modbus RTU) or a bad node id.
    ///   - security: what the OPC UA server offers (``SimulatorSecurity``); nil: SecurityPolicy None, anonymous.
    public init(station: StationConfig, host: String? = nil, port: UInt16? = nil, logger: Logger = Logger(label: "station-sim"),
                security: ServerSecurity? = nil) throws {
        self.station = station
        self.security = security
        self.logger = logger.with("station.id", station.id)
        switch station.endpoint {
        case let .modbusTCP(h, p, _):
            self.host = host ?? h
            requestedPort = port ?? p
        case let .opcua(_, h, p):
            self.host = host ?? h
            requestedPort = port ?? p
        case .modbusRTU:
            throw SimulationError("\(station.id): Modbus RTU stations are served by ModbusRTUStationServer, not over TCP")
        }
        nodes = try station.signals.map { signal in
            guard station.protocol == .opcua else { return nil }
            guard let text = signal.node, let node = NodeId(text) else {
                throw SimulationError("\(station.id).\(signal.name): \"\(signal.node ?? "")\" is not an OPC UA node id")
            }
            return node
        }
        state = Locked(State(current: Array(repeating: nil, count: station.signals.count)))
    }

    deinit {
        state.withLock { state in
            state.modbus?.stop()
            state.opcua?.stop()
        }
    }

    /// The bound port after ``start()``.
    public var port: UInt16? { state.withLock { $0.boundPort } }

    /// Starts serving (online). Returns the bound port.
    @discardableResult
    public func start() throws -> UInt16 {
        try state.withLock { state in
            if let boundPort = state.boundPort, state.started { return boundPort }
            state.started = true
            let port = try serveLocked(&state, port: state.boundPort ?? requestedPort)
            state.boundPort = port
            state.online = true
            return port
        }
    }

    /// Stops serving and closes every client connection.
    public func stop() {
        state.withLock { state in
            state.started = false
            state.online = false
            closeLocked(&state)
        }
    }

    /// Takes the PLC off the network (false) or back (true, on the same port, with the current values).
    public func setOnline(_ value: Bool) throws {
        try state.withLock { state in
            guard state.started, value != state.online else { return }
            state.online = value
            if value {
                _ = try serveLocked(&state, port: state.boundPort ?? requestedPort)
            } else {
                closeLocked(&state)
            }
        }
    }

    /// Pushes every signal's value (config signal order); unchanged values are skipped.
    public func update(_ values: [SignalValue]) throws {
        try state.withLock { state in
            for (i, value) in values.enumerated() where i < state.current.count && state.current[i] != value {
                try pushLocked(&state, i, value)
            }
        }
    }

    /// Pushes one signal's value by name. - Throws: ``SimulationError`` for an unknown signal.
    public func set(signal name: String, value: SignalValue) throws {
        guard let i = station.signals.firstIndex(where: { $0.name == name }) else {
            throw SimulationError("\(station.id) has no signal \"\(name)\"")
        }
        try state.withLock { state in
            if state.current[i] != value { try pushLocked(&state, i, value) }
        }
    }

    private func pushLocked(_ state: inout State, _ i: Int, _ value: SignalValue) throws {
        state.current[i] = value
        if let modbus = state.modbus {
            try modbus.map.set(index: i, value: value)
        } else if let opcua = state.opcua, let node = nodes[i] {
            try opcua.setValue(nodeId: node, value: SimulatedStation.variant(value, signal: station.signals[i]))
        }
    }

    private func serveLocked(_ state: inout State, port: UInt16) throws -> UInt16 {
        switch station.protocol {
        case .modbus:
            let server = state.modbus ?? ModbusStationServer(station: station, host: host, port: port, logger: logger)
            for (i, value) in state.current.enumerated() {
                if let value { try server.map.set(index: i, value: value) }
            }
            let bound = try server.start()
            state.modbus = server
            return bound
        case .opcua:
            var options = OPCUAServer.Options()
            options.host = host
            options.port = port
            options.applicationName = "LineMES simulated \(station.id)"
            options.logger = logger.named("opcua.server")
            options.logger.level = .warning
            options.security = security
            options.loop = SimulatedStation.opcuaLoop
            // The ApplicationUri the server announces is the one in its certificate (clients check the two agree).
            if let security { options.applicationUri = security.applicationURI }
            let server = OPCUAServer(options: options)
            let folder = NodeId("Simulator/\(station.id)", namespace: server.namespaceIndex)
            try server.addFolder(nodeId: folder, browseName: station.id)
            for (i, signal) in station.signals.enumerated() {
                guard let node = nodes[i] else { continue }
                let value = state.current[i] ?? SimulatedStation.initialValue(signal)
                try server.addVariable(nodeId: node, browseName: signal.name, parent: folder,
                                       value: SimulatedStation.variant(value, signal: signal))
            }
            try server.start()
            state.opcua = server
            return server.port
        }
    }

    private func closeLocked(_ state: inout State) {
        state.modbus?.stop()
        state.opcua?.stop()
        state.opcua = nil
    }

    /// The one thread that serves every simulated OPC UA PLC of the process (README "station-sim: threads").
    static let opcuaLoop = OPCUAServerLoop(name: "opcua-sim")

    static func initialValue(_ signal: SignalConfig) -> SignalValue {
        switch signal.type {
        case .string?: return .string("")
        case .bool?: return .bool(false)
        default: return .int(0)
        }
    }

    /// The OPC UA value of a signal: its configured type (scale/offset undone), or the value's own.
    public static func variant(_ value: SignalValue, signal: SignalConfig) -> Variant {
        var number = value.number ?? Double(value.text) ?? 0
        if signal.scale != nil || signal.offset != nil {
            let scale = signal.scale ?? 1
            number = (number - (signal.offset ?? 0)) / (scale == 0 ? 1 : scale)
        }
        func int<T: FixedWidthInteger>(_: T.Type) -> T {
            let r = number.rounded()
            if r <= Double(T.min) { return T.min }
            if r >= Double(T.max) { return T.max }
            return T(r)
        }
        switch signal.type {
        case .string?: return .string(value.text)
        case .bool?: return .boolean(value.number.map { $0 != 0 } ?? (value.text == "true"))
        case .int16?: return .int16(int(Int16.self))
        case .uint16?: return .uint16(int(UInt16.self))
        case .int32?: return .int32(int(Int32.self))
        case .uint32?: return .uint32(int(UInt32.self))
        case .int64?: return .int64(int(Int64.self))
        case .uint64?: return .uint64(int(UInt64.self))
        case .byte?: return .byte(int(UInt8.self))
        case .sbyte?: return .sbyte(int(Int8.self))
        case .float32?, .float?: return .float(Float(number))
        case .float64?, .double?: return .double(number)
        case .datetime?: return .dateTime(DateTime(Date(timeIntervalSince1970: number)))
        case nil:
            switch value {
            case .bool(let b): return .boolean(b)
            case .int(let i): return .int64(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        }
    }
}

/// A simulation setup problem (a station that cannot be served, an unknown signal).
public struct SimulationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
