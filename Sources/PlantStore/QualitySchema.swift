import Foundation
import Storage

/// Tables of the quality module: defects, alerts (current state + history), the audit trail, and
/// the current shift's KPI counters (one row, so a restart inside a shift goes on from them).
///
/// Times are integer milliseconds since 1970 UTC. The audit table is append-only: triggers
/// refuse every UPDATE and DELETE, and ``QualityStore`` has no API to change a line.
public enum QualitySchema {
    /// The tables of migration 1 (both dialects; its triggers differ).
    private static let tables = """
            CREATE TABLE defects (
                id INTEGER PRIMARY KEY,
                vehicle_id TEXT NOT NULL,
                station TEXT,
                operation TEXT,
                code TEXT NOT NULL,
                description TEXT NOT NULL,
                severity TEXT NOT NULL,
                status TEXT NOT NULL,
                raised_ms INTEGER NOT NULL,
                raised_by TEXT NOT NULL,
                resolved_ms INTEGER,
                resolved_by TEXT,
                comment TEXT
            );
            CREATE INDEX defects_raised ON defects (raised_ms);
            CREATE INDEX defects_status ON defects (status, raised_ms);
            CREATE INDEX defects_vehicle ON defects (vehicle_id, raised_ms);
            CREATE INDEX defects_station ON defects (station, raised_ms);

            CREATE TABLE alerts (
                id INTEGER PRIMARY KEY,
                key TEXT NOT NULL,
                type TEXT NOT NULL,
                severity TEXT NOT NULL,
                state TEXT NOT NULL,
                station TEXT,
                signal TEXT,
                vehicle_id TEXT,
                message TEXT NOT NULL,
                raised_ms INTEGER NOT NULL,
                acknowledged_ms INTEGER,
                acknowledged_by TEXT,
                comment TEXT,
                cleared_ms INTEGER,
                shelved_until_ms INTEGER,
                escalation_level INTEGER NOT NULL DEFAULT 0,
                condition_active INTEGER NOT NULL,
                momentary INTEGER NOT NULL,
                announced_ms INTEGER NOT NULL,
                ack_before_shelve INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX alerts_raised ON alerts (raised_ms);
            CREATE INDEX alerts_state ON alerts (state, raised_ms);
            CREATE INDEX alerts_station ON alerts (station, raised_ms);
            CREATE INDEX alerts_vehicle ON alerts (vehicle_id, raised_ms);

            CREATE TABLE alert_history (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                alert_id INTEGER NOT NULL,
                t_ms INTEGER NOT NULL,
                change TEXT NOT NULL,
                state TEXT NOT NULL,
                escalation_level INTEGER NOT NULL,
                user TEXT
            );
            CREATE INDEX alert_history_alert ON alert_history (alert_id, seq);

            CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                t_ms INTEGER NOT NULL,
                user TEXT NOT NULL,
                role TEXT,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                detail TEXT NOT NULL
            );
        """

    /// The migration group `quality`; pass it in `EventLog.Configuration.migrations`.
    public static let migrations = MigrationGroup(name: "quality", migrations: [
        Migration(version: 1, name: "defects, alerts, alert history, audit", sql: tables + """
            CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
            CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
            """, postgres: PostgresDialect.translate(tables) + """
            CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                FOR EACH ROW EXECUTE FUNCTION mes_refuse_change('the audit trail is append-only');
            CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                FOR EACH ROW EXECUTE FUNCTION mes_refuse_change('the audit trail is append-only');
            """),
        Migration(version: 2, name: "the current shift's KPI counters", sql: """
            CREATE TABLE shift_counters (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                shift_start_ms INTEGER NOT NULL,
                taken_at_ms INTEGER NOT NULL,
                data TEXT NOT NULL
            );
            """),
        Migration(version: 3, name: "owners of alerts and defects", sql: """
            ALTER TABLE alerts ADD COLUMN assignment TEXT;
            ALTER TABLE defects ADD COLUMN assignment TEXT;
            """),
    ])
}
