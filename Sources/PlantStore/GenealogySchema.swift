import Foundation
import Storage

/// Tables of vehicle genealogy: vehicles, their operations, lot links and stamping lot counts.
///
/// Times are stored as integer milliseconds since 1970 UTC; measurements and lots of an
/// operation as JSON text (`{"name": value}`, `["lot"]`), lots also as rows of `lot_links`
/// for recall queries.
public enum GenealogySchema {
    /// The migration group `genealogy`; pass it in `EventLog.Configuration.migrations`.
    public static let migrations = MigrationGroup(name: "genealogy", migrations: [
        Migration(version: 1, name: "vehicles, operations, lots", sql: """
            CREATE TABLE vehicles (
                vehicle_id TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                current_station TEXT,
                first_seen_ms INTEGER NOT NULL,
                last_seen_ms INTEGER NOT NULL,
                last_route_index INTEGER NOT NULL DEFAULT -1
            ) WITHOUT ROWID;
            CREATE INDEX vehicles_last_seen ON vehicles (last_seen_ms);
            CREATE INDEX vehicles_status_last_seen ON vehicles (status, last_seen_ms);
            CREATE INDEX vehicles_station_last_seen ON vehicles (current_station, last_seen_ms);

            CREATE TABLE operations (
                id TEXT NOT NULL UNIQUE,
                vehicle_id TEXT NOT NULL,
                station TEXT NOT NULL,
                process TEXT NOT NULL,
                started_ms INTEGER NOT NULL,
                completed_ms INTEGER,
                state TEXT NOT NULL,
                result TEXT,
                measurements TEXT NOT NULL DEFAULT '{}',
                lots TEXT NOT NULL DEFAULT '[]',
                shift TEXT,
                operator TEXT,
                attempt INTEGER NOT NULL DEFAULT 1
            );
            CREATE INDEX operations_vehicle ON operations (vehicle_id, started_ms);
            CREATE INDEX operations_station_completed ON operations (station, completed_ms);
            CREATE INDEX operations_running ON operations (station) WHERE state = 'running';

            CREATE TABLE lot_links (
                lot TEXT NOT NULL,
                vehicle_id TEXT NOT NULL,
                station TEXT NOT NULL,
                at_ms INTEGER NOT NULL,
                PRIMARY KEY (lot, vehicle_id, station)
            ) WITHOUT ROWID;
            CREATE INDEX lot_links_vehicle ON lot_links (vehicle_id);

            CREATE TABLE lot_counts (
                station TEXT NOT NULL,
                lot TEXT NOT NULL,
                count INTEGER NOT NULL,
                first_ms INTEGER NOT NULL,
                last_ms INTEGER NOT NULL,
                PRIMARY KEY (lot, station)
            ) WITHOUT ROWID;
            CREATE INDEX lot_counts_last ON lot_counts (last_ms);
            """),
    ])
}

/// Milliseconds since 1970 UTC, the stored time unit: rounded down as `Timestamp.format` does, with
/// a 1 µs tolerance so binary floating point never loses a millisecond.
func genealogyMs(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down)) }

/// A date that formats back to exactly `ms`.
func genealogyDate(_ ms: Int64) -> Date { Date(timeIntervalSince1970: (Double(ms) + 0.001) / 1000) }
