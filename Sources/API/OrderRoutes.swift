import Foundation
import HTTP
import Orders
import Pipeline
import PlantModel
import Quality
import Runtime

extension APIRoutes {
    /// The largest batch `POST /api/orders` takes.
    public static let maxOrderBatch = 10_000

    /// Adds the routes of orders, the build sequence and the plan (README "Orders and build specs",
    /// docs/openapi.json): reads through `queries`, commands through `orders`.
    public static func addOrders(to router: inout Router, context: APIContext, backend: any PlantBackend,
                                 orders: any OrderBackend, queries: any OrderQueries, auth: AuthPolicy) {
        let config = context.config
        let shifts = config.shifts.map(\.name)

        @Sendable func read<T>(_ body: () throws -> T) throws -> T { try readingStorage(body) }
        @Sendable func principal(_ request: HTTPRequest, _ role: Role) throws -> Principal {
            try actingPrincipal(request, role, auth: auth, backend: backend)
        }

        @Sendable func perform(_ body: () throws -> JSON) throws -> JSON {
            do {
                return try body()
            } catch let error as OrderError {
                throw HTTPError(error)
            } catch let error as HTTPError {
                throw error
            } catch {
                throw HTTPError(503, code: "unavailable", "the change could not be stored: \(error)")
            }
        }

        @Sendable func checkVIN(_ vehicleId: String) throws {
            if config.vin.checkDigit {
                if let problem = VINRules.problem(vehicleId) { throw HTTPError(422, code: "invalid_vin", problem) }
            } else if vehicleId.isEmpty || vehicleId.unicodeScalars.count > 64 || vehicleId.unicodeScalars.contains(where: { $0.value < 33 || $0.value == 127 }) {
                throw HTTPError(422, code: "invalid_vin", "a vehicle id is 1 to 64 characters without spaces or control characters")
            }
        }

        @Sendable func specJSON(_ order: Order) -> JSON? {
            (try? config.buildSpec(model: order.model, options: order.options))?.json(config: config)
        }

        router.post("/api/orders") { request in
            let user = try principal(request, .engineer)
            let body = try jsonValue(request)
            var drafts: [OrderDraft] = []
            let batch: Bool
            do {
                switch body {
                case .array(let items):
                    batch = true
                    guard !items.isEmpty else { throw OrderError.invalid("the batch is empty") }
                    guard items.count <= maxOrderBatch else {
                        throw OrderError.invalid("a batch holds at most \(maxOrderBatch) orders, not \(items.count)")
                    }
                    drafts.reserveCapacity(items.count)
                    for (i, item) in items.enumerated() { drafts.append(try OrderDraft.parse(item, shifts: shifts, prefix: "[\(i)].")) }
                case .object:
                    batch = false
                    drafts.append(try OrderDraft.parse(body, shifts: shifts))
                default:
                    throw OrderError.invalid("the body must be an order object or an array of orders")
                }
            } catch let error as OrderError {
                throw HTTPError(error)
            }
            return .json(try perform { try orders.createOrders(drafts, batch: batch, by: user) }, status: 201)
        }

        router.post("/api/orders/{orderId}/release") { request in
            let user = try principal(request, .engineer)
            let body = try jsonBody(request)
            guard let value = body["vehicleId"], !value.isNull else {
                throw HTTPError(422, code: "unprocessable", "vehicleId is required (the VIN to bind)")
            }
            guard let vehicleId = value.stringValue else { throw HTTPError(422, code: "unprocessable", "vehicleId must be a string") }
            try checkVIN(vehicleId)
            let id = request.parameters["orderId"] ?? ""
            return .json(try perform { try orders.releaseOrder(id: id, vehicleId: vehicleId, by: user) })
        }

        router.post("/api/orders/{orderId}/cancel") { request in
            let user = try principal(request, .engineer)
            let body = try jsonBody(request)
            var reason: String?
            if let value = body["reason"], !value.isNull {
                guard let s = value.stringValue, s.count <= 2000 else {
                    throw HTTPError(422, code: "unprocessable", "reason must be a string of at most 2000 characters")
                }
                reason = s
            }
            let id = request.parameters["orderId"] ?? ""
            return .json(try perform { try orders.cancelOrder(id: id, reason: reason, by: user) })
        }

        router.on(.get, "/api/orders") { request in
            var status: OrderStatus?
            if let text = request.query["status"], !text.isEmpty {
                guard let s = OrderStatus(rawValue: text) else {
                    throw HTTPError(400, code: "bad_request", "status must be one of \(OrderStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = s
            }
            let model = request.query["model"].flatMap { $0.isEmpty ? nil : $0 }
            var plannedDate: String?
            if let text = request.query["plannedDate"], !text.isEmpty {
                guard OrderDraft.isDate(text) else { throw HTTPError(400, code: "bad_request", "plannedDate must be YYYY-MM-DD, not \"\(text)\"") }
                plannedDate = text
            }
            let search = request.query["q"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                let lists = context.lists
                let status = status, plannedDate = plannedDate
                // This route answers JSON on the loop; an export opens its cursor on the read pool.
                return .deferred(DeferredWork(lane: .read) {
                    try CSVExport.reply(request, filename: "orders.csv", columns: CSVColumns.orders) {
                        try lists.orderRows(status: status, model: model, plannedDate: plannedDate, search: search, limit: limit).map { $0.json() }
                    }
                })
            }
            let limit = try limitParameter(request)
            let rows = try read { try queries.orders(status: status, model: model, plannedDate: plannedDate, search: search, limit: limit) }
            return .response(.json(.array(rows.map { $0.json() })))
        }

        router.get("/api/orders/{orderId}") { request in
            let id = request.parameters["orderId"] ?? ""
            guard let (order, vehicleStatus) = try read({ try queries.order(id: id) }) else {
                throw HTTPError(404, code: "not_found", "no order \(JSON.string(id).serialized())")
            }
            return .json(order.json(spec: specJSON(order), vehicleStatus: vehicleStatus?.rawValue))
        }

        router.on(.get, "/api/sequence") { request in
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                let lists = context.lists
                return .deferred(DeferredWork(lane: .read) {
                    try CSVExport.reply(request, filename: "sequence.csv", columns: CSVColumns.orders) {
                        try lists.sequenceRows(limit: limit).map { $0.json() }
                    }
                })
            }
            let limit = try limitParameter(request)
            let rows = try read { try queries.sequence(limit: limit) }
            return .response(.json(.array(rows.map { $0.json() })))
        }

        router.get("/api/plan") { request in
            guard let date = request.query["date"], OrderDraft.isDate(date) else {
                throw HTTPError(400, code: "bad_request", "date is required as YYYY-MM-DD (a planned date in the plant's time zone)")
            }
            return .json(try read { try queries.plan(date: date, shifts: shifts) })
        }
    }
}

extension HTTPError {
    /// A refused order command: 404 unknown order, 409 its status or the VIN's binding, 422 a bad
    /// field (`invalid_vin` for a VIN).
    init(_ error: OrderError) {
        switch error.kind {
        case .notFound: self.init(404, code: "not_found", error.message)
        case .conflict: self.init(409, code: "conflict", error.message)
        case .invalid: self.init(422, code: "unprocessable", error.message)
        case .invalidVIN: self.init(422, code: "invalid_vin", error.message)
        }
    }
}
