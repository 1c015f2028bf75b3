import Foundation

/// Where the pipeline reads the time: the wall clock, a recording's clock in replay, or a manual
/// clock in tests.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system's clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that moves only when told (tests, replay).
public final class ManualClock: WallClock {
    private let current: Locked<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 0)) { current = Locked(start) }

    public func now() -> Date { current.value }

    public func set(_ date: Date) { current.set(date) }

    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC), for latency and scheduling.
public enum Monotonic {
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-21T06:00:00.100Z`), the contract's format.
public enum Timestamp {
    /// Formats a date as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func format(_ date: Date) -> String {
        let ms = milliseconds(date)
        guard let fields = Fields(milliseconds: ms) else { return formatWithCalendar(milliseconds: ms) }
        return String(unsafeUninitializedCapacity: Fields.length) { fields.write(into: UnsafeMutableRawBufferPointer($0)) }
    }

    /// Appends `format(date)`'s UTF-8 bytes (the event writers use it: no String in between).
    public static func write(_ date: Date, into out: inout [UInt8]) {
        write(milliseconds: milliseconds(date), into: &out)
    }

    /// Appends the text of the time `ms` milliseconds after 1970 (the CSV writer's times).
    public static func write(milliseconds ms: Int64, into out: inout [UInt8]) {
        guard let fields = Fields(milliseconds: ms) else {
            out.append(contentsOf: formatWithCalendar(milliseconds: ms).utf8)
            return
        }
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &buffer) { raw in
            let count = fields.write(into: raw)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
    }

    /// The fields of a UTC time with a four-digit year, from plain arithmetic on days since 1970
    /// (the civil-from-days algorithm: proleptic Gregorian, as `gmtime_r` counts), so formatting
    /// takes no lock and makes no String per field.
    private struct Fields {
        static let length = 24
        var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millisecond = 0

        init?(milliseconds millisTotal: Int64) {
            var seconds = millisTotal / 1000
            var millis = millisTotal % 1000
            if millis < 0 { millis += 1000; seconds -= 1 }
            var days = seconds / 86_400
            var secondOfDay = seconds % 86_400
            if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
            // Days since 0000-03-01, in 400-year eras of 146,097 days.
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let dayOfEra = z - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let monthIndex = (5 * dayOfYear + 2) / 153
            day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
            month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
            year = Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0)
            guard (0...9999).contains(year) else { return nil }
            hour = Int(secondOfDay / 3600)
            minute = Int(secondOfDay / 60 % 60)
            second = Int(secondOfDay % 60)
            millisecond = Int(millis)
        }

        /// Writes the 24 bytes; returns 24.
        func write(into out: UnsafeMutableRawBufferPointer) -> Int {
            func digits(_ value: Int, _ width: Int, at offset: Int) {
                var value = value
                for i in stride(from: offset + width - 1, through: offset, by: -1) {
                    out[i] = UInt8(truncatingIfNeeded: 48 + value % 10)
                    value /= 10
                }
            }
            digits(year, 4, at: 0); out[4] = 45
            digits(month, 2, at: 5); out[7] = 45
            digits(day, 2, at: 8); out[10] = 84
            digits(hour, 2, at: 11); out[13] = 58
            digits(minute, 2, at: 14); out[16] = 58
            digits(second, 2, at: 17); out[19] = 46
            digits(millisecond, 3, at: 20); out[23] = 90
            return Self.length
        }
    }

    /// Whole milliseconds since 1970 (rounded down, so a time never shows a later millisecond).
    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// `format` for years outside 0…9999, through `gmtime_r` (as it always was).
    static func formatWithCalendar(milliseconds millisTotal: Int64) -> String {
        var seconds = millisTotal / 1000
        var millis = millisTotal % 1000
        if millis < 0 { millis += 1000; seconds -= 1 }
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// Parses RFC 3339 (`Z` or `±HH:MM`, fractional seconds optional). Nil if it is not one.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for i in from..<(from + count) {
                let c = bytes[i]
                guard c >= 48 && c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard let year = number(0, 4), bytes[4] == 45, let month = number(5, 2), bytes[7] == 45,
              let day = number(8, 2), bytes[10] == 84 || bytes[10] == 116 || bytes[10] == 32,
              let hour = number(11, 2), bytes[13] == 58, let minute = number(14, 2), bytes[16] == 58,
              let second = number(17, 2) else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count && bytes[index] == 46 {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            if index == start { return nil }
        }
        guard index < bytes.count else { return nil }
        var offsetSeconds = 0
        switch bytes[index] {
        case 90, 122: // Z z
            index += 1
        case 43, 45: // + -
            guard let oh = number(index + 1, 2), bytes.count > index + 3, bytes[index + 3] == 58,
                  let om = number(index + 4, 2) else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (bytes[index] == 45 ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
