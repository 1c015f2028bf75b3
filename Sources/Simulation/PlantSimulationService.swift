import Foundation
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The simulated plant on the network: every selected station served as a real Modbus TCP or
/// OPC UA server (``SimulatedStation``), driven in real time by a ``PlantSimulator`` (a scenario)
/// or by a recording (replayed at a speed).
///
/// What `station-sim` and `mes-server --simulate` run. The driver is a thread of its own; the
/// servers run on a few shared loop threads (README "station-sim: threads"). ``start()``/``stop()`` for direct use, ``run()`` as a
/// ``Service``. A recording that ends leaves the last values served; a bad recording line stops
/// the driver and makes ``run()`` throw it.
public final class PlantSimulationService: Service, Sendable {
    /// What drives the values.
    public enum Source: Sendable {
        /// The simulator with this scenario (`seed` nil: the scenario's), starting at the wall-clock time.
        case scenario(Scenario, seed: UInt64?)
        /// A recording (Stations/README-stations.md "Recordings") replayed at `speed`; stations not in it keep their initial values.
        case recording(path: String, speed: ReplaySpeed)
    }

    public let config: PlantConfig
    public let source: Source
    public let stations: [SimulatedStation]
    private let logger: Logger
    private struct State {
        var stopFlag = false
        var running = false
        var finished: DispatchSemaphore?
        /// Set by start(); signalled once the first values are in the servers (or the driver ended).
        var firstValues: DispatchSemaphore?
        var failure: (any Error)?
        var simulatedElapsedMs: Int64 = 0
        var releaseObserver: (@Sendable ([String], Date) -> Void)?
        var partNumbers: (@Sendable (String, String) -> String?)?
    }

    private let state = Locked(State())
    /// The scenario's release interval of vehicles in seconds (nil for a recording).
    public let taktS: Double?

    public var name: String { "simulation" }

    /// - Parameters:
    ///   - stationIDs: the stations to serve (nil: all of the config).
    ///   - ports: per-station port overrides (tests pass 0 for free ports).
    ///   - security: the certificate and users of the OPC UA stations with a `security` block.
    /// - Throws: ``SimulationError`` for an unknown station id or a station that cannot be served;
    ///   `ConfigError` for a scenario that does not fit the config.
    public init(config: PlantConfig, stationIDs: [String]? = nil, source: Source = .scenario(.normalShift, seed: nil),
                ports: [String: UInt16] = [:], logger: Logger = Logger(label: "station-sim"),
                security: SimulatorSecurity? = nil) throws {
        self.config = config
        self.source = source
        self.logger = logger
        var selected: [StationConfig] = []
        for id in stationIDs ?? config.stations.map(\.id) {
            guard let station = config.station(id) else {
                throw SimulationError("station \"\(id)\" is not in \(config.file) (\(config.stations.map(\.id).joined(separator: ", ")))")
            }
            selected.append(station)
        }
        stations = try selected.map {
            try SimulatedStation(station: $0, port: ports[$0.id], logger: logger, security: security?.serverSecurity(for: $0))
        }
        if case .scenario(let scenario, let seed) = source {
            let check = try PlantSimulator(config: config, scenario: scenario, seed: seed)   // checks the events early
            taktS = Double(check.taktMs) / 1000
        } else {
            taktS = nil
        }
    }

    /// Called on the driver thread with the VINs each step released into the line, followed by
    /// the next three to come, and the simulated time (scenario source): what creates and
    /// releases their orders ahead of the line. Set before ``start()``.
    public func onVehiclesReleased(_ observer: @escaping @Sendable ([String], Date) -> Void) {
        state.withLock { $0.releaseObserver = observer }
    }

    /// Where the simulated stations take the part number of a vehicle's key part from (VIN, part
    /// type → the build spec's part number), e.g. the server's orders. Set before ``start()``.
    public func partNumbers(_ lookup: @escaping @Sendable (String, String) -> String?) {
        state.withLock { $0.partNumbers = lookup }
    }

    /// Bound ports by station id (after ``start()``).
    public var ports: [String: UInt16] {
        var map: [String: UInt16] = [:]
        for station in stations { map[station.station.id] = station.port }
        return map
    }

    /// Milliseconds simulated so far (scenario source).
    public var elapsedMs: Int64 { state.value.simulatedElapsedMs }

    /// Starts every server and the driver thread. Throws if a port cannot be bound (servers
    /// started before it are stopped again).
    public func start() throws {
        let alreadyRunning = state.withLock { state in
            guard !state.running else { return true }
            state.stopFlag = false
            state.failure = nil
            state.running = true
            return false
        }
        guard !alreadyRunning else { return }
        do {
            for station in stations { try station.start() }
        } catch {
            for station in stations { station.stop() }
            state.withLock { $0.running = false }
            throw error
        }
        let done = DispatchSemaphore(value: 0)
        let ready = DispatchSemaphore(value: 0)
        state.withLock { state in
            state.finished = done
            state.firstValues = ready
        }
        let thread = Thread { [self] in
            do {
                try drive()
            } catch {
                logger.error("simulation stopped: \(error)")
                state.withLock { $0.failure = error }
            }
            signalReady()
            done.signal()
        }
        thread.name = "plant-simulation"
        thread.start()
        // Clients that connect once start() returned read the first tick's values, not zeros.
        _ = ready.wait(timeout: .now() + 10)
        logger.info("serving \(stations.count) simulated stations: " + stations.map { "\($0.station.id) :\($0.port ?? 0)" }.joined(separator: ", "))
    }

    /// Stops the driver and every server (joins their threads).
    public func stop() {
        let done: DispatchSemaphore? = state.withLock { state in
            guard state.running else { return nil }
            state.running = false
            state.stopFlag = true
            return state.finished
        }
        guard let done else { return }
        done.wait()
        for station in stations { station.stop() }
        state.withLock { $0.finished = nil }
    }

    /// Serves until cancelled; throws if the driver failed (a bad recording line).
    public func run() async throws {
        try start()
        while !Task.isCancelled {
            if let error = state.value.failure {
                stop()
                throw error
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        stop()
    }

    private var shouldStop: Bool { state.value.stopFlag }

    private func signalReady() {
        let ready: DispatchSemaphore? = state.withLock { state in
            defer { state.firstValues = nil }
            return state.firstValues
        }
        ready?.signal()
    }

    private func drive() throws {
        switch source {
        case .scenario(let scenario, let seed):
            try driveSimulator(scenario: scenario, seed: seed)
        case .recording(let path, let speed):
            signalReady()
            let byID = Dictionary(stations.map { ($0.station.id, $0) }, uniquingKeysWith: { a, _ in a })
            try replayRecording(path: path, speed: speed, isCancelled: { self.shouldStop },
                                progress: { [logger] in logger.debug("\($0)") }) { poll in
                guard let station = byID[poll.station] else { return }
                for reading in poll.readings {
                    guard let value = reading.value else { continue }
                    do {
                        try station.set(signal: reading.name, value: value)
                    } catch {
                        logger.warning("\(poll.station).\(reading.name): \(error)")
                    }
                }
            }
        }
    }

    private func driveSimulator(scenario: Scenario, seed: UInt64?) throws {
        let simulator = try PlantSimulator(config: config, scenario: scenario, seed: seed, start: Date())
        let lookup: (@Sendable (String, String) -> String?)? = state.withLock { state in state.partNumbers }
        if let lookup { simulator.partNumbers = { vin, type in lookup(vin, type) } }
        let indices = stations.map { station in config.stations.firstIndex { $0.id == station.station.id }! }
        var online = Array(repeating: true, count: stations.count)
        func push() throws {
            for (k, s) in indices.enumerated() {
                let isOnline = simulator.isOnline(s)
                if isOnline != online[k] {
                    online[k] = isOnline
                    try stations[k].setOnline(isOnline)
                    logger.info("\(stations[k].station.id) PLC \(isOnline ? "back online" : "offline (scenario)")")
                }
                if simulator.takeChanged(s) { try stations[k].update(simulator.values(at: s)) }
            }
        }
        let observer = state.withLock { $0.releaseObserver }
        func announce() {
            guard let observer else { return }
            let vins = simulator.takeReleased()
            if !vins.isEmpty { observer(vins + simulator.upcomingVINs(3), simulator.time) }
        }
        announce()
        try push()
        signalReady()
        let began = Monotonic.nanoseconds()
        while !shouldStop {
            let target = Int64((Monotonic.nanoseconds() - began) / 1_000_000)
            while simulator.elapsedMs + simulator.tickMs <= target {
                simulator.step()
                announce()
                try push()
            }
            let elapsed = simulator.elapsedMs
            state.withLock { $0.simulatedElapsedMs = elapsed }
            let nextMs = simulator.elapsedMs + simulator.tickMs
            let waitNs = max(1_000_000, (nextMs * 1_000_000) - Int64(Monotonic.nanoseconds() - began))
            var request = timespec(tv_sec: 0, tv_nsec: Int(min(waitNs, 100_000_000)))
            _ = nanosleep(&request, nil)
        }
    }
}
