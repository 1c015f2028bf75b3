import Foundation
import API
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime
import Simulation
import Storage

/// The version reported by `/api/health`.
public let mesVersion = "0.1.0"

/// The assembled server: storage, pipeline, adapters (or replay), simulators, HTTP.
///
/// `prepare()` does everything that can fail at start (config, database, port) so the command
/// line can print a one-line reason and exit non-zero; `run()` serves until SIGINT/SIGTERM.
public final class MESServer: Sendable {
    public let options: ServerOptions
    public let config: PlantConfig
    public let logger: Logger
    public let eventLog: EventLog
    public let hub = SSEHub()
    public let pipeline: Pipeline
    public let http: HTTPServer
    /// Every routed (method, path pattern), for the test that holds docs/openapi.json to them.
    public let routes: [(method: HTTPMethod, pattern: String)]
    private let services: [any Service]
    /// The running group (for ``shutdown()``), and whether a shutdown was asked for before it ran.
    private let control = Locked<(group: ServiceGroup?, shutdownRequested: Bool)>((nil, false))

    /// This server's part in a group on one PostgreSQL database; nil: on its own (SQLite).
    public let cluster: ClusterPart?

    /// Loads the config, opens the database and binds the port. Throws a one-line reason.
    ///
    /// With `cluster` (README "Two nodes"): a standby opens the database and serves the API and the
    /// event stream from it but starts no writer, pipeline or adapters, and forwards writes to the
    /// active; an active checks its lease's epoch in every commit.
    public init(options: ServerOptions, logger: Logger, cluster: ClusterPart? = nil) throws {
        self.cluster = cluster
        self.options = options
        self.logger = logger
        config = try PlantConfig.load(path: options.config)

        var storage = EventLog.Configuration(path: options.database)
        storage.migrations = PlantAssembly.migrations + (cluster == nil ? [] : [ClusterSchema.migrations])
        if case .active(let view, let epoch) = cluster {
            storage.commitFence = ClusterSchema.fence(plant: view.plant, node: options.node, epoch: epoch, leaseS: config.leaseS)
        }
        storage.retention.maxAge = config.retentionDays * 86_400
        // In replay the pipeline's clock is the recording's, and so is retention's: an old recording's
        // samples are kept while it is studied, not pruned against the wall clock.
        let replayClock = options.replay == nil ? nil : ManualClock(Date(timeIntervalSince1970: 0))
        let log = try EventLog.open(storage, clock: replayClock ?? SystemWallClock(), logger: logger.named("storage"))
        eventLog = log
        var started: [any Service] = []
        var services: [any Service] = []
        do {
        let pipeline = Pipeline(config: config, eventLog: eventLog, mode: options.replay == nil ? .live : .replay, logger: logger)
        pipeline.replayClock = replayClock
        self.pipeline = pipeline
        let hub = self.hub
        // One batch per commit: each event encoded once, each event loop woken once.
        eventLog.addCommitHandler { events in
            hub.publish(events.map { SSEEvent(id: $0.seq, type: $0.type, data: $0.data) })
        }
        var follower: EventFollower?
        if case .standby(let view) = cluster {
            let live = pipeline.live
            follower = EventFollower(url: view.url, eventLog: log, after: log.latestSeq, logger: logger.named("follower")) { events in
                StandbyLiveView.apply(events, to: live)
                hub.publish(events.map { SSEEvent(id: $0.seq, type: $0.type, data: $0.data) })
            }
        }

        let assembly = try PlantAssembly(config: config, pipeline: pipeline, eventLog: eventLog, logger: logger)

        let limits = Self.httpLimits(config: config, listenHost: options.host)
        let dashboards = options.dashboards ?? Self.defaultDashboards(config: options.config)
        let httpCounters = HTTPCountersBox()
        var context = APIContext(config: config, live: pipeline.live, eventLog: eventLog, hub: hub, version: mesVersion,
                                 perform: { body in try pipeline.perform(body) })
        let outboxLog = eventLog
        context.extraMetrics = { (httpCounters.server?.metrics.prometheusText ?? "") + NotifyAssembly.metrics(outboxLog) }
        context.clock = { PipelineClock(mode: pipeline.mode == .replay ? .replay : .live, time: pipeline.currentClock) }
        let nodeName = options.node
        let role = cluster?.role ?? .active
        context.node = { (nodeName, role) }
        if let follower { context.lastEventId = { follower.lastSeq } }
        let auth = assembly.auth
        context.showsEndpoints = { auth.viewer(of: $0)?.has(.engineer) ?? false }
        let replayStatus = ReplayStatus()
        if options.replay != nil {
            context.extraHealth = { [("replay", replayStatus.json)] }
        }
        var router = Router()
        APIRoutes.addCore(to: &router, context: context, facts: assembly.facts)
        assembly.addRoutes(to: &router, context: context)
        APIRoutes.addOpenAPI(to: &router, file: Self.openAPIDocument(dashboards: dashboards))
        routes = router.registeredRoutes
        if FileManager.default.fileExists(atPath: dashboards) {
            router.fallback = try StaticFiles(root: dashboards)
        } else {
            logger.warning("no dashboards folder at \(dashboards): only the API is served")
        }
        var responder: any HTTPResponder = MiddlewareChain(assembly.middlewares(context: context), responder: router)
        if case .standby(let view) = cluster {
            // Writes, and reads of the figures only the active keeps current, are the active's.
            let local = responder
            responder = MiddlewareChain([WriteForwarder(holder: view.holder, node: options.node, trust: options.peerTrust),
                                         LiveFiguresForwarder(holder: view.holder, node: options.node, local: local, trust: options.peerTrust)],
                                        responder: local)
        }
        var tls: TLSServerContext?
        if let certificate = options.tlsCertificate, let key = options.tlsKey {
            tls = try TLSServerContext(certificateFile: certificate, keyFile: key)
        }
        http = HTTPServer(host: options.host, port: options.port, responder: responder, limits: limits,
                          loops: options.httpLoops, logger: logger.named("http"), tls: tls)
        try http.bind()
        httpCounters.server = http

        if let follower {
            // A standby writes nothing: no writer, pipeline, notifications or adapters.
            services = [assembly.auth.failures, follower, http]
            self.services = services
            return
        }
        services.append(eventLog)
        services.append(pipeline)
        services.append(assembly.auth.failures)
        if let delivery = assembly.notify.delivery { services.append(delivery) }
        let inputs = try assembly.inputServices(options: options)
        started = inputs
        services.append(contentsOf: inputs)
        services.append(http)
        self.services = services
        for case let replay as ReplayService in services {
            replay.requestShutdown = { [weak self] in self?.shutdown() }
            replay.status = replayStatus
        }
        } catch {
            // Nothing started may outlive a failed start: simulators stop, the database closes.
            for case let simulation as PlantSimulationService in started { simulation.stop() }
            log.close()
            throw error
        }
    }

    /// The HTTP server's limits from the config's `limits` and `allowedHosts`.
    static func httpLimits(config: PlantConfig, listenHost: String) -> HTTPLimits {
        var limits = HTTPLimits(maxHeaderBytes: config.limits.maxHeaderBytes, maxBodyBytes: config.limits.maxBodyBytes,
                                maxSseClients: config.limits.maxSseClients)
        limits.idleTimeout = 60
        limits.bodyTimeout = config.limits.bodyTimeoutS
        limits.maxBufferedBodyBytes = config.limits.maxBufferedBodyBytes
        limits.sseClientBufferBytes = config.limits.sseQueueKiB * 1024
        limits.sseTotalBufferBytes = config.limits.sseTotalQueueMiB * 1_048_576
        limits.maxConnections = config.limits.maxConnections
        limits.allowedHosts = config.allowedHosts.map(Set.init) ?? DefaultAllowedHosts.names(listenHost: listenHost)
        return limits
    }

    /// `Dashboards/` beside the config's folder (`Stations/plant.json` → `Dashboards/`), else `./Dashboards`.
    static func defaultDashboards(config: String) -> String {
        let configDir = URL(fileURLWithPath: config).deletingLastPathComponent()
        let candidate = configDir.deletingLastPathComponent().appendingPathComponent("Dashboards").path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        return FileManager.default.currentDirectoryPath + "/Dashboards"
    }

    /// docs/openapi.json beside the dashboards folder (`Dashboards/` → `docs/openapi.json`), else in
    /// the working directory's `docs/`.
    static func openAPIDocument(dashboards: String) -> String {
        let beside = URL(fileURLWithPath: dashboards).deletingLastPathComponent().appendingPathComponent("docs/openapi.json").path
        if FileManager.default.fileExists(atPath: beside) { return beside }
        return FileManager.default.currentDirectoryPath + "/docs/openapi.json"
    }

    /// The bound HTTP port.
    public var port: UInt16 { http.port ?? options.port }

    /// Serves until SIGINT/SIGTERM (or ``shutdown()``), then stops in reverse order.
    public func run(installSignalHandlers: Bool = true) async throws {
        let group = ServiceGroup(services: services, logger: logger)
        if install(group) { group.shutdown() }
        if installSignalHandlers { group.installSignalHandlers() }
        let host = options.host
        let loopback = host.hasPrefix("127.") || host == "localhost"
        logger.info("listening on \(http.scheme)://\(host):\(port)/ (\(loopback ? "loopback only" : "reachable from other machines: \(host)"))")
        logger.info("plant \"\(config.plant)\": \(config.stations.count) stations, database \(Database.redacted(options.database))")
        try await group.run()
        logger.info("stopped cleanly")
    }

    /// Keeps the group for ``shutdown()``; true if a shutdown was asked for before.
    private func install(_ group: ServiceGroup) -> Bool {
        control.withLock { control in
            control.group = group
            return control.shutdownRequested
        }
    }

    /// Stops the server (as SIGTERM does). Safe from any thread, also before `run()` has begun.
    public func shutdown() {
        let group = control.withLock { control in
            if control.group == nil { control.shutdownRequested = true }
            return control.group
        }
        group?.shutdown()
    }
}

/// The HTTP server for `/metrics`, set once it exists (the routes are built before it).
private final class HTTPCountersBox: Sendable {
    private struct Reference { weak var server: HTTPServer? }
    private let reference = Locked(Reference())
    var server: HTTPServer? {
        get { reference.value.server }
        set { reference.withLock { $0.server = newValue } }
    }
}
