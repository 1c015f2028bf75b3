import Foundation
import Orders
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage

/// The order commands, run on the pipeline thread; each returns once its `order` events and
/// rows are committed. ``PlantStage`` implements it. Throws `OrderError` (the API maps it to
/// 404/409/422) or storage errors (503).
public protocol OrderBackend: Sendable {
    /// One order (`batch` false) or a batch, all or nothing → the order or the array of orders.
    func createOrders(_ drafts: [OrderDraft], batch: Bool, by principal: Principal) throws -> JSON
    func releaseOrder(id: String, vehicleId: String, by principal: Principal) throws -> JSON
    func cancelOrder(id: String, reason: String?, by principal: Principal) throws -> JSON
}

/// Orders as the API reads them from storage (any thread; storage errors → 503).
public protocol OrderQueries: Sendable {
    func order(id: String) throws -> (order: Order, vehicleStatus: VehicleStatus?)?
    /// Newest first; `search` matches the start of the order id, the VIN or the customer.
    func orders(status: OrderStatus?, model: String?, plannedDate: String?, search: String?, limit: Int) throws -> [Order]
    /// Released orders not started, in build order.
    func sequence(limit: Int) throws -> [Order]
    /// `GET /api/plan?date=`.
    func plan(date: String, shifts: [String]) throws -> JSON
}

/// ``OrderQueries`` over the event log's read connections.
public struct StoreOrderQueries: OrderQueries {
    let eventLog: EventLog

    public init(eventLog: EventLog) { self.eventLog = eventLog }

    public func order(id: String) throws -> (order: Order, vehicleStatus: VehicleStatus?)? {
        try eventLog.read { db in
            guard let order = try OrderStore.order(id: id, in: db) else { return nil }
            let vehicle = try order.vehicleId.flatMap { try GenealogyStore.vehicleSummary(id: $0, in: db) }
            return (order, vehicle?.status)
        }
    }

    public func orders(status: OrderStatus?, model: String?, plannedDate: String?, search: String?, limit: Int) throws -> [Order] {
        try eventLog.read { try OrderStore.orders(status: status, model: model, plannedDate: plannedDate, search: search, limit: limit, in: $0) }
    }

    public func sequence(limit: Int) throws -> [Order] {
        try eventLog.read { try OrderStore.sequence(limit: limit, in: $0) }
    }

    public func plan(date: String, shifts: [String]) throws -> JSON {
        try eventLog.read { try OrderStore.plan(date: date, shifts: shifts, in: $0) }
    }
}

extension StoreQueries {
    /// What `GET /api/vehicles/{id}` adds for a vehicle with an order: `orderId`, `model`,
    /// `options`, `orderStatus` and the resolved `spec`. Empty without an order.
    static func orderMembers(vehicleId: String, config: PlantConfig?, in db: Database) throws -> [(String, JSON)] {
        guard let order = try OrderStore.order(vehicleId: vehicleId, in: db) else { return [] }
        let spec = config.flatMap { try? $0.buildSpec(model: order.model, options: order.options) }
        return [("orderId", .string(order.orderId)), ("model", .string(order.model)),
                ("options", .array(order.options.map { .string($0) })), ("orderStatus", .string(order.status.rawValue)),
                ("spec", spec.map { $0.json(config: config!) } ?? .null)]
    }
}
