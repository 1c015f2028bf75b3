import CSQLite
import Foundation
import XCTest
@testable import Storage
import TestSupport

final class DatabaseTests: XCTestCase {
    var folder: TempFolder!

    override func setUp() { folder = TempFolder() }
    override func tearDown() { folder.remove() }

    func testOpenCreatesParentFoldersAndUsesWAL() throws {
        let path = folder.file("a/b/c/mes.sqlite")
        let db = try Database(path: path)
        defer { db.close() }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try db.scalarText("PRAGMA journal_mode"), "wal")
        XCTAssertEqual(try db.scalarInt("PRAGMA foreign_keys"), 1)
        XCTAssertEqual(try db.scalarInt("PRAGMA synchronous"), 1) // NORMAL
    }

    func testTypedBindAndColumns() throws {
        try onBothStores { folder in
            let db = try Database(path: folder.file("t.sqlite"))
            defer { db.close() }
            try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
            try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [.integer(Int64.max), .real(2.5), .text("héllo \"x\""), .blob([0, 1, 255]), .null])
            let rows = try db.query("SELECT i, r, s, b, n FROM t") { row in
                [row.value(0), row.value(1), row.value(2), row.value(3), row.value(4)]
            }
            XCTAssertEqual(rows, [[.integer(Int64.max), .real(2.5), .text("héllo \"x\""), .blob([0, 1, 255]), .null]])
            let statement = try db.prepare("SELECT ? + ?")
            try statement.bind(Int64(40), at: 1)
            try statement.bind(2.0, at: 2)
            XCTAssertTrue(try statement.step())
            XCTAssertEqual(statement.double(0), 42)
            XCTAssertFalse(try statement.step())
        }
    }

    func testTextIsBoundWithItsByteLengthSoANULIsKept() throws {
        let db = try Database(path: folder.file("t.sqlite"))
        defer { db.close() }
        try db.execute("CREATE TABLE t (s TEXT)")
        let text = "before\u{0}after ✓"
        try db.run("INSERT INTO t VALUES (?)", [.text(text)])
        try db.run("INSERT INTO t VALUES (?)", [.text("")])
        XCTAssertEqual(try db.scalarInt("SELECT length(CAST(s AS BLOB)) FROM t WHERE rowid = 1"), Int64(text.utf8.count))
        let rows = try db.query("SELECT s FROM t ORDER BY rowid") { $0.text(0) }
        XCTAssertEqual(rows, [text, ""], "the empty text stays text, not NULL")
        let statement = try db.prepare("SELECT ? = ?")
        try statement.bind("a\u{0}b", at: 1)
        try statement.bind("a\u{0}c", at: 2)
        XCTAssertTrue(try statement.step())
        XCTAssertEqual(statement.int64(0), 0, "texts differing after a NUL are different")
    }

    func testErrorsAreTypedAndCarryTheSQL() throws {
        let db = try Database(path: folder.file("t.sqlite"))
        defer { db.close() }
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES (1)")
        do {
            try db.run("INSERT INTO t VALUES (1)")
            XCTFail("duplicate key accepted")
        } catch let error as SQLiteError {
            XCTAssertEqual(error.kind, .constraint)
            XCTAssertEqual(error.extendedCode, 1555) // SQLITE_CONSTRAINT_PRIMARYKEY
            XCTAssertEqual(error.sql, "INSERT INTO t VALUES (1)")
            XCTAssertTrue(error.description.contains("UNIQUE constraint failed"), error.description)
        }
        do {
            try db.execute("SELECT * FROM missing")
            XCTFail("unknown table accepted")
        } catch let error as SQLiteError where error.kind == .sqlError {
            XCTAssertTrue(error.message.contains("no such table"), error.message)
        }
    }

    func testSavepointRollsBackOnlyItsPart() throws {
        try onBothStores { folder in
            let db = try Database(path: folder.file("t.sqlite"))
            defer { db.close() }
            try db.execute("CREATE TABLE t (v INTEGER)")
            try db.transaction {
                try db.run("INSERT INTO t VALUES (1)")
                XCTAssertThrowsError(try db.savepoint {
                    try db.run("INSERT INTO t VALUES (2)")
                    try db.execute("SELECT * FROM missing")
                })
                try db.run("INSERT INTO t VALUES (3)")
            }
            XCTAssertEqual(try db.query("SELECT v FROM t ORDER BY v") { $0.int64(0) }, [1, 3])
        }
    }

    func testUnopenablePathGivesClearError() throws {
        // A folder where a file is expected on the path.
        let file = folder.file("plain")
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        XCTAssertThrowsError(try Database(path: file + "/sub/mes.sqlite")) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.kind, .cannotOpen)
            XCTAssertTrue(error?.description.contains(file) == true, "\(String(describing: error))")
        }
        // A directory as the database.
        XCTAssertThrowsError(try Database(path: folder.path)) { error in
            XCTAssertEqual((error as? SQLiteError)?.kind, .cannotOpen, "\(error)")
        }
    }

    func testNotADatabaseGivesClearError() throws {
        let file = folder.file("junk.sqlite")
        _ = FileManager.default.createFile(atPath: file, contents: Data(repeating: 0x41, count: 4096))
        XCTAssertThrowsError(try Database(path: file)) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.kind, .corrupt)
            XCTAssertTrue(error?.message.contains("not a usable SQLite database") == true, "\(String(describing: error))")
        }
    }

    func testReadOnlyFileIsRefusedAtOpen() throws {
        let path = folder.file("ro.sqlite")
        let db = try Database(path: path)
        try db.execute("CREATE TABLE t (v INTEGER)")
        db.close()
        try makeReadOnly(path)
        defer { undoReadOnly(path) }
        XCTAssertThrowsError(try Database(path: path)) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.kind, .readOnly, "\(String(describing: error))")
            XCTAssertTrue(error?.description.contains("read-only") == true, "\(String(describing: error))")
        }
        // Still readable.
        let reader = try Database(path: path, mode: .readOnly)
        defer { reader.close() }
        XCTAssertEqual(try reader.scalarInt("SELECT count(*) FROM t"), 0)
    }

    func testExclusivelyLockedDatabaseFailsFastAtOpen() throws {
        let path = folder.file("locked.sqlite")
        let holder = try Database(path: path)
        defer { holder.close() }
        try holder.execute("CREATE TABLE t (v INTEGER)")
        try holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        try holder.execute("BEGIN EXCLUSIVE")
        try holder.run("INSERT INTO t VALUES (1)")
        defer { try? holder.execute("ROLLBACK") }

        var options = Database.Options()
        options.openLockTimeoutMs = 300
        let started = Date()
        XCTAssertThrowsError(try Database(path: path, options: options)) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.kind, .busy, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("locked by another") == true, "\(String(describing: error))")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
    }
}

/// Makes a file unwritable even for root (immutable attribute), or by mode for other users.
func makeReadOnly(_ path: String) throws {
    if geteuid() == 0 {
        let (status, output) = try runToEnd("/usr/bin/chattr", ["+i", path])
        XCTAssertEqual(status, 0, "chattr +i failed: cannot make a read-only file as root: \(output)")
    } else {
        XCTAssertEqual(chmod(path, 0o444), 0)
    }
}

func undoReadOnly(_ path: String) {
    if geteuid() == 0 {
        _ = try? runToEnd("/usr/bin/chattr", ["-i", path])
    } else {
        _ = chmod(path, 0o644)
    }
}
