import Foundation
import HTTP
import Pipeline
import PlantModel
import PlantStore
import Quality
import Runtime

extension APIRoutes {
    /// The KPI document of `GET /api/kpis` (an ended shift is stored in this shape).
    public static func kpiDocument(_ kpis: PlantKPIs) -> JSON { KPIJSON.document(kpis) }

    /// What `GET /api/kpis` answers for `shift=previous` or `date=&shift=` (README "Shift calendar
    /// and shift history"): the stored shift, read off the loop; nil for the current shift.
    public static func storedKPIs(config: PlantConfig, backend: any ShiftBackend, queries: any ShiftQueries)
        -> @Sendable (HTTPRequest) throws -> HTTPReply? {
        { request in
            let choice = try ShiftChoice.parse(request, config: config, backend: backend, defaultPrevious: false)
            guard choice != .current else { return nil }
            return .deferred(DeferredWork(lane: .read) {
                .response(.json(Array(try choice.stored(queries: queries, backend: backend).document.utf8)))
            })
        }
    }

    /// Adds shift history, the shift report and handover notes (README "Shift calendar and shift
    /// history", docs/openapi.json).
    public static func addShifts(to router: inout Router, context: APIContext, backend: any PlantBackend,
                                 shifts: any ShiftBackend, queries: any ShiftQueries, auth: AuthPolicy) {
        let config = context.config

        @Sendable func read<T>(_ body: () throws -> T) throws -> T { try readingStorage(body) }

        router.on(.get, "/api/shifts", options: .offLoop) { request in
            let from = try dayOrTime(request, "from", config: config, endOfDay: false)
            let to = try dayOrTime(request, "to", config: config, endOfDay: true)
            if try CSVExport.requested(request) {
                // Streamed like every list export (README "Exports (CSV)").
                let limit = try CSVExport.limit(request)
                let log = context.eventLog
                return try CSVExport.reply(request, filename: "shifts.csv", columns: ShiftCSV.listColumns) {
                    try log.rows(ShiftStore.shiftsQuery(from: from, to: to, limit: limit), row: ShiftStore.stored).map { shiftSummary($0) }
                }
            }
            let limit = try limitParameter(request)
            let list = try read { try queries.shifts(from: from, to: to, limit: limit) }
            return .response(.json(.array(list.map(shiftSummary))))
        }

        router.on(.get, "/api/shifts/notes", options: .offLoop) { request in
            var date: String?, name: String?
            // No such shift (none running, none stored): an empty list, or a CSV of the header alone.
            var none = false
            if !(request.query["date"] ?? "").isEmpty || !(request.query["shift"] ?? "").isEmpty {
                switch try ShiftChoice.parse(request, config: config, backend: shifts, defaultPrevious: false) {
                case .current:
                    if let window = shifts.currentShift() { (date, name) = (window.date, window.name) } else { none = true }
                case .previous:
                    if let stored = try read({ try queries.latestShift(endingBy: shifts.currentShift()?.start) }) {
                        (date, name) = (stored.date, stored.shift)
                    } else {
                        none = true
                    }
                case let .named(d, n):
                    (date, name) = (d, n)
                }
            }
            if try CSVExport.requested(request) {
                let limit = none ? 0 : try CSVExport.limit(request)
                let log = context.eventLog, date = date, name = name
                return try CSVExport.reply(request, filename: "shift-notes.csv", columns: CSVColumn.members(["id", "date", "shift", "user", "text", "t"])) {
                    try log.rows(ShiftStore.notesQuery(date: date, shift: name, limit: limit), row: ShiftStore.note).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            if none { return .response(.json(.array([]))) }
            let notes = try read { try queries.notes(date: date, shift: name, limit: limit) }
            return .response(.json(.array(notes.map(\.json))))
        }

        router.post("/api/shifts/notes", options: RouteOptions(lane: .command, precheck: {
            _ = try actingPrincipal($0, .operator, auth: auth, backend: backend)
        })) { request in
            let user = try actingPrincipal(request, .operator, auth: auth, backend: backend)
            let body = try jsonBody(request)
            guard let value = body["text"], !value.isNull else { throw HTTPError(422, code: "unprocessable", "text is required") }
            guard let text = value.stringValue else { throw HTTPError(422, code: "unprocessable", "text must be a string") }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw HTTPError(422, code: "unprocessable", "text must not be empty") }
            guard trimmed.unicodeScalars.count <= maxNoteLength else {
                throw HTTPError(422, code: "unprocessable", "text is longer than \(maxNoteLength) characters (Unicode scalars)")
            }
            let note: ShiftNote
            do {
                note = try shifts.addShiftNote(text: trimmed, by: user)
            } catch {
                throw HTTPError.command(error)
            }
            return .json(note.json, status: 201)
        }

        router.get("/api/reports/shift", options: .offLoop) { request in
            let format = try formatParameter(request, allowed: ["json", "csv", "html"])
            let lang = request.query["lang"].flatMap { $0.isEmpty ? nil : $0 } ?? "both"
            guard ["en", "zh", "both"].contains(lang) else {
                throw HTTPError(400, code: "bad_request", "lang must be en, zh or both, not \"\(lang.prefix(40))\"")
            }
            let choice = try ShiftChoice.parse(request, config: config, backend: shifts, defaultPrevious: true)
            let document: JSON
            if choice == .current {
                document = KPIJSON.document(backend.kpis())
            } else {
                let stored = try read { try choice.stored(queries: queries, backend: shifts) }
                document = try read { try JSON.parse(stored.document) }
            }
            let shift = document["shift"]
            let date = shift?["date"]?.stringValue ?? ""
            let name = shift?["name"]?.stringValue ?? ""
            let notes = try read { try queries.notes(date: date, shift: name, limit: 1000) }.reversed()
            let filename = "shift-\(date)-\(name)"
            switch format {
            case "csv":
                return csvResponse(ShiftCSV.report(document, config: config), filename: filename + ".csv")
            case "html":
                var response = HTTPResponse.text(ShiftReportHTML.page(document, notes: Array(notes), config: config, lang: lang,
                                                                         inProgress: choice == .current),
                                                 contentType: "text/html; charset=utf-8")
                for (header, value) in StaticFiles.pageHeaders { response.headers.set(header, value) }
                response.headers.set("Cache-Control", "no-cache")
                return response
            default:
                guard case .object(var members) = document else { return .json(document) }
                members.append(("notes", .array(notes.map(\.json))))
                return .json(.object(members))
            }
        }
    }

    /// The configured shifts for `/api/meta`: `[{name, start, end, breaks: [{start, end}]}]` (`HH:MM`, plant time).
    static func shiftCalendar(_ config: PlantConfig) -> JSON {
        .array(config.shifts.map { shift in
            .obj([("name", .string(shift.name)), ("start", .string(Shift.clock(shift.startMinute))),
                  ("end", .string(Shift.clock(shift.endMinute))),
                  ("breaks", .array(shift.breaks.map { .obj([("start", .string(Shift.clock($0.startMinute))), ("end", .string(Shift.clock($0.endMinute)))]) }))])
        })
    }

    /// The longest handover note, in Unicode scalars.
    public static let maxNoteLength = 4000

    /// A stored shift in `GET /api/shifts`: `{date, shift, start, end, countedFrom, breaks, line}`.
    static func shiftSummary(_ stored: StoredShift) -> JSON {
        let document = (try? JSON.parse(stored.document)) ?? .null
        let shift = document["shift"]
        return .obj([
            ("date", .string(stored.date)),
            ("shift", .string(stored.shift)),
            ("start", .string(Timestamp.format(stored.start))),
            ("end", .string(Timestamp.format(stored.end))),
            ("countedFrom", shift?["countedFrom"] ?? .null),
            ("breaks", shift?["breaks"] ?? .array([])),
            ("line", document["line"] ?? .null),
        ])
    }

    /// `format`: json (default) or one of `allowed`; 400 for anything else.
    static func formatParameter(_ request: HTTPRequest, allowed: [String]) throws -> String {
        guard let text = request.query["format"], !text.isEmpty else { return "json" }
        guard allowed.contains(text) else {
            throw HTTPError(400, code: "bad_request", "format must be \(allowed.joined(separator: ", ")), not \"\(text.prefix(40))\"")
        }
        return text
    }

    /// `from`/`to` as a plant-local date (`YYYY-MM-DD`: its midnight, or the next midnight for `to`,
    /// so the date is included) or an RFC 3339 time; 400 for anything else.
    static func dayOrTime(_ request: HTTPRequest, _ name: String, config: PlantConfig, endOfDay: Bool) throws -> Date? {
        guard let text = request.query[name], !text.isEmpty else { return nil }
        if text.utf8.count == 10, let midnight = config.localMidnight(text) {
            guard endOfDay else { return midnight }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = config.timezone
            return calendar.date(byAdding: .day, value: 1, to: midnight)
        }
        guard let time = Timestamp.parse(text) else {
            throw HTTPError(400, code: "bad_request", "\(name) must be a date YYYY-MM-DD or an RFC 3339 time, not \"\(text.prefix(40))\"")
        }
        return time
    }

    static func csvResponse(_ text: String, filename: String) -> HTTPResponse {
        var response = HTTPResponse.text(text, contentType: "text/csv; charset=utf-8")
        response.headers.set("Content-Disposition", "attachment; filename=\"\(filename)\"")
        return response
    }
}

extension KPIJSON {
    /// `shift` of the KPI document: `{name, start, end, date, breaks, countedFrom}`.
    static func shift(_ kpis: ShiftKPIs, _ window: ShiftWindow) -> JSON {
        guard case .object(var members) = window.json else { return window.json }
        members.append(("countedFrom", kpis.countedFrom.map { .string(Timestamp.format($0)) } ?? .null))
        return .object(members)
    }
}

extension HTTPReply {
    /// A JSON answer from a ``JSON`` value.
    static func json(_ value: JSON, status: Int = 200) -> HTTPReply { .response(.json(value, status: status)) }
}

/// Which shift a request names (`shift`, `date`): the current one, the previous one, or one of a date.
enum ShiftChoice: Equatable {
    case current
    case previous
    case named(date: String, name: String)

    /// `shift=current|previous`, or `date=YYYY-MM-DD&shift=NAME`; with neither, the current (or
    /// the previous with `defaultPrevious`). A date and name of the running shift are `current`.
    static func parse(_ request: HTTPRequest, config: PlantConfig, backend: any ShiftBackend, defaultPrevious: Bool) throws -> ShiftChoice {
        let date = request.query["date"].flatMap { $0.isEmpty ? nil : $0 }
        let shift = request.query["shift"].flatMap { $0.isEmpty ? nil : $0 }
        guard date != nil || (shift != nil && shift != "current" && shift != "previous") else {
            switch shift {
            case "current": return .current
            case "previous": return .previous
            default: return defaultPrevious ? .previous : .current
            }
        }
        let named = try Self.named(date: date, name: shift, config: config)
        if let now = backend.currentShift(), now.date == named.date, now.name == named.name { return .current }
        return .named(date: named.date, name: named.name)
    }

    /// Checks a date and shift name: 400 when either is missing or not known.
    static func named(date: String?, name: String?, config: PlantConfig) throws -> (date: String, name: String) {
        let names = config.shifts.isEmpty ? ["day"] : config.shifts.map(\.name)
        guard let date else {
            throw HTTPError(400, code: "bad_request", "date (YYYY-MM-DD) is required with shift \"\(name?.prefix(40) ?? "")\"; or use shift=current or shift=previous")
        }
        guard config.localMidnight(date) != nil else {
            throw HTTPError(400, code: "bad_request", "date must be a calendar date YYYY-MM-DD, not \"\(date.prefix(40))\"")
        }
        guard let name, name != "current", name != "previous" else {
            throw HTTPError(400, code: "bad_request", "shift is required with date: one of \(names.joined(separator: ", "))")
        }
        guard names.contains(name) else {
            throw HTTPError(400, code: "bad_request", "no shift \"\(name.prefix(40))\": the shifts are \(names.joined(separator: ", "))")
        }
        return (date, name)
    }

    /// The stored shift this choice names; 404 when none is stored.
    func stored(queries: any ShiftQueries, backend: any ShiftBackend) throws -> StoredShift {
        switch self {
        case .current:
            throw HTTPError(404, code: "not_found", "the current shift has not ended")
        case .previous:
            guard let found = try readingStorage({ try queries.latestShift(endingBy: backend.currentShift()?.start) }) else {
                throw HTTPError(404, code: "not_found", "no shift has ended yet (shift KPIs are stored at each shift's end)")
            }
            return found
        case let .named(date, name):
            guard let found = try readingStorage({ try queries.shift(date: date, name: name) }) else {
                throw HTTPError(404, code: "not_found", "no stored KPIs for shift \(name) of \(date) (not ended yet, or the server did not run then)")
            }
            return found
        }
    }
}
