import Foundation

/// Writes CSV as RFC 4180 describes it, into a byte buffer: fields separated by commas, records
/// ended by CRLF, a field quoted (`"…"`, a quote inside doubled) when it holds a comma, a quote,
/// CR or LF; text stays UTF-8 as it is (README "Exports (CSV)").
///
/// Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, TAB or CR as a formula, so a text
/// field (never a number) starting with one of them gets a leading `'` (what OWASP advises
/// against CSV injection): a defect description `=HYPERLINK(…)` stays text in Excel or WPS.
///
/// Build records with the `field`/`text`/`number` calls and ``endRecord()``; take the bytes from
/// ``bytes`` (or hand them on with ``take()``). Not thread-safe; a value type.
public struct CSVWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var fieldsInRecord = 0

    public init(capacity: Int = 0) {
        if capacity > 0 { bytes.reserveCapacity(capacity) }
    }

    /// Writes into `buffer`'s storage (emptied first, its capacity kept).
    public init(buffer: [UInt8]) {
        bytes = buffer
        bytes.removeAll(keepingCapacity: true)
    }

    /// The UTF-8 byte order mark (EF BB BF), for spreadsheets that guess a file's encoding; only
    /// at the very start.
    public mutating func byteOrderMark() { bytes += [0xEF, 0xBB, 0xBF] }

    /// The bytes written so far, leaving the writer empty (and keeping its capacity).
    public mutating func take() -> [UInt8] {
        let out = bytes
        bytes.removeAll(keepingCapacity: true)
        return out
    }

    public var count: Int { bytes.count }

    private mutating func separate() {
        if fieldsInRecord > 0 { bytes.append(44) }
        fieldsInRecord += 1
    }

    /// Ends the current record (CRLF).
    public mutating func endRecord() {
        bytes.append(13)
        bytes.append(10)
        fieldsInRecord = 0
    }

    /// A header or data record of text fields.
    public mutating func record(_ fields: [String]) {
        for field in fields { text(field) }
        endRecord()
    }

    /// An empty field (a null).
    public mutating func empty() { separate() }

    /// A text field; nil writes an empty field.
    public mutating func text(_ value: String?) {
        guard var value else { return empty() }
        value.withUTF8 { text(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// A text field from UTF-8 bytes (quoted when needed, formula-guarded).
    public mutating func text(utf8 field: UnsafeRawBufferPointer) {
        separate()
        guard let first = field.first else { return }
        let guardFormula = first == 61 || first == 43 || first == 45 || first == 64 || first == 9 || first == 13
        let base = field.baseAddress!
        // memchr per special byte: C speed even in a debug build.
        let needsQuotes = memchr(base, 44, field.count) != nil || memchr(base, 34, field.count) != nil
            || memchr(base, 10, field.count) != nil || memchr(base, 13, field.count) != nil
        if !needsQuotes {
            if guardFormula { bytes.append(39) }
            bytes.append(contentsOf: field)
            return
        }
        bytes.append(34)
        if guardFormula { bytes.append(39) }
        for byte in field {
            if byte == 34 { bytes.append(34) }
            bytes.append(byte)
        }
        bytes.append(34)
    }

    /// An integer field.
    public mutating func number(_ value: Int64?) {
        separate()
        guard let value else { return }
        appendInteger(value)
    }

    /// A number field as JSON writes it (an integral value without a fraction; NaN and infinity empty).
    public mutating func number(_ value: Double?) {
        separate()
        guard let value, value.isFinite else { return }
        if value.rounded() == value && abs(value) < 1e15 {
            appendInteger(Int64(value))
        } else {
            bytes.append(contentsOf: "\(value)".utf8)
        }
    }

    /// A field whose bytes are known not to need quoting (a number as stored, an ASCII token):
    /// written as they are.
    public mutating func raw(_ field: UnsafeRawBufferPointer) {
        separate()
        bytes.append(contentsOf: field)
    }

    /// `true` or `false`; nil empty.
    public mutating func bool(_ value: Bool?) {
        separate()
        guard let value else { return }
        bytes.append(contentsOf: value ? [116, 114, 117, 101] : [102, 97, 108, 115, 101])
    }

    /// A time as RFC 3339 UTC with milliseconds (`2026-11-21T06:00:00.100Z`), from milliseconds since 1970;
    /// nil empty. The same text as ``Timestamp/format(_:)`` gives.
    public mutating func time(ms: Int64?) {
        separate()
        guard let ms else { return }
        Timestamp.write(milliseconds: ms, into: &bytes)
    }

    /// A JSON value flattened into one field: a string as text, a number, `true`/`false`, null
    /// empty, an array of scalars joined with `;`, anything else as compact JSON text.
    public mutating func json(_ value: JSON?) {
        switch value {
        case nil, .null?: empty()
        case .bool(let b)?: bool(b)
        case .int(let i)?: number(i)
        case .double(let d)?: number(d)
        case .string(let s)?: text(s)
        case .array(let items)? where items.allSatisfy({ if case .array = $0 { return false }; if case .object = $0 { return false }; return true }):
            text(items.map { item -> String in
                switch item {
                case .string(let s): s
                case .null: ""
                default: item.serialized()
                }
            }.joined(separator: ";"))
        case let other?: text(other.serialized())
        }
    }

    private mutating func appendInteger(_ value: Int64) {
        if value >= 0 && value < 10 {
            bytes.append(48 + UInt8(value))
            return
        }
        bytes.append(contentsOf: String(value).utf8)
    }
}
