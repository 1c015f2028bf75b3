import Foundation
import Runtime

/// Master data of one vehicle model or one option (`models` / `options` in the plant config,
/// README "Orders and build specs"): what it changes in a vehicle's build.
///
/// Every part is optional; an absent part leaves what comes before it in the overlay unchanged.
public struct SpecLayer: Sendable, Equatable {
    public var code: String
    public var name: String
    /// The processes this variant passes, in plant route order.
    public var route: [String]?
    /// Station id → ideal cycle time in seconds.
    public var idealCycleTimeS: [String: Double]
    /// `signal` (every station with that measurement) or `STATION.signal` → limits.
    public var limits: [String: SpecLimits]
    /// Part type → expected part number.
    public var parts: [String: String]

    public init(code: String, name: String? = nil, route: [String]? = nil, idealCycleTimeS: [String: Double] = [:],
                limits: [String: SpecLimits] = [:], parts: [String: String] = [:]) {
        self.code = code
        self.name = name ?? code
        self.route = route
        self.idealCycleTimeS = idealCycleTimeS
        self.limits = limits
        self.parts = parts
    }
}

/// `vin`: how vehicle ids are checked.
public struct VINConfig: Sendable, Equatable {
    /// 17 characters of `0-9 A-H J-N P R-Z` with an ISO 3779 check digit in position 9.
    public var checkDigit: Bool
    /// Whether the block was in the config (a PLC's VIN is checked only then, or with models).
    public var configured: Bool

    public init(checkDigit: Bool = true, configured: Bool = false) {
        self.checkDigit = checkDigit
        self.configured = configured
    }
}

/// `gate`: the quality gate at the end of the route (README "Key parts, recall and the quality gate").
public struct GateConfig: Sendable, Equatable {
    /// A vehicle that finishes its route with open defects (missing parts among them) goes to `hold`,
    /// and `release` is refused while its defects are open (unless an admin overrides).
    public var holdOnOpenDefects: Bool
    public init(holdOnOpenDefects: Bool = false) { self.holdOnOpenDefects = holdOnOpenDefects }
}

/// `orders`: whether every vehicle on the line needs an order.
public struct OrdersConfig: Sendable, Equatable {
    public var required: Bool
    public init(required: Bool = false) { self.required = required }
}

/// A vehicle's build: its model, then each option in order, overlaid (README "Orders and build specs").
///
/// Resolved once per model and option list; lookups are dictionary reads.
public struct BuildSpec: Sendable, Equatable {
    public var model: String
    public var options: [String]
    /// The vehicle's route (processes in plant route order).
    public var route: [String]
    /// Whether the route differs from the plant's.
    public var routeChanged: Bool
    /// Station id → ideal cycle time, only where the spec sets one.
    public var idealCycleTimeS: [String: Double]
    /// Limits by `STATION.signal` (the more specific) and by `signal`, as overlaid.
    public var stationLimits: [String: SpecLimits]
    public var signalLimits: [String: SpecLimits]
    public var parts: [String: String]

    /// The limits the spec sets for a station's signal (nil: the station's own apply).
    public func limits(station: String, signal: String) -> SpecLimits? {
        if !stationLimits.isEmpty, let l = stationLimits[station + "." + signal] { return l }
        return signalLimits[signal]
    }

    /// The spec's limits for every measurement of a station that it overrides; empty when none.
    public func limitOverrides(for station: StationConfig) -> [String: SpecLimits] {
        var out: [String: SpecLimits] = [:]
        for signal in station.signals where signal.role == .measurement {
            if let l = limits(station: station.id, signal: signal.name), l != signal.limits { out[signal.name] = l }
        }
        return out
    }

    /// `{model, options, route, idealCycleTimeS, limits, parts}` with limits resolved per station
    /// (`STATION.signal` keys, only where the spec changes them).
    public func json(config: PlantConfig) -> JSON {
        var limits: [(String, JSON)] = []
        for station in config.stations {
            for (signal, l) in limitOverrides(for: station).sorted(by: { $0.key < $1.key }) {
                limits.append(("\(station.id).\(signal)", l.json))
            }
        }
        var ideal: [(String, JSON)] = []
        for station in config.stations {
            if let t = idealCycleTimeS[station.id] { ideal.append((station.id, .double(t))) }
            else if let t = station.idealCycleTimeS { ideal.append((station.id, .double(t))) }
        }
        return .obj([
            ("model", .string(model)),
            ("options", .array(options.map { .string($0) })),
            ("route", .array(route.map { .string($0) })),
            ("idealCycleTimeS", .object(ideal)),
            ("limits", .object(limits)),
            ("parts", .object(parts.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ])
    }
}

extension SpecLimits {
    /// `{low, high}` (absent sides left out).
    public var json: JSON { .obj([("low", low.map { .double($0) }), ("high", high.map { .double($0) })]) }
}

/// Why a build spec cannot be resolved (unknown model or option).
public struct BuildSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `model` or `options[i]`.
    public var field: String
    public var message: String
    public var description: String { message }
}

extension PlantConfig {
    /// Whether the plant uses orders at all (a `models` block).
    public var hasModels: Bool { !models.isEmpty }

    /// Whether VINs a PLC reports are checked: with a `vin` block or with models.
    public var checksLineVINs: Bool { (vin.configured || hasModels) && vin.checkDigit }

    /// The build spec of a model with options, overlaid in order.
    public func buildSpec(model: String, options: [String]) throws(BuildSpecError) -> BuildSpec {
        guard let base = models[model] else {
            let known = models.keys.sorted().joined(separator: ", ")
            throw BuildSpecError(field: "model", message: "unknown model \(quoted(model)) (known: \(known))")
        }
        var layers = [base]
        var seen = Set<String>()
        for (i, code) in options.enumerated() {
            guard let option = self.options[code] else {
                let known = self.options.keys.sorted().joined(separator: ", ")
                throw BuildSpecError(field: "options[\(i)]", message: "unknown option \(quoted(code)) (known: \(known.isEmpty ? "none" : known))")
            }
            guard seen.insert(code).inserted else {
                throw BuildSpecError(field: "options[\(i)]", message: "option \(quoted(code)) is listed twice")
            }
            layers.append(option)
        }
        var spec = BuildSpec(model: model, options: options, route: route, routeChanged: false, idealCycleTimeS: [:],
                             stationLimits: [:], signalLimits: [:], parts: [:])
        for layer in layers {
            if let r = layer.route { spec.route = r }
            spec.idealCycleTimeS.merge(layer.idealCycleTimeS) { $1 }
            for (key, l) in layer.limits {
                if key.utf8.contains(46) { spec.stationLimits[key] = l } else { spec.signalLimits[key] = l }
            }
            spec.parts.merge(layer.parts) { $1 }
        }
        spec.routeChanged = spec.route != route
        return spec
    }
}

// MARK: - Decoding

extension PlantConfig {
    /// Decodes `vin`, `orders`, `models` and `options` into `config` (errors name the JSON path):
    /// routes must be processes of the plant route in its order, stations and measurement signals
    /// must exist.
    static func decodeMasterData(_ root: ConfigNode, into config: inout PlantConfig) throws {
        if let node = try root.optional("vin") {
            try node.rejectUnknownKeys(["checkDigit"])
            config.vin = VINConfig(checkDigit: try node.optional("checkDigit")?.bool() ?? true, configured: true)
        }
        if let node = try root.optional("orders") {
            try node.rejectUnknownKeys(["required"])
            config.orders = OrdersConfig(required: try node.optional("required")?.bool() ?? false)
        }
        if let node = try root.optional("models") {
            for (code, layerNode) in try node.members() {
                try checkCode(code, layerNode)
                config.models[code] = try decodeLayer(code, layerNode, config: config)
            }
            if config.models.isEmpty { throw node.error("must define at least one model (or leave the block out)") }
        }
        if let node = try root.optional("options") {
            if config.models.isEmpty { throw node.error("options need a models block") }
            for (code, layerNode) in try node.members() {
                try checkCode(code, layerNode)
                config.options[code] = try decodeLayer(code, layerNode, config: config)
            }
        }
        if config.orders.required && config.models.isEmpty {
            throw try root.required("orders").error("required orders need a models block")
        }
    }

    private static func checkCode(_ code: String, _ node: ConfigNode) throws {
        guard !code.isEmpty, code.count <= 64,
              code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw node.error("the code must be 1 to 64 letters, digits, '-', '_' or '.'")
        }
    }

    private static func decodeLayer(_ code: String, _ node: ConfigNode, config: PlantConfig) throws -> SpecLayer {
        try node.rejectUnknownKeys(["name", "route", "idealCycleTimeS", "limits", "parts", "description"])
        var layer = SpecLayer(code: code, name: try node.optional("name")?.nonEmptyString())
        if let routeNode = try node.optional("route") {
            var route: [String] = []
            var lastIndex = -1
            for element in try routeNode.elements() {
                let process = try element.nonEmptyString()
                guard let index = config.routeIndex(of: process) else {
                    throw element.error("\(quoted(process)) is not a process of the plant route (\(config.route.joined(separator: ", ")))")
                }
                guard index > lastIndex else {
                    throw element.error("\(quoted(process)) is out of the plant route's order (\(config.route.joined(separator: ", "))) or listed twice")
                }
                lastIndex = index
                route.append(process)
            }
            if route.isEmpty { throw routeNode.error("must list at least one process") }
            layer.route = route
        }
        if let idealNode = try node.optional("idealCycleTimeS") {
            for (station, value) in try idealNode.members() {
                guard config.station(station) != nil else {
                    throw value.error("\(quoted(station)) is not a station (\(config.stations.map(\.id).joined(separator: ", ")))")
                }
                layer.idealCycleTimeS[station] = try value.double(in: 0.001...86_400)
            }
        }
        if let limitsNode = try node.optional("limits") {
            for (key, value) in try limitsNode.members() {
                let parts = key.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                if parts.count == 2 {
                    guard let station = config.station(parts[0]) else {
                        throw value.error("\(quoted(parts[0])) is not a station (\(config.stations.map(\.id).joined(separator: ", ")))")
                    }
                    guard let signal = station.signal(named: parts[1]), signal.role == .measurement else {
                        let names = station.signals(role: .measurement).map(\.name).joined(separator: ", ")
                        throw value.error("\(quoted(parts[1])) is not a measurement signal of \(station.id) (\(names.isEmpty ? "none" : names))")
                    }
                } else {
                    let known = config.stations.contains { $0.signal(named: key)?.role == .measurement }
                    guard known else {
                        throw value.error("no station has a measurement signal \(quoted(key))")
                    }
                }
                layer.limits[key] = try decodeLimits(value)
            }
        }
        if let partsNode = try node.optional("parts") {
            for (type, value) in try partsNode.members() {
                guard !type.isEmpty else { throw value.error("a part type must not be empty") }
                layer.parts[type] = try value.nonEmptyString()
            }
        }
        return layer
    }

    static func decodeLimits(_ node: ConfigNode) throws -> SpecLimits {
        try node.rejectUnknownKeys(["low", "high"])
        let low = try node.optional("low")?.double()
        let high = try node.optional("high")?.double()
        if let low, let high, low > high { throw node.error("low \(low) is above high \(high)") }
        if low == nil && high == nil { throw node.error("needs low, high or both") }
        return SpecLimits(low: low, high: high)
    }
}

// MARK: - VIN

/// Vehicle identification numbers: ISO 3779 characters and check digit, as GB 16735 uses them.
public enum VINRules {
    /// Value of each allowed character (I, O and Q are not allowed).
    static let values: [UInt8: Int] = {
        var map: [UInt8: Int] = [:]
        for d in 0...9 { map[UInt8(48 + d)] = d }
        let letters: [(Character, Int)] = [("A", 1), ("B", 2), ("C", 3), ("D", 4), ("E", 5), ("F", 6), ("G", 7), ("H", 8),
                                           ("J", 1), ("K", 2), ("L", 3), ("M", 4), ("N", 5), ("P", 7), ("R", 9),
                                           ("S", 2), ("T", 3), ("U", 4), ("V", 5), ("W", 6), ("X", 7), ("Y", 8), ("Z", 9)]
        for (letter, value) in letters { map[letter.asciiValue!] = value }
        return map
    }()
    static let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

    /// The check digit a 17-character VIN should carry in position 9, or nil if a character is not allowed.
    public static func checkDigit(_ vin: String) -> Character? {
        let bytes = Array(vin.utf8)
        guard bytes.count == 17 else { return nil }
        var sum = 0
        for (i, b) in bytes.enumerated() {
            guard let v = values[b] else { return nil }
            sum += v * weights[i]
        }
        let r = sum % 11
        return r == 10 ? "X" : Character(String(r))
    }

    /// What is wrong with `vin` (nil: valid): length, a character not allowed (with its position),
    /// or the check digit (expected against found).
    public static func problem(_ vin: String) -> String? {
        let bytes = Array(vin.utf8)
        if vin.count != 17 || bytes.count != 17 {
            return "a VIN has 17 characters; \(JSON.string(vin).serialized()) has \(vin.count)"
        }
        for (i, b) in bytes.enumerated() where values[b] == nil {
            let c = Character(UnicodeScalar(b))
            let why = (c == "I" || c == "O" || c == "Q") ? " (I, O and Q are never used)"
                : (b >= 97 && b <= 122 ? " (letters are upper case)" : "")
            return "character \(i + 1) \(JSON.string(String(c)).serialized()) is not allowed in a VIN\(why); allowed: 0-9 A-H J-N P R-Z"
        }
        let expected = checkDigit(vin)!
        let found = Character(UnicodeScalar(bytes[8]))
        if expected != found {
            return "check digit (character 9) is \(found), expected \(expected) (ISO 3779 / GB 16735)"
        }
        return nil
    }
}

/// The part of a build spec that applies to one operation at one station.
public struct OperationSpec: Sendable, Equatable {
    /// Measurement name → limits, only where the spec changes the station's.
    public var limits: [String: SpecLimits]
    /// The spec's ideal cycle time at this station, if it sets one.
    public var idealCycleTimeS: Double?

    public init(limits: [String: SpecLimits] = [:], idealCycleTimeS: Double? = nil) {
        self.limits = limits
        self.idealCycleTimeS = idealCycleTimeS
    }

    public var isEmpty: Bool { limits.isEmpty && idealCycleTimeS == nil }
}

extension BuildSpec {
    /// What this spec changes at a station (nil: nothing).
    public func operationSpec(for station: StationConfig) -> OperationSpec? {
        let spec = OperationSpec(limits: limitOverrides(for: station),
                                 idealCycleTimeS: idealCycleTimeS[station.id].flatMap { $0 == station.idealCycleTimeS ? nil : $0 })
        return spec.isEmpty ? nil : spec
    }
}
