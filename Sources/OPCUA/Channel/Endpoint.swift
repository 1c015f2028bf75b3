import Foundation

/// A parsed `opc.tcp://host:port/path` endpoint URL.
public struct EndpointURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var path: String

    public init(host: String, port: UInt16, path: String = "") {
        self.host = host
        self.port = port
        self.path = path
    }

    /// Parses `opc.tcp://HOST[:PORT][/path]`; the port defaults to 4840.
    public init?(_ text: String) {
        let prefix = "opc.tcp://"
        guard text.lowercased().hasPrefix(prefix) else { return nil }
        var rest = Substring(text.dropFirst(prefix.count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port: UInt16 = 4840
        if let colon = rest.lastIndex(of: ":") {
            guard let parsed = UInt16(rest[rest.index(after: colon)...]) else { return nil }
            port = parsed
            host = String(rest[..<colon])
        }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port, path: path)
    }

    public var description: String { "opc.tcp://\(host):\(port)\(path)" }
}
