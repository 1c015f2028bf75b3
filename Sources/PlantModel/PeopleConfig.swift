import Foundation
import Runtime

/// People, who owns what, and when they are told (docs/CONFIG.md `people`, `responsibility`, `due`,
/// `notify`). Every block is optional; an empty value changes nothing in the server's behaviour.
public struct PeopleConfig: Sendable, Equatable {
    public var people: [Person] = []
    public var responsibility: [ResponsibilityRule] = []
    /// Minutes by severity name (`critical`, `high`, `medium`, `low`) to acknowledge an alert or resolve a defect.
    public var dueMinutes: [String: Int] = [:]
    public var notify = NotifySettings()

    public init() {}

    /// Severity names, lowest first (the same ladder as alerts and defects).
    public static let severities = ["low", "medium", "high", "critical"]
    /// What `responsibility[].types` may name: alert types and `defect`.
    public static let itemTypes: Set<String> = ["kpi", "anomaly", "quality", "connection", "sequence", "part", "andon", "defect"]

    /// The rank of a severity name (low 0 … critical 3), nil if unknown.
    public static func rank(_ severity: String) -> Int? { severities.firstIndex(of: severity) }

    public func person(_ user: String) -> Person? { people.first { $0.user == user } }

    /// The first rule that matches an item (docs/CONFIG.md `responsibility`), or nil.
    public func rule(station: String?, process: String?, type: String, severity: String) -> ResponsibilityRule? {
        responsibility.first { $0.matches(station: station, process: process, type: type, severity: severity) }
    }

    /// True when nobody is configured (the server then behaves as without these blocks).
    public var isEmpty: Bool { people.isEmpty && responsibility.isEmpty }
}

/// A person who can own items and be notified.
public struct Person: Sendable, Equatable {
    public var user: String
    public var name: String
    public var notify: [NotifyChannel]

    public init(user: String, name: String, notify: [NotifyChannel]) {
        self.user = user
        self.name = name
        self.notify = notify
    }
}

/// Where a notification goes: a generic JSON webhook, a WeCom group robot or a DingTalk robot.
public struct NotifyChannel: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case webhook, wecom, dingtalk
    }

    public var type: Kind
    public var url: HTTPURL
    /// PEM certificates this channel's `https://` receiver is verified against instead of the
    /// system's CA store (an absolute path; nil: `notify.caFile`, else the system store).
    public var caFile: String?

    public init(type: Kind, url: HTTPURL, caFile: String? = nil) {
        self.type = type
        self.url = url
        self.caFile = caFile
    }
}

/// An `http://host[:port]/path` address (delivery speaks plain HTTP/1.1 only; the host is an IPv4
/// address or `localhost`, no name lookup).
public struct HTTPURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    /// The path with its query, starting with `/`.
    public var path: String
    /// `https://`: the request goes over TLS, the receiver's certificate verified for `host`.
    public var secure: Bool

    public init(host: String, port: UInt16, path: String, secure: Bool = false) {
        self.host = host
        self.port = port
        self.path = path
        self.secure = secure
    }

    public var description: String { "\(secure ? "https" : "http")://\(host):\(port)\(path)" }

    /// Whether `host` is a dotted IPv4 address (else a name, looked up when connecting).
    public var hostIsIPv4: Bool {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }

    /// Parses `http://host[:port][/path]` or `https://…` (port 443 by default); the host is an
    /// IPv4 address or a DNS name. The reason when it cannot.
    public static func parse(_ text: String) -> Result<HTTPURL, EndpointParseError> {
        let secure = text.hasPrefix("https://")
        guard secure || text.hasPrefix("http://") else {
            return .failure(EndpointParseError("\(quoted(text)) is not an http:// or https:// address"))
        }
        let rest = text.dropFirst(secure ? "https://".count : "http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.isEmpty, !authority.contains("@") else {
            return .failure(EndpointParseError("\(quoted(text)) has no host (or has user info)"))
        }
        var host = String(authority)
        var port: UInt16 = secure ? 443 : 80
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = UInt16(authority[authority.index(after: colon)...]), p > 0 else {
                return .failure(EndpointParseError("\(quoted(text)) has no valid port"))
            }
            port = p
        }
        guard !host.isEmpty, !path.contains(" "), !path.contains("\r"), !path.contains("\n") else {
            return .failure(EndpointParseError("\(quoted(text)) is not a valid \(secure ? "https" : "http"):// address"))
        }
        let url = HTTPURL(host: host, port: port, path: path, secure: secure)
        // Not an IPv4 address: a DNS name (letters, digits, '-', dots between labels).
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let isName = host.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
        let looksNumeric = labels.allSatisfy { $0.allSatisfy(\.isNumber) }
        guard url.hostIsIPv4 || (isName && !looksNumeric) else {
            return .failure(EndpointParseError("host \(quoted(host)) is neither an IPv4 address nor a DNS name"))
        }
        return .success(url)
    }
}

/// Who owns an item: the first rule whose filters all match (an absent filter matches everything).
public struct ResponsibilityRule: Sendable, Equatable {
    /// A station id glob (`*` any run, `?` one character).
    public var station: String?
    public var process: String?
    /// Alert types and/or `defect`.
    public var types: Set<String>?
    /// The lowest severity the rule applies to.
    public var severity: String?
    public var owner: String
    public var escalation: [String]

    public init(station: String? = nil, process: String? = nil, types: Set<String>? = nil, severity: String? = nil,
                owner: String, escalation: [String] = []) {
        self.station = station
        self.process = process
        self.types = types
        self.severity = severity
        self.owner = owner
        self.escalation = escalation
    }

    public func matches(station itemStation: String?, process itemProcess: String?, type: String, severity itemSeverity: String) -> Bool {
        if let station {
            guard let itemStation, Self.glob(station, matches: itemStation) else { return false }
        }
        if let process, process != itemProcess { return false }
        if let types, !types.contains(type) { return false }
        if let severity, let least = PeopleConfig.rank(severity) {
            guard let rank = PeopleConfig.rank(itemSeverity), rank >= least else { return false }
        }
        return true
    }

    /// `*` matches any run of characters, `?` exactly one; everything else itself.
    public static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// The `notify` block.
public struct NotifySettings: Sendable, Equatable {
    /// Raised alerts of this severity or above are notified (default `high`).
    public var minSeverity = "high"
    /// Prefix of the `link` in a notification (e.g. `http://mes.plant.local:8080`); empty gives a path.
    public var baseUrl = ""
    /// PEM certificates every `https://` receiver without a `caFile` of its own is verified
    /// against instead of the system's CA store (an absolute path; nil: the system store).
    public var caFile: String?

    public init() {}
}

extension PeopleConfig {
    /// Decodes `people`, `responsibility`, `due` and `notify` from the config's root object.
    static func decode(root: ConfigNode, route: [String], directory: URL) throws -> PeopleConfig {
        var config = PeopleConfig()
        /// A `caFile`: relative to the config's folder, readable, with at least one PEM certificate.
        func caFile(_ node: ConfigNode) throws -> String {
            let name = try node.nonEmptyString()
            let path = name.hasPrefix("/") ? name : directory.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path) else { throw node.error("cannot read \(quoted(path))") }
            guard String(decoding: data, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
                throw node.error("\(quoted(path)) holds no PEM certificate")
            }
            return path
        }
        if let node = try root.optional("people") {
            for element in try node.elements() {
                try element.rejectUnknownKeys(["user", "name", "notify"])
                let userNode = try element.required("user")
                let user = try userNode.nonEmptyString()
                if config.person(user) != nil { throw userNode.error("user \(quoted(user)) is listed twice") }
                let name = try element.optional("name")?.string() ?? user
                var channels: [NotifyChannel] = []
                if let list = try element.optional("notify") {
                    for channelNode in try list.elements() {
                        try channelNode.rejectUnknownKeys(["type", "url", "caFile"])
                        let typeNode = try channelNode.required("type")
                        let typeName = try typeNode.string()
                        guard let type = NotifyChannel.Kind(rawValue: typeName) else {
                            throw typeNode.error("\(quoted(typeName)) is not a channel type (webhook, wecom, dingtalk)")
                        }
                        let urlNode = try channelNode.required("url")
                        let url: HTTPURL
                        switch HTTPURL.parse(try urlNode.string()) {
                        case .success(let parsed): url = parsed
                        case .failure(let error): throw urlNode.error(error.message)
                        }
                        var ca: String?
                        if let node = try channelNode.optional("caFile") {
                            guard url.secure else { throw node.error("caFile needs an https:// url") }
                            ca = try caFile(node)
                        }
                        channels.append(NotifyChannel(type: type, url: url, caFile: ca))
                    }
                }
                config.people.append(Person(user: user, name: name, notify: channels))
            }
        }
        let known = Set(config.people.map(\.user))
        func checkUser(_ node: ConfigNode) throws -> String {
            let user = try node.nonEmptyString()
            guard known.contains(user) else { throw node.error("\(quoted(user)) is not in people") }
            return user
        }
        func severity(_ node: ConfigNode) throws -> String {
            let name = try node.string()
            guard rank(name) != nil else { throw node.error("\(quoted(name)) is not a severity (low, medium, high, critical)") }
            return name
        }
        if let node = try root.optional("responsibility") {
            for element in try node.elements() {
                try element.rejectUnknownKeys(["station", "process", "types", "severity", "owner", "escalation"])
                var rule = ResponsibilityRule(owner: try checkUser(element.required("owner")))
                if let station = try element.optional("station") { rule.station = try station.nonEmptyString() }
                if let processNode = try element.optional("process") {
                    let process = try processNode.nonEmptyString()
                    guard route.contains(process) else {
                        throw processNode.error("\(quoted(process)) is not on the route (\(route.joined(separator: ", ")))")
                    }
                    rule.process = process
                }
                if let typesNode = try element.optional("types") {
                    var types = Set<String>()
                    for typeNode in try typesNode.elements() {
                        let type = try typeNode.string()
                        guard itemTypes.contains(type) else {
                            throw typeNode.error("\(quoted(type)) is not an alert type or defect (\(itemTypes.sorted().joined(separator: ", ")))")
                        }
                        types.insert(type)
                    }
                    rule.types = types
                }
                if let severityNode = try element.optional("severity") { rule.severity = try severity(severityNode) }
                if let escalation = try element.optional("escalation") {
                    rule.escalation = try escalation.elements().map(checkUser)
                }
                config.responsibility.append(rule)
            }
        }
        if let node = try root.optional("due") {
            for (key, value) in try node.members() {
                guard rank(key) != nil else { throw value.error("is not a severity (low, medium, high, critical)") }
                config.dueMinutes[key] = try value.int(in: 1...525_600)
            }
        }
        if let node = try root.optional("notify") {
            try node.rejectUnknownKeys(["minSeverity", "baseUrl", "caFile"])
            if let ca = try node.optional("caFile") { config.notify.caFile = try caFile(ca) }
            if let minSeverity = try node.optional("minSeverity") { config.notify.minSeverity = try severity(minSeverity) }
            if let base = try node.optional("baseUrl") {
                var text = try base.string()
                while text.hasSuffix("/") { text.removeLast() }
                config.notify.baseUrl = text
            }
        }
        return config
    }
}
