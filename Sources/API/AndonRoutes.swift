import Foundation
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime

/// A boolean query parameter's two values.
private enum Flag: String, CaseIterable {
    case `true`, `false`
}

extension APIRoutes {
    /// Adds the andon and downtime routes (README "Andon and downtime", docs/openapi.json): reads
    /// through `queries`, commands through `floor` (role `operator` for every write).
    public static func addFloor(to router: inout Router, context: APIContext, backend: any PlantBackend, floor: any FloorBackend,
                                queries: any FloorQueries, auth: AuthPolicy) {
        let config = context.config
        var knownKinds = Set(SignalConfig.defaultAndonCalls.values)
        for station in config.stations {
            for signal in station.signals(role: .andon) { knownKinds.formUnion(signal.calls.values) }
        }
        let kinds = knownKinds

        @Sendable func read<T>(_ body: () throws -> T) throws -> T { try readingStorage(body) }
        @Sendable func principal(_ request: HTTPRequest) throws -> Principal {
            try actingPrincipal(request, .operator, auth: auth, backend: backend)
        }
        let write = RouteOptions(lane: .command, precheck: { _ = try principal($0) })

        @Sendable func perform(_ body: () throws -> JSON) throws -> JSON {
            do {
                return try body()
            } catch {
                throw HTTPError.command(error)
            }
        }

        /// An optional string member of at most `max` Unicode scalars.
        @Sendable func text(_ body: JSON, _ key: String, max: Int = 2000) throws -> String? {
            guard let value = body[key], !value.isNull else { return nil }
            guard let s = value.stringValue else { throw HTTPError(422, code: "unprocessable", "\(key) must be a string") }
            guard s.unicodeScalars.count <= max else {
                throw HTTPError(422, code: "unprocessable", "\(key) is longer than \(max) characters (Unicode scalars)")
            }
            return s
        }

        @Sendable func id(_ request: HTTPRequest) throws -> Int64 {
            let text = request.parameters["id"] ?? ""
            guard let id = Int64(text) else { throw HTTPError(404, code: "not_found", "no such id \(JSON.string(text).serialized())") }
            return id
        }

        /// The pipeline's clock: open stretches and calls are measured against it (replay too).
        @Sendable func now() -> Date { context.clock().time ?? Date() }

        // MARK: Andon

        router.on(.get, "/api/andon", options: .offLoop) { request in
            let state = try enumParameter(request, "state", AndonState.self)
            let station = request.query["station"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "andon.csv", columns: CSVColumns.andon) {
                    try context.lists.andonRows(state: state, station: station, limit: limit).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            let calls = try read { try queries.andonCalls(state: state, station: station, limit: limit) }
            return .response(.json(.array(calls.map(\.json))))
        }

        router.post("/api/andon", options: write) { request in
            let user = try principal(request)
            let body = try jsonBody(request)
            guard let station = try text(body, "station", max: 64), !station.isEmpty else {
                throw HTTPError(422, code: "unprocessable", "station is required (a station id of the plant config)")
            }
            guard config.station(station) != nil else {
                throw HTTPError(422, code: "unprocessable", "no station \(JSON.string(station).serialized())")
            }
            let kind = try text(body, "kind", max: 32) ?? "help"
            guard kinds.contains(kind) else {
                throw HTTPError(422, code: "unprocessable", "kind must be one of \(kinds.sorted().joined(separator: ", "))")
            }
            let comment = try text(body, "comment").flatMap { $0.isEmpty ? nil : $0 }
            return .json(try perform { try floor.callAndon(station: station, kind: kind, comment: comment, by: user) }, status: 201)
        }

        router.post("/api/andon/{id}/ack", options: write) { request in
            let user = try principal(request)
            let body = try jsonBody(request)
            let comment = try text(body, "comment")
            let callId = try id(request)
            return .json(try perform { try floor.acknowledgeAndon(id: callId, comment: comment, by: user) })
        }

        router.post("/api/andon/{id}/close", options: write) { request in
            let user = try principal(request)
            let body = try jsonBody(request)
            let comment = try text(body, "comment")
            let callId = try id(request)
            return .json(try perform { try floor.closeAndon(id: callId, comment: comment, by: user) })
        }

        // MARK: Downtime

        router.get("/api/downtime/reasons") { _ in
            .json(.array(config.downtimeReasons.map(\.json)))
        }

        router.on(.get, "/api/downtime", options: .offLoop) { request in
            let station = request.query["station"].flatMap { $0.isEmpty ? nil : $0 }
            let from = try timeParameter(request, "from"), to = try timeParameter(request, "to")
            let openOnly = try enumParameter(request, "open", Flag.self) == .true
            let t = now()
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "downtime.csv", columns: CSVColumns.downtime) {
                    try context.lists.downtimeRows(station: station, from: from, to: to, openOnly: openOnly, limit: limit).map { $0.json(now: t) }
                }
            }
            let limit = try limitParameter(request)
            let list = try read { try queries.downtime(station: station, from: from, to: to, openOnly: openOnly, limit: limit) }
            return .response(.json(.array(list.map { $0.json(now: t) })))
        }

        router.post("/api/downtime/{id}/reason", options: write) { request in
            let user = try principal(request)
            let body = try jsonBody(request)
            guard let code = try text(body, "code", max: 64), !code.isEmpty else {
                throw HTTPError(422, code: "unprocessable", "code is required (a code of GET /api/downtime/reasons)")
            }
            let comment = try text(body, "comment")
            let stretchId = try id(request)
            return .json(try perform { try floor.setDowntimeReason(id: stretchId, code: code, comment: comment, by: user) })
        }
    }
}
