import Foundation
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime
import Tracking

extension APIRoutes {
    /// Adds the key part and recall routes (README "Key parts, recall and the quality gate",
    /// docs/openapi.json): reads through `queries`, commands through `parts`.
    public static func addParts(to router: inout Router, context: APIContext, backend: any PlantBackend,
                                parts: any PartBackend, queries: any PartQueries, auth: AuthPolicy) {
        @Sendable func read<T>(_ body: () throws -> T) throws -> T { try readingStorage(body) }
        @Sendable func principal(_ request: HTTPRequest, _ role: Role) throws -> Principal {
            try actingPrincipal(request, role, auth: auth, backend: backend)
        }
        @Sendable func write(_ role: Role) -> RouteOptions {
            RouteOptions(lane: .command, precheck: { _ = try principal($0, role) })
        }
        @Sendable func perform(_ body: () throws -> JSON) throws -> JSON {
            do {
                return try body()
            } catch let error as PartError {
                throw HTTPError(error)
            } catch {
                throw HTTPError.command(error)
            }
        }

        /// An identifier member of a body or path (serial, part type, part number, station): 1 to
        /// 64 Unicode scalars, no control characters or spaces at either end.
        @Sendable func identifier(_ value: JSON?, _ key: String, required: Bool) throws -> String? {
            guard let value, !value.isNull else {
                if required { throw HTTPError(422, code: "unprocessable", "\(key) is required") }
                return nil
            }
            guard let s = value.stringValue else { throw HTTPError(422, code: "unprocessable", "\(key) must be a string") }
            try checkIdentifier(s, key)
            return s
        }

        @Sendable func checkIdentifier(_ s: String, _ key: String) throws {
            guard !s.isEmpty, s.unicodeScalars.count <= 64 else {
                throw HTTPError(422, code: "unprocessable", "\(key) must be 1 to 64 characters")
            }
            guard !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }),
                  s.trimmingCharacters(in: .whitespaces) == s else {
                throw HTTPError(422, code: "unprocessable", "\(key) must not hold control characters or start or end with a space")
            }
        }

        @Sendable func vehicleParameter(_ request: HTTPRequest) throws -> String {
            let vehicleId = request.parameters["vehicleId"] ?? ""
            guard !vehicleId.isEmpty, vehicleId.unicodeScalars.count <= 64,
                  !vehicleId.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw HTTPError(404, code: "not_found", "no vehicle with such an id")
            }
            return vehicleId
        }

        router.post("/api/vehicles/{vehicleId}/parts", options: write(.operator)) { request in
            let user = try principal(request, .operator)
            let body = try jsonBody(request)
            let vehicleId = try vehicleParameter(request)
            let partType = try identifier(body["partType"], "partType", required: true)!
            let serial = try identifier(body["serial"], "serial", required: true)!
            let partNumber = try identifier(body["partNumber"], "partNumber", required: false)
            let station = try identifier(body["station"], "station", required: false)
            return .json(try perform {
                try parts.bindPart(vehicleId: vehicleId, partType: partType, serial: serial, partNumber: partNumber,
                                   station: station, by: user)
            }, status: 201)
        }

        router.post("/api/vehicles/{vehicleId}/parts/{partType}/replace", options: write(.quality)) { request in
            let user = try principal(request, .quality)
            let body = try jsonBody(request)
            let vehicleId = try vehicleParameter(request)
            let partType = request.parameters["partType"] ?? ""
            try checkIdentifier(partType, "partType")
            let serial = try identifier(body["serial"], "serial", required: true)!
            let partNumber = try identifier(body["partNumber"], "partNumber", required: false)
            let station = try identifier(body["station"], "station", required: false)
            guard let reasonValue = body["reason"], let reason = reasonValue.stringValue,
                  !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw HTTPError(422, code: "unprocessable", "reason is required (why the part is replaced)")
            }
            guard reason.unicodeScalars.count <= 2000 else {
                throw HTTPError(422, code: "unprocessable", "reason is longer than 2000 characters (Unicode scalars)")
            }
            return .json(try perform {
                try parts.replacePart(vehicleId: vehicleId, partType: partType, serial: serial, partNumber: partNumber,
                                      station: station, reason: reason, by: user)
            })
        }

        router.on(.get, "/api/parts/{serial}", options: .offLoop) { request in
            let serial = request.parameters["serial"] ?? ""
            if try CSVExport.requested(request) {
                // Never seen: the header alone (a download, not an error page).
                let limit = try CSVExport.limit(request, default: 10_000)
                return try CSVExport.reply(request, filename: "parts.csv", columns: CSVColumn.members([
                    "serial", "partType", "partNumber", "vehicleId", "station", "boundAt", "boundBy", "removedAt", "removedBy", "reason",
                ])) {
                    try context.lists.partRows(serial: String(serial.unicodeScalars.prefix(64)), limit: limit).map { $0.json }
                }
            }
            let bindings = serial.unicodeScalars.count <= 64 ? try read { try queries.bindings(serial: serial) } : []
            guard !bindings.isEmpty else {
                throw HTTPError(404, code: "not_found", "serial \(JSON.string(serial).serialized()) was never bound")
            }
            return .response(.json(.array(bindings.map(\.json))))
        }

        router.get("/api/recall", options: .offLoop) { request in
            func text(_ name: String) throws -> String? {
                guard let value = request.query[name], !value.isEmpty else { return nil }
                guard value.unicodeScalars.count <= 64 else {
                    throw HTTPError(400, code: "bad_request", "\(name) is longer than 64 characters")
                }
                return value
            }
            var criteria = RecallCriteria(lot: try text("lot"), partNumber: try text("partNumber"), serial: try text("serial"),
                                          station: try text("station"), from: try timeParameter(request, "from"),
                                          to: try timeParameter(request, "to"), model: try text("model"))
            if let station = criteria.station, context.config.station(station) == nil {
                throw HTTPError(400, code: "bad_request", "no station \(JSON.string(station).serialized()) (known: \(context.config.stations.map(\.id).joined(separator: ", ")))")
            }
            if let from = criteria.from, let to = criteria.to, from > to {
                throw HTTPError(400, code: "bad_request", "from is after to")
            }
            guard !criteria.isEmpty else {
                throw HTTPError(400, code: "bad_request", "give at least one criterion: lot, partNumber, serial, station, from, to or model")
            }
            if let limit = request.query["limit"], !limit.isEmpty {
                guard let n = Int(limit), n >= 1 else {
                    throw HTTPError(400, code: "bad_request", "limit must be a whole number from 1 to 100000, not \"\(limit)\"")
                }
                criteria.limit = min(n, 100_000)
            }
            let answer = try read { try queries.recall(criteria) }
            return .json(answer)
        }
    }
}

extension HTTPError {
    /// A refused part command: 404 unknown vehicle or part, 409 a duplicate serial (`duplicate_serial`)
    /// or a part already fitted, 422 a bad field.
    init(_ error: PartError) {
        switch error.kind {
        case .notFound: self.init(404, code: "not_found", error.message)
        case .duplicateSerial: self.init(409, code: "duplicate_serial", error.message)
        case .conflict: self.init(409, code: "conflict", error.message)
        case .invalid: self.init(422, code: "unprocessable", error.message)
        }
    }
}
