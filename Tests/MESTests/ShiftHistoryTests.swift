import Foundation
import XCTest
@testable import MESApp
import PlantModel
import Runtime
import TestSupport

/// Shift history through the real server (README "Shift calendar and shift history"): polls on
/// the pipeline's clock (replay mode: no waiting) run the default plant's shift A (06:00–14:00
/// Asia/Shanghai, break 10:00–10:20) to its end; its KPIs are stored, read back by `previous`
/// and by date, after a restart too; the report in JSON, CSV (read by Python's csv) and HTML;
/// handover notes.
final class ShiftHistoryTests: XCTestCase, PlantDriving {
    var server: MESServer!
    var task: Task<Void, any Error>!
    var http: TestHTTP!
    var clock = Date(timeIntervalSince1970: 0)
    var operationCounter = 0
    var options = ServerOptions()

    static let operatorToken = ["Authorization": "Bearer demo-operator-token"]
    static let viewer = ["Authorization": "Bearer demo-viewer-token"]

    override func setUp() async throws {
        let dir = makeTempDirectory(self)
        options.config = repoRoot.appendingPathComponent("Stations/plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        options.port = 0
        options.replay = "/dev/null"
        try start()
    }

    override func tearDown() async throws {
        server.shutdown()
        try await task.value
    }

    func start() throws {
        server = try MESServer(options: options, logger: Logger(label: "test", level: .warning))
        let server = self.server!
        task = Task { try await server.run(installSignalHandlers: false) }
        http = TestHTTP(port: server.port)
    }

    func restart() async throws {
        server.shutdown()
        try await task.value
        try start()
    }

    /// A plant-local time of 2026-11-23 (Asia/Shanghai, +08:00).
    func local(_ time: String, day: Int = 23) -> Date { Timestamp.parse("2026-11-\(day)T\(time)+08:00")! }

    /// WELD-01's machine state at a plant-local time.
    func state(_ code: Int64, at time: String, day: Int = 23) {
        clock = local(time, day: day).addingTimeInterval(-1)
        poll("WELD-01", ["state": .int(code), "faultCode": .int(0)])
    }

    func settle() throws {
        server.pipeline.drain()
        try server.eventLog.flush()
    }

    func station(_ document: JSON?, _ id: String) -> JSON? {
        document?["stations"]?.arrayValue?.first { $0["id"]?.stringValue == id }
    }

    func testShiftEndStoresItsKPIsReadBackByPreviousAndDateAfterARestart() async throws {
        XCTAssertEqual(try http.get("/api/kpis?shift=previous").status, 404, "no shift has ended yet")
        state(1, at: "06:00:00")   // running
        state(0, at: "09:00:00")   // idle 09:00–10:30, the break 10:00–10:20 inside
        state(1, at: "10:30:00")   // running to the shift's end
        try settle()

        // A handover note written in shift A, on the pipeline's clock.
        let body = #"{"text": "Clamp 3 sticks now and then; 夹具 3 偶尔卡滞 <check>"}"#
        XCTAssertEqual(try http.request("POST", "/api/shifts/notes", body: body).status, 401)
        XCTAssertEqual(try http.request("POST", "/api/shifts/notes", body: body, headers: Self.viewer).status, 403)
        XCTAssertEqual(try http.request("POST", "/api/shifts/notes", body: #"{"text": "  "}"#, headers: Self.operatorToken).status, 422)
        XCTAssertEqual(try http.request("POST", "/api/shifts/notes", body: #"{"text": 5}"#, headers: Self.operatorToken).status, 422)
        let long = String(repeating: "x", count: 4001)
        XCTAssertEqual(try http.request("POST", "/api/shifts/notes", body: #"{"text": "\#(long)"}"#, headers: Self.operatorToken).status, 422)
        let created = try http.request("POST", "/api/shifts/notes", body: body, headers: Self.operatorToken)
        XCTAssertEqual(created.status, 201, created.body)
        let note = try XCTUnwrap(created.json)
        XCTAssertEqual(note["date"]?.stringValue, "2026-11-23")
        XCTAssertEqual(note["shift"]?.stringValue, "A")
        XCTAssertEqual(note["user"]?.stringValue, "wang.fang", "the user comes from the token")
        XCTAssertEqual(note["t"]?.stringValue, "2026-11-23T02:30:00.000Z", "the pipeline's clock (10:30 local)")
        XCTAssertEqual(note["text"]?.stringValue, "Clamp 3 sticks now and then; 夹具 3 偶尔卡滞 <check>")

        // The shift is still running: by date and name it is the current shift's document.
        XCTAssertEqual(try http.get("/api/kpis?date=2026-11-23&shift=A").json?["shift"]?["name"]?.stringValue, "A")
        state(1, at: "14:00:05")   // shift B began
        try settle()

        // WELD-01 in shift A: run 06:00–09:00 and 10:30–14:00 = 23,400 s; planned 28,800 − 1,200
        // (the break) = 27,600 s → availability 0.847826 (without the break it would be 0.8125).
        let previous = try http.get("/api/kpis?shift=previous")
        XCTAssertEqual(previous.status, 200, previous.body)
        let document = try XCTUnwrap(previous.json)
        let shift = try XCTUnwrap(document["shift"])
        XCTAssertEqual(shift["name"]?.stringValue, "A")
        XCTAssertEqual(shift["date"]?.stringValue, "2026-11-23")
        XCTAssertEqual(shift["start"]?.stringValue, "2026-11-22T22:00:00.000Z")
        XCTAssertEqual(shift["end"]?.stringValue, "2026-11-23T06:00:00.000Z")
        XCTAssertEqual(shift["countedFrom"]?.stringValue, "2026-11-22T22:00:00.000Z")
        XCTAssertEqual(shift["breaks"], .array([.obj([("start", .string("2026-11-23T02:00:00.000Z")), ("end", .string("2026-11-23T02:20:00.000Z"))])]))
        let weld = try XCTUnwrap(station(document, "WELD-01"))
        XCTAssertEqual(weld["runTimeS"]?.doubleValue, 23_400)
        XCTAssertEqual(weld["plannedTimeS"]?.doubleValue, 27_600)
        XCTAssertEqual(weld["availability"]?.doubleValue, 0.847826)
        // The shape of shift=current: the same members in the same order.
        let current = try XCTUnwrap(http.get("/api/kpis?shift=current").json)
        XCTAssertEqual(current.objectValue?.map(\.0), document.objectValue?.map(\.0))
        XCTAssertEqual(current["shift"]?["name"]?.stringValue, "B")
        XCTAssertEqual(station(current, "WELD-01")?["runTimeS"]?.doubleValue, 5, "shift B from zero: 14:00:00–14:00:05")
        XCTAssertEqual(try http.get("/api/kpis?date=2026-11-23&shift=A").body, previous.body)
        XCTAssertEqual(try http.get("/api/kpis?date=2026-11-23&shift=B").json?["shift"]?["name"]?.stringValue, "B", "the running shift by date")

        // Bad and unknown choices.
        let notFound = try http.get("/api/kpis?date=2026-11-22&shift=A")
        XCTAssertEqual(notFound.status, 404)
        XCTAssertEqual(notFound.json?["error"]?["code"]?.stringValue, "not_found")
        for bad in ["date=2026-13-01&shift=A", "date=2026-11-23&shift=Z", "shift=A", "date=2026-11-23", "shift=yesterday&date=x"] {
            let answer = try http.get("/api/kpis?\(bad)")
            XCTAssertEqual(answer.status, 400, bad)
            XCTAssertEqual(answer.json?["error"]?["code"]?.stringValue, "bad_request", bad)
        }

        // Notes: the one of shift A is the previous shift's now; one more for shift C.
        let inB = try http.request("POST", "/api/shifts/notes", body: #"{"text": "Robot 2 serviced"}"#, headers: Self.operatorToken)
        XCTAssertEqual(inB.json?["shift"]?.stringValue, "B")
        XCTAssertEqual(try http.get("/api/shifts/notes?shift=previous").json?.arrayValue?.compactMap { $0["text"]?.stringValue },
                       ["Clamp 3 sticks now and then; 夹具 3 偶尔卡滞 <check>"])
        XCTAssertEqual(try http.get("/api/shifts/notes?date=2026-11-23&shift=A").json?.arrayValue?.count, 1)
        XCTAssertEqual(try http.get("/api/shifts/notes?shift=current").json?.arrayValue?.compactMap { $0["text"]?.stringValue },
                       ["Robot 2 serviced"])
        XCTAssertEqual(try http.get("/api/shifts/notes").json?.arrayValue?.compactMap { $0["id"]?.intValue }, [2, 1], "newest first")
        XCTAssertEqual(try http.get("/api/shifts/notes?date=2026-11-23&shift=Q").status, 400)

        // Read back after a restart (before any input the newest stored shift is the previous one).
        try await restart()
        let afterRestart = try http.get("/api/kpis?shift=previous")
        XCTAssertEqual(afterRestart.status, 200)
        XCTAssertEqual(afterRestart.body, previous.body)
        XCTAssertEqual(try http.get("/api/kpis?date=2026-11-23&shift=A").body, previous.body)
        XCTAssertEqual(try http.get("/api/shifts/notes?date=2026-11-23&shift=A").json?.arrayValue?.count, 1)

        // The list of past shifts, with the line's figures.
        let list = try XCTUnwrap(http.get("/api/shifts").json?.arrayValue)
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list.first?["date"]?.stringValue, "2026-11-23")
        XCTAssertEqual(list.first?["shift"]?.stringValue, "A")
        XCTAssertEqual(list.first?["line"], document["line"])
        XCTAssertEqual(try http.get("/api/shifts?from=2026-11-23&to=2026-11-23").json?.arrayValue?.count, 1)
        XCTAssertEqual(try http.get("/api/shifts?from=2026-11-24").json?.arrayValue?.count, 0)
        XCTAssertEqual(try http.get("/api/shifts?to=2026-11-22").json?.arrayValue?.count, 0, "dates are plant-local: shift A is of the 23rd")
        XCTAssertEqual(try http.get("/api/shifts?from=2026-11-22T21:59:00Z").json?.arrayValue?.count, 1)
        XCTAssertEqual(try http.get("/api/shifts?from=yesterday").status, 400)
        let (listCSV, listBody) = try Download.body(port: http.port, "/api/shifts?format=csv")
        XCTAssertEqual(listCSV.headers["content-type"], "text/csv; charset=utf-8")
        XCTAssertTrue(listCSV.complete, "streamed to its last chunk")
        let listRows = try Self.pythonCSV(String(decoding: listBody, as: UTF8.self))
        XCTAssertEqual(listRows.count, 2)
        XCTAssertEqual(listRows[1][0...1], ["2026-11-23", "A"])

        // The shift report: JSON (the document with the shift's notes), CSV, HTML; previous by default.
        let report = try XCTUnwrap(http.get("/api/reports/shift").json)
        XCTAssertEqual(report["shift"]?["name"]?.stringValue, "A")
        XCTAssertEqual(report["line"], document["line"])
        XCTAssertEqual(report["notes"]?.arrayValue?.compactMap { $0["user"]?.stringValue }, ["wang.fang"])
        XCTAssertEqual(try http.get("/api/reports/shift?date=2026-11-23&shift=A&format=json").json, report)

        let csv = try http.get("/api/reports/shift?date=2026-11-23&shift=A&format=csv")
        XCTAssertEqual(csv.status, 200)
        XCTAssertEqual(csv.headers["content-type"], "text/csv; charset=utf-8")
        XCTAssertEqual(csv.headers["content-disposition"], "attachment; filename=\"shift-2026-11-23-A.csv\"")
        let rows = try Self.pythonCSV(csv.body)
        let header = try XCTUnwrap(rows.first)
        XCTAssertEqual(header.prefix(5), ["date", "shift", "scope", "id", "name"])
        let stations = document["stations"]?.arrayValue?.count ?? 0
        XCTAssertEqual(rows.count, 2 + stations, "header, the line, every station")
        XCTAssertEqual(rows[1][2...4], ["line", "line", "Body & Assembly Line 1"], "a name with an ampersand, as is")
        let weldRow = try XCTUnwrap(rows.first { $0.count > 3 && $0[3] == "WELD-01" })
        let column = { (name: String) in header.firstIndex(of: name)! }
        XCTAssertEqual(weldRow[column("availability")], "0.847826")
        XCTAssertEqual(weldRow[column("plannedTimeS")], "27600")
        XCTAssertEqual(weldRow[column("runTimeS")], "23400")
        XCTAssertEqual(weldRow[0...1], ["2026-11-23", "A"])
        XCTAssertTrue(rows.allSatisfy { $0.count == header.count }, "every row has every column")

        let html = try http.get("/api/reports/shift?date=2026-11-23&shift=A&format=html")
        XCTAssertEqual(html.status, 200)
        XCTAssertEqual(html.headers["content-type"], "text/html; charset=utf-8")
        XCTAssertTrue(html.headers["content-security-policy"]?.contains("frame-ancestors 'none'") ?? false)
        for part in ["Shift report", "班次报告", "Availability", "可用率", "href=\"/css/report.css\"", "data-station=\"WELD-01\"",
                     "84.8 %", "Clamp 3 sticks now and then; 夹具 3 偶尔卡滞 &lt;check&gt;", "format=csv", "Body &amp; Assembly Line 1",
                     "2026-11-23 10:00–2026-11-23 10:20"] {
            XCTAssertTrue(html.body.contains(part), "the HTML report lacks \(part)")
        }
        XCTAssertFalse(html.body.contains("<check>"), "note text is escaped")
        XCTAssertFalse(html.body.contains("<style"), "no inline style (the page's policy forbids it)")
        let english = try http.get("/api/reports/shift?date=2026-11-23&shift=A&format=html&lang=en").body
        XCTAssertTrue(english.contains("Availability") && !english.contains("可用率"))
        let chinese = try http.get("/api/reports/shift?date=2026-11-23&shift=A&format=html&lang=zh").body
        XCTAssertTrue(chinese.contains("可用率") && !chinese.contains("Availability"))
        XCTAssertEqual(try http.get("/api/reports/shift?format=xml").status, 400)
        XCTAssertEqual(try http.get("/api/reports/shift?format=html&lang=fr").status, 400)
        XCTAssertEqual(try http.get("/api/reports/shift?date=2026-11-20&shift=C").status, 404)
        XCTAssertEqual(try http.get("/api/shifts/notes?shift=previous").json?.arrayValue?.count, 1)
    }

    func testShiftThatEndedWhileTheServerWasStoppedIsStoredFromItsSavedCounters() async throws {
        state(1, at: "06:00:00")
        state(1, at: "08:00:00")      // 7,200 s run counted; the server stops here
        try settle()
        try await restart()
        state(1, at: "14:30:00")      // back in shift B
        state(1, at: "14:30:01")      // (the API's facts follow the pipeline's ticks, from the second input)
        try settle()
        // Up to the shift's end with no state after the stop: run 7,200 s of planned 27,600 s.
        let document = try http.get("/api/kpis?date=2026-11-23&shift=A")
        XCTAssertEqual(document.status, 200, document.body)
        let weld = try XCTUnwrap(station(document.json, "WELD-01"))
        XCTAssertEqual(weld["runTimeS"]?.doubleValue, 7_200)
        XCTAssertEqual(weld["availability"]?.doubleValue, 0.26087)
        XCTAssertEqual(try http.get("/api/shifts").json?.arrayValue?.count, 1)
        XCTAssertEqual(try http.get("/api/kpis").json?["shift"]?["name"]?.stringValue, "B")
    }

    func testNoteWrittenBetweenShiftsIsTheHandoverOfTheShiftThatEnded() async throws {
        // The default plant with shifts A and B only: 22:00–06:00 is off-shift.
        let dir = makeTempDirectory(self, prefix: "two-shifts")
        var plant = try JSON.parse(String(contentsOf: repoRoot.appendingPathComponent("Stations/plant.json"), encoding: .utf8))
        guard case .object(var members) = plant else { return XCTFail("plant.json is not an object") }
        members = members.map { $0.0 == "shifts" ? ($0.0, .array([
            .obj([("name", .string("A")), ("start", .string("06:00")), ("end", .string("14:00"))]),
            .obj([("name", .string("B")), ("start", .string("14:00")), ("end", .string("22:00"))]),
        ])) : $0 }
        plant = .object(members)
        try plant.serialized().write(to: dir.appendingPathComponent("plant.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: repoRoot.appendingPathComponent("Stations/tokens.json"), to: dir.appendingPathComponent("tokens.json"))
        server.shutdown()
        try await task.value
        options.config = dir.appendingPathComponent("plant.json").path
        options.database = dir.appendingPathComponent("mes.sqlite").path
        try start()

        state(1, at: "21:00:00")
        state(1, at: "22:30:00")   // B ended at 22:00: stored; off-shift now
        try settle()
        let note = try http.request("POST", "/api/shifts/notes", body: #"{"text": "Line stopped clean"}"#, headers: Self.operatorToken)
        XCTAssertEqual(note.status, 201, note.body)
        XCTAssertEqual(note.json?["shift"]?.stringValue, "B")
        XCTAssertEqual(note.json?["date"]?.stringValue, "2026-11-23")
        state(1, at: "06:00:30", day: 24)   // shift A of the next day reads it as the previous shift's
        state(1, at: "06:00:31", day: 24)
        try settle()
        XCTAssertEqual(try http.get("/api/kpis").json?["shift"]?["name"]?.stringValue, "A")
        XCTAssertEqual(try http.get("/api/shifts/notes?shift=previous").json?.arrayValue?.compactMap { $0["text"]?.stringValue },
                       ["Line stopped clean"])
        XCTAssertEqual(try http.get("/api/shifts").json?.arrayValue?.compactMap { $0["shift"]?.stringValue }, ["B"], "off-shift is not stored")
    }

    /// Rows of a CSV text as Python's csv module reads them.
    static func pythonCSV(_ text: String) throws -> [[String]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", "import csv, io, json, sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline='')))))"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let rows = try JSON.parse(String(decoding: data, as: UTF8.self)).arrayValue ?? []
        return rows.map { ($0.arrayValue ?? []).map { $0.stringValue ?? "" } }
    }
}
