import Foundation
import Runtime

/// The plant configuration (docs/CONFIG.md): route, shifts, auth, stations and their signals.
///
/// Plain values with defaults; decoded and validated in one place (``PlantConfig/load(path:)``),
/// with errors that name the file and the JSON path.
public struct PlantConfig: Sendable {
    public var plant: String
    public var timezone: TimeZone
    public var route: [String]
    public var shifts: [Shift]
    public var auth: AuthConfig?
    public var stations: [StationConfig]
    public var limits: ServerLimits
    /// `Host` names a request may carry (`allowedHosts`); nil: the default (the listen address,
    /// `localhost`, `127.0.0.1`, `::1` and the machine's names and addresses), decided at start.
    public var allowedHosts: [String]?
    /// The `alerts` block, decoded by the quality module (its own rules and defaults).
    public var alertRules: ConfigNode?
    /// `people`, `responsibility`, `due` and `notify` (empty when absent).
    public var people = PeopleConfig()
    /// Samples retention in days (`retentionDays`, default 7).
    public var retentionDays: Double
    /// The folder of the config file (relative paths in the config are resolved from it).
    public var directory: URL
    /// The config file's path as given.
    public var file: String
    /// `downtimeReasons`: why a station stopped, by fault code (README "Andon and downtime").
    public var downtimeReasons: [DowntimeReason] = []
    /// `gate` (README "Key parts, recall and the quality gate"); off when absent.
    public var gate = GateConfig()
    /// `vin`, `orders`, `models`, `options` (README "Orders and build specs"); empty: no orders.
    public var vin = VINConfig()
    public var orders = OrdersConfig()
    public var models: [String: SpecLayer] = [:]
    public var options: [String: SpecLayer] = [:]
    /// `reports`: the equipment health report sent as a notification (README "Energy and equipment health").
    public var reports = ReportsConfig()
    /// `pki`: the OPC UA PKI folder (own/, trusted/, rejected/), resolved against the config's folder;
    /// nil: `pki` beside the database (``pkiFolder(database:)``).
    public var pki: String?
    /// `leaseS`: seconds after the active node's last lease renewal before a standby may take
    /// over (README "Two nodes"; only with a PostgreSQL database).
    public var leaseS: Double = 5

    public init(plant: String, timezone: TimeZone = .current, route: [String], shifts: [Shift] = [],
                auth: AuthConfig? = nil, stations: [StationConfig], limits: ServerLimits = ServerLimits(),
                alertRules: ConfigNode? = nil, retentionDays: Double = 7,
                directory: URL = URL(fileURLWithPath: "."), file: String = "<memory>") {
        self.plant = plant
        self.timezone = timezone
        self.route = route
        self.shifts = shifts
        self.auth = auth
        self.stations = stations
        self.limits = limits
        self.alertRules = alertRules
        self.retentionDays = retentionDays
        self.directory = directory
        self.file = file
    }

    /// The station with this id.
    public func station(_ id: String) -> StationConfig? { stations.first { $0.id == id } }

    /// The position of a process in the route, or nil if it is not on it.
    public func routeIndex(of process: String) -> Int? { route.firstIndex(of: process) }

    /// Whether a station's process is on the route (else it is a utilities station: meters and
    /// equipment only, never vehicles).
    public func isOnRoute(_ station: StationConfig) -> Bool { route.contains(station.process) }
}

/// A shift in the plant's time zone; `end` before `start` crosses midnight.
public struct Shift: Sendable, Equatable {
    public var name: String
    /// Minutes after local midnight.
    public var startMinute: Int
    public var endMinute: Int
    /// Planned breaks inside the shift, in time order (docs/CONFIG.md `shifts[].breaks`).
    public var breaks: [ShiftBreak]

    public init(name: String, startMinute: Int, endMinute: Int, breaks: [ShiftBreak] = []) {
        self.name = name
        self.startMinute = startMinute
        self.endMinute = endMinute
        self.breaks = breaks
    }

    /// Minutes from the shift's start to a minute of the day (0 ..< 1440).
    public func offset(ofMinute minute: Int) -> Int { (minute - startMinute + 1440) % 1440 }

    public var crossesMidnight: Bool { endMinute <= startMinute }
    public var durationMinutes: Int { crossesMidnight ? 1440 - startMinute + endMinute : endMinute - startMinute }

    /// `HH:MM` text of a minute of the day.
    public static func clock(_ minute: Int) -> String {
        let h = minute / 60, m = minute % 60
        return (h < 10 ? "0" : "") + String(h) + ":" + (m < 10 ? "0" : "") + String(m)
    }
}

/// A planned break of a shift (docs/CONFIG.md `shifts[].breaks`): a planned stop, left out of
/// planned time. Minutes of the day in the plant's time zone; it lies inside its shift.
public struct ShiftBreak: Sendable, Equatable {
    public var startMinute: Int
    public var endMinute: Int

    public init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }
}

extension PlantConfig {
    /// The plant-local date (`YYYY-MM-DD`) of an instant; a shift's date is the date of its start.
    public func localDate(of date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timezone
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    /// The start and end of shift `name` on the plant-local `date` (`YYYY-MM-DD`, the date of the
    /// shift's start). Nil for a date that is not a calendar date or a name that is not a shift.
    public func shiftInstance(date: String, name: String) -> (shift: Shift, start: Date, end: Date)? {
        guard let shift = shifts.first(where: { $0.name == name }), let midnight = localMidnight(date) else { return nil }
        let start = midnight.addingTimeInterval(Double(shift.startMinute) * 60)
        return (shift, start, start.addingTimeInterval(Double(shift.durationMinutes) * 60))
    }

    /// Local midnight of a `YYYY-MM-DD` date in the plant's zone; nil if it is not a calendar date.
    public func localMidnight(_ date: String) -> Date? {
        let parts = date.split(separator: "-", omittingEmptySubsequences: false)
        guard date.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timezone
        guard let midnight = calendar.date(from: DateComponents(year: y, month: m, day: d)) else { return nil }
        // 2026-02-30 would roll over into March: not a calendar date.
        let back = calendar.dateComponents([.year, .month, .day], from: midnight)
        guard back.year == y, back.month == m, back.day == d else { return nil }
        return midnight
    }

    /// The breaks of a shift that starts at `start`, as instants, in time order.
    public func breaks(of shift: Shift, startingAt start: Date) -> [(start: Date, end: Date)] {
        shift.breaks.map { b in
            let from = shift.offset(ofMinute: b.startMinute), to = shift.offset(ofMinute: b.endMinute)
            return (start.addingTimeInterval(Double(from) * 60), start.addingTimeInterval(Double(to == 0 ? 1440 : to) * 60))
        }
    }
}

extension PlantConfig {
    /// The shift that contains `date`, with its start and end instants. Nil outside every shift.
    public func shift(at date: Date) -> (shift: Shift, start: Date, end: Date)? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timezone
        let midnight = calendar.startOfDay(for: date)
        let minuteOfDay = Int(date.timeIntervalSince(midnight) / 60)
        for shift in shifts {
            if !shift.crossesMidnight {
                if minuteOfDay >= shift.startMinute && minuteOfDay < shift.endMinute {
                    let start = midnight.addingTimeInterval(Double(shift.startMinute) * 60)
                    return (shift, start, start.addingTimeInterval(Double(shift.durationMinutes) * 60))
                }
            } else if minuteOfDay >= shift.startMinute {
                let start = midnight.addingTimeInterval(Double(shift.startMinute) * 60)
                return (shift, start, start.addingTimeInterval(Double(shift.durationMinutes) * 60))
            } else if minuteOfDay < shift.endMinute {
                let previous = calendar.date(byAdding: .day, value: -1, to: midnight) ?? midnight.addingTimeInterval(-86400)
                let start = previous.addingTimeInterval(Double(shift.startMinute) * 60)
                return (shift, start, start.addingTimeInterval(Double(shift.durationMinutes) * 60))
            }
        }
        return nil
    }
}

/// Who may do what: the tokens file and whether reads need a token.
public struct AuthConfig: Sendable, Equatable {
    /// Absolute path of the tokens file, resolved from the config's folder.
    public var tokensFile: String?
    public var anonymousRead: Bool

    public init(tokensFile: String?, anonymousRead: Bool = true) {
        self.tokensFile = tokensFile
        self.anonymousRead = anonymousRead
    }
}

/// Server limits (docs/CONFIG.md `limits`).
public struct ServerLimits: Sendable, Equatable {
    public var maxSseClients = 10_000
    public var maxBodyBytes = 1_048_576
    public var maxHeaderBytes = 16_384
    /// Seconds the whole body may take to arrive after the header (`bodyTimeoutS`).
    public var bodyTimeoutS: Double = 30
    /// Body bytes all connections together may hold while bodies arrive; past it 503.
    public var maxBufferedBodyBytes = 32 * 1_048_576
    /// Queued bytes per event-stream client, in KiB, before it is dropped (`sseQueueKiB`).
    public var sseQueueKiB = 256
    /// Queued bytes of all event-stream clients together, in MiB (`sseTotalQueueMiB`).
    public var sseTotalQueueMiB = 256
    /// Most open connections; nil derives it from the descriptor limit (raised to the hard limit at start).
    public var maxConnections: Int?
    public init() {}
}

/// The protocol a station's PLC speaks.
public enum StationProtocol: String, Sendable, Equatable {
    case modbus
    case opcua
}

/// Where a station's PLC is.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// `modbus://HOST:PORT?unit=N`
    case modbusTCP(host: String, port: UInt16, unit: Int)
    /// `modbus-rtu:///dev/ttyUSB0?baud=19200&parity=N&data=8&stop=1&unit=3`
    case modbusRTU(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int, unit: Int)
    /// `opc.tcp://HOST:PORT[/path]`
    case opcua(url: String, host: String, port: UInt16)

    public var description: String {
        switch self {
        case let .modbusTCP(host, port, unit): return "modbus://\(host):\(port)?unit=\(unit)"
        case let .modbusRTU(device, baud, parity, data, stop, unit):
            return "modbus-rtu://\(device)?baud=\(baud)&parity=\(parity)&data=\(data)&stop=\(stop)&unit=\(unit)"
        case let .opcua(url, _, _): return url
        }
    }

    /// The Modbus unit id, for Modbus endpoints.
    public var unit: Int? {
        switch self {
        case let .modbusTCP(_, _, unit), let .modbusRTU(_, _, _, _, _, unit): return unit
        case .opcua: return nil
        }
    }

    /// Parses an endpoint URL; the message says what is wrong.
    public static func parse(_ text: String) -> Result<Endpoint, EndpointParseError> {
        func queryItems(_ query: Substring) -> [String: String] {
            var items: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                items[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            return items
        }
        func hostPort(_ authority: Substring, defaultPort: UInt16) -> (String, UInt16)? {
            if authority.isEmpty { return nil }
            let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { return nil }
            if parts.count == 1 { return (String(parts[0]), defaultPort) }
            guard let port = UInt16(parts[1]), port > 0 else { return nil }
            return (String(parts[0]), port)
        }
        if text.hasPrefix("modbus://") {
            let rest = text.dropFirst("modbus://".count)
            let pieces = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let authority = pieces[0].hasSuffix("/") ? pieces[0].dropLast() : pieces[0]
            guard let (host, port) = hostPort(authority, defaultPort: 502) else {
                return .failure(EndpointParseError("\(quoted(text)) has no valid host:port"))
            }
            let query = pieces.count > 1 ? queryItems(pieces[1]) : [:]
            var unit = 1
            if let u = query["unit"] {
                guard let value = Int(u), (0...255).contains(value) else {
                    return .failure(EndpointParseError("unit \(quoted(u)) in \(quoted(text)) is not 0…255"))
                }
                unit = value
            }
            return .success(.modbusTCP(host: host, port: port, unit: unit))
        }
        if text.hasPrefix("modbus-rtu://") {
            let rest = text.dropFirst("modbus-rtu://".count)
            let pieces = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let device = String(pieces[0])
            guard device.hasPrefix("/") else {
                return .failure(EndpointParseError("\(quoted(text)) needs a device path, e.g. modbus-rtu:///dev/ttyUSB0?baud=19200"))
            }
            let query = pieces.count > 1 ? queryItems(pieces[1]) : [:]
            let baud = Int(query["baud"] ?? "19200") ?? -1
            let parityText = (query["parity"] ?? "N").uppercased()
            let data = Int(query["data"] ?? "8") ?? -1
            let stop = Int(query["stop"] ?? "1") ?? -1
            let unit = Int(query["unit"] ?? "1") ?? -1
            guard baud > 0 else { return .failure(EndpointParseError("baud in \(quoted(text)) is not a number")) }
            guard ["N", "E", "O"].contains(parityText), let parity = parityText.first else {
                return .failure(EndpointParseError("parity in \(quoted(text)) must be N, E or O"))
            }
            guard (5...8).contains(data) else { return .failure(EndpointParseError("data bits in \(quoted(text)) must be 5…8")) }
            guard stop == 1 || stop == 2 else { return .failure(EndpointParseError("stop bits in \(quoted(text)) must be 1 or 2")) }
            guard (1...247).contains(unit) else { return .failure(EndpointParseError("unit in \(quoted(text)) must be 1…247")) }
            return .success(.modbusRTU(device: device, baud: baud, parity: parity, dataBits: data, stopBits: stop, unit: unit))
        }
        if text.hasPrefix("opc.tcp://") {
            let rest = text.dropFirst("opc.tcp://".count)
            let authority = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard let (host, port) = hostPort(authority, defaultPort: 4840) else {
                return .failure(EndpointParseError("\(quoted(text)) has no valid host:port"))
            }
            return .success(.opcua(url: text, host: host, port: port))
        }
        return .failure(EndpointParseError("\(quoted(text)) is not a modbus://, modbus-rtu:// or opc.tcp:// URL"))
    }
}

public struct EndpointParseError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A station (one PLC) and what is read from it.
public struct StationConfig: Sendable, Equatable {
    public var id: String
    public var name: String
    public var process: String
    public var `protocol`: StationProtocol
    public var endpoint: Endpoint
    public var pollIntervalMs: Int
    public var idealCycleTimeS: Double?
    /// OPC UA: use a subscription instead of polling.
    public var subscribe: Bool
    /// PLC response timeout.
    public var timeoutMs: Int
    /// A `connection` alert once offline this long.
    public var offlineAlertAfterS: Double
    public var signals: [SignalConfig]
    /// Modbus TCP: poll from a shared event loop (the default) or a thread of its own on libmodbus.
    /// RTU stations always use libmodbus.
    public var modbusDriver: ModbusDriver = .eventLoop
    /// OPC UA: the endpoint's security and the session's user (`security`, docs/CONFIG.md); nil: None, anonymous.
    public var security: OPCUASecurityConfig?

    public init(id: String, name: String, process: String, protocol: StationProtocol, endpoint: Endpoint,
                pollIntervalMs: Int = 100, idealCycleTimeS: Double? = nil, subscribe: Bool = false,
                timeoutMs: Int = 1000, offlineAlertAfterS: Double = 5, signals: [SignalConfig]) {
        self.id = id
        self.name = name
        self.process = process
        self.protocol = `protocol`
        self.endpoint = endpoint
        self.pollIntervalMs = pollIntervalMs
        self.idealCycleTimeS = idealCycleTimeS
        self.subscribe = subscribe
        self.timeoutMs = timeoutMs
        self.offlineAlertAfterS = offlineAlertAfterS
        self.signals = signals
    }

    /// The first signal with this role.
    public func signal(role: SignalRole) -> SignalConfig? { signals.first { $0.role == role } }
    public func signals(role: SignalRole) -> [SignalConfig] { signals.filter { $0.role == role } }
    public func signal(named name: String) -> SignalConfig? { signals.first { $0.name == name } }
    /// Whether vehicles are tracked at this station (it has a `vehicleId` signal).
    public var tracksVehicles: Bool { signal(role: .vehicleId) != nil }
    /// Whether the station has an `energy` meter or a `power` signal.
    public var hasEnergy: Bool { signals.contains { $0.role == .energy || $0.role == .power } }
}

/// How a Modbus TCP station is polled (docs/CONFIG.md, `modbusDriver`).
public enum ModbusDriver: String, Sendable, Equatable, CaseIterable {
    /// Non-blocking sockets on a few shared event-loop threads, with the package's own MBAP framing.
    case eventLoop = "loop"
    /// Blocking libmodbus calls on a thread per station.
    case libmodbus
}

/// What a signal means to the tracking and quality modules (docs/CONFIG.md, Roles).
public enum SignalRole: String, Sendable, Equatable, CaseIterable {
    case vehicleId, cycleComplete, result, state, faultCode, measurement, lotId, counter
    /// The operator logged in at the station (recorded with operations).
    case `operator`
    /// An andon pull cord or button: a code per kind of call, 0 for none (`calls`).
    case andon
    /// The serial of a key part fitted at the station (with `partType`): bound to the vehicle at
    /// cycle completion (README "Key parts, recall and the quality gate").
    case partSerial
    /// The part number of that key part (same `partType` as a `partSerial` signal of the station).
    case partNumber
    /// A cumulative kWh meter (a drop is a meter reset or a wrap, never negative energy).
    case energy
    /// Electric power in kW, integrated over time where the station has no `energy` meter.
    case power
    /// An equipment condition value (motor current, temperature, vibration) scored for health
    /// against its own baseline and its peer `group`; never a vehicle defect.
    case condition

    /// Roles that tie a signal to vehicles or parts: a station off the route may not carry them.
    public static let productionRoles: [SignalRole] = [.vehicleId, .cycleComplete, .result, .measurement, .lotId, .counter, .partSerial, .partNumber]
}

/// The four Modbus tables.
public enum ModbusTable: String, Sendable, Equatable, CaseIterable {
    case holdingRegister = "hr"
    case inputRegister = "ir"
    case coil = "coil"
    case discreteInput = "di"

    /// Whether the table holds 16-bit registers (else single bits).
    public var isRegister: Bool { self == .holdingRegister || self == .inputRegister }
}

/// A 0-based Modbus address in one table (`hr:10`).
public struct ModbusAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var table: ModbusTable
    public var index: Int

    public init(table: ModbusTable, index: Int) {
        self.table = table
        self.index = index
    }

    public var description: String { "\(table.rawValue):\(index)" }

    /// Parses `hr:N`, `ir:N`, `coil:N` or `di:N` with N in 0…65535.
    public static func parse(_ text: String) -> ModbusAddress? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let table = ModbusTable(rawValue: String(parts[0]).lowercased()),
              let index = Int(parts[1]), (0...65535).contains(index), !parts[1].hasPrefix("+") else { return nil }
        return ModbusAddress(table: table, index: index)
    }
}

/// A signal's data type (Modbus types, and OPC UA conversions).
public enum DataType: String, Sendable, Equatable, CaseIterable {
    case bool, int16, uint16, int32, uint32, float32, float64, string
    case double, float, int64, uint64, byte, sbyte, datetime

    /// Types a Modbus signal can have.
    public static let modbusTypes: [DataType] = [.bool, .int16, .uint16, .int32, .uint32, .float32, .float64, .string]

    /// Registers one value takes (strings: see ``SignalConfig/registerCount``).
    public var registerWidth: Int {
        switch self {
        case .bool, .int16, .uint16, .byte, .sbyte: return 1
        case .int32, .uint32, .float32, .float: return 2
        case .float64, .double, .int64, .uint64, .datetime: return 4
        case .string: return 1
        }
    }
}

/// Order of the registers and bytes of a 32- or 64-bit Modbus value.
public enum WordOrder: String, Sendable, Equatable, CaseIterable {
    /// Most significant register first, high byte first (default).
    case abcd
    /// Least significant register first, high byte first in each.
    case cdab
    /// Most significant register first, bytes swapped in each.
    case badc
    /// Least significant register first, bytes swapped (fully little-endian).
    case dcba
}

/// Specification limits of a measurement.
public struct SpecLimits: Sendable, Equatable, Codable {
    public var low: Double?
    public var high: Double?
    public init(low: Double?, high: Double?) {
        self.low = low
        self.high = high
    }

    /// Whether `value` is within the limits (inclusive).
    public func contains(_ value: Double) -> Bool {
        if let low, value < low { return false }
        if let high, value > high { return false }
        return true
    }
}

/// One signal of a station.
public struct SignalConfig: Sendable, Equatable {
    public var name: String
    public var role: SignalRole?
    /// Modbus stations: where the value is.
    public var address: ModbusAddress?
    /// OPC UA stations: the node id text (`ns=2;s=Paint.VehicleId`).
    public var node: String?
    /// Required for Modbus; optional for OPC UA (then the value's own type is used).
    public var type: DataType?
    /// Strings: length in characters.
    public var length: Int?
    public var wordOrder: WordOrder
    public var scale: Double?
    public var offset: Double?
    public var unit: String?
    public var limits: SpecLimits?
    /// `result`: the raw values that mean OK.
    public var okValues: [Int64]
    /// `state`: raw code → state name.
    public var states: [Int64: String]
    /// Storage: keep a new sample only when it moved more than this (numeric signals).
    public var deadband: Double?
    /// `andon`: raw code → kind of call (`help`, `quality`, …); 0 is no call.
    public var calls: [Int64: String] = SignalConfig.defaultAndonCalls

    /// The calls of an `andon` signal without its own `calls` map.
    public static let defaultAndonCalls: [Int64: String] = [1: "help", 2: "quality", 3: "material", 4: "maintenance"]
    /// `partSerial` / `partNumber`: the key part's type (`engine`).
    public var partType: String?
    /// `condition`: the peer group (equipment of the same kind and duty); nil: no peers.
    public var group: String?

    public init(name: String, role: SignalRole? = nil, address: ModbusAddress? = nil, node: String? = nil,
                type: DataType? = nil, length: Int? = nil, wordOrder: WordOrder = .abcd, scale: Double? = nil,
                offset: Double? = nil, unit: String? = nil, limits: SpecLimits? = nil, okValues: [Int64] = [1],
                states: [Int64: String] = [:], deadband: Double? = nil) {
        self.name = name
        self.role = role
        self.address = address
        self.node = node
        self.type = type
        self.length = length
        self.wordOrder = wordOrder
        self.scale = scale
        self.offset = offset
        self.unit = unit
        self.limits = limits
        self.okValues = okValues
        self.states = states
        self.deadband = deadband
    }

    /// Registers (or bits) the signal occupies in its Modbus table.
    public var registerCount: Int {
        guard let type else { return 1 }
        if address?.table.isRegister == false { return 1 }
        if type == .string { return ((length ?? 2) + 1) / 2 }
        return type.registerWidth
    }

    /// Applies `scale` and `offset` to a raw number.
    public func scaled(_ raw: Double) -> Double {
        raw * (scale ?? 1) + (offset ?? 0)
    }
}

/// The machine states KPIs rely on, named once here: the config's `states` maps, the simulator, the
/// quality engine and the dashboards (through `GET /api/meta`) all take them from this table.
public enum MachineState: String, Sendable, Equatable, CaseIterable {
    case running, idle, fault, blocked, starved, setup, maintenance

    /// The code a PLC conventionally uses for the state: 0 idle, 1 running, 2 fault, 3 blocked,
    /// 4 starved, 5 setup, 6 maintenance. Used where a `state` signal's `states` map is empty or
    /// lacks a code (docs/CONFIG.md).
    public var conventionalCode: Int64 {
        switch self {
        case .idle: 0
        case .running: 1
        case .fault: 2
        case .blocked: 3
        case .starved: 4
        case .setup: 5
        case .maintenance: 6
        }
    }

    /// Its place in `allCases` (0 running … 6 maintenance), for tables indexed by state (the KPI
    /// accumulators, the simulator's state codes).
    public var ordinal: Int {
        switch self {
        case .running: 0
        case .idle: 1
        case .fault: 2
        case .blocked: 3
        case .starved: 4
        case .setup: 5
        case .maintenance: 6
        }
    }

    /// The state a conventional code stands for; nil for any other code.
    public init?(conventionalCode code: Int64) {
        guard let state = Self.allCases.first(where: { $0.conventionalCode == code }) else { return nil }
        self = state
    }

    /// A planned stop (setup, maintenance): its time is taken out of the planned production time,
    /// so it lowers neither availability nor OEE. Every other state but running is an unplanned loss.
    public var isPlannedStop: Bool { self == .setup || self == .maintenance }
}

/// `"reports": {"equipmentEveryH": 24, "to": ["li.wei"]}`: the equipment health report, sent every
/// `equipmentEveryH` hours to the people named in `to` (on their notify channels).
public struct ReportsConfig: Sendable, Equatable {
    public var equipmentEveryH: Double?
    public var to: [String] = []
    public init() {}
}
