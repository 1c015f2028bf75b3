import Foundation
import PlantModel
import Runtime

/// What the simulated plant does over a run (`Stations/scenarios/*.json`): seed, takt, VINs,
/// noise, random faults and events injected at given times.
///
/// Plain values with defaults; the defaults are the plant's built-in normal shift
/// (``Scenario/normalShift``). Decoded by ``Scenario/load(path:)`` with errors naming the file
/// and the JSON path. Event targets (stations, signals) are checked against a plant config when a
/// ``PlantSimulator`` is made.
public struct Scenario: Sendable, Equatable {
    public var name: String
    public var description: String
    /// The seed when none is given on the command line.
    public var seed: UInt64
    /// Recording time of the first tick.
    public var start: Date
    /// Vehicles released into the line per hour; nil: 90 % of the bottleneck's capacity.
    public var vehiclesPerHour: Double?
    public var vin: VINSettings
    /// Probability that an operation ends NOK without any measurement out of spec.
    public var nokRate: Double
    /// Per-station NOK rates (station id → probability), overriding ``nokRate``.
    public var nokRates: [String: Double]
    /// Mean running time between random faults, per station, in seconds; 0 = no random faults.
    public var mtbfS: Double
    /// Mean duration of a random fault in seconds (exponential, at least 20 s).
    public var mttrS: Double
    /// Fault codes per process; a process not listed uses `100 × (route position + 1) + 1…5`.
    public var faultCodes: [String: [Int]]
    /// Vehicles that fit between two processes; a full buffer blocks the upstream station.
    public var bufferSize: Int
    /// Relative standard deviation of cycle times around `idealCycleTimeS` (always ≥ 98 % of it).
    public var cycleTimeJitter: Double
    /// Measurement sigma as a fraction of the tolerance (`high − low`), unless overridden.
    public var sigmaFraction: Double
    /// Overrides by `"STATION.signal"` or by `"signal"` (every station).
    public var measurements: [String: MeasurementSpec]
    /// Vehicles per material lot at stations that consume lots no upstream station makes.
    public var lotSize: Int
    /// Strokes per panel lot at stations without vehicles (presses).
    public var pressLotSize: Int
    /// Die change (setup state) between two press lots, in seconds.
    public var dieChangeS: Double
    /// How long a boolean `cycleComplete` stays true, in ms (at least 2 poll intervals).
    public var cyclePulseMs: Int
    /// Operator names, one per shift of the plant config (in order).
    public var operators: [String]
    /// Running and idle power of stations by id (`energy`: `{"WELD-01": {"runKW": 90, "idleKW": 15}}`);
    /// others take their process's default.
    public var energy: [String: EnergySpec] = [:]
    public var events: [ScenarioEvent]

    public init(name: String = "normal-shift",
                description: String = "The plant's built-in normal shift: takt from the bottleneck, 1 % NOK, rare faults.",
                seed: UInt64 = 1, start: Date = Scenario.defaultStart, vehiclesPerHour: Double? = nil,
                vin: VINSettings = VINSettings(), nokRate: Double = 0.01, nokRates: [String: Double] = [:],
                mtbfS: Double = 4 * 3600, mttrS: Double = 180, faultCodes: [String: [Int]] = [:],
                bufferSize: Int = 2, cycleTimeJitter: Double = 0.03, sigmaFraction: Double = 1.0 / 12,
                measurements: [String: MeasurementSpec] = [:], lotSize: Int = 40, pressLotSize: Int = 250,
                dieChangeS: Double = 300, cyclePulseMs: Int = 300,
                operators: [String] = ["li.wei", "zhang.min", "wang.fang"], events: [ScenarioEvent] = []) {
        self.name = name
        self.description = description
        self.seed = seed
        self.start = start
        self.vehiclesPerHour = vehiclesPerHour
        self.vin = vin
        self.nokRate = nokRate
        self.nokRates = nokRates
        self.mtbfS = mtbfS
        self.mttrS = mttrS
        self.faultCodes = faultCodes
        self.bufferSize = bufferSize
        self.cycleTimeJitter = cycleTimeJitter
        self.sigmaFraction = sigmaFraction
        self.measurements = measurements
        self.lotSize = lotSize
        self.pressLotSize = pressLotSize
        self.dieChangeS = dieChangeS
        self.cyclePulseMs = cyclePulseMs
        self.operators = operators
        self.events = events
    }

    /// 2026-11-23 06:00 in Asia/Shanghai (22:00 UTC the day before): the start of shift A.
    public static let defaultStart = Date(timeIntervalSince1970: 1_795_384_800)

    /// The plant's built-in normal-shift behaviour (seed 1), used when no scenario is given.
    public static let normalShift = Scenario()
}

/// How VINs are made: WMI, descriptor, plant letter, serials counted from a first serial.
public struct VINSettings: Sendable, Equatable {
    /// World manufacturer identifier (3 characters).
    public var wmi: String
    /// Vehicle descriptor section (5 characters).
    public var descriptor: String
    public var plant: Character
    /// The first serial; nil: derived from the seed (so two seeds give different VINs).
    public var firstSerial: Int?

    public init(wmi: String = "LSV", descriptor: String = "AB3C1", plant: Character = "S", firstSerial: Int? = nil) {
        self.wmi = wmi
        self.descriptor = descriptor
        self.plant = plant
        self.firstSerial = firstSerial
    }
}

/// Overrides the noise of one measurement.
public struct MeasurementSpec: Sendable, Equatable {
    /// Mean value; default: the middle of the spec limits.
    public var nominal: Double?
    /// Standard deviation; default: `sigmaFraction × (high − low)`.
    public var sigma: Double?

    public init(nominal: Double? = nil, sigma: Double? = nil) {
        self.nominal = nominal
        self.sigma = sigma
    }
}

/// Something that happens at a given time of the run.
public struct ScenarioEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The station's NOK probability is `rate` during the window.
        case nokRate(Double)
        /// The measurement's mean moves linearly from nominal to `to` over the window, then stays there.
        case drift(signal: String, to: Double)
        /// The measurement's mean is `mean` during the window.
        case excursion(signal: String, mean: Double)
        /// The next `count` operations after `at` read `value`.
        case spike(signal: String, value: Double, count: Int)
        /// The station faults with `code` for the window (its cycle pauses).
        case fault(code: Int)
        /// The station shows this state (`starved`, `blocked`, `setup`, `maintenance`) and takes no
        /// new vehicle during the window (a vehicle in work finishes first).
        case state(MachineState)
        /// The station's PLC does not answer during the window (the station itself keeps working).
        case offline
        /// The next vehicle that reaches the event's process after `at` skips it.
        case skip
        /// The next vehicle released after `at` gets the same VIN as the one before it.
        case duplicateVIN
        /// The station's `andon` signal reads `code` during the window (a pulled cord), then 0.
        case andon(code: Int)
        /// The next key part a station (the event's, or any) scans after `at` carries the serial
        /// of the part before it (README "Key parts, recall and the quality gate").
        case duplicateSerial
        /// The next key part a station (the event's, or any) scans after `at` reports `partNumber`
        /// instead of the vehicle's own.
        case wrongPart(partNumber: String)
    }

    public var kind: Kind
    /// Milliseconds after the start.
    public var atMs: Int64
    /// Length of the window in ms (0 for instant events).
    public var durationMs: Int64
    public var station: String?
    public var process: String?
    /// Where the event is in its file, for errors found later (`events[3]`).
    public var path: String
    public var file: String

    public init(kind: Kind, atMs: Int64, durationMs: Int64 = 0, station: String? = nil, process: String? = nil,
                path: String = "events", file: String = "<memory>") {
        self.kind = kind
        self.atMs = atMs
        self.durationMs = durationMs
        self.station = station
        self.process = process
        self.path = path
        self.file = file
    }

    public var endMs: Int64 { atMs + durationMs }
    func active(at t: Int64) -> Bool { t >= atMs && t < atMs + durationMs }
}

/// Durations in scenario files and on command lines.
public enum SimDuration {
    /// Parses `8h`, `1h30m`, `45m`, `90s`, `500ms`, `1.5h`, `01:30:00` or plain seconds (`90`).
    /// Returns seconds, or nil if the text is not a duration.
    public static func parse(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !s.isEmpty else { return nil }
        if let seconds = Double(s), seconds.isFinite, seconds >= 0 { return seconds }
        if s.contains(":") {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 || parts.count == 3 else { return nil }
            var total = 0.0
            for part in parts {
                guard let v = Double(part), v >= 0 else { return nil }
                total = total * 60 + v
            }
            return parts.count == 2 ? total * 60 : total
        }
        var total = 0.0
        var number = ""
        var index = s.startIndex
        var sawUnit = false
        while index < s.endIndex {
            let c = s[index]
            if c.isNumber || c == "." {
                number.append(c)
                index = s.index(after: index)
                continue
            }
            var unit = ""
            while index < s.endIndex, s[index].isLetter {
                unit.append(s[index])
                index = s.index(after: index)
            }
            guard let value = Double(number), value >= 0 else { return nil }
            let factor: Double
            switch unit {
            case "ms": factor = 0.001
            case "s": factor = 1
            case "m", "min": factor = 60
            case "h": factor = 3600
            case "d": factor = 86400
            default: return nil
            }
            total += value * factor
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit else { return nil }
        return total
    }
}

extension Scenario {
    /// Reads a scenario file. Errors name the file, the JSON path and the problem
    /// (`weld-drift.json: events[2].at: "3x" is not a duration`).
    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, path: "", message: "cannot be read (no such file, or no permission)")
        }
        let json: JSON
        do {
            json = try data.withUnsafeBytes { try JSON.parse(bytes: $0) }
        } catch let error as JSONParseError {
            var line = 1
            for byte in data.prefix(error.offset) where byte == 10 { line += 1 }
            throw ConfigError(file: path, path: "", message: "line \(line): \(error.reason)")
        }
        return try decode(json: json, file: path)
    }

    /// Decodes a scenario from parsed JSON.
    public static func decode(json: JSON, file: String) throws -> Scenario {
        let root = ConfigNode(json: json, path: "", file: file)
        try root.rejectUnknownKeys(["name", "description", "seed", "start", "vehiclesPerHour", "taktS", "vin",
                                    "nokRate", "nokRates", "mtbf", "mttr", "faultCodes", "bufferSize",
                                    "cycleTimeJitter", "sigmaFraction", "measurements", "lotSize", "pressLotSize",
                                    "dieChange", "cyclePulseMs", "operators", "events", "energy"])
        var s = Scenario()
        s.name = try root.optional("name")?.nonEmptyString() ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        s.description = try root.optional("description")?.string() ?? ""
        if let node = try root.optional("seed") {
            guard let value = node.json.intValue, value >= 0 else { throw node.error("must be a whole number ≥ 0") }
            s.seed = UInt64(value)
        }
        if let node = try root.optional("start") {
            let text = try node.string()
            guard let date = Timestamp.parse(text) else { throw node.error("\"\(text)\" is not an RFC 3339 time") }
            s.start = date
        }
        if let node = try root.optional("vehiclesPerHour") { s.vehiclesPerHour = try node.double(in: 0.1...3600) }
        if let node = try root.optional("taktS") {
            if root.json["vehiclesPerHour"] != nil { throw node.error("give taktS or vehiclesPerHour, not both") }
            s.vehiclesPerHour = 3600 / (try node.double(in: 1...36000))
        }
        if let node = try root.optional("vin") {
            try node.rejectUnknownKeys(["wmi", "descriptor", "plant", "firstSerial"])
            func code(_ key: String, length: Int) throws -> String? {
                guard let n = try node.optional(key) else { return nil }
                let text = try n.string().uppercased()
                guard text.count == length, text.allSatisfy({ VIN.transliteration[$0] != nil }) else {
                    throw n.error("must be \(length) VIN characters (0-9, A-Z without I, O, Q)")
                }
                return text
            }
            if let wmi = try code("wmi", length: 3) { s.vin.wmi = wmi }
            if let d = try code("descriptor", length: 5) { s.vin.descriptor = d }
            if let p = try code("plant", length: 1) { s.vin.plant = p.first! }
            if let n = try node.optional("firstSerial") { s.vin.firstSerial = try n.int(in: 0...999_999) }
        }
        if let node = try root.optional("nokRate") { s.nokRate = try node.double(in: 0...1) }
        if let node = try root.optional("nokRates") {
            for (station, value) in try node.members() { s.nokRates[station] = try value.double(in: 0...1) }
        }
        if let node = try root.optional("mtbf") { s.mtbfS = try duration(node) }
        if let node = try root.optional("mttr") { s.mttrS = try duration(node) }
        if let node = try root.optional("faultCodes") {
            for (process, list) in try node.members() {
                let codes = try list.elements().map { try $0.int(in: 1...65535) }
                if codes.isEmpty { throw list.error("must list at least one fault code") }
                s.faultCodes[process] = codes
            }
        }
        if let node = try root.optional("bufferSize") { s.bufferSize = try node.int(in: 1...1000) }
        if let node = try root.optional("cycleTimeJitter") { s.cycleTimeJitter = try node.double(in: 0...0.5) }
        if let node = try root.optional("sigmaFraction") { s.sigmaFraction = try node.double(in: 0...1) }
        if let node = try root.optional("measurements") {
            for (key, spec) in try node.members() {
                try spec.rejectUnknownKeys(["nominal", "sigma"])
                s.measurements[key] = MeasurementSpec(nominal: try spec.optional("nominal")?.double(),
                                                      sigma: try spec.optional("sigma")?.double(in: 0...1e12))
            }
        }
        if let node = try root.optional("energy") {
            for (station, spec) in try node.members() {
                try spec.rejectUnknownKeys(["runKW", "idleKW"])
                s.energy[station] = EnergySpec(runKW: try spec.required("runKW").double(in: 0...1e6),
                                               idleKW: try spec.required("idleKW").double(in: 0...1e6))
            }
        }
        if let node = try root.optional("lotSize") { s.lotSize = try node.int(in: 1...1_000_000) }
        if let node = try root.optional("pressLotSize") { s.pressLotSize = try node.int(in: 1...1_000_000) }
        if let node = try root.optional("dieChange") { s.dieChangeS = try duration(node) }
        if let node = try root.optional("cyclePulseMs") { s.cyclePulseMs = try node.int(in: 1...60_000) }
        if let node = try root.optional("operators") {
            s.operators = try node.elements().map { try $0.nonEmptyString() }
            if s.operators.isEmpty { throw node.error("must list at least one name") }
        }
        if let node = try root.optional("events") {
            s.events = try node.elements().map { try decodeEvent($0) }
        }
        return s
    }

    /// A duration: seconds as a number, or text such as `"1h30m"`.
    static func duration(_ node: ConfigNode) throws -> Double {
        switch node.json {
        case .int, .double: return try node.double(in: 0...1e9)
        case .string(let text):
            guard let seconds = SimDuration.parse(text) else {
                throw node.error("\"\(text)\" is not a duration (e.g. 90, \"90s\", \"45m\", \"1h30m\", \"01:30:00\")")
            }
            return seconds
        default: throw node.error("must be a duration (seconds, or text such as \"1h30m\"), not \(node.json.kindName)")
        }
    }

    static func decodeEvent(_ node: ConfigNode) throws -> ScenarioEvent {
        let typeNode = try node.required("type")
        let type = try typeNode.string()
        let common: Set<String> = ["type", "at", "duration", "station", "description"]
        func ms(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }
        let at = ms(try duration(node.required("at")))
        func window() throws -> Int64 {
            let d = ms(try duration(node.required("duration")))
            if d <= 0 { throw try node.required("duration").error("must be longer than 0") }
            return d
        }
        func station() throws -> String { try node.required("station").nonEmptyString() }
        func signal() throws -> String { try node.required("signal").nonEmptyString() }
        var event = ScenarioEvent(kind: .offline, atMs: at, path: node.path, file: node.file)
        switch type {
        case "nokRate":
            try node.rejectUnknownKeys(common.union(["rate"]))
            event.kind = .nokRate(try node.required("rate").double(in: 0...1))
            event.station = try station()
            event.durationMs = try window()
        case "drift":
            try node.rejectUnknownKeys(common.union(["signal", "to"]))
            event.kind = .drift(signal: try signal(), to: try node.required("to").double())
            event.station = try station()
            event.durationMs = try window()
        case "excursion":
            try node.rejectUnknownKeys(common.union(["signal", "mean"]))
            event.kind = .excursion(signal: try signal(), mean: try node.required("mean").double())
            event.station = try station()
            event.durationMs = try window()
        case "spike":
            try node.rejectUnknownKeys(common.union(["signal", "value", "count"]))
            event.kind = .spike(signal: try signal(), value: try node.required("value").double(),
                                count: try node.optional("count")?.int(in: 1...1_000_000) ?? 1)
            event.station = try station()
        case "fault":
            try node.rejectUnknownKeys(common.union(["code"]))
            event.kind = .fault(code: try node.required("code").int(in: 1...65535))
            event.station = try station()
            event.durationMs = try window()
        case "starved", "blocked", "setup", "maintenance":
            try node.rejectUnknownKeys(common)
            event.kind = .state(MachineState(rawValue: type)!)
            event.station = try station()
            event.durationMs = try window()
        case "andon":
            try node.rejectUnknownKeys(common.union(["code"]))
            event.kind = .andon(code: try node.optional("code")?.int(in: 1...65535) ?? 1)
            event.station = try station()
            event.durationMs = try window()
        case "offline":
            try node.rejectUnknownKeys(common)
            event.station = try station()
            event.durationMs = try window()
        case "skip":
            try node.rejectUnknownKeys(["type", "at", "process", "description"])
            event.kind = .skip
            event.process = try node.required("process").nonEmptyString()
        case "duplicateVin":
            try node.rejectUnknownKeys(["type", "at", "description"])
            event.kind = .duplicateVIN
        case "duplicateSerial":
            try node.rejectUnknownKeys(["type", "at", "station", "description"])
            event.kind = .duplicateSerial
            event.station = try node.optional("station")?.nonEmptyString()
        case "wrongPart":
            try node.rejectUnknownKeys(["type", "at", "station", "partNumber", "description"])
            event.kind = .wrongPart(partNumber: try node.optional("partNumber")?.nonEmptyString() ?? "WRONG-PART")
            event.station = try node.optional("station")?.nonEmptyString()
        default:
            throw typeNode.error("\"\(type)\" is not an event type (nokRate, drift, excursion, spike, fault, starved, blocked, setup, maintenance, offline, skip, duplicateVin, andon, duplicateSerial, wrongPart)")
        }
        return event
    }
}

/// A station's simulated power draw: running and idle (faults, setup and maintenance draw 60 % of idle).
public struct EnergySpec: Sendable, Equatable {
    public var runKW: Double
    public var idleKW: Double
    public init(runKW: Double, idleKW: Double) {
        self.runKW = runKW
        self.idleKW = idleKW
    }
}
