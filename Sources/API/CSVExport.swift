import Foundation
import HTTP
import Runtime
import Storage

/// One column of a CSV export (or a group of columns written together): its header(s) and how a
/// row writes its field(s), exactly one per header.
public struct CSVColumn<Row>: Sendable {
    public let headers: [String]
    public let write: @Sendable (Row, inout CSVWriter) -> Void

    public init(_ header: String, _ write: @escaping @Sendable (Row, inout CSVWriter) -> Void) {
        self.headers = [header]
        self.write = write
    }

    /// Several fields written by one closure (e.g. one column per measurement, parsed once a row).
    public init(headers: [String], _ write: @escaping @Sendable (Row, inout CSVWriter) -> Void) {
        self.headers = headers
        self.write = write
    }
}

extension CSVColumn where Row == JSON {
    /// A member of a JSON object row, flattened by ``CSVWriter/json(_:)`` (missing or null: empty;
    /// an array of scalars: items joined with `;`).
    public static func member(_ key: String) -> CSVColumn<JSON> {
        // `reason.code`: a member of a nested object, its header the dotted path.
        let path = key.split(separator: ".").map(String.init)
        if path.count > 1 {
            return CSVColumn(key) { row, out in
                var value: JSON? = row
                for name in path { value = value?[name] }
                out.json(value)
            }
        }
        return CSVColumn(key) { row, out in out.json(row[key]) }
    }

    /// One column per member name, in this order: the usual column list of an export whose rows
    /// are the list's JSON objects.
    public static func members(_ keys: [String]) -> [CSVColumn<JSON>] { keys.map(member) }
}

/// CSV exports of list endpoints (README "Exports (CSV)"): `?format=csv` answers the same rows
/// as the JSON list, as `text/csv; charset=utf-8` with a header record, streamed from the
/// database while the client reads (``StreamedResponse``), so memory stays flat for a million rows.
///
/// A list route adds CSV in a few lines (docs/ARCHITECTURE.md, "Where a new feature goes"):
/// ```swift
/// if try CSVExport.requested(request) {
///     let limit = try CSVExport.limit(request)
///     return try CSVExport.reply(request, filename: "parts.csv", columns: CSVColumn.members(["serial", "vehicleId"])) {
///         try context.eventLog.rows(PartStore.bindingsQuery(serial: serial, limit: limit)) { PartStore.binding($0).json }
///     }
/// }
/// ```
public enum CSVExport {
    /// The largest `limit` of an export.
    public static let maxRows = 1_000_000
    /// Exports running at once (each holds a database connection and a read snapshot); one more answers 503.
    public static let maxConcurrent = 4

    private static let running = Locked(0)

    /// Whether the request asks for CSV (`format=csv`); `format=json` or none is JSON; any other → 400.
    public static func requested(_ request: HTTPRequest) throws -> Bool {
        guard let format = request.query["format"], !format.isEmpty else { return false }
        switch format.lowercased() {
        case "csv": return true
        case "json": return false
        default: throw HTTPError(400, code: "bad_request", "format must be json or csv, not \(JSON.string(String(format.prefix(100))).serialized())")
        }
    }

    /// The `limit` of an export: default 100 as for the JSON list, at most 1,000,000; else 400.
    public static func limit(_ request: HTTPRequest, default value: Int = 100) throws -> Int {
        guard let text = request.query["limit"], !text.isEmpty else { return value }
        guard let limit = Int(text), limit >= 1, limit <= maxRows else {
            throw HTTPError(400, code: "bad_request", "limit of a CSV export must be a whole number from 1 to 1000000, not \(JSON.string(String(text.prefix(100))).serialized())")
        }
        return limit
    }

    /// The streamed answer: `open` makes the row source (on the calling worker thread, so a
    /// storage error is still a 503 before anything is sent), `columns` say what each record holds.
    /// `?bom=true` starts the body with a UTF-8 byte order mark, for spreadsheets that guess the encoding.
    /// More than ``maxConcurrent`` exports at once → 503 with `Retry-After`.
    public static func reply<Row>(_ request: HTTPRequest, filename: String, columns: [CSVColumn<Row>],
                                  open: () throws -> RowStream<Row>) throws -> HTTPReply {
        let bom = ["1", "true", "yes"].contains(request.query["bom"]?.lowercased() ?? "")
        let admitted = running.withLock { count -> Bool in
            guard count < maxConcurrent else { return false }
            count += 1
            return true
        }
        guard admitted else {
            throw HTTPError(503, code: "unavailable", "\(maxConcurrent) exports are running; retry later", headers: ["Retry-After": "5"])
        }
        let rows: RowStream<Row>
        do {
            rows = try readingStorage(open)
        } catch {
            running.withLock { $0 -= 1 }
            throw error
        }
        let producer = CSVProducer(rows: rows, columns: columns, bom: bom) { running.withLock { $0 -= 1 } }
        return .streamed(StreamedResponse(headers: [
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": "attachment; filename=\"\(filename)\"",
            "Cache-Control": "no-store",
        ], producer: producer))
    }

    /// Exports running now (for tests and `/metrics`).
    public static var runningCount: Int { running.value }
}

/// Rows to CSV, a piece at a time (``BodyProducer``).
// @unchecked Sendable: `produce` and `close` are called by one thread at a time (BodyProducer's rule); `closed` is guarded by that too.
final class CSVProducer<Row>: BodyProducer, @unchecked Sendable {
    private let rows: RowStream<Row>
    private let columns: [CSVColumn<Row>]
    private let bom: Bool
    private let onClose: @Sendable () -> Void
    private var started = false
    private var closed = false

    init(rows: RowStream<Row>, columns: [CSVColumn<Row>], bom: Bool, onClose: @escaping @Sendable () -> Void) {
        self.rows = rows
        self.columns = columns
        self.bom = bom
        self.onClose = onClose
    }

    func produce(into out: inout [UInt8]) throws -> Bool {
        var writer = CSVWriter(buffer: out)
        defer { out = writer.bytes }
        if !started {
            started = true
            if bom { writer.byteOrderMark() }
            writer.record(columns.flatMap(\.headers))
        }
        while writer.count < StreamedResponse.pieceBytes {
            guard let row = try rows.next() else { return false }
            for column in columns { column.write(row, &writer) }
            writer.endRecord()
        }
        return true
    }

    /// An answer dropped before it was sent (the client left while the cursor opened) is closed here.
    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        rows.close()
        onClose()
    }
}
