import Foundation
import HTTP
import PlantModel
import Quality
import Runtime
import Storage

/// Plant facts that come from tracking and quality (WIP, KPIs); the assembly provides them.
public protocol PlantFacts: Sendable {
    func wip(station: String) -> Int
    /// The station's KPIs of the current shift (nil: none known).
    func kpi(station: String) -> StationKPI?
}

/// No tracking or quality attached (tests of the core).
public struct NoPlantFacts: PlantFacts {
    public init() {}
    public func wip(station: String) -> Int { 0 }
    public func kpi(station: String) -> StationKPI? { nil }
}

/// The HTTP API and event stream of docs/openapi.json, with the dashboards as static files.
public enum APIRoutes {
    /// Every event `type` `/api/events` sends (README "Server-sent events"), served by `/api/meta`
    /// so pages know which types exist (`ReplayGoldenTests` checks that a replay makes no other).
    public static let eventTypes = ["station", "sample", "operation", "vehicle", "defect", "alert", "kpi", "anomaly", "order", "andon", "part"]

    /// `GET /api/openapi.json`: the committed docs/openapi.json, read at each request (so the file
    /// and the answer never differ); 404 with a JSON error when the server cannot find it.
    public static func addOpenAPI(to router: inout Router, file: String) {
        router.get("/api/openapi.json", options: .offLoop) { _ in
            guard let data = FileManager.default.contents(atPath: file) else {
                throw HTTPError(404, code: "not_found", "the OpenAPI document is not at \(file)")
            }
            return .json([UInt8](data))
        }
    }

    /// Adds the core routes (health, stations, events, metrics) to `router`.
    public static func addCore(to router: inout Router, context: APIContext, facts: any PlantFacts) {
        router.get("/api/health") { _ in
            let counts = context.live.connectionCounts()
            let clock = context.clock()
            let writable = context.eventLog.isWritable
            var members: [(String, JSON)] = [
                ("status", .string(writable ? "ok" : "degraded")),
                ("stations", .object(ConnectionState.allCases.map { ($0.rawValue, .int(Int64(counts[$0] ?? 0))) })),
                ("storage", .string(writable ? "writing" : "not writing")),
                ("lastEventId", .int(context.lastEventId?() ?? context.eventLog.latestSeq)),
                ("version", .string(context.version)),
                ("mode", .string(clock.mode.rawValue)),
                ("clock", clock.time.map { .string(Timestamp.format($0)) } ?? .null),
            ]
            let node = context.node()
            members.append(("node", .string(node.name)))
            members.append(("role", .string(node.role.rawValue)))
            if !writable, let error = context.eventLog.lastError { members.append(("storageError", .string("\(error)"))) }
            members += context.extraHealth()
            return .json(.object(members), status: writable ? 200 : 503)
        }

        router.get("/api/meta") { _ in
            let clock = context.clock()
            return .json(.obj([
                ("plant", .string(context.config.plant)),
                ("version", .string(context.version)),
                ("mode", .string(clock.mode.rawValue)),
                ("machineStates", .array(MachineState.allCases.map { state in
                    .obj([
                        ("name", .string(state.rawValue)),
                        ("code", .int(state.conventionalCode)),
                        ("plannedStop", .bool(state.isPlannedStop)),
                    ])
                })),
                ("connectionStates", .array(ConnectionState.allCases.map { .string($0.rawValue) })),
                ("eventTypes", .array(APIRoutes.eventTypes.map { .string($0) })),
                ("shifts", shiftCalendar(context.config)),
                ("timezone", .string(context.config.timezone.identifier)),
                ("alertTypes", .array(AlertType.allCases.map { .string($0.rawValue) })),
            ]))
        }

        router.get("/api/stations") { request in
            let showEndpoint = context.showsEndpoints(request)
            return .json(.array(context.live.all().map { station in
                .object(station.summaryJSON(wip: facts.wip(station: station.config.id), kpi: facts.kpi(station: station.config.id)?.json ?? .null,
                                            showEndpoint: showEndpoint))
            }))
        }

        router.get("/api/stations/{id}") { request in
            let id = request.parameters["id"] ?? ""
            guard let station = context.live.station(id) else {
                throw HTTPError(404, code: "not_found", "no station \"\(id)\"")
            }
            var members = station.summaryJSON(wip: facts.wip(station: id), kpi: facts.kpi(station: id)?.json ?? .null,
                                              showEndpoint: context.showsEndpoints(request))
            members.append(("signals", station.signalsJSON))
            members.append(("status", .str(station.status)))
            members.append(("stats", .obj([
                ("polls", .int(Int64(station.stats.polls))),
                ("reconnects", .int(Int64(station.stats.reconnects))),
                ("errorsByKind", .object(station.stats.errors.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })),
                ("lastError", .str(station.stats.lastError)),
            ])))
            return .json(.object(members))
        }

        router.on(.get, "/api/events") { request in
            let log = context.eventLog
            let stream = try SSEStream(request: request, hub: context.hub) { after, limit in
                ((try? log.events(after: after, types: nil, limit: limit)) ?? []).map {
                    SSEEvent(id: $0.seq, type: $0.type, data: $0.data)
                }
            }
            return .eventStream(stream)
        }

        router.get("/metrics") { _ in
            var text = ""
            func metric(_ name: String, _ help: String, _ type: String, _ samples: [(String, Double)]) {
                text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
                for (labels, value) in samples {
                    let number = value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
                    text += labels.isEmpty ? "\(name) \(number)\n" : "\(name){\(labels)} \(number)\n"
                }
            }
            let stations = context.live.all()
            metric("mes_polls_total", "Polls per station.", "counter",
                   stations.map { ("station=\"\($0.config.id)\"", Double($0.stats.polls)) })
            var errors: [(String, Double)] = []
            for station in stations {
                for (kind, count) in station.stats.errors.sorted(by: { $0.key < $1.key }) {
                    errors.append(("station=\"\(station.config.id)\",kind=\"\(kind)\"", Double(count)))
                }
            }
            metric("mes_poll_errors_total", "Failed polls per station and kind.", "counter", errors)
            metric("mes_poll_latency_ms", "Last poll round trip per station, in milliseconds.", "gauge",
                   stations.compactMap { s in (s.pollLatencyMs ?? s.stats.lastLatencyMs).map { ("station=\"\(s.config.id)\"", $0) } })
            metric("mes_station_online", "1 when the station's PLC answers.", "gauge",
                   stations.map { ("station=\"\($0.config.id)\"", $0.connection == .online ? 1 : 0) })
            let sse = context.hub.metrics
            metric("mes_events_total", "Events published to the stream.", "counter", [("", Double(sse.eventsPublished))])
            metric("mes_last_event_id", "Highest committed event id.", "gauge", [("", Double(context.eventLog.latestSeq))])
            metric("mes_sse_clients", "Connected event-stream clients.", "gauge", [("", Double(sse.connectedClients))])
            metric("mes_sse_dropped_clients_total", "Event-stream clients dropped for falling behind.", "counter", [("", Double(sse.droppedClients))])
            metric("mes_storage_writable", "1 while storage commits.", "gauge", [("", context.eventLog.isWritable ? 1 : 0)])
            let storage = context.eventLog.statistics
            metric("mes_storage_wal_pages", "Pages in the WAL after the last commit.", "gauge", [("", Double(storage.walPages))])
            metric("mes_storage_wal_bytes", "Size of the WAL file, in bytes.", "gauge", [("", Double(context.eventLog.walFileBytes))])
            metric("mes_storage_checkpoints_total", "WAL checkpoints by the storage checkpointer, by mode.", "counter",
                   [("mode=\"passive\"", Double(storage.passiveCheckpoints)), ("mode=\"truncate\"", Double(storage.truncateCheckpoints))])
            text += context.extraMetrics()
            return .text(text, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}
