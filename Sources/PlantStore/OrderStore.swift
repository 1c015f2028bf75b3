import Foundation
import Orders
import PlantModel
import Runtime
import Storage

/// The `orders` table (migration group `orders`): one row per order, upserted with each change.
///
/// Writes run inside the event log's transaction with the `order` events (an `enqueue { db in … }`
/// closure), so a stored status and its event commit together. Reads take any connection.
public enum OrderStore {
    public static let migrations = MigrationGroup(name: "orders", migrations: [
        Migration(version: 1, name: "orders", sql: """
            CREATE TABLE orders (
                seq INTEGER PRIMARY KEY,
                order_id TEXT NOT NULL UNIQUE,
                model TEXT NOT NULL,
                options TEXT NOT NULL DEFAULT '[]',
                customer TEXT,
                due_date TEXT,
                planned_date TEXT,
                planned_shift TEXT,
                sequence INTEGER,
                status TEXT NOT NULL,
                vehicle_id TEXT,
                created_ms INTEGER NOT NULL,
                released_ms INTEGER,
                started_ms INTEGER,
                completed_ms INTEGER,
                cancelled_ms INTEGER,
                cancel_reason TEXT
            );
            CREATE INDEX orders_vehicle ON orders (vehicle_id);
            CREATE INDEX orders_status ON orders (status, seq);
            CREATE INDEX orders_model ON orders (model, seq);
            CREATE INDEX orders_planned ON orders (planned_date, planned_shift);
            CREATE INDEX orders_sequence ON orders (sequence, released_ms) WHERE status = 'released';
            """),
    ])

    static let columns = """
        order_id, model, options, customer, due_date, planned_date, planned_shift, sequence, status, vehicle_id,
        created_ms, released_ms, started_ms, completed_ms, cancelled_ms, cancel_reason
        """

    // MARK: Writes

    /// Stores each order as updated (insert or replace by `orderId`). Call inside a transaction.
    public static func apply(_ updates: [OrderUpdate], to db: Database) throws {
        for update in updates { try upsert(update.order, db) }
    }

    static func upsert(_ o: Order, _ db: Database) throws {
        func ms(_ d: Date?) -> SQLValue { d.map { .integer(orderMs($0)) } ?? .null }
        func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
        let options = JSON.array(o.options.map { .string($0) }).serialized()
        try db.run("""
            INSERT INTO orders (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, vehicle_id = excluded.vehicle_id,
                released_ms = excluded.released_ms, started_ms = excluded.started_ms, completed_ms = excluded.completed_ms,
                cancelled_ms = excluded.cancelled_ms, cancel_reason = excluded.cancel_reason
            """, [.text(o.orderId), .text(o.model), .text(options), text(o.customer), text(o.dueDate), text(o.plannedDate),
                  text(o.plannedShift), o.sequence.map { .integer($0) } ?? .null, .text(o.status.rawValue), text(o.vehicleId),
                  .integer(orderMs(o.createdAt)), ms(o.releasedAt), ms(o.startedAt), ms(o.completedAt), ms(o.cancelledAt),
                  text(o.cancelReason)])
    }

    // MARK: Reads

    /// Every stored order (the book after a restart), in creation order.
    public static func loadAll(_ db: Database) throws -> [Order] {
        try db.query("SELECT \(columns) FROM orders ORDER BY seq", row: order)
    }

    public static func order(id: String, in db: Database) throws -> Order? {
        try db.query("SELECT \(columns) FROM orders WHERE order_id = ?", [.text(id)], row: order).first
    }

    /// The order that holds a VIN now (not cancelled), if any.
    public static func order(vehicleId: String, in db: Database) throws -> Order? {
        try db.query("SELECT \(columns) FROM orders WHERE vehicle_id = ? AND status NOT IN ('planned', 'cancelled') ORDER BY seq DESC LIMIT 1",
                     [.text(vehicleId)], row: order).first
    }

    /// Orders, newest first, filtered by status, model and planned date; `search` matches the
    /// start of the order id, the VIN or the customer.
    public static func orders(status: OrderStatus? = nil, model: String? = nil, plannedDate: String? = nil,
                              search: String? = nil, limit: Int = 100, in db: Database) throws -> [Order] {
        try db.query(ordersQuery(status: status, model: model, plannedDate: plannedDate, search: search,
                                 limit: min(max(limit, 1), 10_000)), row: order)
    }

    /// The query of ``orders(status:model:plannedDate:search:limit:in:)`` with `limit` as given (a
    /// CSV export's may pass up to 1,000,000); rows decode with ``order(_:)``.
    public static func ordersQuery(status: OrderStatus?, model: String?, plannedDate: String?, search: String?, limit: Int) -> SQLQuery {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        if let status { conditions.append("status = ?"); arguments.append(.text(status.rawValue)) }
        if let model { conditions.append("model = ?"); arguments.append(.text(model)) }
        if let plannedDate { conditions.append("planned_date = ?"); arguments.append(.text(plannedDate)) }
        if let search, !search.isEmpty {
            let pattern = search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            conditions.append("(order_id LIKE ? ESCAPE '\\' OR vehicle_id LIKE ? ESCAPE '\\' OR customer LIKE ? ESCAPE '\\')")
            arguments += [.text(pattern), .text(pattern), .text(pattern)]
        }
        arguments.append(.integer(Int64(max(limit, 0))))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return SQLQuery("SELECT \(columns) FROM orders \(whereClause) ORDER BY seq DESC LIMIT ?", arguments)
    }

    /// Released orders not started, in build order: `sequence` (unnumbered last), then release time.
    public static func sequence(limit: Int = 100, in db: Database) throws -> [Order] {
        try db.query(sequenceQuery(limit: min(max(limit, 1), 10_000)), row: order)
    }

    /// The query of ``sequence(limit:in:)`` with `limit` as given; rows decode with ``order(_:)``.
    public static func sequenceQuery(limit: Int) -> SQLQuery {
        SQLQuery("""
            SELECT \(columns) FROM orders WHERE status = 'released'
            ORDER BY sequence IS NULL, sequence, released_ms, seq LIMIT ?
            """, [.integer(Int64(max(limit, 0)))])
    }

    /// `GET /api/plan?date=`: orders planned for the date (cancelled ones left out) against those
    /// completed, per shift (the plant's shifts in order, then any other) and per model.
    public static func plan(date: String, shifts: [String], in db: Database) throws -> JSON {
        let rows = try db.query("""
            SELECT planned_shift, model, count(*), sum(status = 'completed') FROM orders
            WHERE planned_date = ? AND status <> 'cancelled' GROUP BY planned_shift, model ORDER BY planned_shift, model
            """, [.text(date)]) { ($0.text(0), $0.text(1) ?? "", Int($0.int64(2)), Int($0.int64(3))) }
        var total = PlanCount()
        var byShift: [String: PlanCount] = [:]
        var byModel: [String: PlanCount] = [:]
        for (shift, model, planned, completed) in rows {
            total.planned += planned
            total.completed += completed
            if let shift {
                byShift[shift, default: PlanCount()].planned += planned
                byShift[shift, default: PlanCount()].completed += completed
            }
            byModel[model, default: PlanCount()].planned += planned
            byModel[model, default: PlanCount()].completed += completed
        }
        let names = shifts + byShift.keys.filter { !shifts.contains($0) }.sorted()
        return .obj([
            ("date", .string(date)),
            ("planned", .int(Int64(total.planned))),
            ("completed", .int(Int64(total.completed))),
            ("attainment", .number(total.attainment)),
            ("shifts", .array(names.map { name in
                let c = byShift[name] ?? PlanCount()
                return .obj([("name", .string(name)), ("planned", .int(Int64(c.planned))), ("completed", .int(Int64(c.completed))),
                             ("attainment", .number(c.attainment))])
            })),
            ("models", .object(byModel.keys.sorted().map { model in
                let c = byModel[model]!
                return (model, .obj([("planned", .int(Int64(c.planned))), ("completed", .int(Int64(c.completed))),
                                     ("attainment", .number(c.attainment))]))
            })),
        ])
    }

    /// A row of `orders` (the columns of ``ordersQuery(status:model:plannedDate:search:limit:)``).
    @Sendable public static func order(_ row: Statement) -> Order {
        func date(_ i: Int32) -> Date? { row.isNull(i) ? nil : orderDate(row.int64(i)) }
        var options: [String] = []
        if let text = row.text(2), let json = try? JSON.parse(text), let items = json.arrayValue {
            options = items.compactMap(\.stringValue)
        }
        var o = Order(orderId: row.text(0) ?? "", model: row.text(1) ?? "", options: options, customer: row.text(3),
                      dueDate: row.text(4), plannedDate: row.text(5), plannedShift: row.text(6),
                      sequence: row.isNull(7) ? nil : row.int64(7),
                      status: OrderStatus(rawValue: row.text(8) ?? "") ?? .planned, vehicleId: row.text(9),
                      createdAt: orderDate(row.int64(10)))
        o.releasedAt = date(11)
        o.startedAt = date(12)
        o.completedAt = date(13)
        o.cancelledAt = date(14)
        o.cancelReason = row.text(15)
        return o
    }
}

/// Milliseconds since 1970 UTC (as the genealogy tables store times).
func orderMs(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }
func orderDate(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
