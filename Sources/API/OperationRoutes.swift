import Foundation
import HTTP
import Pipeline
import PlantModel
import Runtime
import Storage

extension APIRoutes {
    /// The query parameters `GET /api/operations` takes; any other name is a 400 (a typo such as
    /// `stn=` would otherwise silently answer every operation).
    static let operationParameters: Set<String> = ["station", "process", "vehicle", "result", "from", "to", "signal", "min", "max",
                                                   "limit", "format", "bom"]

    /// Adds `GET /api/operations` (README "Operations query", docs/openapi.json): completed
    /// operations filtered by station, process, vehicle, result, completion window and one
    /// measurement's range, newest first; JSON or a CSV export.
    public static func addOperations(to router: inout Router, context: APIContext) {
        let config = context.config
        router.on(.get, "/api/operations", options: .offLoop) { request in
            let filter = try operationFilter(request, config: config)
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "operations.csv",
                                           columns: CSVColumns.operations(signals: measurementNames(filter, config: config))) {
                    try context.lists.operationCursor(filter, limit: limit)
                }
            }
            let limit = try limitParameter(request)
            let rows = try readingStorage { try context.lists.operations(filter, limit: limit) }
            var out = [UInt8]()
            out.reserveCapacity(rows.count * 320 + 2)
            out.append(91)
            for (index, row) in rows.enumerated() {
                if index > 0 { out.append(44) }
                row.writeJSON(into: &out)
            }
            out.append(93)
            return .json(out)
        }
    }

    /// The filter of an operations request; 400 naming the parameter for anything malformed.
    static func operationFilter(_ request: HTTPRequest, config: PlantConfig) throws -> OperationFilter {
        for name in request.query.keys where !operationParameters.contains(name) {
            throw HTTPError(400, code: "bad_request",
                            "unknown parameter \(JSON.string(String(name.prefix(64))).serialized()); /api/operations takes \(operationParameters.sorted().joined(separator: ", "))")
        }
        func text(_ name: String) -> String? { request.query[name].flatMap { $0.isEmpty ? nil : $0 } }
        func number(_ name: String) throws -> Double? {
            guard let value = text(name) else { return nil }
            guard let number = Double(value), number.isFinite else {
                throw HTTPError(400, code: "bad_request", "\(name) must be a number such as 11.5, not \(JSON.string(String(value.prefix(64))).serialized())")
            }
            return number
        }
        var filter = OperationFilter()
        if let station = text("station") {
            guard config.station(station) != nil else {
                throw HTTPError(400, code: "bad_request",
                                "station \(JSON.string(String(station.prefix(64))).serialized()) is not a station of the plant (\(config.stations.map(\.id).joined(separator: ", ")))")
            }
            filter.station = station
        }
        if let process = text("process") {
            let processes = config.route + config.stations.map(\.process).filter { !config.route.contains($0) }
            guard processes.contains(process) else {
                throw HTTPError(400, code: "bad_request",
                                "process \(JSON.string(String(process.prefix(64))).serialized()) is not a process of the plant (\(processes.joined(separator: ", ")))")
            }
            filter.process = process
        }
        if let vehicle = text("vehicle") {
            guard vehicle.unicodeScalars.count <= 64 else { throw HTTPError(400, code: "bad_request", "vehicle is longer than 64 characters") }
            filter.vehicle = vehicle
        }
        if let result = text("result") {
            guard let value = OperationResult(rawValue: result) else {
                throw HTTPError(400, code: "bad_request", "result must be ok or nok, not \(JSON.string(String(result.prefix(64))).serialized())")
            }
            filter.result = value
        }
        filter.from = try timeParameter(request, "from")
        filter.to = try timeParameter(request, "to")
        if let from = filter.from, let to = filter.to, from > to {
            throw HTTPError(400, code: "bad_request", "from must not be after to")
        }
        filter.signal = text("signal")
        filter.min = try number("min")
        filter.max = try number("max")
        if filter.signal == nil && (filter.min != nil || filter.max != nil) {
            throw HTTPError(400, code: "bad_request", "min and max bound a measurement: give its name as signal (e.g. signal=weldCurrent&min=11.5)")
        }
        if let min = filter.min, let max = filter.max, min > max {
            throw HTTPError(400, code: "bad_request", "min must not be above max")
        }
        if let signal = filter.signal, signal.unicodeScalars.count > 64 {
            throw HTTPError(400, code: "bad_request", "signal is longer than 64 characters")
        }
        return filter
    }

    /// The measurement columns of an operations export: the measurement signals of the stations
    /// the filter can match (its station, its process's stations, or every station), in config order.
    static func measurementNames(_ filter: OperationFilter, config: PlantConfig) -> [String] {
        var names: [String] = []
        for station in config.stations {
            if let id = filter.station, station.id != id { continue }
            if let process = filter.process, station.process != process { continue }
            for signal in station.signals where signal.role == .measurement && !names.contains(signal.name) {
                names.append(signal.name)
            }
        }
        return names
    }
}

/// The column lists of the CSV exports (README "Exports (CSV)"): the JSON list's members in
/// the same order; nested values flattened (arrays joined with `;`, an owner's assignment as
/// its own columns, an operation's measurements one column each).
enum CSVColumns {
    static let assignment = ["owner", "dueAt", "overdue", "escalation", "escalatedTo"]
    static let vehicles = CSVColumn.members(["vehicleId", "status", "currentStation", "firstSeenAt", "lastSeenAt"])
    static let defects = CSVColumn.members(["id", "vehicleId", "station", "operation", "code", "description", "severity", "status",
                                            "raisedAt", "raisedBy", "resolvedAt", "resolvedBy", "comment"] + assignment)
    static let alerts = CSVColumn.members(["id", "key", "type", "severity", "state", "station", "signal", "vehicleId", "message",
                                           "raisedAt", "acknowledgedAt", "acknowledgedBy", "comment", "clearedAt", "shelvedUntil",
                                           "escalationLevel"] + assignment)
    static let orders = CSVColumn.members(["orderId", "model", "options", "customer", "dueDate", "plannedDate", "plannedShift",
                                           "sequence", "status", "vehicleId", "createdAt", "releasedAt", "startedAt", "completedAt",
                                           "cancelledAt", "cancelReason"])
    static let andon = CSVColumn.members(["id", "station", "kind", "source", "state", "openedAt", "openedBy", "comment",
                                          "acknowledgedAt", "acknowledgedBy", "closedAt", "closedBy", "responseS", "alertId"])
    /// Downtime stretches: the reason object as its own columns.
    static let downtime = CSVColumn.members(["id", "station", "state", "faultCode", "start", "end", "durationS", "reason.code",
                                             "reason.text", "reason.textZh", "reason.category", "reason.planned", "reasonBy", "comment"])
    static let notifications = CSVColumn.members(["id", "to", "channel", "kind", "subject", "createdAt", "attempts", "lastError",
                                                  "sentAt", "status"])

    /// Operations: the JSON members, with `measurements` as one column per signal
    /// (`measurements.weldCurrent`, empty where the operation has no such value), then
    /// `otherMeasurements` (`name=value` pairs joined with `;`, for names not among those columns),
    /// and `lots` joined with `;`. Rows are the query's statement (``OperationQuery/row(_:)``'s
    /// columns), read without making strings.
    static func operations(signals: [String]) -> [CSVColumn<Statement>] {
        let names = signals.map { Array($0.utf8) }
        func text(_ header: String, _ column: Int32) -> CSVColumn<Statement> {
            CSVColumn(header) { row, out in
                if row.withUTF8(column, { out.text(utf8: $0) }) == nil { out.empty() }
            }
        }
        func time(_ header: String, _ column: Int32) -> CSVColumn<Statement> {
            CSVColumn(header) { row, out in out.time(ms: row.isNull(column) ? nil : row.int64(column)) }
        }
        return [
            text("id", 0), text("vehicleId", 1), text("station", 2), text("process", 3),
            time("startedAt", 4), time("completedAt", 5), text("result", 6),
            CSVColumn(headers: signals.map { "measurements.\($0)" } + ["otherMeasurements"]) { row, out in
                if row.withUTF8(7, { MeasurementFields.write($0, names: names, into: &out) }) == nil {
                    MeasurementFields.write(UnsafeRawBufferPointer(start: nil, count: 0), names: names, into: &out)
                }
            },
            CSVColumn("lots") { row, out in
                if row.withUTF8(8, { MeasurementFields.writeLots($0, into: &out) }) == nil { out.empty() }
            },
            text("operator", 9),
            CSVColumn("attempt") { row, out in out.number(row.int64(10)) },
            CSVColumn("energyKWh") { row, out in if row.isNull(11) { out.empty() } else { out.number(row.double(11)) } },
        ]
    }
}

/// Writes an operation's stored measurement and lot JSON as CSV fields without building JSON
/// values: the stored texts are flat (`{"name":number,…}`, `["lot",…]`, as the genealogy writes
/// them), so a byte scan finds each pair; anything unusual (an escaped name) goes through the JSON parser.
enum MeasurementFields {
    /// One field per name (the number's stored text, or empty), then the other pairs as `name=value;…`.
    static func write(_ bytes: UnsafeRawBufferPointer, names: [[UInt8]], into out: inout CSVWriter) {
        guard bytes.count > 0 else {
            for _ in names { out.empty() }
            return out.empty()
        }
        guard let pairs = scan(bytes) else {
            // Fallback: parse (keys with escapes, or a text this scanner does not know).
            let members = (try? JSON.parse(bytes: bytes))?.objectValue ?? []
            for name in names {
                let key = String(decoding: name, as: UTF8.self)
                out.json(members.last(where: { $0.0 == key })?.1)
            }
            let other = members.filter { member in !names.contains(where: { $0.elementsEqual(member.0.utf8) }) }
                .map { "\($0.0)=\($0.1.serialized())" }
            return out.text(other.isEmpty ? nil : other.joined(separator: ";"))
        }
        func equal(_ range: Range<Int>, _ name: [UInt8]) -> Bool {
            guard range.count == name.count else { return false }
            return name.withUnsafeBytes { memcmp(bytes.baseAddress! + range.lowerBound, $0.baseAddress!, name.count) == 0 }
        }
        var used = 0
        for name in names {
            var found: Range<Int>?
            for pair in pairs where equal(pair.key, name) {
                found = pair.value
                used += 1
                break
            }
            if let value = found, !(value.count == 4 && bytes[value.lowerBound] == 110) {
                out.raw(UnsafeRawBufferPointer(rebasing: bytes[value]))
            } else {
                out.empty()
            }
        }
        guard used < pairs.count else { return out.empty() }
        var other: [String] = []
        for pair in pairs where !names.contains(where: { equal(pair.key, $0) }) {
            other.append(String(decoding: bytes[pair.key], as: UTF8.self) + "=" + String(decoding: bytes[pair.value], as: UTF8.self))
        }
        out.text(other.joined(separator: ";"))
    }

    /// `["a","b"]` → `a;b` (empty for `[]`).
    static func writeLots(_ bytes: UnsafeRawBufferPointer, into out: inout CSVWriter) {
        if bytes.count <= 2 { return out.empty() }
        // Plain strings (no escape): the items are the quoted runs, joined with `;`.
        guard memchr(bytes.baseAddress!, 92, bytes.count) == nil else {
            return out.json(try? JSON.parse(bytes: bytes))
        }
        var joined = [UInt8]()
        joined.reserveCapacity(bytes.count)
        var inString = false
        for byte in bytes {
            if byte == 34 {
                if inString { joined.append(59) }
                inString.toggle()
            } else if inString {
                joined.append(byte)
            }
        }
        if !joined.isEmpty { joined.removeLast() }
        joined.withUnsafeBytes { out.text(utf8: $0) }
    }

    /// Byte ranges of a name and its value in the scanned text.
    typealias Pair = (key: Range<Int>, value: Range<Int>)

    /// The pairs of a flat object of numbers (or null) with plain keys; nil for anything else.
    static func scan(_ b: UnsafeRawBufferPointer) -> [Pair]? {
        var pairs: [Pair] = []
        pairs.reserveCapacity(8)
        var i = 0
        let n = b.count
        func skipSpace() { while i < n, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 } }
        skipSpace()
        guard i < n, b[i] == 123 else { return nil }
        i += 1
        skipSpace()
        if i < n, b[i] == 125 { return pairs }
        while i < n {
            skipSpace()
            guard i < n, b[i] == 34 else { return nil }
            i += 1
            let keyStart = i
            while i < n, b[i] != 34 {
                if b[i] == 92 { return nil }
                i += 1
            }
            guard i < n else { return nil }
            let key = keyStart..<i
            i += 1
            skipSpace()
            guard i < n, b[i] == 58 else { return nil }
            i += 1
            skipSpace()
            let valueStart = i
            while i < n, b[i] != 44, b[i] != 125, b[i] != 32 {
                let c = b[i]
                // Digits, sign, point, exponent, or the letters of null.
                guard (c >= 48 && c <= 57) || c == 45 || c == 43 || c == 46 || c == 101 || c == 69 || c == 110 || c == 117 || c == 108 else { return nil }
                i += 1
            }
            guard i > valueStart else { return nil }
            pairs.append((key, valueStart..<i))
            skipSpace()
            guard i < n else { return nil }
            if b[i] == 44 { i += 1; continue }
            if b[i] == 125 { return pairs }
            return nil
        }
        return nil
    }
}
