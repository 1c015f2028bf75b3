import Foundation
import XCTest
@testable import Storage
import TestSupport

final class MigrationTests: XCTestCase {
    var folder: TempFolder!

    override func setUp() { folder = TempFolder() }
    override func tearDown() { folder.remove() }

    let tracking = MigrationGroup(name: "tracking", migrations: [
        Migration(version: 1, name: "vehicles", sql: "CREATE TABLE vehicles (id TEXT PRIMARY KEY, status TEXT NOT NULL)"),
        Migration(version: 2, name: "vehicle notes") { db in
            try db.execute("ALTER TABLE vehicles ADD COLUMN note TEXT")
            try db.run("UPDATE vehicles SET note = ''")
        },
    ])

    func testFreshDatabaseGetsEveryStepOnceAndReopenAppliesNothing() throws {
        try onBothStores { folder in
            let path = folder.file("m.sqlite")
            let db = try Database(path: path)
            let migrator = Migrator(groups: [EventLog.migrations, tracking])
            let applied = try migrator.migrate(db)
            XCTAssertEqual(applied, ["storage#1 events", "storage#2 samples", "tracking#1 vehicles", "tracking#2 vehicle notes"])
            XCTAssertEqual(try migrator.appliedVersions(db), ["storage": 2, "tracking": 2])
            try db.run("INSERT INTO vehicles (id, status, note) VALUES ('V1', 'in_process', 'x')")
            db.close()

            let again = try Database(path: path)
            defer { again.close() }
            XCTAssertEqual(try migrator.migrate(again), [])
            XCTAssertEqual(try again.scalarText("SELECT note FROM vehicles WHERE id = 'V1'"), "x")
        }
    }

    func testLaterGroupVersionIsAppliedOnReopen() throws {
        try onBothStores { folder in
            let path = folder.file("m.sqlite")
            let db = try Database(path: path)
            defer { db.close() }
            let v1 = MigrationGroup(name: "tracking", migrations: [tracking.migrations[0]])
            XCTAssertEqual(try Migrator(groups: [v1]).migrate(db), ["tracking#1 vehicles"])
            XCTAssertEqual(try Migrator(groups: [tracking]).migrate(db), ["tracking#2 vehicle notes"])
        }
    }

    func testDatabaseNewerThanCodeIsRefused() throws {
        try onBothStores { folder in
            let path = folder.file("m.sqlite")
            let db = try Database(path: path)
            defer { db.close() }
            try Migrator(groups: [tracking]).migrate(db)
            let older = MigrationGroup(name: "tracking", migrations: [tracking.migrations[0]])
            XCTAssertThrowsError(try Migrator(groups: [older]).migrate(db)) { error in
                let error = error as? SQLiteError
                XCTAssertEqual(error?.kind, .schemaTooNew)
                XCTAssertTrue(error?.description.contains("newer than this program knows") == true, "\(String(describing: error))")
            }
        }
    }

    func testEventLogRefusesNewerDatabase() throws {
        try onBothStores { folder in
            let path = folder.file("m.sqlite")
            let db = try Database(path: path)
            try Migrator(groups: [EventLog.migrations]).migrate(db)
            try db.run("INSERT INTO schema_migrations VALUES ('storage', 99, 'future', '2030-01-01T00:00:00.000Z')")
            db.close()
            XCTAssertThrowsError(try EventLog.open(EventLog.Configuration(path: path), logger: quietLogger())) { error in
                XCTAssertEqual((error as? SQLiteError)?.kind, .schemaTooNew, "\(error)")
            }
        }
    }

    func testFailingStepRollsBackAndKeepsEarlierSteps() throws {
        let db = try Database(path: folder.file("m.sqlite"))
        defer { db.close() }
        let broken = MigrationGroup(name: "quality", migrations: [
            Migration(version: 1, name: "defects", sql: "CREATE TABLE defects (id INTEGER PRIMARY KEY)"),
            Migration(version: 2, name: "broken", sql: "CREATE TABLE alerts (id INTEGER); CREATE TABLE nonsense ("),
        ])
        XCTAssertThrowsError(try Migrator(groups: [broken]).migrate(db)) { error in
            XCTAssertEqual((error as? MigrationError)?.version, 2)
        }
        XCTAssertEqual(try Migrator(groups: []).appliedVersions(db), ["quality": 1])
        XCTAssertEqual(try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'alerts'"), 0)
    }

    func testDuplicateVersionsAreRejected() throws {
        try onBothStores { folder in
            let db = try Database(path: folder.file("m.sqlite"))
            defer { db.close() }
            let bad = MigrationGroup(name: "x", migrations: [
                Migration(version: 1, name: "a", sql: "SELECT 1"), Migration(version: 1, name: "b", sql: "SELECT 1"),
            ])
            XCTAssertThrowsError(try Migrator(groups: [bad]).migrate(db))
        }
    }
}
