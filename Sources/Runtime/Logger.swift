import Foundation

/// A structured logger writing one line per message to stderr.
///
/// Pass loggers in; add metadata with dotted keys (`station.id`, `vehicle.id`). Never log tokens.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case trace, debug, info, notice, warning, error, critical
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var description: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .notice: "notice"
            case .warning: "warning"
            case .error: "error"
            case .critical: "critical"
            }
        }
        public init?(name: String) {
            switch name.lowercased() {
            case "trace": self = .trace
            case "debug": self = .debug
            case "info": self = .info
            case "notice": self = .notice
            case "warning", "warn": self = .warning
            case "error": self = .error
            case "critical": self = .critical
            default: return nil
            }
        }
    }

    public var label: String
    public var level: Level
    public var metadata: [String: String]
    private let sink: LogSink

    public init(label: String, level: Level = .info, sink: LogSink = .standardError) {
        self.label = label
        self.level = level
        self.metadata = [:]
        self.sink = sink
    }

    /// The same logger with more metadata.
    public func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy.metadata[key] = value
        return copy
    }

    /// The same logger under another label.
    public func named(_ label: String) -> Logger {
        var copy = self
        copy.label = label
        return copy
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level >= self.level else { return }
        var line = "\(Self.timestamp()) \(level) [\(label)] \(message())"
        if !metadata.isEmpty {
            line += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        sink.write(line)
    }

    public func trace(_ message: @autoclosure () -> String) { log(.trace, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    private static func timestamp() -> String {
        Timestamp.format(Date())
    }
}

/// Where log lines go: stderr, or a buffer a test reads.
public final class LogSink: Sendable {
    private let captured: Locked<[String]?>
    private let echo: Bool

    public static let standardError = LogSink(capture: false, echo: true)

    public init(capture: Bool, echo: Bool = false) {
        self.captured = Locked(capture ? [] : nil)
        self.echo = echo
    }

    func write(_ line: String) {
        captured.withLock { $0?.append(line) }
        if echo { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// Lines written so far (capturing sinks only).
    public var lines: [String] { captured.value ?? [] }
}
