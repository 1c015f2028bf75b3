import Foundation
import OPCUA
import PlantModel
import Runtime

/// Where simulated values come from: the plant model ticking in real time, or a recording.
public enum SimulationSource: Sendable {
    /// The behaviour model (a scenario, or the built-in normal shift) with a seed.
    case model(Scenario, seed: UInt64?)
    /// A recording (contract §6) replayed at a speed.
    case recording(path: String, speed: ReplaySpeed)
}

/// Serves a plant's stations over the real protocols: one libmodbus server per Modbus station
/// and one OPC UA server per OPC UA station, on the endpoints of the config, with values from a
/// ``SimulationSource``. What `station-sim` and `mes-server --simulate` run.
///
/// A scenario's `offline` event stops the station's server for its duration (the PLC vanishes),
/// so adapters see a real outage.
public final class SimulatedPlant: Service, @unchecked Sendable {
    public let name = "simulators"
    public let config: PlantConfig
    private let stations: [StationConfig]
    private let source: SimulationSource
    private let logger: Logger
    private var modbus: [String: ModbusStationServer] = [:]
    private var opcua: [String: OPCUAServer] = [:]
    private let lock = NSLock()
    private var stopRequested = false
    private var online: [String: Bool] = [:]

    /// - Parameter stationIDs: the stations to serve (empty: all).
    /// - Throws: ``ConfigError`` for an unknown station id.
    public init(config: PlantConfig, stationIDs: [String] = [], source: SimulationSource, logger: Logger) throws {
        self.config = config
        for id in stationIDs where config.station(id) == nil {
            throw ConfigError(file: config.file, path: "stations", message: "no station \"\(id)\" (known: \(config.stations.map(\.id).joined(separator: ", ")))")
        }
        stations = stationIDs.isEmpty ? config.stations : config.stations.filter { stationIDs.contains($0.id) }
        self.source = source
        self.logger = logger.named("sim")
    }

    /// Starts every station's server on its configured endpoint. Throws a one-line reason (port in use …).
    public func start() throws {
        do {
            for station in stations {
                switch station.endpoint {
                case .modbusTCP:
                    let server = ModbusStationServer(station: station, logger: logger.with("station.id", station.id))
                    let port = try server.start()
                    modbus[station.id] = server
                    logger.info("\(station.id): Modbus TCP on 127.0.0.1:\(port) unit \(station.endpoint.unit ?? 1)")
                case .opcua(_, let host, let port):
                    var options = OPCUAServer.Options()
                    options.host = host == "localhost" ? "127.0.0.1" : host
                    options.port = port
                    options.applicationName = "\(station.name) (simulated)"
                    let server = OPCUAServer(options: options)
                    try Self.buildAddressSpace(server, station: station)
                    try server.start()
                    opcua[station.id] = server
                    logger.info("\(station.id): OPC UA on \(server.endpointURL)")
                case .modbusRTU(let device, _, _, _, _, _):
                    logger.warning("\(station.id): Modbus RTU on \(device) is not simulated (serial lines are not served)")
                }
                online[station.id] = true
            }
        } catch {
            stop()
            throw error
        }
    }

    /// Stops every server.
    public func stop() {
        lock.withLock { stopRequested = true }
        for server in modbus.values { server.stop() }
        for server in opcua.values { server.stop() }
    }

    public func run() async throws {
        if modbus.isEmpty && opcua.isEmpty { try start() }
        let thread = Thread { [self] in drive() }
        thread.name = "simulator"
        thread.start()
        await waitUntilCancelled()
        stop()
    }

    private var isStopping: Bool { lock.withLock { stopRequested } }

    /// Moves values into the servers until stopped.
    private func drive() {
        switch source {
        case .model(let scenario, let seed):
            do {
                try driveModel(scenario: scenario, seed: seed)
            } catch {
                logger.error("simulation stopped: \(error)")
            }
        case .recording(let path, let speed):
            do {
                let progress = try replayRecording(path: path, speed: speed, isCancelled: { self.isStopping }, progress: { [logger] p in
                    logger.info("replay \(p)")
                }, deliver: { poll in self.apply(poll) })
                logger.info("recording finished: \(progress); the stations keep their last values")
            } catch {
                logger.error("replay stopped: \(path): \(error)")
            }
        }
    }

    private func driveModel(scenario: Scenario, seed: UInt64?) throws {
        let began = Date()
        let simulator = try PlantSimulator(config: config, scenario: scenario, seed: seed, start: began)
        let indices = simulator.stationIDs.enumerated().filter { entry in stations.contains { $0.id == entry.element } }
        let startNanos = Monotonic.nanoseconds()
        while !isStopping {
            let elapsedMs = Int64((Monotonic.nanoseconds() - startNanos) / 1_000_000)
            simulator.advance(toElapsedMs: elapsedMs)
            for (index, id) in indices {
                setOnline(id, simulator.isOnline(index))
                if simulator.takeChanged(index) { apply(simulator.poll(index)) }
            }
            usleep(UInt32(max(5, min(50, simulator.tickMs / 2))) * 1000)
        }
    }

    /// Starts or stops a station's server for an `offline` event.
    private func setOnline(_ id: String, _ value: Bool) {
        guard online[id] != value else { return }
        online[id] = value
        if value {
            logger.info("\(id): back online")
            do {
                _ = try modbus[id]?.start()
                try opcua[id]?.start()
            } catch {
                logger.error("\(id): could not restart its server: \(error)")
            }
        } else {
            logger.info("\(id): going offline (scenario)")
            modbus[id]?.stop()
            opcua[id]?.stop()
        }
    }

    /// Writes one poll's values into the station's server.
    public func apply(_ poll: StationPoll) {
        guard let station = stations.first(where: { $0.id == poll.station }) else { return }
        if let server = modbus[station.id] {
            for reading in poll.readings {
                guard let value = reading.value else { continue }
                do { try server.set(signal: reading.name, value: value) } catch {
                    logger.debug("\(station.id).\(reading.name): \(error)")
                }
            }
        } else if let server = opcua[station.id] {
            for reading in poll.readings {
                guard let value = reading.value, let signal = station.signal(named: reading.name),
                      let node = signal.node.flatMap(NodeId.init) else { continue }
                do { try server.setValue(nodeId: node, value: Self.variant(value, signal: signal), sourceTime: poll.time) } catch {
                    logger.debug("\(station.id).\(reading.name): \(error)")
                }
            }
        }
    }

    /// The station's variables in a folder named after it, each with an initial value of its type.
    static func buildAddressSpace(_ server: OPCUAServer, station: StationConfig) throws {
        let folder = NodeId("\(station.id)", namespace: 2)
        try server.addFolder(nodeId: folder, browseName: station.id)
        for signal in station.signals {
            guard let text = signal.node, let node = NodeId(text) else { continue }
            let initial: SignalValue
            switch signal.type {
            case .string, .datetime: initial = .string("")
            case .bool: initial = .bool(false)
            case .double, .float, .float32, .float64: initial = .double(signal.limits.map { (($0.low ?? 0) + ($0.high ?? 0)) / 2 } ?? 0)
            case .none: initial = signal.role == .vehicleId || signal.role == .lotId || signal.role == .operator ? .string("") : .double(0)
            default: initial = .int(0)
            }
            try server.addVariable(nodeId: node, browseName: signal.name, parent: folder, value: variant(initial, signal: signal), writable: true)
        }
    }

    /// A signal value as the OPC UA variant of the signal's type (raw: scale and offset undone).
    static func variant(_ value: SignalValue, signal: SignalConfig) -> Variant {
        var number = value.number ?? 0
        if signal.scale != nil || signal.offset != nil {
            number = (number - (signal.offset ?? 0)) / (signal.scale ?? 1)
        }
        func int<T: FixedWidthInteger>(_ type: T.Type) -> T {
            guard number.isFinite else { return 0 }
            return T(clamping: Int64(max(min(number.rounded(), 9.2e18), -9.2e18)))
        }
        switch signal.type {
        case .bool: return .boolean(number != 0)
        case .int16: return .int16(int(Int16.self))
        case .uint16: return .uint16(int(UInt16.self))
        case .int32: return .int32(int(Int32.self))
        case .uint32: return .uint32(int(UInt32.self))
        case .int64: return .int64(int(Int64.self))
        case .uint64: return .uint64(UInt64(clamping: int(Int64.self)))
        case .byte: return .byte(int(UInt8.self))
        case .sbyte: return .sbyte(int(Int8.self))
        case .float, .float32: return .float(Float(number))
        case .double, .float64: return .double(number)
        case .string: return .string(value.text)
        case .datetime: return .dateTime(DateTime(Timestamp.parse(value.text) ?? Date(timeIntervalSince1970: 0)))
        case .none:
            switch value {
            case .bool(let b): return .boolean(b)
            case .int(let i): return .int64(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        }
    }
}
