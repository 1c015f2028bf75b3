import CSQLite
import Foundation
import Runtime

/// One schema step: applied once, in its own transaction.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let apply: @Sendable (Database) throws -> Void

    /// A step that runs SQL (several statements allowed), written in SQLite's dialect; on
    /// PostgreSQL it goes through ``PostgresDialect``, or `postgres` runs instead when given (a
    /// step whose SQL differs: triggers, SQLite-only functions). `postgres` is run as is.
    public init(version: Int, name: String, sql: String, postgres: String? = nil) {
        self.version = version
        self.name = name
        self.apply = { db in
            if db.isPostgres, let postgres { try db.executeNative(postgres) } else { try db.execute(sql) }
        }
    }

    /// A step that runs code (data moves, conditional changes).
    public init(version: Int, name: String, apply: @escaping @Sendable (Database) throws -> Void) {
        self.version = version
        self.name = name
        self.apply = apply
    }
}

/// The migrations of one module (`storage.events`, `tracking`, `quality` …), versioned on their own.
///
/// Each group's versions must be strictly increasing; the database records, per group, which
/// versions were applied (table `schema_migrations`).
public struct MigrationGroup: Sendable {
    public let name: String
    public let migrations: [Migration]

    public init(name: String, migrations: [Migration]) {
        self.name = name
        self.migrations = migrations
    }

    /// The highest version this code knows.
    public var latestVersion: Int { migrations.map(\.version).max() ?? 0 }
}

/// Applies migration groups in the order given; refuses a database that is newer than the code.
public struct Migrator: Sendable {
    public let groups: [MigrationGroup]
    private let logger: Logger?

    public init(groups: [MigrationGroup], logger: Logger? = nil) {
        self.groups = groups
        self.logger = logger
    }

    /// Applies every missing migration, one transaction each; returns the names applied.
    ///
    /// Throws `SQLiteError` with kind `.schemaTooNew` when the database has a version of a known
    /// group beyond the code's latest (nothing is applied then); throws the failing step's error
    /// (its transaction rolled back; earlier steps stay) otherwise.
    @discardableResult
    public func migrate(_ db: Database) throws -> [String] {
        try validate()
        try db.transaction {
            if db.isPostgres {
                // Servers starting together on one database take turns (the lock ends with the transaction).
                try db.executeNative("SELECT pg_advisory_xact_lock(\(Self.migrationLock))")
            }
            try db.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    grp TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,
                    PRIMARY KEY (grp, version))
                """)
            if db.isPostgres { try db.executeNative(PostgresDialect.compatibilityFunctions) }
        }
        var applied = try appliedVersions(db)
        for group in groups {
            let current = applied[group.name] ?? 0
            if current > group.latestVersion {
                throw SQLiteError.schemaTooNew(
                    "database \(Database.redacted(db.path)) has schema '\(group.name)' version \(current), newer than this program knows (\(group.latestVersion)); use a newer program or another database",
                    context: "migrate \(Database.redacted(db.path))")
            }
        }
        let known = Set(groups.map(\.name))
        for name in applied.keys where !known.contains(name) {
            logger?.debug("schema group '\(name)' in \(Database.redacted(db.path)) is not used by this program")
        }
        var names: [String] = []
        for group in groups {
            for migration in group.migrations.sorted(by: { $0.version < $1.version }) {
                let current = applied[group.name] ?? 0
                guard migration.version > current else { continue }
                do {
                    try db.transaction {
                        if db.isPostgres { try db.executeNative("SELECT pg_advisory_xact_lock(\(Self.migrationLock))") }
                        // Re-check inside the write lock: another process may have migrated meanwhile.
                        let now = try db.scalarInt("SELECT max(version) FROM schema_migrations WHERE grp = ?", [.text(group.name)]) ?? 0
                        guard migration.version > now else { return }
                        try migration.apply(db)
                        try db.run("INSERT INTO schema_migrations (grp, version, name, applied_at) VALUES (?, ?, ?, ?)",
                                   [.text(group.name), .integer(Int64(migration.version)), .text(migration.name), .text(Timestamp.format(Date()))])
                    }
                } catch {
                    throw MigrationError(group: group.name, version: migration.version, name: migration.name, underlying: error)
                }
                applied[group.name] = migration.version
                names.append("\(group.name)#\(migration.version) \(migration.name)")
                logger?.info("applied migration \(group.name)#\(migration.version) \(migration.name)")
            }
        }
        return names
    }

    /// The advisory lock key PostgreSQL migrations take (one migrating server at a time).
    static let migrationLock: Int64 = 0x4D45_535F_4D49_47

    /// The highest applied version of each group.
    public func appliedVersions(_ db: Database) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for (group, version) in try db.query("SELECT grp, max(version) FROM schema_migrations GROUP BY grp", row: { ($0.text(0) ?? "", Int($0.int64(1))) }) {
            result[group] = version
        }
        return result
    }

    private func validate() throws {
        var seen = Set<String>()
        for group in groups {
            guard seen.insert(group.name).inserted else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "migration group '\(group.name)' given twice", context: "migrate")
            }
            let versions = group.migrations.map(\.version)
            guard Set(versions).count == versions.count, versions.allSatisfy({ $0 > 0 }) else {
                throw SQLiteError(code: SQLITE_MISUSE, message: "migration group '\(group.name)' has duplicate or non-positive versions", context: "migrate")
            }
        }
    }
}

/// A migration step that failed; its transaction was rolled back.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let group: String
    public let version: Int
    public let name: String
    public let underlying: any Error

    public var description: String { "migration \(group)#\(version) '\(name)' failed: \(underlying)" }
}
