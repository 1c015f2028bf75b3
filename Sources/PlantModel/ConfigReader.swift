import Foundation
import Runtime

/// A configuration problem: the file, the JSON path and what is wrong with it.
///
/// Its description is the one line the server prints before it exits:
/// `Stations/plant.json: stations[3].signals[2].address: "hr:-1" is not a register address`.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var path: String
    public var message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}

/// A JSON value together with its path in the file, for decoding with precise errors.
///
/// Other modules (quality rules, scenarios) decode their own config blocks with it.
public struct ConfigNode: Sendable {
    public let json: JSON
    public let path: String
    public let file: String

    public init(json: JSON, path: String, file: String) {
        self.json = json
        self.path = path
        self.file = file
    }

    /// An error about this node.
    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, path: path, message: message)
    }

    /// `path.key`, or `path["key"]` (JSON-quoted) for a key that is not a plain name, so a key
    /// holding a newline or a dot cannot break or confuse the one-line error.
    func childPath(_ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 45 || $0 == 46 }
        if plain { return path.isEmpty ? key : "\(path).\(key)" }
        return "\(path)[\(quoted(key))]"
    }

    /// The member `key`, or nil if absent or null. Throws if this node is not an object.
    public func optional(_ key: String) throws -> ConfigNode? {
        guard case .object = json else { throw error("must be an object, not \(json.kindName)") }
        guard let value = json[key], !value.isNull else { return nil }
        return ConfigNode(json: value, path: childPath(key), file: file)
    }

    /// The member `key`; throws naming its path if absent.
    public func required(_ key: String) throws -> ConfigNode {
        guard let node = try optional(key) else {
            throw ConfigError(file: file, path: childPath(key), message: "is required")
        }
        return node
    }

    /// The elements of an array, each with its `[i]` path.
    public func elements() throws -> [ConfigNode] {
        guard case .array(let items) = json else { throw error("must be an array, not \(json.kindName)") }
        return items.enumerated().map { ConfigNode(json: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// The members of an object, each with its path.
    public func members() throws -> [(String, ConfigNode)] {
        guard case .object(let items) = json else { throw error("must be an object, not \(json.kindName)") }
        return items.map { ($0.0, ConfigNode(json: $0.1, path: childPath($0.0), file: file)) }
    }

    public func string() throws -> String {
        guard case .string(let s) = json else { throw error("must be a string, not \(json.kindName)") }
        return s
    }

    public func nonEmptyString() throws -> String {
        let s = try string()
        guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw error("must not be empty") }
        return s
    }

    public func bool() throws -> Bool {
        guard case .bool(let b) = json else { throw error("must be true or false, not \(json.kindName)") }
        return b
    }

    public func double() throws -> Double {
        guard let d = json.doubleValue, d.isFinite else { throw error("must be a number, not \(json.kindName)") }
        return d
    }

    public func int() throws -> Int {
        guard let i = json.intValue, let v = Int(exactly: i) else {
            throw error(json.doubleValue != nil ? "must be a whole number, not \(json.serialized())" : "must be a whole number, not \(json.kindName)")
        }
        return v
    }

    /// A number within `range` (inclusive).
    public func double(in range: ClosedRange<Double>) throws -> Double {
        let d = try double()
        guard range.contains(d) else { throw error("\(json.serialized()) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return d
    }

    public func int(in range: ClosedRange<Int>) throws -> Int {
        let i = try int()
        guard range.contains(i) else { throw error("\(i) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return i
    }

    /// Fails for any member not in `known` (catches typos such as `pollIntervalMS`).
    public func rejectUnknownKeys(_ known: Set<String>) throws {
        for (key, _) in try members() where !known.contains(key) {
            throw ConfigError(file: file, path: childPath(key), message: "is not a known setting (known: \(known.sorted().joined(separator: ", ")))")
        }
    }
}

/// A value from a config file as it appears in a message: a JSON string, so a newline or quote
/// in it cannot break the one-line error.
func quoted(_ text: String) -> String { JSON.string(text).serialized() }

func quoted(_ text: Substring) -> String { quoted(String(text)) }
