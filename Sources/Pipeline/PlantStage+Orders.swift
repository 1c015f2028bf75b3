import Foundation
import Orders
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// Orders on the pipeline thread: statuses that follow the vehicles, build specs handed to
/// quality with each operation, VIN and order checks of vehicles seen on the line, and the order
/// commands of the API (README "Orders and build specs").
extension PlantStage: OrderBackend {
    /// Gives the tracker the own routes of vehicles whose orders are bound and not finished.
    func restoreOrderRoutes() {
        for order in orders.boundOrders where [.released, .inProduction, .hold].contains(order.status) {
            guard let vehicleId = order.vehicleId, let spec = orders.spec(of: order), spec.routeChanged else { continue }
            tracker.setRoute(spec.route, for: vehicleId)
        }
    }

    /// Feeds tracking's outputs to quality with each vehicle's spec, and moves orders along.
    func followOrders(_ tracking: [TrackingOutput], quality outputs: inout [QualityOutput], orders updates: inout [OrderUpdate]) {
        for output in tracking {
            switch output {
            case .vehicleChanged(let vehicle):
                checkFirstSighting(vehicle, into: &outputs)
                if let update = orders.vehicleChanged(vehicle) { note(update, into: &updates) }
            case .operationStarted(let op):
                if let order = orders.order(vehicleId: op.vehicleId), let spec = orders.spec(of: order), spec.routeChanged,
                   !spec.route.contains(op.process) {
                    quality.process(.sequenceIssue(SequenceIssueInput(kind: .offRoute, vehicleId: op.vehicleId, station: op.station,
                                                                      process: op.process, time: op.startedAt,
                                                                      detail: "\(order.model): \(spec.route.joined(separator: ", "))")),
                                    into: &outputs)
                }
            case .operationCompleted(var op):
                if let spec = operationSpec(vehicleId: op.vehicleId, station: op.station) { op.spec = spec }
                quality.process(.operation(op), into: &outputs)
            default:
                if let input = QualityInput(output) { quality.process(input, into: &outputs) }
            }
        }
    }

    /// The order changes of a vehicle command (hold, release, scrap).
    func followVehicleCommand(_ tracking: [TrackingOutput]) -> [OrderUpdate] {
        var updates: [OrderUpdate] = []
        for case .vehicleChanged(let vehicle) in tracking {
            if let update = orders.vehicleChanged(vehicle) { note(update, into: &updates) }
        }
        return updates
    }

    private func note(_ update: OrderUpdate, into updates: inout [OrderUpdate]) {
        updates.append(update)
        switch update.order.status {
        case .completed, .scrapped, .cancelled:
            if let vehicleId = update.order.vehicleId { tracker.setRoute(nil, for: vehicleId) }
        default: break
        }
    }

    /// What the vehicle's spec changes at a station, cached per spec and station.
    private func operationSpec(vehicleId: String, station: String) -> OperationSpec? {
        guard let order = orders.order(vehicleId: vehicleId) else { return nil }
        let key = order.model + "|" + order.options.joined(separator: ",") + "|" + station
        if let cached = operationSpecs[key] { return cached }
        let spec = orders.spec(of: order).flatMap { spec in config.station(station).flatMap { spec.operationSpec(for: $0) } }
        operationSpecs[key] = spec
        return spec
    }

    /// A vehicle's first sighting on the line: an invalid VIN or a missing order (where the plant
    /// requires one) raises a `sequence` alert; the vehicle is tracked either way.
    private func checkFirstSighting(_ vehicle: VehicleSummary, into outputs: inout [QualityOutput]) {
        guard vehicle.firstSeenAt == vehicle.lastSeenAt, vehicle.lastRouteIndex < 0, vehicle.status == .inProcess,
              let station = vehicle.currentStation else { return }
        if checkedVehicles.count >= 10_000 { checkedVehicles.removeAll(keepingCapacity: true) }
        guard checkedVehicles.insert(vehicle.vehicleId).inserted else { return }
        let id = vehicle.vehicleId
        if config.checksLineVINs, let problem = VINRules.problem(id) {
            quality.process(.sequenceIssue(SequenceIssueInput(kind: .invalidVehicleId, vehicleId: id, station: station,
                                                              time: vehicle.lastSeenAt, detail: problem)), into: &outputs)
        }
        if config.orders.required, orders.order(vehicleId: id) == nil {
            quality.process(.sequenceIssue(SequenceIssueInput(kind: .noOrder, vehicleId: id, station: station,
                                                              time: vehicle.lastSeenAt)), into: &outputs)
        }
    }

    /// `order` events and their rows, committed together.
    func emitOrders(_ updates: [OrderUpdate], into emission: inout Emission) {
        for update in updates {
            emission.event("order", station: nil, time: update.at, update.eventJSON)
        }
        emission.write { db in try OrderStore.apply(updates, to: db) }
    }

    /// `line.plan` of `GET /api/kpis`: orders planned for the shift at `time` against those completed.
    func shiftPlan(at time: Date?) -> ShiftPlan? {
        guard let time, let shift = planDates.shift(at: time, config: config) else { return nil }
        let count = orders.planCount(date: shift.date, shift: shift.name)
        return ShiftPlan(date: shift.date, shift: shift.name, planned: count.planned, completed: count.completed)
    }

    // MARK: Commands (any thread; run on the pipeline thread)

    /// Runs an order command on the pipeline thread, commits its order events (and audit line)
    /// and waits until they are stored.
    private func orderCommand(_ body: @escaping @Sendable (PlantStage, Date) throws -> (updates: [OrderUpdate], audit: AuditEntry?, answer: JSON)) throws -> JSON {
        guard let pipeline else { throw EventLogError.closed }
        let answer: JSON = try pipeline.perform { [self] in
            let now = pipeline.commandTime
            let result = try body(self, now)
            ordersActive = true
            var emission = Emission()
            emit(tracking: [], quality: result.audit.map { [.audit($0)] } ?? [], orders: result.updates, into: &emission)
            pipeline.commit(emission)
            return result.answer
        }
        try eventLog.flush(timeout: 30)
        return answer
    }

    public func createOrders(_ drafts: [OrderDraft], batch: Bool, by principal: Principal) throws -> JSON {
        try orderCommand { stage, now in
            let updates = try stage.orders.create(drafts, batch: batch, at: now)
            let target = drafts.count == 1 ? "order:\(drafts[0].orderId)" : "orders:\(drafts.count)"
            let audit = AuditEntry(t: now, by: principal, action: "order.create", target: target,
                                   detail: drafts.count == 1 ? "" : "\(drafts[0].orderId) … \(drafts[drafts.count - 1].orderId)")
            let answer: JSON
            if batch {
                answer = .array(updates.map { stage.orderJSON($0.order, spec: false) })
            } else {
                answer = stage.orderJSON(updates[0].order, spec: true)
            }
            return (updates, audit, answer)
        }
    }

    public func releaseOrder(id: String, vehicleId: String, by principal: Principal) throws -> JSON {
        try orderCommand { stage, now in
            var updates = [try stage.orders.release(orderId: id, vehicleId: vehicleId, at: now)]
            let order = updates[0].order
            if let spec = stage.orders.spec(of: order), spec.routeChanged { stage.tracker.setRoute(spec.route, for: vehicleId) }
            // A VIN already on the line: the order follows its vehicle at once.
            if let vehicle = stage.tracker.vehicle(vehicleId), let update = stage.orders.vehicleChanged(vehicle) {
                stage.note(update, into: &updates)
            }
            let audit = AuditEntry(t: now, by: principal, action: "order.release", target: "order:\(id)", detail: vehicleId)
            return (updates, audit, stage.orderJSON(stage.orders.order(id) ?? order, spec: true))
        }
    }

    public func cancelOrder(id: String, reason: String?, by principal: Principal) throws -> JSON {
        try orderCommand { stage, now in
            var updates: [OrderUpdate] = []
            stage.note(try stage.orders.cancel(orderId: id, reason: reason, at: now), into: &updates)
            let audit = AuditEntry(t: now, by: principal, action: "order.cancel", target: "order:\(id)", detail: reason ?? "")
            return (updates, audit, stage.orderJSON(updates[0].order, spec: true))
        }
    }

    func orderJSON(_ order: Order, spec: Bool) -> JSON {
        guard spec else { return order.json() }
        return order.json(spec: orders.spec(of: order)?.json(config: config))
    }
}

/// The shift at a time with its plant-local date (`YYYY-MM-DD` of its start), remembered while the
/// time stays inside it (the KPI facts ask every 500 ms of pipeline time; calendar work is dear).
final class PlanDates: Sendable {
    private typealias Remembered = (start: Date, end: Date, zone: TimeZone, name: String, date: String)
    private let last = Locked<Remembered?>(nil)

    func shift(at time: Date, config: PlantConfig) -> (name: String, date: String)? {
        last.withLock { last in
            if let last, last.zone == config.timezone, time >= last.start, time < last.end { return (last.name, last.date) }
            guard let found = config.shift(at: time) else { return nil }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = config.timezone
            let parts = calendar.dateComponents([.year, .month, .day], from: found.start)
            let date = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            last = (found.start, found.end, config.timezone, found.shift.name, date)
            return (found.shift.name, date)
        }
    }
}
