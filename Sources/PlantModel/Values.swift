import Foundation
import Runtime

/// A decoded signal value: what a PLC register, coil or OPC UA variable means after type
/// conversion and `scale`/`offset`.
public enum SignalValue: Sendable, Equatable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)

    /// The value as a number (booleans are 0/1), or nil for strings.
    public var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string: return nil
        }
    }

    /// The value as an integer code (state, result, fault code), or nil.
    public var integer: Int64? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        case .double(let d): return d.isFinite && d.rounded() == d ? Int64(d) : nil
        case .string(let s): return Int64(s)
        }
    }

    /// The value as text (vehicle and lot ids).
    public var text: String {
        switch self {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        }
    }

    public var description: String { text }

    /// The JSON form used in events, the API and recordings.
    public var json: JSON {
        switch self {
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        }
    }

    /// Reads a value from JSON (recordings). Nil for null, arrays and objects.
    public init?(json: JSON) {
        switch json {
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        default: return nil
        }
    }
}

/// How far a sample can be trusted.
public enum SampleQuality: String, Sendable, Equatable {
    /// Read from the PLC in this poll.
    case good
    /// The PLC answered with an error for this signal (bad address, bad node id, bad data).
    case bad
    /// Not read recently: the station is offline and this is the last known value.
    case stale
}

/// One signal's reading in one poll.
public struct SignalReading: Sendable, Equatable {
    public var name: String
    /// Nil when the read failed: a failed read never produces a made-up value.
    public var value: SignalValue?
    public var quality: SampleQuality
    /// The PLC status text for a bad reading (`illegal data address`, `BadNodeIdUnknown`).
    public var status: String?

    public init(name: String, value: SignalValue?, quality: SampleQuality, status: String? = nil) {
        self.name = name
        self.value = value
        self.quality = quality
        self.status = status
    }
}

/// Everything one poll (or one subscription notification batch) of a station gave.
public struct StationPoll: Sendable, Equatable {
    public var station: String
    /// The time of the poll (recording time in replay).
    public var time: Date
    public var readings: [SignalReading]
    /// Round-trip time of the poll in milliseconds, when measured.
    public var latencyMs: Double?

    public init(station: String, time: Date, readings: [SignalReading], latencyMs: Double? = nil) {
        self.station = station
        self.time = time
        self.readings = readings
        self.latencyMs = latencyMs
    }
}

/// The connection state of a station's PLC (docs/openapi.json `ConnectionState`).
public enum ConnectionState: String, Sendable, Equatable, CaseIterable {
    /// Not yet polled successfully since start.
    case connecting
    /// The last poll succeeded.
    case online
    /// Polls fail; the adapter reconnects with backoff meanwhile.
    case offline
}

/// A change of a station's connection state.
public struct ConnectionChange: Sendable, Equatable {
    public var station: String
    public var state: ConnectionState
    public var time: Date
    /// Why the station went offline (the PLC's or the socket's error), if it did.
    public var reason: String?

    public init(station: String, state: ConnectionState, time: Date, reason: String? = nil) {
        self.station = station
        self.state = state
        self.time = time
        self.reason = reason
    }
}

/// What an adapter (Modbus, OPC UA, replay) hands to the pipeline.
public enum AdapterEvent: Sendable, Equatable {
    case poll(StationPoll)
    case connection(ConnectionChange)
}

/// Where adapters deliver their events. Called from the adapter's own thread; the receiver
/// must be quick and thread-safe (the pipeline queues the event and returns).
public typealias AdapterSink = @Sendable (AdapterEvent) -> Void

/// Per-station polling figures for `GET /api/stations` and `/metrics`.
public struct StationStats: Sendable, Equatable {
    public var polls: UInt64 = 0
    /// Failed polls, by kind (`timeout`, `refused`, `exception_2`, `bad_response`, `closed`, …).
    public var errors: [String: UInt64] = [:]
    public var lastLatencyMs: Double?
    /// Sum of latencies in ms, for an average.
    public var latencySumMs: Double = 0
    /// The last error's text, if the last poll failed.
    public var lastError: String?
    public var reconnects: UInt64 = 0

    public init() {}

    public var errorCount: UInt64 { errors.values.reduce(0, +) }
}

/// A station adapter: polls one PLC and reports through an ``AdapterSink``.
public protocol StationAdapter: Service {
    var stationID: String { get }
    /// A snapshot of the polling figures; thread-safe.
    func stats() -> StationStats
}
