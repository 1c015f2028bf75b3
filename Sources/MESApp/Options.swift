import Foundation
import Simulation

/// A bad command line: the message says what and how to fix it.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `mes-server` options (README "Executables").
public struct ServerOptions: Sendable, Equatable {
    public var config = "Stations/plant.json"
    public var database = "var/mes.sqlite"
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var simulate = false
    public var record: String?
    public var replay: String?
    public var speed: ReplaySpeed = .factor(1)
    public var exitAfterReplay = false
    public var dashboards: String?
    public var logLevel = "info"
    /// HTTPS: the PEM certificate (chain) and its private key; both or neither (README "HTTPS").
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// HTTP event-loop threads (default: one per core).
    public var httpLoops = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// This server's name in its group (`--node`, default the host name; README "Two nodes").
    public var node = ServerOptions.hostName()
    /// The URL other nodes forward writes to while this one is active (`--advertise`; default
    /// from `--listen`, README "Two nodes").
    public var advertise: String?
    /// The certificates a standby trusts for the active's `https://` advertise URL (`--peer-ca`;
    /// default the node's own `--tls-cert`; README "Two nodes").
    public var peerCA: String?

    public init() {}

    /// What this node trusts when it forwards to an active over HTTPS.
    var peerTrust: PeerTrust { PeerTrust(caFile: peerCA ?? tlsCertificate) }

    public static let usage = """
    usage: mes-server [--config FILE] [--db FILE|URL] [--listen HOST:PORT] [--simulate] [--record FILE]
                      [--replay FILE [--speed X|max] [--exit-after-replay]] [--dashboards DIR] [--log-level LEVEL]
                      [--tls-cert FILE --tls-key FILE] [--node NAME] [--advertise URL] [--peer-ca FILE]
           mes-server tokens add --file FILE --user NAME --role ROLE [--days N]
      --config FILE        plant configuration (default Stations/plant.json)
      --db FILE|URL        SQLite database (default var/mes.sqlite; parent folders are created), or
                           PostgreSQL: postgresql://user:pass@host:port/db (a libpq URI; also
                           postgres://, and multi-host ones with target_session_attrs=read-write)
      --listen HOST:PORT   HTTP address (default 127.0.0.1:8080; loopback unless told otherwise)
      --simulate           also serve the config's stations from in-process simulators
      --record FILE        write every polled sample to FILE (JSON Lines)
      --replay FILE        feed a recording through the pipeline instead of polling PLCs
      --speed X|max        replay speed: X times real time (default 1) or as fast as possible
      --exit-after-replay  exit 0 when the recording ends
      --dashboards DIR     static files to serve (default: Dashboards/ next to the config's folder)
      --log-level LEVEL    trace, debug, info, warning, error (default info)
      --tls-cert FILE      serve HTTPS (TLS 1.2+) on --listen with this PEM certificate (chain); then no plain HTTP
      --tls-key FILE       the certificate's PEM private key (goes with --tls-cert)
      --node NAME          this server's name in a group on one PostgreSQL database (default: the host name)
      --advertise URL      the URL the other nodes forward writes to while this one is active
                           (default: http(s)://HOST:PORT of --listen)
      --peer-ca FILE       PEM certificates a standby trusts for an https:// active (default: --tls-cert's)
      tokens add           add a token to a tokens file: prints the new token once, stores only its SHA-256
    """

    /// Parses arguments (without the program name).
    public static func parse(_ arguments: [String]) throws -> ServerOptions {
        var options = ServerOptions()
        var index = 0
        func value(_ flag: String) throws -> String {
            index += 1
            guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                throw UsageError("\(flag) needs a value")
            }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--config": options.config = try value(argument)
            case "--db": options.database = try value(argument)
            case "--listen":
                let text = try value(argument)
                let (host, port) = try parseHostPort(text)
                options.host = host
                options.port = port
            case "--simulate": options.simulate = true
            case "--record": options.record = try value(argument)
            case "--replay": options.replay = try value(argument)
            case "--speed":
                let text = try value(argument)
                guard let speed = ReplaySpeed.parse(text) else {
                    throw UsageError("--speed takes a positive number or \"max\", not \"\(text)\"")
                }
                options.speed = speed
            case "--exit-after-replay": options.exitAfterReplay = true
            case "--dashboards": options.dashboards = try value(argument)
            case "--log-level": options.logLevel = try value(argument)
            case "--tls-cert": options.tlsCertificate = try value(argument)
            case "--tls-key": options.tlsKey = try value(argument)
            case "--node":
                let name = try value(argument)
                guard name.utf8.count <= 64, !name.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                    throw UsageError("--node takes a name of at most 64 characters without spaces, not \"\(name)\"")
                }
                options.node = name
            case "--advertise":
                let url = try value(argument)
                guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                    throw UsageError("--advertise takes an http:// or https:// URL, not \"\(url)\"")
                }
                options.advertise = url.hasSuffix("/") ? String(url.dropLast()) : url
            case "--peer-ca":
                let file = try value(argument)
                guard FileManager.default.isReadableFile(atPath: file) else {
                    throw UsageError("--peer-ca: cannot read \"\(file)\"")
                }
                options.peerCA = file
            case "--help", "-h": throw UsageError(usage)
            default: throw UsageError("unknown option \"\(argument)\"\n\(usage)")
            }
            index += 1
        }
        if options.replay != nil && options.simulate {
            throw UsageError("--replay and --simulate exclude each other: a replay feeds recorded samples instead of polling")
        }
        if (options.tlsCertificate == nil) != (options.tlsKey == nil) {
            throw UsageError("--tls-cert and --tls-key go together: give both for HTTPS, neither for plain HTTP")
        }
        if options.replay == nil && options.exitAfterReplay {
            throw UsageError("--exit-after-replay goes with --replay")
        }
        return options
    }

    /// The machine's host name (the default `--node`).
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }

    /// Parses `HOST:PORT` (port 0 = any free port).
    public static func parseHostPort(_ text: String) throws -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw UsageError("--listen takes HOST:PORT (e.g. 127.0.0.1:8080), not \"\(text)\"")
        }
        let host = String(text[..<colon])
        guard !host.isEmpty else { throw UsageError("--listen needs a host, e.g. 127.0.0.1:\(port)") }
        return (host, port)
    }
}
