import Foundation
import PlantModel
import Quality
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `mes-server tokens add --file F --user U --role R [--days N]` (README "Tokens"): makes a new
/// random token, appends only its SHA-256 (`tokenSha256`) to the tokens file with the user, the
/// role and, with `--days`, an `expires` time, and hands the token back to be printed once.
///
/// The file is checked as the server would read it before it is changed (a bad file is left as it
/// is and named in the error), then replaced atomically: written beside it, flushed to disk, renamed.
public enum TokensCommand {
    public static let usage = "usage: mes-server tokens add --file FILE --user NAME --role ROLE [--days N]"

    /// What `tokens add` did: the token (shown once) and a line about where it went.
    public struct Added: Sendable {
        public var token: String
        public var note: String
    }

    /// Parses the arguments after `tokens` and runs the command. Throws ``UsageError`` for a bad
    /// command line, ``ConfigError`` for a bad tokens file, ``SystemError`` when it cannot be written.
    public static func run(_ arguments: [String], now: Date = Date()) throws -> Added {
        guard arguments.first == "add" else { throw UsageError(usage) }
        var file: String?, user: String?, role: Role?, days: Int?
        var index = 1
        func value(_ flag: String) throws -> String {
            index += 1
            guard index < arguments.count, !arguments[index].hasPrefix("--") else { throw UsageError("\(flag) needs a value\n\(usage)") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--file": file = try value(argument)
            case "--user":
                let name = try value(argument).trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty else { throw UsageError("--user needs a name") }
                user = name
            case "--role":
                let text = try value(argument)
                guard let parsed = Role(rawValue: text) else {
                    throw UsageError("--role \"\(text)\" is not a role (viewer, operator, quality, engineer, admin)")
                }
                role = parsed
            case "--days":
                let text = try value(argument)
                guard let count = Int(text), (1...36_500).contains(count) else {
                    throw UsageError("--days takes a whole number of days from 1 to 36500, not \"\(text)\"")
                }
                days = count
            default: throw UsageError("unknown option \"\(argument)\"\n\(usage)")
            }
            index += 1
        }
        guard let file, let user, let role else { throw UsageError("tokens add needs --file, --user and --role\n\(usage)") }
        let expires = days.map { now.addingTimeInterval(Double($0) * 86_400) }
        let token = try add(file: file, user: user, role: role, expires: expires)
        let until = expires.map { ", expires \(Timestamp.format($0))" } ?? ", no expiry"
        return Added(token: token, note: "added a token for \(user) (\(role.rawValue)\(until)) to \(file); only its SHA-256 is stored, "
                         + "so this is the one time it is shown")
    }

    /// Appends a new token's hash to `file` (made if missing); the new token.
    public static func add(file: String, user: String, role: Role, expires: Date?) throws -> String {
        var entries: [JSON] = []
        var mode: mode_t = 0o600
        if FileManager.default.fileExists(atPath: file) {
            let root = try TokenStore.readFile(path: file)
            _ = try TokenStore.decode(root)
            entries = root.json.arrayValue ?? []
            var info = stat()
            if stat(file, &info) == 0 { mode = info.st_mode & 0o777 }
        }
        let token = try TokenHash.newToken()
        entries.append(.obj([
            ("tokenSha256", .string(TokenHash.sha256Hex(token))),
            ("user", .string(user)),
            ("role", .string(role.rawValue)),
            ("expires", expires.map { .string(Timestamp.format($0)) }),
        ]))
        var text = "[\n"
        for (i, entry) in entries.enumerated() {
            text += "  " + entry.serialized() + (i + 1 < entries.count ? ",\n" : "\n")
        }
        text += "]\n"
        try replaceAtomically(path: file, contents: Array(text.utf8), mode: mode)
        return token
    }

    /// Writes `contents` to a new file beside `path`, flushes it, renames it over `path` and flushes the folder.
    static func replaceAtomically(path: String, contents: [UInt8], mode: mode_t) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = try syscallOrThrow("open", context: "tokens file \(temporary)") {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        }
        do {
            _ = fchmod(fd, mode)
            try contents.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = try syscallOrThrow("write", context: "tokens file \(temporary)") {
                        write(fd, raw.baseAddress! + offset, raw.count - offset)
                    }
                    offset += n
                }
            }
            try syscallOrThrow("fsync", context: "tokens file \(temporary)") { fsync(fd) }
            Socket.close(fd)
        } catch {
            Socket.close(fd)
            unlink(temporary)
            throw error
        }
        do {
            try syscallOrThrow("rename", context: "tokens file \(path)") { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            Socket.close(dir)
        }
    }
}
