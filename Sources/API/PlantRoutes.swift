import Foundation
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime
import Storage
import Tracking

extension APIRoutes {
    /// Adds the tracking, quality and history routes (docs/openapi.json): reads through `queries`,
    /// commands through `backend`.
    public static func addPlant(to router: inout Router, context: APIContext, backend: any PlantBackend,
                                queries: any PlantQueries, auth: AuthPolicy) {
        @Sendable func read<T>(_ body: () throws -> T) throws -> T { try readingStorage(body) }
        @Sendable func principal(_ request: HTTPRequest, _ role: Role) throws -> Principal {
            try actingPrincipal(request, role, auth: auth, backend: backend)
        }

        @Sendable func perform(_ body: () throws -> JSON) throws -> JSON {
            do {
                return try body()
            } catch {
                throw HTTPError.command(error)
            }
        }

        /// A string member of a body. Lengths count Unicode scalars (README, "Limits"); an
        /// `identifier` (vehicle, station, code) may hold no control character.
        @Sendable func text(_ body: JSON, _ key: String, required: Bool = false, max: Int = 2000, identifier: Bool = false) throws -> String? {
            guard let value = body[key], !value.isNull else {
                if required { throw HTTPError(422, code: "unprocessable", "\(key) is required") }
                return nil
            }
            guard let s = value.stringValue else { throw HTTPError(422, code: "unprocessable", "\(key) must be a string") }
            guard s.unicodeScalars.count <= max else {
                throw HTTPError(422, code: "unprocessable", "\(key) is longer than \(max) characters (Unicode scalars)")
            }
            if identifier, s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw HTTPError(422, code: "unprocessable", "\(key) must not contain control characters")
            }
            if required && s.trimmingCharacters(in: .whitespaces).isEmpty {
                throw HTTPError(422, code: "unprocessable", "\(key) must not be empty")
            }
            return s
        }

        /// A write: authorized from the head before the body is read, run on the command pool
        /// so the loop never waits on the pipeline.
        @Sendable func write(_ role: Role) -> RouteOptions {
            RouteOptions(lane: .command, precheck: { _ = try principal($0, role) })
        }

        @Sendable func id(_ request: HTTPRequest) throws -> Int64 {
            let text = request.parameters["id"] ?? ""
            guard let id = Int64(text) else { throw HTTPError(404, code: "not_found", "no such id \"\(text)\"") }
            return id
        }

        // MARK: Signal history

        router.get("/api/stations/{id}/signals/{name}", options: .offLoop) { request in
            let stationID = request.parameters["id"] ?? "", name = request.parameters["name"] ?? ""
            guard let station = context.config.station(stationID) else {
                throw HTTPError(404, code: "not_found", "no station \"\(stationID)\"")
            }
            guard station.signal(named: name) != nil else {
                throw HTTPError(404, code: "not_found", "station \(stationID) has no signal \"\(name)\"")
            }
            let from = try timeParameter(request, "from"), to = try timeParameter(request, "to")
            let limit = try limitParameter(request)
            let rows = try read { try queries.signalHistory(station: stationID, signal: name, from: from, to: to, limit: limit) }
            var out = [UInt8]("[".utf8)
            for (index, row) in rows.enumerated() {
                if index > 0 { out.append(44) }
                out += Array("{\"t\":\"\(Timestamp.format(row.time))\",\"v\":\(row.json),\"quality\":\"\(row.quality)\"}".utf8)
            }
            out.append(93)
            return .json(out)
        }

        // MARK: Vehicles and lots

        router.on(.get, "/api/vehicles", options: .offLoop) { request in
            var status: VehicleStatus?
            if let text = request.query["status"], !text.isEmpty {
                guard let s = VehicleStatus(rawValue: text) else {
                    throw HTTPError(400, code: "bad_request", "status must be one of \(VehicleStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = s
            }
            let station = request.query["station"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "vehicles.csv", columns: CSVColumns.vehicles) {
                    try context.lists.vehicleRows(status: status, station: station, limit: limit).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            return .response(.json(.array(try read { try queries.vehicles(status: status, station: station, limit: limit) }.map(\.json))))
        }

        router.get("/api/vehicles/{vehicleId}", options: .offLoop) { request in
            let vehicleId = request.parameters["vehicleId"] ?? ""
            guard let record = try read({ try queries.vehicle(id: vehicleId) }), case .object(var members) = record.vehicle else {
                throw HTTPError(404, code: "not_found", "no vehicle \"\(vehicleId)\"")
            }
            members.append(("defects", .array(record.defects.map(\.json))))
            members.append(("alerts", .array(record.alerts.map(\.json))))
            members.append(("lots", .array(record.lots.map { .obj([("lotId", .string($0.lot)), ("station", .string($0.station))]) })))
            return .json(.object(members))
        }

        for command in VehicleCommand.allCases {
            router.post("/api/vehicles/{vehicleId}/\(command.rawValue)", options: write(.quality)) { request in
                let user = try principal(request, .quality)
                let body = try jsonBody(request)
                let reason = try text(body, "reason", required: command != .release) ?? ""
                let vehicleId = request.parameters["vehicleId"] ?? ""
                guard vehicleId.unicodeScalars.count <= 64,
                      !vehicleId.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                    throw HTTPError(404, code: "not_found", "no vehicle with such an id")
                }
                if command == .release {
                    // The quality gate (README "Key parts, recall and the quality gate"): an admin may override it.
                    var override = false
                    if let value = body["override"], !value.isNull {
                        guard let flag = value.boolValue else { throw HTTPError(422, code: "unprocessable", "override must be true or false") }
                        override = flag
                    }
                    return .json(try perform {
                        try backend.releaseVehicle(vehicleId: vehicleId, reason: reason, override: override, by: user)
                    })
                }
                return .json(try perform {
                    try backend.vehicle(command, vehicleId: vehicleId, reason: reason, by: user)
                })
            }
        }

        router.get("/api/lots/{lotId}", options: .offLoop) { request in
            let lotId = request.parameters["lotId"] ?? ""
            guard let json = try read({ try queries.lot(id: lotId) }) else {
                throw HTTPError(404, code: "not_found", "no lot \"\(lotId)\"")
            }
            return .json(json)
        }

        // MARK: Defects

        router.on(.get, "/api/defects", options: .offLoop) { request in
            var status: DefectStatus?
            if let s = request.query["status"], !s.isEmpty {
                guard let value = DefectStatus(rawValue: s) else {
                    throw HTTPError(400, code: "bad_request", "status must be open or resolved, not \"\(s)\"")
                }
                status = value
            }
            let vehicle = request.query["vehicle"].flatMap { $0.isEmpty ? nil : $0 }
            let station = request.query["station"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "defects.csv", columns: CSVColumns.defects) {
                    try context.lists.defectRows(status: status, vehicle: vehicle, station: station, limit: limit).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            let defects = try read { try queries.defects(status: status, vehicle: vehicle, station: station, limit: limit) }
            return .response(.json(JSON.array(defects.map(\.json))))
        }

        router.get("/api/defects/pareto", options: .offLoop) { request in
            let since = try timeParameter(request, "since")
            let pareto = try read { try queries.defectPareto(since: since) }
            return .json(.obj([
                ("byCode", .array(pareto.byCode.map { .obj([("code", .string($0.key)), ("count", .int(Int64($0.count)))]) })),
                ("byStation", .array(pareto.byStation.map { .obj([("station", .string($0.key)), ("count", .int(Int64($0.count)))]) })),
            ]))
        }

        router.post("/api/defects", options: write(.quality)) { request in
            let user = try principal(request, .quality)
            let body = try jsonBody(request)
            let vehicleId = try text(body, "vehicleId", required: true, max: 64, identifier: true)!
            let station = try text(body, "station", max: 64, identifier: true)
            let code = try text(body, "code", required: true, max: 64, identifier: true)!
            let description = try text(body, "description") ?? ""
            var severity = Severity.medium
            if let s = try text(body, "severity", max: 16, identifier: true) {
                guard let value = Severity(rawValue: s) else {
                    throw HTTPError(422, code: "unprocessable", "severity must be low, medium, high or critical, not \"\(s)\"")
                }
                severity = value
            }
            return .json(try perform {
                try backend.raiseDefect(vehicleId: vehicleId, station: station, code: code, description: description,
                                        severity: severity, by: user)
            }, status: 201)
        }

        router.post("/api/defects/{id}/resolve", options: write(.quality)) { request in
            let user = try principal(request, .quality)
            let body = try jsonBody(request)
            let comment = try text(body, "comment")
            let defectId = try id(request)
            return .json(try perform { try backend.resolveDefect(id: defectId, comment: comment, by: user) })
        }

        // MARK: Alerts

        router.on(.get, "/api/alerts", options: .offLoop) { request in
            guard let filter = AlertStateFilter(query: request.query["state"]) else {
                throw HTTPError(400, code: "bad_request", "state must be one of \(AlertStateFilter.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let station = request.query["station"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "alerts.csv", columns: CSVColumns.alerts) {
                    try context.lists.alertRows(filter: filter, station: station, limit: limit).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            let alerts = try read { try queries.alerts(filter: filter, station: station, limit: limit) }
            return .response(.json(JSON.array(alerts.map(\.json))))
        }

        router.get("/api/alerts/{id}", options: .offLoop) { request in
            let alertId = try id(request)
            guard let record = try read({ try queries.alert(id: alertId) }), case .object(var members) = record.alert.json else {
                throw HTTPError(404, code: "not_found", "no alert \(alertId)")
            }
            members.append(("history", .array(record.history.map { h in
                .obj([("t", .string(Timestamp.format(h.t))), ("change", .string(h.change)), ("state", .string(h.state)),
                      ("escalationLevel", .int(Int64(h.escalationLevel))), ("user", .str(h.user))])
            })))
            return .json(.object(members))
        }

        router.post("/api/alerts/{id}/ack", options: write(.quality)) { request in
            let user = try principal(request, .quality)
            let body = try jsonBody(request)
            let comment = try text(body, "comment")
            let alertId = try id(request)
            return .json(try perform { try backend.acknowledgeAlert(id: alertId, comment: comment, by: user) })
        }

        router.post("/api/alerts/{id}/shelve", options: write(.quality)) { request in
            let user = try principal(request, .quality)
            let body = try jsonBody(request)
            guard let minutes = body["minutes"]?.doubleValue else {
                throw HTTPError(422, code: "unprocessable", "minutes is required (a number of minutes, e.g. 30)")
            }
            guard minutes > 0, minutes <= 7 * 24 * 60 else {
                throw HTTPError(422, code: "unprocessable", "minutes must be more than 0 and at most 10080 (one week)")
            }
            let reason = try text(body, "reason")
            let alertId = try id(request)
            return .json(try perform { try backend.shelveAlert(id: alertId, minutes: minutes, reason: reason, by: user) })
        }

        // MARK: KPIs, anomalies, audit

        router.on(.get, "/api/kpis") { request in
            // shift=previous, date=&shift=: a stored shift, read off the loop (ShiftRoutes.swift).
            if let stored = try context.storedKPIs(request) { return stored }
            return .json(KPIJSON.document(backend.kpis()))
        }

        router.get("/api/anomalies") { _ in .json(.array(backend.anomalies().map(\.json))) }

        router.get("/api/audit", options: .offLoop) { request in
            _ = try principal(request, .admin)
            let limit = try limitParameter(request)
            let entries = try read { try queries.audit(limit: limit) }
            return .json(JSON.array(entries.map(\.json)))
        }
    }

}
