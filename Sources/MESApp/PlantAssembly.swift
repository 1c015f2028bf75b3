import Foundation
import API
import HTTP
import ModbusAdapter
import Notify
import Pipeline
import PlantModel
import PlantStore
import Quality
import Runtime
import Simulation
import Storage

/// Wires the plant-specific parts around the pipeline: tracking and quality, their tables and
/// routes, the adapters or the replay, the simulators and the recorder.
final class PlantAssembly: Sendable {
    static var migrations: [MigrationGroup] { [GenealogySchema.migrations, OperationQuery.migrations, QualitySchema.migrations, Outbox.migrations, OrderStore.migrations,
                                                  ShiftStore.migrations, FloorStore.migrations, PartStore.migrations,
                                                  EnergyStore.migrations, ReportScheduleStore.migrations] }

    let config: PlantConfig
    let pipeline: Pipeline
    let eventLog: EventLog
    let logger: Logger
    let samples: SampleStore
    let stage: PlantStage
    let auth: AuthPolicy
    let notify: NotifyAssembly

    var facts: any PlantFacts { StageFacts(stage: stage) }

    init(config: PlantConfig, pipeline: Pipeline, eventLog: EventLog, logger: Logger) throws {
        self.config = config
        self.pipeline = pipeline
        self.eventLog = eventLog
        self.logger = logger
        samples = SampleStore(log: eventLog)
        for station in config.stations {
            for signal in station.signals where signal.deadband != nil {
                samples.setDeadband(station: station.id, signal: signal.name, signal.deadband)
            }
        }
        stage = try PlantStage(config: config, eventLog: eventLog, samples: samples, pipeline: pipeline, logger: logger)
        stage.kpiDocument = { APIRoutes.kpiDocument($0) }
        pipeline.add(stage: stage)
        let stage = self.stage
        let below = (try? QualityRules.decode(config.alertRules))?.maintenance.below ?? 0.5
        notify = NotifyAssembly(config: config, pipeline: pipeline, eventLog: eventLog, logger: logger) {
            EquipmentReport(plant: config.plant, generatedAt: Date(), units: stage.equipment(), below: below)
        }
        var tokens = TokenStore.empty
        if let file = config.auth?.tokensFile {
            do {
                tokens = try TokenStore.load(path: file)
            } catch {
                throw ConfigError(file: config.file, path: "auth.tokensFile", message: "\(error)")
            }
        }
        auth = AuthPolicy(tokens: tokens, anonymousRead: config.auth?.anonymousRead ?? true)
        if tokens.count == 0 { logger.warning("no tokens file: every write answers 401") }
    }

    func addRoutes(to router: inout Router, context: APIContext) {
        var context = context
        let shiftQueries = StoreShiftQueries(eventLog: eventLog)
        context.storedKPIs = APIRoutes.storedKPIs(config: config, backend: stage, queries: shiftQueries)
        APIRoutes.addShifts(to: &router, context: context, backend: stage, shifts: stage, queries: shiftQueries, auth: auth)
        APIRoutes.addPlant(to: &router, context: context, backend: stage,
                           queries: StoreQueries(eventLog: eventLog, samples: samples, config: config), auth: auth)
        APIRoutes.addNotifications(to: &router, context: context, backend: stage, auth: auth)
        APIRoutes.addAssign(to: &router, backend: stage, auth: auth)
        APIRoutes.addMe(to: &router, context: context, backend: stage, auth: auth)
        APIRoutes.addEquipment(to: &router, context: context, backend: stage, below: (try? QualityRules.decode(config.alertRules))?.maintenance.below ?? 0.5)
        APIRoutes.addOrders(to: &router, context: context, backend: stage, orders: stage,
                            queries: StoreOrderQueries(eventLog: eventLog), auth: auth)
        APIRoutes.addFloor(to: &router, context: context, backend: stage, floor: stage,
                           queries: StoreFloorQueries(eventLog: eventLog), auth: auth)
        APIRoutes.addOperations(to: &router, context: context)
        APIRoutes.addParts(to: &router, context: context, backend: stage, parts: stage,
                           queries: StorePartQueries(eventLog: eventLog, config: config), auth: auth)
    }

    func middlewares(context: APIContext) -> [any HTTPMiddleware] {
        [APIRoutes.readAuthMiddleware(auth: auth, backend: stage)]
    }

    /// The services that feed the pipeline: simulators and adapters, or a replay; and the recorder.
    func inputServices(options: ServerOptions) throws -> [any Service] {
        var services: [any Service] = []
        if let path = options.record {
            let recorder = try RecordingWriter(path: path)
            pipeline.addPollObserver { poll in
                do { try recorder.write(poll) } catch { self.logger.error("recording to \(path) failed: \(error)") }
            }
            services.append(CloseOnStop(name: "recorder") { try? recorder.close() })
        }
        if let replay = options.replay {
            services.append(ReplayService(path: replay, speed: options.speed, exitWhenDone: options.exitAfterReplay,
                                          pipeline: pipeline, eventLog: eventLog, logger: logger.named("replay")))
            return services
        }
        // OPC UA security (README "Connecting to a PLC that requires security"): the PKI folder, this
        // client's certificate and the stations' passwords, once for every station; failures stop the start.
        let securityContext = try OPCUASecurityFactory.clientContext(config: config, database: options.database,
                                                                    logger: logger.named("pki"))
        if options.simulate {
            let stage = self.stage
            let simulatorSecurity = try securityContext.map {
                try OPCUASecurityFactory.simulatorSecurity(config: config, clientContext: $0, logger: logger.named("sim-pki"))
            }
            services.append(contentsOf: try SimulatorFactory.services(config: config, logger: logger,
                                                                             orders: StageOrderSink(stage: stage),
                                                                             partNumbers: { stage.specPartNumber(vehicleId: $0, partType: $1) },
                                                                             security: simulatorSecurity))
        }
        let sink = pipeline.sink
        var adapters: [any StationAdapter] = []
        // Modbus TCP stations share a few event-loop threads (docs/ARCHITECTURE.md, "Modbus TCP on
        // event loops"); RTU stations and those that ask for libmodbus get a thread each.
        let loopStations = config.stations.filter(Self.pollsOnEventLoop)
        let modbusLoops = loopStations.isEmpty ? nil
            : ModbusEventLoopGroup(threads: ModbusEventLoopGroup.defaultThreadCount(stations: loopStations.count),
                                   logger: logger.named("adapter"))
        for station in config.stations {
            let stationLogger = logger.named("adapter").with("station.id", station.id)
            switch station.protocol {
            case .modbus:
                if let modbusLoops, Self.pollsOnEventLoop(station) {
                    adapters.append(ModbusLoopStationAdapter(config: station, loop: modbusLoops.next(), sink: sink, logger: stationLogger))
                } else {
                    adapters.append(ModbusStationAdapter(config: station, sink: sink, logger: stationLogger))
                }
            case .opcua:
                if let adapter = OPCUAAdapterFactory.make(station: station, sink: sink, logger: stationLogger, security: securityContext) {
                    adapters.append(adapter)
                }
            }
        }
        services.append(contentsOf: adapters.map { $0 as any Service })
        services.append(StatsPublisher(adapters: adapters, live: pipeline.live))
        return services
    }

    /// Whether a station is polled from the shared Modbus event loops (Modbus TCP unless its
    /// config asks for libmodbus).
    static func pollsOnEventLoop(_ station: StationConfig) -> Bool {
        guard station.protocol == .modbus, case .modbusTCP = station.endpoint else { return false }
        return station.modbusDriver == .eventLoop
    }
}

/// WIP and KPIs per station for `GET /api/stations`.
struct StageFacts: PlantFacts {
    let stage: PlantStage
    func wip(station: String) -> Int { stage.wip(station: station) }
    func kpi(station: String) -> StationKPI? { stage.kpi(station: station) }
}

/// Copies each adapter's polling figures into the live state twice a second.
struct StatsPublisher: Service {
    let name = "stats"
    let adapters: [any StationAdapter]
    let live: LiveStations

    func run() async throws {
        while !Task.isCancelled {
            for adapter in adapters { live.setStats(adapter.stats(), for: adapter.stationID) }
            try? await Task.sleep(nanoseconds: 500_000_000)
        }
    }
}

/// Runs `close` when the group stops it.
struct CloseOnStop: Service {
    let name: String
    let close: @Sendable () -> Void
    func run() async throws {
        await waitUntilCancelled()
        close()
    }
}

/// Feeds a recording through the pipeline (`--replay`, README "Stations, scenarios, record and replay"), with progress on stderr.
final class ReplayService: Service {
    let name = "replay"
    let path: String
    let speed: ReplaySpeed
    let exitWhenDone: Bool
    let pipeline: Pipeline
    let eventLog: EventLog
    let logger: Logger
    private let cancelled = Flag()
    /// Set by the server once it is assembled, before the service runs.
    private let hooks = Locked<(requestShutdown: (@Sendable () -> Void)?, status: ReplayStatus)>((nil, ReplayStatus()))
    /// Asks the server to stop (`--exit-after-replay`).
    var requestShutdown: (@Sendable () -> Void)? {
        get { hooks.value.requestShutdown }
        set { hooks.withLock { $0.requestShutdown = newValue } }
    }
    /// The progress `/api/health` shows.
    var status: ReplayStatus {
        get { hooks.value.status }
        set { hooks.withLock { $0.status = newValue } }
    }

    init(path: String, speed: ReplaySpeed, exitWhenDone: Bool, pipeline: Pipeline, eventLog: EventLog, logger: Logger) {
        self.path = path
        self.speed = speed
        self.exitWhenDone = exitWhenDone
        self.pipeline = pipeline
        self.eventLog = eventLog
        self.logger = logger
    }

    func run() async throws {
        // The replay thread is not a task: cancellation reaches it through `cancelled`, checked per
        // poll and per pacing slice, so SIGINT/SIGTERM end a replay within 2 s.
        let cancelled = self.cancelled
        let result: Result<ReplayProgress, any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let thread = Thread { [self] in
                    continuation.resume(returning: Result { try replay() })
                }
                thread.name = "replay"
                thread.start()
            }
        } onCancel: {
            cancelled.set()
        }
        switch result {
        case .success(let progress):
            // What was read is processed and committed; stopped early, this waits only for that.
            pipeline.drain()
            try? eventLog.flush(timeout: cancelled.isSet ? 1.5 : 120)
            logger.info(cancelled.isSet ? "replay stopped: \(progress)" : "replay finished: \(progress)")
            status.update(progress, finished: true, error: nil)
        case .failure(let error):
            logger.error("replay stopped: \(path): \(error)")
            status.update(nil, finished: true, error: "\(error)")
            if exitWhenDone { throw ReplayFailed(message: "\(path): \(error)") }
        }
        if exitWhenDone && !Task.isCancelled && !cancelled.isSet {
            logger.info("--exit-after-replay: stopping")
            requestShutdown?()
        }
        await withTaskCancellationHandler { await waitUntilCancelled() } onCancel: { cancelled.set() }
    }

    private func replay() throws -> ReplayProgress {
        if path == "/dev/null" || (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == 0 {
            return ReplayProgress(finished: true)
        }
        let pipeline = self.pipeline, eventLog = self.eventLog
        let status = self.status
        let cancelled = self.cancelled
        return try replayRecording(path: path, speed: speed, isCancelled: { cancelled.isSet }, progress: { [logger] p in
            logger.info("replay \(p)")
            status.update(p, finished: false, error: nil)
        }, deliver: { poll in
            // Keep memory flat: wait while the pipeline or storage is far behind.
            while (pipeline.backlog > 5_000 || eventLog.pendingCount > 20_000) && !cancelled.isSet { usleep(500) }
            pipeline.submit(.poll(poll))
        })
    }
}

/// The replay file was bad with `--exit-after-replay`: the server stops non-zero.
struct ReplayFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}


/// A replay's progress for `/api/health`: `{finished, samples, polls, percent, recordingTime, error}`.
final class ReplayStatus: Sendable {
    private struct State {
        var progress: ReplayProgress?
        var finished = false
        var error: String?
    }

    private let state = Locked(State())

    func update(_ progress: ReplayProgress?, finished: Bool, error: String?) {
        state.withLock { state in
            if let progress { state.progress = progress }
            state.finished = finished
            state.error = error
        }
    }

    var json: JSON {
        let state = state.value
        let progress = state.progress, finished = state.finished, error = state.error
        return .obj([
            ("finished", .bool(finished)),
            ("samples", .int(Int64(progress?.samples ?? 0))),
            ("polls", .int(Int64(progress?.polls ?? 0))),
            ("percent", .double(((progress?.fraction ?? (finished ? 1 : 0)) * 1000).rounded() / 10)),
            ("recordingTime", progress?.recordingTime.map { .string(Timestamp.format($0)) } ?? .null),
            ("error", .str(error)),
        ])
    }
}
