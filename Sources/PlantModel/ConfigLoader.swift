import Foundation
import Runtime

extension PlantConfig {
    /// Reads and validates a plant config file. The error names the file, the JSON path and the problem.
    public static func load(path: String) throws -> PlantConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, path: "", message: "cannot be read (no such file, or no permission)")
        }
        let json: JSON
        do {
            json = try data.withUnsafeBytes { try JSON.parse(bytes: $0) }
        } catch let error as JSONParseError {
            let (line, column) = lineAndColumn(data: data, offset: error.offset)
            throw ConfigError(file: path, path: "", message: "line \(line), column \(column): \(error.reason)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try decode(json: json, file: path, directory: directory)
    }

    static func lineAndColumn(data: Data, offset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for (i, byte) in data.enumerated() where i < offset {
            if byte == 10 { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    /// Decodes a config from parsed JSON (tests, embedded configs).
    public static func decode(json: JSON, file: String, directory: URL) throws -> PlantConfig {
        let root = ConfigNode(json: json, path: "", file: file)
        try root.rejectUnknownKeys(["plant", "timezone", "route", "shifts", "auth", "stations", "limits", "alerts",
                                    "retentionDays", "description", "people", "responsibility", "due", "notify", "allowedHosts",
                                    "vin", "orders", "models", "options", "downtimeReasons", "gate", "reports", "pki",
                                    "leaseS"])
        let plant = try root.optional("plant")?.nonEmptyString() ?? "Plant"

        var timezone = TimeZone.current
        if let node = try root.optional("timezone") {
            let name = try node.string()
            guard let zone = TimeZone(identifier: name) else { throw node.error("\(quoted(name)) is not an IANA time zone name") }
            timezone = zone
        }

        let routeNode = try root.required("route")
        var route: [String] = []
        for element in try routeNode.elements() {
            let process = try element.nonEmptyString()
            if route.contains(process) { throw element.error("\(quoted(process)) is on the route twice") }
            route.append(process)
        }
        if route.isEmpty { throw routeNode.error("must list at least one process") }

        var shifts: [Shift] = []
        if let node = try root.optional("shifts") {
            for element in try node.elements() {
                try element.rejectUnknownKeys(["name", "start", "end", "breaks"])
                let name = try element.required("name").nonEmptyString()
                let start = try parseClock(element.required("start"))
                let end = try parseClock(element.required("end"))
                if start == end { throw element.error("start and end are both \(Shift.clock(start))") }
                if shifts.contains(where: { $0.name == name }) { throw try element.required("name").error("shift \(quoted(name)) is defined twice") }
                var shift = Shift(name: name, startMinute: start, endMinute: end)
                if let breaks = try element.optional("breaks") { shift.breaks = try decodeBreaks(breaks, of: shift) }
                shifts.append(shift)
            }
        }

        var auth: AuthConfig?
        if let node = try root.optional("auth") {
            try node.rejectUnknownKeys(["tokensFile", "anonymousRead"])
            var tokensFile: String?
            if let file = try node.optional("tokensFile")?.nonEmptyString() {
                tokensFile = file.hasPrefix("/") ? file : directory.appendingPathComponent(file).path
            }
            auth = AuthConfig(tokensFile: tokensFile, anonymousRead: try node.optional("anonymousRead")?.bool() ?? true)
        }

        var limits = ServerLimits()
        if let node = try root.optional("limits") {
            try node.rejectUnknownKeys(["maxSseClients", "maxBodyBytes", "maxHeaderBytes", "bodyTimeoutS", "maxBufferedBodyBytes",
                                        "sseQueueKiB", "sseTotalQueueMiB", "maxConnections"])
            if let n = try node.optional("maxSseClients") { limits.maxSseClients = try n.int(in: 0...1_000_000) }
            if let n = try node.optional("maxBodyBytes") { limits.maxBodyBytes = try n.int(in: 1...1_073_741_824) }
            if let n = try node.optional("maxHeaderBytes") { limits.maxHeaderBytes = try n.int(in: 256...1_048_576) }
            if let n = try node.optional("bodyTimeoutS") { limits.bodyTimeoutS = try n.double(in: 0.1...3600) }
            if let n = try node.optional("maxBufferedBodyBytes") { limits.maxBufferedBodyBytes = try n.int(in: 1...17_179_869_184) }
            if let n = try node.optional("sseQueueKiB") { limits.sseQueueKiB = try n.int(in: 1...1_048_576) }
            if let n = try node.optional("sseTotalQueueMiB") { limits.sseTotalQueueMiB = try n.int(in: 1...1_048_576) }
            if let n = try node.optional("maxConnections") { limits.maxConnections = try n.int(in: 1...10_000_000) }
            if limits.maxBufferedBodyBytes < limits.maxBodyBytes {
                throw try node.optional("maxBufferedBodyBytes")?.error("is below maxBodyBytes (\(limits.maxBodyBytes)): no body of the largest size could arrive")
                    ?? node.error("maxBufferedBodyBytes (default \(limits.maxBufferedBodyBytes)) is below maxBodyBytes \(limits.maxBodyBytes)")
            }
        }

        var allowedHosts: [String]?
        if let node = try root.optional("allowedHosts") {
            var hosts: [String] = []
            for element in try node.elements() {
                let host = try element.nonEmptyString().lowercased()
                guard !host.contains(":") || host.hasPrefix("["), !host.contains("/"), !host.contains(" ") else {
                    throw element.error("\(quoted(host)) is not a host name (give it without a port or scheme)")
                }
                hosts.append(host.hasPrefix("[") ? String(host.dropFirst().prefix(while: { $0 != "]" })) : host)
            }
            allowedHosts = hosts
        }

        let retentionDays = try root.optional("retentionDays")?.double(in: 0.001...3650) ?? 7

        let stationsNode = try root.required("stations")
        var stations: [StationConfig] = []
        for element in try stationsNode.elements() {
            let station = try decodeStation(element, route: route)
            if stations.contains(where: { $0.id == station.id }) {
                throw try element.required("id").error("station id \(quoted(station.id)) is used twice")
            }
            stations.append(station)
        }
        try checkEndpointsUnique(stations, node: stationsNode)

        var config = PlantConfig(plant: plant, timezone: timezone, route: route, shifts: shifts, auth: auth,
                                 stations: stations, limits: limits, alertRules: try root.optional("alerts"),
                                 retentionDays: retentionDays, directory: directory, file: file)
        config.people = try PeopleConfig.decode(root: root, route: route, directory: directory)
        config.allowedHosts = allowedHosts
        if let node = try root.optional("pki") {
            let folder = try node.nonEmptyString()
            config.pki = folder.hasPrefix("/") ? folder : directory.appendingPathComponent(folder).path
        }
        try decodeMasterData(root, into: &config)
        config.downtimeReasons = try DowntimeReason.decode(root.optional("downtimeReasons"))
        // Two nodes on one PostgreSQL database (README "Two nodes"); a SQLite server ignores it.
        config.leaseS = try root.optional("leaseS")?.double(in: 2...600) ?? 5
        if let node = try root.optional("gate") {
            try node.rejectUnknownKeys(["holdOnOpenDefects"])
            config.gate = GateConfig(holdOnOpenDefects: try node.optional("holdOnOpenDefects")?.bool() ?? false)
        }
        if let node = try root.optional("reports") {
            try node.rejectUnknownKeys(["equipmentEveryH", "to"])
            config.reports.equipmentEveryH = try node.optional("equipmentEveryH")?.double(in: 0.01...8760)
            if let to = try node.optional("to") {
                for element in try to.elements() {
                    let user = try element.nonEmptyString()
                    guard config.people.person(user) != nil else { throw element.error("\(quoted(user)) is not in the config's people") }
                    config.reports.to.append(user)
                }
            }
            if config.reports.equipmentEveryH != nil && config.reports.to.isEmpty {
                throw node.error("equipmentEveryH needs the people to send the report to (to)")
            }
        }
        return config
    }

    /// `shifts[i].breaks`: `[{start, end}]` inside the shift (a break may cross midnight with a
    /// night shift), not overlapping; returned in time order.
    static func decodeBreaks(_ node: ConfigNode, of shift: Shift) throws -> [ShiftBreak] {
        var breaks: [(from: Int, to: Int, value: ShiftBreak, node: ConfigNode)] = []
        let span = "\(Shift.clock(shift.startMinute))–\(Shift.clock(shift.endMinute))"
        for element in try node.elements() {
            try element.rejectUnknownKeys(["start", "end"])
            let startNode = try element.required("start"), endNode = try element.required("end")
            let start = try parseClock(startNode), end = try parseClock(endNode)
            if start == end { throw element.error("start and end are both \(Shift.clock(start))") }
            let from = shift.offset(ofMinute: start)
            var to = shift.offset(ofMinute: end)
            if to == 0 { to = 1440 }
            if from >= shift.durationMinutes {
                throw startNode.error("\(Shift.clock(start)) is not inside shift \(quoted(shift.name)) (\(span))")
            }
            if to <= from || to > shift.durationMinutes {
                throw endNode.error("\(Shift.clock(end)) is not inside shift \(quoted(shift.name)) (\(span)) after the break's start \(Shift.clock(start))")
            }
            if let other = breaks.first(where: { from < $0.to && $0.from < to }) {
                throw element.error("overlaps the break \(Shift.clock(other.value.startMinute))–\(Shift.clock(other.value.endMinute))")
            }
            breaks.append((from, to, ShiftBreak(startMinute: start, endMinute: end), element))
        }
        return breaks.sorted { $0.from < $1.from }.map(\.value)
    }

    /// Key part signals of one station: one `partSerial` per part type, and a `partNumber` only
    /// beside the `partSerial` of its type.
    static func checkPartSignals(_ signals: [SignalConfig], node: ConfigNode) throws {
        var serialTypes = Set<String>(), numberTypes = Set<String>()
        for (i, signal) in signals.enumerated() {
            guard let type = signal.partType else { continue }
            let path = "\(node.path).signals[\(i)].partType"
            if signal.role == .partSerial {
                guard serialTypes.insert(type).inserted else {
                    throw ConfigError(file: node.file, path: path, message: "a second partSerial signal for part type \(quoted(type))")
                }
            } else {
                guard numberTypes.insert(type).inserted else {
                    throw ConfigError(file: node.file, path: path, message: "a second partNumber signal for part type \(quoted(type))")
                }
            }
        }
        for (i, signal) in signals.enumerated() where signal.role == .partNumber {
            if let type = signal.partType, !serialTypes.contains(type) {
                throw ConfigError(file: node.file, path: "\(node.path).signals[\(i)].partType",
                                  message: "no partSerial signal of this station has part type \(quoted(type))")
            }
        }
    }

    static func parseClock(_ node: ConfigNode) throws -> Int {
        let text = try node.string()
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0..<24).contains(h), (0..<60).contains(m) else {
            throw node.error("\(quoted(text)) is not a time of day HH:MM")
        }
        return h * 60 + m
    }

    static func checkEndpointsUnique(_ stations: [StationConfig], node: ConfigNode) throws {
        var seen: [String: String] = [:]
        for (index, station) in stations.enumerated() {
            let key: String
            switch station.endpoint {
            case let .modbusTCP(host, port, unit): key = "tcp:\(host):\(port):\(unit)"
            case let .modbusRTU(device, _, _, _, _, unit): key = "rtu:\(device):\(unit)"
            case let .opcua(_, host, port): key = "opcua:\(host):\(port)"
            }
            if let other = seen[key] {
                throw ConfigError(file: node.file, path: "stations[\(index)].endpoint",
                                  message: "\(station.endpoint) is already the endpoint of station \(other)")
            }
            seen[key] = station.id
        }
    }

    static func decodeStation(_ node: ConfigNode, route: [String]) throws -> StationConfig {
        try node.rejectUnknownKeys(["id", "name", "process", "protocol", "endpoint", "pollIntervalMs", "idealCycleTimeS",
                                    "subscribe", "signals", "timeoutMs", "offlineAlertAfterS", "description",
                                    "modbusDriver", "security"])
        let idNode = try node.required("id")
        let id = try idNode.nonEmptyString()
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw idNode.error("\(quoted(id)) may hold only letters, digits, '-', '_' and '.'")
        }
        let name = try node.optional("name")?.string() ?? id
        let processNode = try node.required("process")
        let process = try processNode.nonEmptyString()
        // A process off the route (utilities: compressors, ovens, air handling) carries meters and
        // equipment only: checked once its signals are known.
        let onRoute = route.contains(process)
        let protocolNode = try node.required("protocol")
        let protocolText = try protocolNode.string()
        guard let proto = StationProtocol(rawValue: protocolText) else {
            throw protocolNode.error("\(quoted(protocolText)) is not a protocol (modbus, opcua)")
        }
        let endpointNode = try node.required("endpoint")
        let endpoint: Endpoint
        switch Endpoint.parse(try endpointNode.string()) {
        case .success(let e): endpoint = e
        case .failure(let e): throw endpointNode.error(e.message)
        }
        switch (proto, endpoint) {
        case (.modbus, .modbusTCP), (.modbus, .modbusRTU), (.opcua, .opcua): break
        default: throw endpointNode.error("\(quoted(endpoint.description)) does not fit protocol \(proto.rawValue)")
        }
        let poll = try node.optional("pollIntervalMs")?.int(in: 1...3_600_000) ?? 100
        let ideal = try node.optional("idealCycleTimeS")?.double(in: 0.001...86_400)
        let subscribe = try node.optional("subscribe")?.bool() ?? false
        if subscribe && proto != .opcua {
            throw try node.required("subscribe").error("subscriptions are an OPC UA feature; this station speaks \(proto.rawValue)")
        }
        let timeout = try node.optional("timeoutMs")?.int(in: 1...600_000) ?? 1000
        let offlineAfter = try node.optional("offlineAlertAfterS")?.double(in: 0...86_400) ?? 5
        var driver = ModbusDriver.eventLoop
        if let driverNode = try node.optional("modbusDriver") {
            let text = try driverNode.string()
            guard let chosen = ModbusDriver(rawValue: text) else {
                throw driverNode.error("\(quoted(text)) is not a Modbus driver (loop, libmodbus)")
            }
            guard case .modbusTCP = endpoint else {
                throw driverNode.error("modbusDriver applies to Modbus TCP stations; this endpoint is \(endpoint.description)")
            }
            driver = chosen
        }

        var security: OPCUASecurityConfig?
        if let securityNode = try node.optional("security") {
            guard proto == .opcua else { throw securityNode.error("security applies to OPC UA stations; this station speaks \(proto.rawValue)") }
            security = try OPCUASecurityConfig.decode(securityNode)
        }

        var signals: [SignalConfig] = []
        for element in try node.required("signals").elements() {
            let signal = try decodeSignal(element, protocol: proto)
            if signals.contains(where: { $0.name == signal.name }) {
                throw try element.required("name").error("signal \(quoted(signal.name)) is defined twice in this station")
            }
            signals.append(signal)
        }
        try checkPartSignals(signals, node: node)
        if !onRoute {
            let routeText = route.joined(separator: ", ")
            if let index = signals.firstIndex(where: { $0.role.map(SignalRole.productionRoles.contains) == true }) {
                throw processNode.error("\(quoted(process)) is not on the route (\(routeText)): a station off the route carries meters and equipment only (roles state, faultCode, energy, power, condition), but signals[\(index)] \(quoted(signals[index].name)) has role \(signals[index].role!.rawValue)")
            }
            if !signals.contains(where: { $0.role == .energy || $0.role == .power || $0.role == .condition }) {
                throw processNode.error("\(quoted(process)) is not on the route (\(routeText)); a station off the route (utilities) needs an energy, power or condition signal")
            }
        }
        for role in [SignalRole.vehicleId, .cycleComplete, .result, .state, .faultCode, .andon] {
            let named = signals.filter { $0.role == role }
            if named.count > 1 {
                throw ConfigError(file: node.file, path: "\(node.path).signals",
                                  message: "more than one signal has role \(role.rawValue) (\(named.map(\.name).joined(separator: ", ")))")
            }
        }
        var station = StationConfig(id: id, name: name, process: process, protocol: proto, endpoint: endpoint,
                                    pollIntervalMs: poll, idealCycleTimeS: ideal, subscribe: subscribe, timeoutMs: timeout,
                                    offlineAlertAfterS: offlineAfter, signals: signals)
        station.modbusDriver = driver
        station.security = security
        return station
    }

    static func decodeSignal(_ node: ConfigNode, protocol proto: StationProtocol) throws -> SignalConfig {
        try node.rejectUnknownKeys(["name", "role", "address", "node", "type", "length", "wordOrder", "scale", "offset",
                                    "unit", "limits", "okValues", "states", "deadband", "description", "calls", "partType", "group"])
        let name = try node.required("name").nonEmptyString()
        var signal = SignalConfig(name: name)
        if let roleNode = try node.optional("role") {
            let text = try roleNode.string()
            guard let role = SignalRole(rawValue: text) else {
                throw roleNode.error("\(quoted(text)) is not a role (\(SignalRole.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            signal.role = role
        }
        if let typeNode = try node.optional("type") {
            let text = try typeNode.string()
            guard let type = DataType(rawValue: text) else {
                throw typeNode.error("\(quoted(text)) is not a type (\(DataType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if proto == .modbus && !DataType.modbusTypes.contains(type) {
                throw typeNode.error("\(quoted(text)) is not a Modbus type (\(DataType.modbusTypes.map(\.rawValue).joined(separator: ", ")))")
            }
            signal.type = type
        }
        switch proto {
        case .modbus:
            let addressNode = try node.required("address")
            let text = try addressNode.string()
            guard let address = ModbusAddress.parse(text) else {
                throw addressNode.error("\(quoted(text)) is not a register address (hr:N, ir:N, coil:N or di:N, N from 0 to 65535)")
            }
            signal.address = address
            guard let type = signal.type else { throw ConfigError(file: node.file, path: "\(node.path).type", message: "is required for a Modbus signal") }
            if !address.table.isRegister && type != .bool {
                throw try node.required("type").error("\(address.table.rawValue) holds single bits: the type must be bool, not \(type.rawValue)")
            }
            if address.table.isRegister && type == .bool {
                // A register read as a boolean: non-zero is true. Allowed.
            }
            if try node.optional("node") != nil { throw try node.required("node").error("a Modbus signal has an address, not a node") }
        case .opcua:
            let nodeNode = try node.required("node")
            let text = try nodeNode.nonEmptyString()
            guard NodeIdText.isValid(text) else {
                throw nodeNode.error("\(quoted(text)) is not a NodeId (ns=2;s=Name, ns=2;i=1007, ns=3;g=GUID, ns=1;b=BASE64, i=2258)")
            }
            signal.node = text
            if try node.optional("address") != nil { throw try node.required("address").error("an OPC UA signal has a node, not an address") }
        }
        if let lengthNode = try node.optional("length") {
            signal.length = try lengthNode.int(in: 1...250)
        }
        if signal.type == .string && proto == .modbus && signal.length == nil {
            throw ConfigError(file: node.file, path: "\(node.path).length", message: "is required for a Modbus string")
        }
        if let orderNode = try node.optional("wordOrder") {
            let text = try orderNode.string()
            guard let order = WordOrder(rawValue: text.lowercased()) else {
                throw orderNode.error("\(quoted(text)) is not a word order (abcd, cdab, badc, dcba)")
            }
            signal.wordOrder = order
        }
        if let address = signal.address, address.index + signal.registerCount - 1 > 65535 {
            throw try node.required("address").error("\(address) with \(signal.registerCount) registers runs past 65535")
        }
        signal.scale = try node.optional("scale")?.double()
        signal.offset = try node.optional("offset")?.double()
        signal.unit = try node.optional("unit")?.string()
        if let limitsNode = try node.optional("limits") {
            try limitsNode.rejectUnknownKeys(["low", "high"])
            let low = try limitsNode.optional("low")?.double()
            let high = try limitsNode.optional("high")?.double()
            if let low, let high, low > high { throw limitsNode.error("low \(low) is above high \(high)") }
            if low == nil && high == nil { throw limitsNode.error("needs low, high or both") }
            signal.limits = SpecLimits(low: low, high: high)
        }
        if let okNode = try node.optional("okValues") {
            signal.okValues = try okNode.elements().map { Int64(try $0.int()) }
            if signal.okValues.isEmpty { throw okNode.error("must list at least one value") }
        }
        if let statesNode = try node.optional("states") {
            var states: [Int64: String] = [:]
            for (key, value) in try statesNode.members() {
                guard let code = Int64(key) else { throw value.error("\(quoted(key)) is not a numeric state code") }
                let name = try value.string()
                guard MachineState(rawValue: name) != nil else {
                    throw value.error("\(quoted(name)) is not a state (\(MachineState.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                states[code] = name
            }
            signal.states = states
        }
        if let deadbandNode = try node.optional("deadband") { signal.deadband = try deadbandNode.double(in: 0...1e12) }
        if let callsNode = try node.optional("calls") {
            guard signal.role == .andon else { throw callsNode.error("calls belong to a signal with role andon") }
            var calls: [Int64: String] = [:]
            for (key, value) in try callsNode.members() {
                guard let code = Int64(key), code != 0 else { throw value.error("\(quoted(key)) is not a call code (a whole number other than 0)") }
                let kind = try value.nonEmptyString()
                guard kind.unicodeScalars.count <= 32, kind.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                    throw value.error("\(quoted(kind)) is not a call kind (up to 32 letters, digits, '-' or '_')")
                }
                calls[code] = kind
            }
            if calls.isEmpty { throw callsNode.error("must map at least one code to a kind of call") }
            signal.calls = calls
        }
        if let typeNode = try node.optional("partType") {
            guard signal.role == .partSerial || signal.role == .partNumber else {
                throw typeNode.error("only a partSerial or partNumber signal has a partType")
            }
            let type = try typeNode.nonEmptyString()
            guard type.count <= 64, type.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                throw typeNode.error("\(quoted(type)) is not a part type (1 to 64 letters, digits, '-', '_' or '.')")
            }
            signal.partType = type
        } else if signal.role == .partSerial || signal.role == .partNumber {
            throw ConfigError(file: node.file, path: "\(node.path).partType", message: "is required for a \(signal.role!.rawValue) signal (e.g. \"engine\")")
        }
        if let groupNode = try node.optional("group") {
            guard signal.role == .condition else {
                throw groupNode.error("a peer group belongs to a signal with role condition, not \(signal.role?.rawValue ?? "no role")")
            }
            signal.group = try groupNode.nonEmptyString()
        }
        if signal.role == .energy || signal.role == .power || signal.role == .condition, signal.type == .string || signal.type == .bool {
            throw try node.required("type").error("a \(signal.role!.rawValue) signal is a number, not \(signal.type!.rawValue)")
        }
        return signal
    }
}

/// Checks the text forms of OPC UA NodeIds without depending on the OPC UA module.
public enum NodeIdText {
    public static func isValid(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.hasPrefix("ns=") {
            guard let semicolon = rest.firstIndex(of: ";"), let ns = UInt16(rest[rest.index(rest.startIndex, offsetBy: 3)..<semicolon]) else { return false }
            _ = ns
            rest = rest[rest.index(after: semicolon)...]
        } else if rest.hasPrefix("nsu=") {
            guard let semicolon = rest.firstIndex(of: ";") else { return false }
            rest = rest[rest.index(after: semicolon)...]
        }
        guard rest.count >= 2 else { return false }
        let kind = rest.prefix(2)
        let value = rest.dropFirst(2)
        switch kind {
        case "i=": return UInt32(value) != nil
        case "s=": return !value.isEmpty
        case "g=": return UUID(uuidString: String(value)) != nil
        case "b=": return Data(base64Encoded: String(value)) != nil
        default: return false
        }
    }
}
