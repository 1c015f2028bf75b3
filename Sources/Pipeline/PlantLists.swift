import Foundation
import Orders
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// The plant's lists read row by row for CSV exports (README "Exports (CSV)"), with the same
/// filters and order as their JSON answers, and the operations query (README "Operations query").
///
/// Each `…Rows` call opens a cursor on a connection of its own in one read transaction
/// (``RowStream``); whoever takes it reads it on one thread at a time and closes it. Any thread;
/// errors are storage errors (the API answers 503). `limit` is used as given: the API checks it.
public protocol PlantLists: Sendable {
    /// `GET /api/operations`: completed operations, newest completion first.
    func operations(_ filter: OperationFilter, limit: Int) throws -> [OperationRow]
    /// The rows of ``operations(_:limit:)`` as the statement itself, positioned on each row in turn
    /// (columns in ``OperationQuery/row(_:)``'s order): an export writes fields from it without
    /// making a string per field.
    func operationCursor(_ filter: OperationFilter, limit: Int) throws -> RowStream<Statement>
    func vehicleRows(status: VehicleStatus?, station: String?, limit: Int) throws -> RowStream<VehicleSummary>
    func defectRows(status: DefectStatus?, vehicle: String?, station: String?, limit: Int) throws -> RowStream<Defect>
    func alertRows(filter: AlertStateFilter, station: String?, limit: Int) throws -> RowStream<Alert>
    func orderRows(status: OrderStatus?, model: String?, plannedDate: String?, search: String?, limit: Int) throws -> RowStream<Order>
    func sequenceRows(limit: Int) throws -> RowStream<Order>
    func andonRows(state: AndonState?, station: String?, limit: Int) throws -> RowStream<AndonCall>
    func downtimeRows(station: String?, from: Date?, to: Date?, openOnly: Bool, limit: Int) throws -> RowStream<DowntimeStretch>
    /// `GET /api/parts/{serial}`: every binding the serial had, newest first.
    func partRows(serial: String, limit: Int) throws -> RowStream<PartBinding>
}

/// ``PlantLists`` over the event log's database.
public struct StoreLists: PlantLists {
    let eventLog: EventLog

    public init(eventLog: EventLog) { self.eventLog = eventLog }

    public func operations(_ filter: OperationFilter, limit: Int) throws -> [OperationRow] {
        try eventLog.read { try OperationQuery.operations(filter, limit: limit, in: $0) }
    }

    public func operationCursor(_ filter: OperationFilter, limit: Int) throws -> RowStream<Statement> {
        try eventLog.rows(building: { try OperationQuery.query(filter, limit: limit, in: $0) }, row: { $0 })
    }

    public func partRows(serial: String, limit: Int) throws -> RowStream<PartBinding> {
        try eventLog.rows(PartStore.bindingsQuery(serial: serial, limit: limit), row: PartStore.binding)
    }

    public func vehicleRows(status: VehicleStatus?, station: String?, limit: Int) throws -> RowStream<VehicleSummary> {
        try eventLog.rows(GenealogyStore.vehiclesQuery(status: status, station: station, limit: limit), row: GenealogyStore.summary)
    }

    public func defectRows(status: DefectStatus?, vehicle: String?, station: String?, limit: Int) throws -> RowStream<Defect> {
        try eventLog.rows(QualityStore.defectsQuery(status: status, vehicle: vehicle, station: station, limit: limit), row: QualityStore.defect)
    }

    public func alertRows(filter: AlertStateFilter, station: String?, limit: Int) throws -> RowStream<Alert> {
        try eventLog.rows(QualityStore.alertsQuery(filter: filter, station: station, vehicle: nil, limit: limit), row: QualityStore.alert)
    }

    public func orderRows(status: OrderStatus?, model: String?, plannedDate: String?, search: String?, limit: Int) throws -> RowStream<Order> {
        try eventLog.rows(OrderStore.ordersQuery(status: status, model: model, plannedDate: plannedDate, search: search, limit: limit),
                          row: OrderStore.order)
    }

    public func sequenceRows(limit: Int) throws -> RowStream<Order> {
        try eventLog.rows(OrderStore.sequenceQuery(limit: limit), row: OrderStore.order)
    }

    public func andonRows(state: AndonState?, station: String?, limit: Int) throws -> RowStream<AndonCall> {
        try eventLog.rows(FloorStore.callsQuery(state: state, station: station, limit: limit), row: FloorStore.call)
    }

    public func downtimeRows(station: String?, from: Date?, to: Date?, openOnly: Bool, limit: Int) throws -> RowStream<DowntimeStretch> {
        try eventLog.rows(FloorStore.downtimeQuery(station: station, from: from, to: to, openOnly: openOnly, limit: limit),
                          row: FloorStore.stretch)
    }
}
