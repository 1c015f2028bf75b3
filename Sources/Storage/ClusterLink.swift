import CLibPQ
import Foundation
import Runtime

/// A failure of a ``ClusterLink`` (connecting, a statement, waiting for notifications).
public struct ClusterLinkError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One small libpq connection for the group of nodes (README "Two nodes"): the lease's statements
/// and `LISTEN` for committed events. Separate from the event log's connections, so a renewal never
/// waits behind a group commit.
///
/// Every wait is bounded: connecting (`connect_timeout`), statements (`statement_timeout`) and a
/// dead peer (TCP keepalives, `tcp_user_timeout`) give up after about ``timeoutS`` seconds.
/// Thread-confined (not `Sendable`): make and use it on one thread.
public final class ClusterLink {
    private var connection: OpaquePointer?
    public let timeoutS: Int

    /// Connects to `url` (a libpq URI, multi-host strings included).
    public init(url: String, timeoutS: Int = 3) throws {
        self.timeoutS = timeoutS
        let keywords = ["dbname", "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "application_name"]
        let values = [url, "\(timeoutS)", "1", "1", "1", "\(timeoutS)", "\(timeoutS * 1000)", "mes-cluster"]
        let connection = withCStrings(keywords) { keys in
            withCStrings(values) { vals in PQconnectdbParams(keys, vals, 1) }
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let connection { PQfinish(connection) }
            throw ClusterLinkError("cannot connect to \(ClusterLink.redacted(url)): \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        clibpq_silence_notices(connection)
        self.connection = connection
        try execute("SET statement_timeout = \(timeoutS * 1000)")
    }

    deinit { close() }

    public func close() {
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// False once the connection broke (make a new link).
    public var isHealthy: Bool { connection.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Runs one statement with text parameters (`$1`, `$2` …); the rows as text (NULL as nil).
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        guard let connection else { throw ClusterLinkError("the cluster connection is closed") }
        let result: OpaquePointer? = withOptionalCStrings(parameters) { pointers in
            PQexecParams(connection, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        guard let result else { throw ClusterLinkError(String(cString: PQerrorMessage(connection))) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw ClusterLinkError(String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var rows: [[String?]] = []
        let columns = PQnfields(result)
        for row in 0..<PQntuples(result) {
            rows.append((0..<columns).map { column in
                PQgetisnull(result, row, column) != 0 ? nil : String(cString: PQgetvalue(result, row, column))
            })
        }
        return rows
    }

    public func execute(_ sql: String) throws { try query(sql) }

    /// `LISTEN channel` (a plain identifier).
    public func listen(_ channel: String) throws {
        try execute("LISTEN \(channel)")
    }

    /// Waits up to `seconds` for notifications on the channels listened to; their payloads (maybe none).
    public func notifications(waitingUpTo seconds: Double) throws -> [String] {
        guard let connection else { throw ClusterLinkError("the cluster connection is closed") }
        var payloads = drain(connection)
        if !payloads.isEmpty { return payloads }
        let socket = PQsocket(connection)
        guard socket >= 0 else { throw ClusterLinkError("the cluster connection has no socket") }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(max(0, seconds * 1000)))
        if ready < 0 && errno != EINTR { throw ClusterLinkError("poll failed: errno \(errno)") }
        if ready > 0 {
            guard PQconsumeInput(connection) == 1 else {
                throw ClusterLinkError(String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            payloads = drain(connection)
        }
        return payloads
    }

    private func drain(_ connection: OpaquePointer) -> [String] {
        var payloads: [String] = []
        while let notification = PQnotifies(connection) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }

    /// The URL without its password, for messages.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) } + [nil])
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) })
}
