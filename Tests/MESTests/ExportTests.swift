import Foundation
import XCTest
@testable import MESApp
import Runtime
import Storage
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `GET /api/operations` and the CSV exports of every list (README "Operations query", "Exports
/// (CSV)") through a real server on loopback: rows are written straight into its SQLite file (a
/// second connection, as another process could), then read through the API.
final class ExportTests: XCTestCase {
    static let t0: Int64 = 1_790_000_000_000

    /// An in-process server on an empty replay (no live data) with the default plant and its demo tokens.
    func startServer() async throws -> (server: MESServer, db: String, task: Task<Void, any Error>) {
        let database = makeTempDirectory(self).appendingPathComponent("mes.sqlite").path
        let running = try InProcessServer(config: repoRoot.appendingPathComponent("Stations/plant.json").path, database: database)
        addTeardownBlock { try? await running.stop() }
        XCTAssertTrue(eventually(timeout: 20) { (try? running.http.get("/api/health").status) == 200 })
        return (running.server, database, running.task)
    }

    func insertOperation(_ db: Database, _ id: String, vehicle: String, station: String, process: String, completedMin: Int64?,
                         result: String? = "ok", measurements: String = "{}", lots: String = "[]", state: String = "completed",
                         operatorName: String? = nil) throws {
        try db.run("""
            INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots,
                operator, attempt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
            """, [.text(id), .text(vehicle), .text(station), .text(process), .integer(Self.t0 + (completedMin ?? 0) * 60_000 - 30_000),
                  completedMin.map { .integer(Self.t0 + $0 * 60_000) } ?? .null, .text(state), result.map { .text($0) } ?? .null,
                  .text(measurements), .text(lots), operatorName.map { .text($0) } ?? .null])
    }

    /// The time `minutes` after t0 (less `seconds`), as the API writes it.
    func time(_ minutes: Int64, less seconds: Int64 = 0) -> String {
        Timestamp.format(Date(timeIntervalSince1970: (Double(Self.t0 + minutes * 60_000 - seconds * 1000) + 0.001) / 1000))
    }

    /// Parses CSV bytes with Python's `csv` module (the test venv's interpreter) → records.
    func pythonCSV(_ bytes: [UInt8]) throws -> [[String]] {
        let file = makeTempDirectory(self).appendingPathComponent("export.csv")
        try Data(bytes).write(to: file)
        let script = """
            import csv, json, sys
            with open(sys.argv[1], newline='', encoding='utf-8') as f:
                print(json.dumps(list(csv.reader(f, strict=True)), ensure_ascii=True))
            """
        let (status, output) = try runToEnd(peerPython(), ["-c", script, file.path], timeout: 30)
        XCTAssertEqual(status, 0, output)
        let json = try JSON.parse(output)
        return (json.arrayValue ?? []).map { ($0.arrayValue ?? []).map { $0.stringValue ?? "?" } }
    }

    // MARK: Operations

    func testOperationsFiltersThroughTheAPI() async throws {
        let (server, path, _) = try await startServer()
        let db = try Database(path: path)
        defer { db.close() }
        try insertOperation(db, "w1", vehicle: "V1", station: "WELD-01", process: "welding", completedMin: 10,
                            measurements: #"{"weldCurrent":11.7,"weldVoltage":30}"#, lots: #"["L1"]"#, operatorName: "王芳")
        try insertOperation(db, "w2", vehicle: "V2", station: "WELD-01", process: "welding", completedMin: 40, result: "nok",
                            measurements: #"{"weldCurrent":10.2}"#)
        try insertOperation(db, "w3", vehicle: "V1", station: "WELD-02", process: "welding", completedMin: 80,
                            measurements: #"{"weldCurrent":11.9}"#)
        try insertOperation(db, "p1", vehicle: "V1", station: "PAINT-01", process: "paint", completedMin: 120,
                            measurements: #"{"filmThickness":95}"#)
        try insertOperation(db, "r1", vehicle: "V3", station: "WELD-01", process: "welding", completedMin: nil, result: nil, state: "running")

        let http = TestHTTP(port: server.port)
        func ids(_ query: String) throws -> [String] {
            let response = try http.get("/api/operations" + query)
            XCTAssertEqual(response.status, 200, "\(query): \(response.body)")
            return (response.json?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        XCTAssertEqual(try ids(""), ["p1", "w3", "w2", "w1"], "completed operations, newest completion first")
        XCTAssertEqual(try ids("?station=WELD-01"), ["w2", "w1"])
        XCTAssertEqual(try ids("?process=welding"), ["w3", "w2", "w1"])
        XCTAssertEqual(try ids("?vehicle=V1"), ["p1", "w3", "w1"])
        XCTAssertEqual(try ids("?result=nok"), ["w2"])
        XCTAssertEqual(try ids("?result=ok&process=welding"), ["w3", "w1"])
        XCTAssertEqual(try ids("?from=\(time(40))&to=\(time(80))"), ["w3", "w2"])
        XCTAssertEqual(try ids("?station=WELD-01&from=\(time(0))&to=\(time(30))"), ["w1"])
        XCTAssertEqual(try ids("?signal=weldCurrent&min=11.5"), ["w3", "w1"], "weld current above 11.5 kA")
        XCTAssertEqual(try ids("?signal=weldCurrent&max=11"), ["w2"])
        XCTAssertEqual(try ids("?signal=weldCurrent&min=10&max=11.8&station=WELD-01"), ["w2", "w1"])
        XCTAssertEqual(try ids("?signal=filmThickness"), ["p1"])
        XCTAssertEqual(try ids("?limit=1"), ["p1"])

        let first = try XCTUnwrap(http.get("/api/operations?vehicle=V1&station=WELD-01").json?.arrayValue?.first)
        XCTAssertEqual(first, .obj([
            ("id", .string("w1")), ("vehicleId", .string("V1")), ("station", .string("WELD-01")), ("process", .string("welding")),
            ("startedAt", .string(time(10, less: 30))),
            ("completedAt", .string(time(10))), ("result", .string("ok")),
            ("measurements", .obj([("weldCurrent", .double(11.7)), ("weldVoltage", .int(30))])),
            ("lots", .array([.string("L1")])), ("operator", .string("王芳")), ("attempt", .int(1)), ("energyKWh", .null),
        ]))
    }

    func testOperationsBadParametersAnswer400NamingThem() async throws {
        let (server, _, _) = try await startServer()
        let http = TestHTTP(port: server.port)
        let cases: [(String, String)] = [
            ("?station=NOPE", "station"),
            ("?process=painting", "process"),
            ("?result=maybe", "result"),
            ("?from=yesterday", "from"),
            ("?to=2026-13-01T00:00:00Z", "to"),
            ("?from=\(time(10))&to=\(time(5))", "from"),
            ("?min=11.5", "signal"),
            ("?signal=weldCurrent&min=abc", "min"),
            ("?signal=weldCurrent&max=nan", "max"),
            ("?signal=weldCurrent&min=12&max=11", "min"),
            ("?limit=0", "limit"),
            ("?stn=WELD-01", "stn"),
            ("?format=xml", "format"),
            ("?format=csv&limit=1000001", "limit"),
        ]
        for (query, word) in cases {
            let response = try http.get("/api/operations" + query)
            XCTAssertEqual(response.status, 400, "\(query) → \(response.status) \(response.body)")
            XCTAssertEqual(response.json?["error"]?["code"]?.stringValue, "bad_request", query)
            XCTAssertTrue(response.json?["error"]?["message"]?.stringValue?.contains(word) == true, "\(query): \(response.body)")
        }
    }

    // MARK: CSV

    func testCSVQuotingReadBackByPython() async throws {
        let (server, path, _) = try await startServer()
        let db = try Database(path: path)
        defer { db.close() }
        let descriptions = ["plain", "comma, inside", "say \"hi\"", "two\nlines", "crlf\r\nhere", "焊点裂纹，返修 “左前门”", "=HYPERLINK(\"x\")", ""]
        for (i, text) in descriptions.enumerated() {
            try db.run("""
                INSERT INTO defects (id, vehicle_id, station, operation, code, description, severity, status, raised_ms, raised_by)
                VALUES (?, ?, 'WELD-01', NULL, 'NOK', ?, 'high', 'open', ?, 'system')
                """, [.integer(Int64(i + 1)), .text("VIN-\(i)"), .text(text), .integer(Self.t0 + Int64(i) * 1000)])
        }
        try insertOperation(db, "w1", vehicle: "LFV,\"测试\"", station: "WELD-01", process: "welding", completedMin: 10,
                            measurements: #"{"weldCurrent":11.7,"spotCount":42,"retired":1.5}"#, lots: #"["L1","L2"]"#, operatorName: "张敏")
        try insertOperation(db, "w2", vehicle: "V2", station: "WELD-01", process: "welding", completedMin: 20)

        let (download, body) = try Download.body(port: server.port, "/api/defects?format=csv&limit=1000")
        XCTAssertEqual(download.status, 200)
        XCTAssertTrue(download.complete, "the body ends with its last chunk")
        XCTAssertEqual(download.headers["content-type"], "text/csv; charset=utf-8")
        XCTAssertEqual(download.headers["content-disposition"], "attachment; filename=\"defects.csv\"")
        XCTAssertEqual(download.headers["transfer-encoding"], "chunked")
        XCTAssertTrue(body.starts(with: Array("id,vehicleId,station,operation,code,description,".utf8)))
        let records = try pythonCSV(body)
        XCTAssertEqual(records.first, ["id", "vehicleId", "station", "operation", "code", "description", "severity", "status", "raisedAt",
                                       "raisedBy", "resolvedAt", "resolvedBy", "comment", "owner", "dueAt", "overdue", "escalation",
                                       "escalatedTo"])
        let rows = Array(records.dropFirst())
        XCTAssertEqual(rows.count, descriptions.count)
        // Newest first, as the JSON list: the last inserted comes first.
        let expected = descriptions.reversed().map { $0.hasPrefix("=") ? "'" + $0 : $0 }
        XCTAssertEqual(rows.map { $0[5] }, expected, "commas, quotes, newlines and Chinese text come back whole; a formula is guarded")
        XCTAssertEqual(rows.map { $0[1] }, (0..<descriptions.count).reversed().map { "VIN-\($0)" })
        XCTAssertEqual(rows.last?[8], time(0))
        XCTAssertTrue(rows.allSatisfy { $0.count == 18 })

        // Operations: measurements one column per signal of the station, others and lots flattened.
        let (ops, opsBody) = try Download.body(port: server.port, "/api/operations?format=csv&station=WELD-01&bom=true")
        XCTAssertEqual(ops.status, 200)
        XCTAssertEqual(Array(opsBody.prefix(3)), [0xEF, 0xBB, 0xBF], "bom=true starts with the byte order mark")
        let opRecords = try pythonCSV(Array(opsBody.dropFirst(3)))
        XCTAssertEqual(opRecords.first, ["id", "vehicleId", "station", "process", "startedAt", "completedAt", "result",
                                         "measurements.weldCurrent", "measurements.weldVoltage", "measurements.spotCount",
                                         "otherMeasurements", "lots", "operator", "attempt", "energyKWh"])
        XCTAssertEqual(opRecords.dropFirst().map { $0 }, [
            ["w2", "V2", "WELD-01", "welding", time(20, less: 30), time(20), "ok", "", "", "", "", "", "", "1", ""],
            ["w1", "LFV,\"测试\"", "WELD-01", "welding", time(10, less: 30), time(10), "ok", "11.7", "", "42", "retired=1.5", "L1;L2",
             "张敏", "1", ""],
        ])
    }

    func testEveryListAnswersCSV() async throws {
        let (server, _, _) = try await startServer()
        let routes: [(String, String, [String: String])] = [
            ("/api/vehicles", "vehicleId,status,currentStation,firstSeenAt,lastSeenAt", [:]),
            ("/api/defects", "id,vehicleId,station,operation,code", [:]),
            ("/api/alerts?state=all", "id,key,type,severity,state,station", [:]),
            ("/api/orders", "orderId,model,options,customer", [:]),
            ("/api/sequence", "orderId,model,options,customer", [:]),
            ("/api/notifications", "id,to,channel,kind,subject", ["Authorization": "Bearer demo-quality-token"]),
            ("/api/operations", "id,vehicleId,station,process,startedAt", [:]),
            ("/api/shifts", "date,shift,start,end,countedFrom", [:]),
            ("/api/shifts/notes", "id,date,shift,user,text,t", [:]),
            ("/api/andon", "id,station,kind,source,state,openedAt", [:]),
            ("/api/downtime", "id,station,state,faultCode,start,end,durationS,reason.code,reason.text,reason.textZh,reason.category", [:]),
        ]
        for (route, header, headers) in routes {
            let separator = route.contains("?") ? "&" : "?"
            let (download, body) = try Download.body(port: server.port, route + separator + "format=csv", headers: headers)
            XCTAssertEqual(download.status, 200, route)
            XCTAssertTrue(download.complete, route)
            XCTAssertEqual(download.headers["content-type"], "text/csv; charset=utf-8", route)
            XCTAssertTrue(download.headers["content-disposition"]?.hasPrefix("attachment; filename=\"") == true, route)
            XCTAssertTrue(String(decoding: body, as: UTF8.self).hasPrefix(header), "\(route): \(String(decoding: body.prefix(200), as: UTF8.self))")
            XCTAssertTrue(body.suffix(2) == [13, 10], "\(route): the header record ends with CRLF")
            let bad = try TestHTTP(port: server.port).get(route + separator + "format=xlsx", headers: headers)
            XCTAssertEqual(bad.status, 400, route)
            let tooMany = try TestHTTP(port: server.port).get(route + separator + "format=csv&limit=2000000", headers: headers)
            XCTAssertEqual(tooMany.status, 400, route)
            let json = try TestHTTP(port: server.port).get(route + separator + "format=json", headers: headers)
            XCTAssertEqual(json.status, 200, route)
            XCTAssertEqual(json.json?.arrayValue?.count, 0, route)
        }
        let anonymous = try TestHTTP(port: server.port).get("/api/notifications?format=csv")
        XCTAssertEqual(anonymous.status, 401, "an export needs the list's role")
    }

    /// Resident memory of the real server stays flat while it streams a million rows (a property,
    /// with a generous bound; the rate and the exact growth are `tools/bench` figures).
    func testExportMemoryFlatOverAMillionRows() throws {
        let dir = makeTempDirectory(self)
        let path = dir.appendingPathComponent("mes.sqlite").path
        let port = try freePort()
        let server = try PeerProcess(executable: productPath("mes-server"), arguments: [
            "--config", repoRoot.appendingPathComponent("Stations/plant.json").path, "--db", path,
            "--listen", "127.0.0.1:\(port)", "--replay", "/dev/null", "--log-level", "warning"])
        addTeardownBlock { server.kill() }
        XCTAssertTrue(eventually(timeout: 30) { (try? TestHTTP(port: port).get("/api/health").status) == 200 }, server.text)

        let rows = 1_000_000
        let db = try Database(path: path)
        try db.transaction {
            try db.run("""
                WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
                INSERT INTO operations (id, vehicle_id, station, process, started_ms, completed_ms, state, result, measurements, lots, attempt)
                SELECT 'op-' || i, 'LFV' || printf('%014d', i / 5), 'WELD-01', 'welding', ? + i * 1000, ? + i * 1000 + 900, 'completed',
                       CASE WHEN i % 50 = 0 THEN 'nok' ELSE 'ok' END,
                       '{"weldCurrent":' || (10 + (i % 200) / 100.0) || '}', '[]', 1
                FROM n
                """, [.integer(Int64(rows)), .integer(Self.t0), .integer(Self.t0)])
        }
        db.close()

        let pid = server.process.processIdentifier
        // Warm up: one small export, so the allocator and SQLite's caches are in place.
        _ = try Download.get(port: port, "/api/operations?format=csv&limit=20000") { _ in }
        let before = try XCTUnwrap(residentBytes(pid: pid))
        var peak = before
        var records = 0
        var pieces = 0
        let download = try Download.get(port: port, "/api/operations?format=csv&limit=\(rows)") { piece in
            piece.withUnsafeBytes { raw in
                var at = raw.baseAddress!
                let end = raw.baseAddress! + raw.count
                while at < end, let found = memchr(at, 10, end - at) {
                    records += 1
                    at = UnsafeRawPointer(found) + 1
                }
            }
            pieces += 1
            if pieces % 20 == 0, let rss = residentBytes(pid: pid) { peak = max(peak, rss) }
        }
        XCTAssertEqual(download.status, 200)
        XCTAssertTrue(download.complete)
        XCTAssertEqual(records, rows + 1, "a header and every row")
        let growth = peak - before
        XCTAssertLessThan(growth, 64 << 20, "server RSS grew by \(growth >> 20) MiB over \(download.bodyBytes >> 20) MiB of CSV")
    }
}
