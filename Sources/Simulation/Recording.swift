import Foundation
import PlantModel
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// What a ``RecordingWriter`` writes for each poll.
public enum RecordingMode: Sendable, Equatable {
    /// Every signal of every poll (large: about 80 bytes × signals × polls).
    case everyPoll
    /// Only signals whose value changed since the station's last written line, plus every signal
    /// of a station at its first poll, after it was offline, and every `keyframeIntervalS`
    /// seconds (so a reader can start anywhere and a quiet station still shows it is polled).
    case changes(keyframeIntervalS: Double)

    /// Changes with a keyframe every 10 s: the default.
    public static let `default` = RecordingMode.changes(keyframeIntervalS: 10)
}

/// A problem in a recording: the line (1-based; 0 for the file itself) and the reason.
///
/// Its description is the line the server prints: `line 12: "t" is not an RFC 3339 time`.
public struct RecordingError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line > 0 ? "line \(line): \(reason)" : "\(file): \(reason)" }
}

/// Writes samples as JSON Lines (Stations/README-stations.md "Recordings"), one compact object per line:
/// `{"t":"2026-11-22T22:00:00.100Z","station":"WELD-01","signal":"weldCurrent","value":10.21}`.
///
/// Values are written as given (polls carry values after `scale`/`offset`; state, result and
/// fault codes raw; strings as strings; an empty `vehicleId` is no vehicle); whole-number
/// doubles keep a `.0` so they read back as doubles. Only `good`
/// readings are written. Lines go out in the order they are given, through a 256 KiB buffer;
/// call ``close()`` (or ``flush()``) to get them on disk. Thread-safe (one lock around the file).
public final class RecordingWriter: Sendable {
    public let path: String
    public let mode: RecordingMode
    private let output: Locked<Output>

    /// The file, its buffer and what was last written: everything the writer changes.
    fileprivate struct Output {
        let path: String
        let capacity: Int
        var fd: Int32
        var buffer: [UInt8] = []
        var last: [String: [String: SignalValue]] = [:]
        var lastKeyframe: [String: Date] = [:]
        var cachedTime: Date?
        var cachedTimeText: [UInt8] = []
        var samples: UInt64 = 0
        var bytes: UInt64 = 0
    }

    /// Creates (or truncates) the file; missing parent folders are created.
    /// - Throws: `SystemError` if the file cannot be created.
    public init(path: String, mode: RecordingMode = .default, bufferBytes: Int = 256 * 1024) throws {
        self.path = path
        self.mode = mode
        let capacity = max(4096, bufferBytes)
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SystemError(call: "open", errno: errno, context: "recording \(path)") }
        var output = Output(path: path, capacity: capacity, fd: fd)
        output.buffer.reserveCapacity(capacity + 1024)
        self.output = Locked(output)
    }

    deinit {
        output.withLock { output in
            if output.fd >= 0 {
                _ = try? output.flush()
                Glibc.close(output.fd)
            }
        }
    }

    /// Samples (lines) written so far.
    public var samplesWritten: UInt64 { output.withLock { $0.samples } }

    /// Bytes written so far (including the buffered ones).
    public var bytesWritten: UInt64 { output.withLock { $0.bytes } }

    /// Writes a poll's good readings (all, or only the changed ones, per ``mode``).
    public func write(_ poll: StationPoll) throws {
        try output.withLock { output in
            var known = output.last[poll.station] ?? [:]
            var full = true
            if case .changes(let interval) = mode, let previous = output.lastKeyframe[poll.station],
               poll.time.timeIntervalSince(previous) < interval, poll.time >= previous {
                full = false
            }
            if full { output.lastKeyframe[poll.station] = poll.time }
            for reading in poll.readings where reading.quality == .good {
                guard let value = reading.value else { continue }
                if !full, known[reading.name] == value { continue }
                known[reading.name] = value
                try output.append(time: poll.time, station: poll.station, signal: reading.name, value: value)
            }
            output.last[poll.station] = known
        }
    }

    /// Forgets a station's last values, so its next poll is written in full (after it was offline).
    public func reset(station: String) {
        output.withLock { output in
            output.last[station] = nil
            output.lastKeyframe[station] = nil
        }
    }

    /// Writes one line as given (no change detection).
    public func write(time: Date, station: String, signal: String, value: SignalValue) throws {
        try output.withLock { try $0.append(time: time, station: station, signal: signal, value: value) }
    }

    /// Writes the buffered lines to the file.
    public func flush() throws {
        try output.withLock { try $0.flush() }
    }

    /// Flushes and closes the file. Further writes throw.
    public func close() throws {
        try output.withLock { output in
            guard output.fd >= 0 else { return }
            defer { Glibc.close(output.fd); output.fd = -1 }
            try output.flush()
        }
    }
}

extension RecordingWriter.Output {
    private static let keyT = Array("{\"t\":\"".utf8)
    private static let keyStation = Array("\",\"station\":".utf8)
    private static let keySignal = Array(",\"signal\":".utf8)
    private static let keyValue = Array(",\"value\":".utf8)

    mutating func append(time: Date, station: String, signal: String, value: SignalValue) throws {
        guard fd >= 0 else { throw SystemError(call: "write", errno: EBADF, context: "recording \(path) is closed") }
        if cachedTime != time {
            cachedTime = time
            cachedTimeText = Array(Timestamp.format(time).utf8)
        }
        let before = buffer.count
        buffer.append(contentsOf: Self.keyT)
        buffer.append(contentsOf: cachedTimeText)
        buffer.append(contentsOf: Self.keyStation)
        JSON.string(station).write(into: &buffer)
        buffer.append(contentsOf: Self.keySignal)
        JSON.string(signal).write(into: &buffer)
        buffer.append(contentsOf: Self.keyValue)
        if case .double(let d) = value, d.isFinite, d.rounded() == d, abs(d) < 1e15 {
            // Keep a fraction so a reader gets a double back (`8000.0`, not `8000`).
            if d == 0 && d.sign == .minus { buffer.append(45) }
            buffer.append(contentsOf: String(Int64(d)).utf8)
            buffer.append(46)
            buffer.append(48)
        } else {
            value.json.write(into: &buffer)
        }
        buffer.append(125)
        buffer.append(10)
        samples += 1
        bytes += UInt64(buffer.count - before)
        if buffer.count >= capacity { try flush() }
    }

    mutating func flush() throws {
        guard fd >= 0, !buffer.isEmpty else { return }
        var offset = 0
        let count = buffer.count
        let fd = fd
        let path = path
        try buffer.withUnsafeBytes { raw in
            while offset < count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError(call: "write", errno: errno, context: "recording \(path)")
                }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Reads a recording (Stations/README-stations.md "Recordings") line by line with bounded memory, as ``StationPoll``s.
///
/// The lines of one station with the same `t` are one poll; polls come out in file order
/// (stations in the order they first appear at that `t`). With `carryForward` (the default) a
/// poll holds every signal seen so far for its station, a signal keeping its last value until its
/// next line; without it, only the signals of its lines. Lines should be in time order; a line
/// earlier than the one before it is accepted and yielded in file order. Blank lines are skipped.
/// Thread-confined, so not `Sendable`: use it on the thread that opened it.
public final class RecordingReader {
    public let path: String
    public let carryForward: Bool
    /// Size of the file when it was opened, in bytes.
    public let fileSize: UInt64
    /// The last line read (1-based).
    public private(set) var lineNumber = 0
    /// Samples (lines with a value) read so far.
    public private(set) var samplesRead: UInt64 = 0
    /// Bytes consumed so far.
    public private(set) var bytesRead: UInt64 = 0

    /// A line may not be longer than this (keeps memory bounded on a corrupt file).
    public static let maxLineBytes = 1 << 20

    private var fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private let bufferCapacity: Int
    private var start = 0
    private var end = 0
    private var eof = false

    private var groupTime: [UInt8] = []
    private var groupDate = Date(timeIntervalSince1970: 0)
    private var group: [(station: String, readings: [SignalReading])] = []
    private var ready: [StationPoll] = []
    private var readyIndex = 0
    private final class Known {
        var names: [String: Int] = [:]
        var readings: [SignalReading] = []
    }
    private var known: [String: Known] = [:]
    private var pendingError: RecordingError?

    /// Opens the file. - Throws: ``RecordingError`` (line 0) if it cannot be opened.
    public init(path: String, carryForward: Bool = true, bufferBytes: Int = 1 << 20) throws {
        self.path = path
        self.carryForward = carryForward
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw RecordingError(file: path, line: 0, reason: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fileSize = fstat(fd, &info) == 0 ? UInt64(info.st_size) : 0
        bufferCapacity = max(64 * 1024, bufferBytes) + RecordingReader.maxLineBytes + 2
        buffer = .allocate(capacity: bufferCapacity)
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        buffer.deallocate()
    }

    /// Closes the file (``next()`` then returns nil).
    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        eof = true
        start = 0
        end = 0
    }

    /// The next poll, or nil at the end of the file.
    /// - Throws: ``RecordingError`` naming the line and the reason, once every poll before the bad
    ///   line has been returned; reading stops there (later calls throw it again).
    public func next() throws -> StationPoll? {
        while true {
            if readyIndex < ready.count {
                let poll = ready[readyIndex]
                readyIndex += 1
                if readyIndex == ready.count { ready.removeAll(keepingCapacity: true); readyIndex = 0 }
                return poll
            }
            if let pendingError { throw pendingError }
            do {
                guard let line = try nextLine() else {
                    if !group.isEmpty { emitGroup(); continue }
                    return nil
                }
                try handle(line)
            } catch let error as RecordingError {
                pendingError = error
                if !group.isEmpty { emitGroup() }
            }
        }
    }

    /// Reads every remaining poll, calling `body` for each (stops early when it returns false).
    public func forEach(_ body: (StationPoll) throws -> Bool) throws {
        while let poll = try next() {
            if try !body(poll) { return }
        }
    }

    // MARK: Lines

    /// The next line as (pointer, count) without its newline; nil at EOF.
    private func nextLine() throws -> UnsafeBufferPointer<UInt8>? {
        while true {
            if start < end {
                let base = buffer + start
                if let nl = memchr(base, 10, end - start) {
                    let length = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - base
                    start += length + 1
                    bytesRead += UInt64(length + 1)
                    lineNumber += 1
                    return UnsafeBufferPointer(start: base, count: length)
                }
                if end - start > RecordingReader.maxLineBytes {
                    throw RecordingError(file: path, line: lineNumber + 1, reason: "longer than \(RecordingReader.maxLineBytes) bytes")
                }
            }
            if eof {
                guard start < end else { return nil }
                // The last line without a newline: terminate it (there is room past `end`).
                buffer[end] = 10
                end += 1
                continue
            }
            if start > 0 {
                let remaining = end - start
                if remaining > 0 { memmove(buffer, buffer + start, remaining) }
                start = 0
                end = remaining
            }
            let room = bufferCapacity - end - 1
            let n = Glibc.read(fd, buffer + end, room)
            if n < 0 {
                if errno == EINTR { continue }
                throw RecordingError(file: path, line: lineNumber + 1, reason: "cannot be read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { eof = true } else { end += n }
        }
    }

    private func handle(_ rawLine: UnsafeBufferPointer<UInt8>) throws {
        var line = rawLine
        if let last = line.last, last == 13 { line = UnsafeBufferPointer(rebasing: line.dropLast()) }
        var onlySpace = true
        for byte in line where byte != 32 && byte != 9 { onlySpace = false; break }
        if onlySpace { return }
        let sample = try parseSample(line)
        let sameTime = groupTime.count == sample.timeBytes.count && groupTime.withUnsafeBufferPointer {
            memcmp($0.baseAddress!, sample.timeBytes.baseAddress!, $0.count) == 0
        }
        if !sameTime {
            guard let date = Timestamp.parse(String(decoding: sample.timeBytes, as: UTF8.self)) else {
                throw RecordingError(file: path, line: lineNumber, reason: "\"t\" is not an RFC 3339 time")
            }
            // The same instant written another way (`…00Z`, `…00.000Z`) stays in the same poll.
            if !group.isEmpty && date != groupDate { emitGroup() }
            groupTime = Array(sample.timeBytes)
            groupDate = date
        }
        samplesRead += 1
        let reading = SignalReading(name: sample.signal, value: sample.value, quality: .good)
        if let index = group.firstIndex(where: { $0.station == sample.station }) {
            group[index].readings.append(reading)
        } else {
            group.append((sample.station, [reading]))
        }
    }

    private func emitGroup() {
        for (station, readings) in group {
            if carryForward {
                let entry: Known
                if let found = known[station] { entry = found } else { entry = Known(); known[station] = entry }
                for reading in readings {
                    if let i = entry.names[reading.name] {
                        entry.readings[i] = reading
                    } else {
                        entry.names[reading.name] = entry.readings.count
                        entry.readings.append(reading)
                    }
                }
                ready.append(StationPoll(station: station, time: groupDate, readings: entry.readings))
            } else {
                ready.append(StationPoll(station: station, time: groupDate, readings: readings))
            }
        }
        group.removeAll(keepingCapacity: true)
    }

    // MARK: Parsing one line

    struct Sample {
        var timeBytes: UnsafeBufferPointer<UInt8>
        var station: String
        var signal: String
        var value: SignalValue
    }

    private func fail(_ reason: String) -> RecordingError {
        RecordingError(file: path, line: lineNumber, reason: reason)
    }

    /// Parses `{"t": …, "station": …, "signal": …, "value": …}` (any key order, any spacing;
    /// other keys with scalar values are ignored).
    private func parseSample(_ line: UnsafeBufferPointer<UInt8>) throws -> Sample {
        var i = 0
        let n = line.count
        func skipSpace() { while i < n, line[i] == 32 || line[i] == 9 || line[i] == 13 { i += 1 } }
        skipSpace()
        guard i < n, line[i] == 123 else { throw fail("is not a JSON object") }
        i += 1
        var time: UnsafeBufferPointer<UInt8>?
        var timeIsString = true
        var station: String?, signal: String?
        var value: SignalValue?
        var sawValue = false
        var first = true
        while true {
            skipSpace()
            guard i < n else { throw fail("is not valid JSON: unexpected end of line") }
            if line[i] == 125 { i += 1; break }
            if !first {
                guard line[i] == 44 else { throw fail("is not valid JSON: expected ',' or '}' at column \(i + 1)") }
                i += 1
                skipSpace()
            }
            first = false
            guard i < n, line[i] == 34 else { throw fail("is not valid JSON: expected a key at column \(i + 1)") }
            let key = try parseString(line, &i)
            skipSpace()
            guard i < n, line[i] == 58 else { throw fail("is not valid JSON: expected ':' at column \(i + 1)") }
            i += 1
            skipSpace()
            guard i < n else { throw fail("is not valid JSON: unexpected end of line") }
            let valueStart = i
            let parsed = try parseScalar(line, &i)
            switch key {
            case "t":
                if case .string = parsed {
                    // Keep the raw bytes (without quotes) for cheap comparison with the previous line.
                    time = UnsafeBufferPointer(rebasing: line[(valueStart + 1)..<(i - 1)])
                    if line[valueStart + 1..<i - 1].contains(92) {
                        throw fail("\"t\" is not an RFC 3339 time")
                    }
                } else {
                    timeIsString = false
                }
            case "station":
                guard case .string(let s)? = parsed, !s.isEmpty else { throw fail("\"station\" must be a non-empty string") }
                station = s
            case "signal":
                guard case .string(let s)? = parsed, !s.isEmpty else { throw fail("\"signal\" must be a non-empty string") }
                signal = s
            case "value":
                sawValue = true
                guard let v = parsed else { throw fail("\"value\" must be a number, a string or a boolean, not null") }
                value = v
            default:
                break
            }
        }
        skipSpace()
        if i < n { throw fail("is not valid JSON: unexpected text after the object at column \(i + 1)") }
        guard timeIsString, let time else {
            throw fail(timeIsString ? "\"t\" is missing" : "\"t\" is not an RFC 3339 time")
        }
        guard let station else { throw fail("\"station\" is missing") }
        guard let signal else { throw fail("\"signal\" is missing") }
        guard sawValue, let value else { throw fail("\"value\" is missing") }
        return Sample(timeBytes: time, station: station, signal: signal, value: value)
    }

    /// A scalar JSON value (nil for null). Arrays and objects are an error.
    private func parseScalar(_ line: UnsafeBufferPointer<UInt8>, _ i: inout Int) throws -> SignalValue? {
        let c = line[i]
        switch c {
        case 34: return .string(try parseString(line, &i))
        case 116: try literal(line, &i, "true"); return .bool(true)
        case 102: try literal(line, &i, "false"); return .bool(false)
        case 110: try literal(line, &i, "null"); return nil
        case 45, 48...57: return try parseNumber(line, &i)
        case 91, 123: throw fail("values must be numbers, strings or booleans, not arrays or objects (column \(i + 1))")
        default: throw fail("is not valid JSON: unexpected character at column \(i + 1)")
        }
    }

    private func literal(_ line: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ word: String) throws {
        let bytes = Array(word.utf8)
        guard i + bytes.count <= line.count, line[i..<(i + bytes.count)].elementsEqual(bytes) else {
            throw fail("is not valid JSON: bad literal at column \(i + 1)")
        }
        i += bytes.count
    }

    private func parseNumber(_ line: UnsafeBufferPointer<UInt8>, _ i: inout Int) throws -> SignalValue {
        let begin = i
        var negative = false
        if line[i] == 45 { negative = true; i += 1 }
        var integer: Int64 = 0
        var digits = 0
        var overflow = false
        while i < line.count, line[i] >= 48, line[i] <= 57 {
            let (m, o1) = integer.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(line[i] - 48))
            if o1 || o2 { overflow = true }
            integer = a
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw fail("is not valid JSON: bad number at column \(begin + 1)") }
        let isFraction = i < line.count && (line[i] == 46 || line[i] == 101 || line[i] == 69)
        if !isFraction && !overflow { return .int(negative ? -integer : integer) }
        while i < line.count, (line[i] >= 48 && line[i] <= 57) || line[i] == 46 || line[i] == 101 || line[i] == 69 || line[i] == 43 || line[i] == 45 {
            i += 1
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: line[begin..<i]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw fail("is not valid JSON: bad number '\(text)'") }
        return .double(d)
    }

    private func parseString(_ line: UnsafeBufferPointer<UInt8>, _ i: inout Int) throws -> String {
        let begin = i + 1
        var j = begin
        while j < line.count {
            let c = line[j]
            if c == 34 {
                i = j + 1
                return String(decoding: UnsafeBufferPointer(rebasing: line[begin..<j]), as: UTF8.self)
            }
            if c == 92 { break }
            if c < 32 { throw fail("is not valid JSON: control character in a string at column \(j + 1)") }
            j += 1
        }
        // Escapes: find the closing quote, then let the JSON parser decode the string.
        var k = begin
        var escaped = false
        while k < line.count {
            let c = line[k]
            if escaped { escaped = false } else if c == 92 { escaped = true } else if c == 34 { break }
            k += 1
        }
        guard k < line.count else { throw fail("is not valid JSON: unterminated string") }
        let slice = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(line)[(begin - 1)...k])
        guard case .string(let s)? = try? JSON.parse(bytes: slice) else {
            throw fail("is not valid JSON: bad string at column \(begin)")
        }
        i = k + 1
        return s
    }
}
