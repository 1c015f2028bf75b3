import Foundation
import PlantModel
import Runtime
import Storage

/// The operations query (`GET /api/operations`): its indexes and the SQL of each filter.
///
/// Measurements are stored per operation as JSON text (``GenealogySchema``); for range queries on
/// one measurement ("weld current above 11.5 kA") every completed operation's numeric
/// measurements are also rows of `operation_measurements`, one per (signal, value, operation), a
/// table without rowid keyed by signal then value, so a range is one index seek. Triggers on
/// `operations` keep it in step with every write, whoever makes it (the pipeline, a migration, a
/// bulk load); the migration fills it for the operations already stored.
public enum OperationQuery {
    /// The indexes and the measurement table both dialects create (each then adds its triggers).
    private static let tables = """
            CREATE INDEX IF NOT EXISTS operations_completed ON operations (completed_ms);
            CREATE INDEX IF NOT EXISTS operations_nok_completed ON operations (completed_ms) WHERE result = 'nok';

            CREATE TABLE operation_measurements (
                signal TEXT NOT NULL,
                value REAL NOT NULL,
                op INTEGER NOT NULL,
                completed_ms INTEGER NOT NULL,
                PRIMARY KEY (signal, value, op)
            ) WITHOUT ROWID;

            """

    /// The migration group `operations_query`; apply it after ``GenealogySchema/migrations``.
    public static let migrations = MigrationGroup(name: "operations_query", migrations: [
        Migration(version: 1, name: "operation indexes and measurement rows", sql: tables + """

            CREATE TRIGGER operation_measurements_insert AFTER INSERT ON operations
            WHEN new.state = 'completed' AND new.completed_ms IS NOT NULL BEGIN
                INSERT OR REPLACE INTO operation_measurements (signal, value, op, completed_ms)
                SELECT key, value, new.rowid, new.completed_ms FROM json_each(new.measurements)
                WHERE type IN ('integer', 'real');
            END;

            CREATE TRIGGER operation_measurements_update AFTER UPDATE OF measurements, state, completed_ms ON operations BEGIN
                DELETE FROM operation_measurements WHERE op = old.rowid AND old.state = 'completed' AND (signal, value) IN
                    (SELECT key, value FROM json_each(old.measurements) WHERE type IN ('integer', 'real'));
                INSERT OR REPLACE INTO operation_measurements (signal, value, op, completed_ms)
                SELECT key, value, new.rowid, new.completed_ms FROM json_each(new.measurements)
                WHERE type IN ('integer', 'real') AND new.state = 'completed' AND new.completed_ms IS NOT NULL;
            END;

            CREATE TRIGGER operation_measurements_delete AFTER DELETE ON operations WHEN old.state = 'completed' BEGIN
                DELETE FROM operation_measurements WHERE op = old.rowid AND (signal, value) IN
                    (SELECT key, value FROM json_each(old.measurements) WHERE type IN ('integer', 'real'));
            END;

            INSERT OR REPLACE INTO operation_measurements (signal, value, op, completed_ms)
            SELECT j.key, j.value, o.rowid, o.completed_ms FROM operations o, json_each(o.measurements) j
            WHERE o.state = 'completed' AND o.completed_ms IS NOT NULL AND j.type IN ('integer', 'real');
            """, postgres: PostgresDialect.translate(tables + """
            CREATE INDEX operation_measurements_op ON operation_measurements (op);
            """) + """
            CREATE FUNCTION mes_operation_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    DELETE FROM operation_measurements WHERE op = OLD.rowid;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state = 'completed' AND NEW.completed_ms IS NOT NULL THEN
                    INSERT INTO operation_measurements (signal, value, op, completed_ms)
                    SELECT key, value::double precision, NEW.rowid, NEW.completed_ms FROM mes_json_each(NEW.measurements)
                    WHERE type IN ('integer', 'real')
                    ON CONFLICT (signal, value, op) DO UPDATE SET completed_ms = excluded.completed_ms;
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER operation_measurements_insert AFTER INSERT ON operations
                FOR EACH ROW EXECUTE FUNCTION mes_operation_measurements();
            CREATE TRIGGER operation_measurements_update AFTER UPDATE OF measurements, state, completed_ms ON operations
                FOR EACH ROW EXECUTE FUNCTION mes_operation_measurements();
            CREATE TRIGGER operation_measurements_delete AFTER DELETE ON operations
                FOR EACH ROW EXECUTE FUNCTION mes_operation_measurements();

            INSERT INTO operation_measurements (signal, value, op, completed_ms)
            SELECT j.key, j.value::double precision, o.rowid, o.completed_ms FROM operations o, mes_json_each(o.measurements) j
            WHERE o.state = 'completed' AND o.completed_ms IS NOT NULL AND j.type IN ('integer', 'real')
            ON CONFLICT DO NOTHING;
            """),
    ])

    /// The SQL expression of `energyKWh`: NULL until energy metering stores an operation's energy
    /// (then its column, e.g. `o.energy_kwh`).
    public static let energyColumn = "NULL"

    /// Up to this many operations in a measurement range, the query reads the range (one index
    /// seek) and sorts it; above it, the range is dense enough that reading operations newest
    /// first (by station, vehicle or time index) and checking the measurement on each finds the
    /// newest matches sooner.
    public static let measurementRangeLimit = 20_000

    /// The query of `filter`, newest completion first, at most `limit` rows (not clamped: the
    /// caller checks it). `db` is used to size a measurement range (see ``measurementRangeLimit``);
    /// run the query on the same connection and transaction.
    public static func query(_ filter: OperationFilter, limit: Int, in db: Database) throws -> SQLQuery {
        var conditions = ["o.state = 'completed'"]
        var arguments: [SQLValue] = []
        var from = "operations o"
        if let station = filter.station { conditions.append("o.station = ?"); arguments.append(.text(station)) }
        if let process = filter.process { conditions.append("o.process = ?"); arguments.append(.text(process)) }
        if let vehicle = filter.vehicle { conditions.append("o.vehicle_id = ?"); arguments.append(.text(vehicle)) }
        // Literal, not a parameter, so the planner may use the partial index of NOK operations.
        if let result = filter.result { conditions.append("o.result = '\(result.rawValue)'") }
        if let t = filter.from { conditions.append("o.completed_ms >= ?"); arguments.append(.integer(ms(t))) }
        if let t = filter.to { conditions.append("o.completed_ms <= ?"); arguments.append(.integer(ms(t))) }
        if let signal = filter.signal {
            let low = filter.min ?? -Double.greatestFiniteMagnitude, high = filter.max ?? Double.greatestFiniteMagnitude
            let pathSafe = !signal.contains("\"") && !signal.contains("\\")
            var byRange = true
            if pathSafe {
                let count = try db.scalarInt("""
                    SELECT count(*) FROM (SELECT 1 FROM operation_measurements WHERE signal = ? AND value >= ? AND value <= ? LIMIT ?)
                    """, [.text(signal), .real(low), .real(high), .integer(Int64(measurementRangeLimit + 1))]) ?? 0
                byRange = count <= measurementRangeLimit
            }
            if byRange {
                // CROSS JOIN keeps the measurement range as the outer loop (SQLite's join-order rule).
                from = "operation_measurements m CROSS JOIN operations o ON o.rowid = m.op"
                conditions.insert("m.signal = ? AND m.value >= ? AND m.value <= ?", at: 0)
                arguments.insert(contentsOf: [.text(signal), .real(low), .real(high)], at: 0)
            } else {
                conditions.append("json_extract(o.measurements, ?) BETWEEN ? AND ?")
                arguments += [.text("$.\"\(signal)\""), .real(low), .real(high)]
            }
        }
        arguments.append(.integer(Int64(Swift.max(0, limit))))
        return SQLQuery("""
            SELECT o.id, o.vehicle_id, o.station, o.process, o.started_ms, o.completed_ms, o.result, o.measurements, o.lots,
                o.operator, o.attempt, \(energyColumn) FROM \(from)
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY o.completed_ms DESC, o.rowid DESC LIMIT ?
            """, arguments)
    }

    /// One row of ``query(_:limit:in:)``.
    @Sendable public static func row(_ s: Statement) -> OperationRow {
        OperationRow(id: s.text(0) ?? "", vehicleId: s.text(1) ?? "", station: s.text(2) ?? "", process: s.text(3) ?? "",
                     startedMs: s.int64(4), completedMs: s.isNull(5) ? nil : s.int64(5), result: s.text(6),
                     measurementsJSON: s.text(7) ?? "{}", lotsJSON: s.text(8) ?? "[]", operatorName: s.text(9),
                     attempt: s.int64(10), energyKWh: s.isNull(11) ? nil : s.double(11))
    }

    /// The operations of `filter`, newest completion first (the JSON answer).
    public static func operations(_ filter: OperationFilter, limit: Int, in db: Database) throws -> [OperationRow] {
        try db.query(try query(filter, limit: limit, in: db), row: row)
    }

    static func ms(_ date: Date) -> Int64 { genealogyMs(date) }
}
