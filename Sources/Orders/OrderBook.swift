import Foundation
import PlantModel
import Runtime

/// Planned against completed orders of one planned date (and shift).
public struct PlanCount: Sendable, Equatable {
    public var planned = 0
    public var completed = 0
    public init(planned: Int = 0, completed: Int = 0) {
        self.planned = planned
        self.completed = completed
    }
    /// completed / planned, nil with nothing planned.
    public var attainment: Double? { planned > 0 ? Double(completed) / Double(planned) : nil }
}

/// Every order of the plant and which vehicle each is bound to: creation, release, cancel, and
/// statuses that follow the vehicle (README "Orders and build specs").
///
/// Pure and deterministic like the tracker: times come from the caller. Not thread-safe: the
/// pipeline thread owns it; the API reads orders from storage.
public struct OrderBook: Sendable {
    public let config: PlantConfig
    private var orders: [String: Order] = [:]
    /// VIN → order id, for orders that hold their VIN (released and after, not cancelled).
    private var byVehicle: [String: String] = [:]
    /// `model|opt,opt` → resolved spec.
    private var specs: [String: BuildSpec] = [:]
    /// `date|shift` (shift empty for orders without one) → counts.
    private var plan: [String: PlanCount] = [:]

    /// A book holding stored orders (after a restart).
    public init(config: PlantConfig, orders stored: [Order] = []) {
        self.config = config
        orders.reserveCapacity(stored.count)
        for order in stored {
            orders[order.orderId] = order
            if order.status.bindsVehicle, let v = order.vehicleId { byVehicle[v] = order.orderId }
            count(order, +1)
        }
    }

    /// How many orders the book holds (every status).
    public var orderCount: Int { orders.count }

    public func order(_ id: String) -> Order? { orders[id] }

    /// The order that holds this VIN now, if any.
    public func order(vehicleId: String) -> Order? {
        guard !byVehicle.isEmpty, let id = byVehicle[vehicleId] else { return nil }
        return orders[id]
    }

    /// Orders that hold a VIN now (released, in production, hold, completed, scrapped).
    public var boundOrders: [Order] { byVehicle.values.compactMap { orders[$0] } }

    /// The build spec of an order (nil if its model left the config since it was stored).
    public mutating func spec(of order: Order) -> BuildSpec? {
        let key = order.options.isEmpty ? order.model : order.model + "|" + order.options.joined(separator: ",")
        if let spec = specs[key] { return spec }
        guard let spec = try? config.buildSpec(model: order.model, options: order.options) else { return nil }
        specs[key] = spec
        return spec
    }

    /// The build spec of the vehicle's order, if it has one.
    public mutating func spec(vehicleId: String) -> BuildSpec? {
        guard let order = order(vehicleId: vehicleId) else { return nil }
        return spec(of: order)
    }

    /// Planned and completed orders of a date and shift (nil shift: the whole date).
    public func planCount(date: String, shift: String?) -> PlanCount {
        if let shift { return plan[date + "|" + shift] ?? PlanCount() }
        var total = PlanCount()
        for (key, c) in plan where key.hasPrefix(date + "|") {
            total.planned += c.planned
            total.completed += c.completed
        }
        return total
    }

    private mutating func count(_ order: Order, _ delta: Int) {
        guard let date = order.plannedDate, order.status != .cancelled else { return }
        let key = date + "|" + (order.plannedShift ?? "")
        var c = plan[key] ?? PlanCount()
        c.planned += delta
        if order.status == .completed { c.completed += delta }
        plan[key] = c
    }

    private mutating func replace(_ old: Order, with new: Order) {
        count(old, -1)
        orders[new.orderId] = new
        count(new, +1)
    }

    // MARK: Commands

    /// Creates orders, all or nothing. `batch` names each refused order by its index (`[3].model`).
    ///
    /// Throws 409 for an `orderId` that exists, 422 for an unknown model or option or an id given
    /// twice in the batch.
    public mutating func create(_ drafts: [OrderDraft], batch: Bool, at time: Date) throws(OrderError) -> [OrderUpdate] {
        var ids = Set<String>()
        ids.reserveCapacity(drafts.count)
        var valid = Set<String>()
        for (i, draft) in drafts.enumerated() {
            let prefix = batch ? "[\(i)]." : ""
            if orders[draft.orderId] != nil {
                throw .conflict("\(prefix)orderId \(JSON.string(draft.orderId).serialized()) exists already")
            }
            if !ids.insert(draft.orderId).inserted {
                throw .invalid("\(prefix)orderId \(JSON.string(draft.orderId).serialized()) is given twice in the batch")
            }
            let key = draft.options.isEmpty ? draft.model : draft.model + "|" + draft.options.joined(separator: ",")
            if valid.contains(key) || specs[key] != nil { continue }
            do {
                specs[key] = try config.buildSpec(model: draft.model, options: draft.options)
                valid.insert(key)
            } catch {
                throw .invalid("\(prefix)\(error.field): \(error.message)")
            }
        }
        var updates: [OrderUpdate] = []
        updates.reserveCapacity(drafts.count)
        for draft in drafts {
            let order = Order(orderId: draft.orderId, model: draft.model, options: draft.options, customer: draft.customer,
                              dueDate: draft.dueDate, plannedDate: draft.plannedDate, plannedShift: draft.plannedShift,
                              sequence: draft.sequence, createdAt: time)
            orders[order.orderId] = order
            count(order, +1)
            updates.append(OrderUpdate(order: order, change: .created, at: time))
        }
        return updates
    }

    /// Binds a VIN to a planned order. The caller checks the VIN's form (422 `invalid_vin`).
    /// 404 unknown order; 409 if the order is not planned or the VIN belongs to another order.
    public mutating func release(orderId: String, vehicleId: String, at time: Date) throws(OrderError) -> OrderUpdate {
        guard var order = orders[orderId] else { throw .notFound(orderId) }
        guard order.status == .planned else {
            throw .conflict("order \(orderId) is \(order.status.rawValue)" + (order.vehicleId.map { " (vehicle \($0))" } ?? "") + "; only a planned order can be released")
        }
        if let other = byVehicle[vehicleId] {
            throw .conflict("vehicle \(vehicleId) is bound to order \(other) already")
        }
        let old = order
        order.status = .released
        order.vehicleId = vehicleId
        order.releasedAt = time
        replace(old, with: order)
        byVehicle[vehicleId] = orderId
        return OrderUpdate(order: order, change: .released, at: time)
    }

    /// Cancels a planned or released order (its VIN is free again); 409 once production started.
    public mutating func cancel(orderId: String, reason: String?, at time: Date) throws(OrderError) -> OrderUpdate {
        guard var order = orders[orderId] else { throw .notFound(orderId) }
        guard order.status == .planned || order.status == .released else {
            throw .conflict("order \(orderId) is \(order.status.rawValue); only a planned or released order can be cancelled")
        }
        let old = order
        if let v = order.vehicleId, byVehicle[v] == orderId { byVehicle[v] = nil }
        order.status = .cancelled
        order.cancelledAt = time
        order.cancelReason = reason
        replace(old, with: order)
        return OrderUpdate(order: order, change: .cancelled, at: time)
    }

    /// The order of a vehicle follows the vehicle's status: seen → `in_production`, route done →
    /// `completed`, `hold`, `scrapped`, back from hold. Nil when nothing changes (or no order).
    public mutating func vehicleChanged(_ vehicle: VehicleSummary) -> OrderUpdate? {
        guard !byVehicle.isEmpty, let id = byVehicle[vehicle.vehicleId], var order = orders[id] else { return nil }
        let old = order
        let t = vehicle.lastSeenAt
        let change: OrderChange
        switch vehicle.status {
        case .inProcess:
            switch order.status {
            case .released: change = .started
            case .hold: change = .releasedFromHold
            default: return nil
            }
            order.status = .inProduction
        case .completed:
            switch order.status {
            case .released, .inProduction: change = .completed
            case .hold: change = .releasedFromHold
            default: return nil
            }
            order.status = .completed
            order.completedAt = order.completedAt ?? t
        case .hold:
            guard order.status != .hold, order.status != .scrapped else { return nil }
            order.status = .hold
            change = .hold
        case .scrapped:
            guard order.status != .scrapped else { return nil }
            order.status = .scrapped
            change = .scrapped
        }
        if order.startedAt == nil && order.status != .released { order.startedAt = vehicle.firstSeenAt }
        replace(old, with: order)
        return OrderUpdate(order: order, change: change, at: t)
    }
}
