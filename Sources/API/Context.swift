import Foundation
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime
import Storage

/// What the API reads and acts on: the plant's live state, storage and the event hub.
///
/// Built by the server's assembly; handlers run on HTTP loop threads and use only thread-safe
/// parts (LiveStations, read connections, the pipeline's `perform`).
public struct APIContext: Sendable {
    public var config: PlantConfig
    public var live: LiveStations
    public var eventLog: EventLog
    public var hub: SSEHub
    public var version: String
    /// Extra Prometheus lines (HTTP counters, pipeline figures) appended to `/metrics`.
    public var extraMetrics: @Sendable () -> String
    /// Extra members of `/api/health` (the replay's progress).
    public var extraHealth: @Sendable () -> [(String, JSON)] = { [] }
    /// The pipeline's mode and clock, which pages follow (`/api/health`, `/api/meta`).
    public var clock: @Sendable () -> PipelineClock = { PipelineClock(mode: .live, time: Date()) }
    /// This server's name and its part in its group (`/api/health` `node` and `role`; README "Two
    /// nodes"). A server on SQLite is always `active`.
    public var node: @Sendable () -> (name: String, role: NodeRole) = { ("localhost", .active) }
    /// The newest event id for `/api/health` when it is not the event log's own (a standby's:
    /// the newest it read from the database).
    public var lastEventId: (@Sendable () -> Int64)?
    /// Whether a request may see PLC endpoints (a token of `engineer` or above); the assembly sets it.
    public var showsEndpoints: @Sendable (HTTPRequest) -> Bool = { _ in false }
    /// `GET /api/kpis` for another shift than the current (`shift=previous`, `date=&shift=`): the
    /// stored shift's answer, or nil for the current shift. The assembly sets it
    /// (``APIRoutes/storedKPIs(config:backend:queries:)``); without it only the current shift is known.
    public var storedKPIs: @Sendable (HTTPRequest) throws -> HTTPReply? = { request in
        if let shift = request.query["shift"], !shift.isEmpty, shift != "current" {
            throw HTTPError(400, code: "bad_request", "shift must be \"current\"")
        }
        return nil
    }
    /// Runs a state-changing command on the pipeline thread.
    public var perform: @Sendable (@escaping @Sendable () throws -> JSON) throws -> JSON
    /// Lists read row by row for CSV exports, and the operations query (README "Exports (CSV)").
    public var lists: any PlantLists

    public init(config: PlantConfig, live: LiveStations, eventLog: EventLog, hub: SSEHub, version: String,
                extraMetrics: @escaping @Sendable () -> String = { "" },
                perform: @escaping @Sendable (@escaping @Sendable () throws -> JSON) throws -> JSON) {
        self.config = config
        self.live = live
        self.eventLog = eventLog
        self.hub = hub
        self.version = version
        self.extraMetrics = extraMetrics
        self.perform = perform
        lists = StoreLists(eventLog: eventLog)
    }
}

/// The pipeline's mode and clock as the API reports them.
public struct PipelineClock: Sendable {
    public enum Mode: String, Sendable { case live, replay }
    public var mode: Mode
    /// Live: now. Replay: the newest recording time the pipeline has handled, nil before the first;
    /// chart windows, "ago" times and stale marks on the pages are measured against it.
    public var time: Date?

    public init(mode: Mode, time: Date?) {
        self.mode = mode
        self.time = time
    }
}

/// The `limit` query parameter: default 100, at most 10,000; 400 for anything else.
func limitParameter(_ request: HTTPRequest, default value: Int = 100) throws -> Int {
    guard let text = request.query["limit"], !text.isEmpty else { return value }
    guard let limit = Int(text), limit >= 1 else {
        throw HTTPError(400, code: "bad_request", "limit must be a whole number from 1 to 10000, not \"\(text)\"")
    }
    return min(limit, 10_000)
}

/// A query parameter that names one case of `E` (`state=open`): nil when absent or empty, 400 naming
/// the allowed values for anything else.
func enumParameter<E: RawRepresentable & CaseIterable>(_ request: HTTPRequest, _ name: String, _ type: E.Type) throws -> E? where E.RawValue == String {
    guard let text = request.query[name], !text.isEmpty else { return nil }
    guard let value = E(rawValue: text) else {
        throw HTTPError(400, code: "bad_request", "\(name) must be one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), not \(JSON.string(text).serialized())")
    }
    return value
}

/// A time query parameter (`from`, `to`) in RFC 3339; 400 if it is not one.
func timeParameter(_ request: HTTPRequest, _ name: String) throws -> Date? {
    guard let text = request.query[name], !text.isEmpty else { return nil }
    guard let date = Timestamp.parse(text) else {
        throw HTTPError(400, code: "bad_request", "\(name) must be an RFC 3339 time such as 2026-11-21T06:00:00Z, not \"\(text)\"")
    }
    return date
}

/// Runs a storage read for a route: an `HTTPError` passes through, any other error becomes 503.
func readingStorage<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as HTTPError {
        throw error
    } catch {
        throw HTTPError(503, code: "unavailable", "storage read failed: \(error)")
    }
}

/// The acting principal of a request that needs `role` (writes always have one), else 401/403.
func actingPrincipal(_ request: HTTPRequest, _ role: Role, auth: AuthPolicy, backend: any PlantBackend) throws -> Principal {
    guard let p = try auth.authorize(request, role: role, backend: backend, now: Date()) else {
        throw HTTPError(401, code: "unauthorized", "send Authorization: Bearer <token>")
    }
    return p
}

/// The JSON body of a request as an object.
///
/// A body needs `Content-Type: application/json` (parameters such as `charset=utf-8` allowed), else
/// 415; it must be UTF-8 JSON as RFC 8259 writes it, with no repeated member name, else 400.
func jsonBody(_ request: HTTPRequest) throws -> JSON {
    if request.body.isEmpty { return .object([]) }
    let value = try jsonValue(request)
    guard case .object = value else { throw HTTPError(400, code: "bad_request", "the body must be a JSON object") }
    return value
}

/// The JSON body of a request as any JSON value (an object or an array), with the media type and
/// syntax rules of ``jsonBody(_:)``.
func jsonValue(_ request: HTTPRequest) throws -> JSON {
    let type = request.headers["Content-Type"] ?? ""
    guard isJSONMediaType(type) else {
        throw HTTPError(415, code: "unsupported_media_type",
                        type.isEmpty ? "send the body with Content-Type: application/json" : "send the body as application/json, not \(type.prefix(100))")
    }
    do {
        return try JSON.parse(bytes: request.body)
    } catch {
        throw HTTPError(400, code: "bad_request", "the body is not valid JSON: \(error)")
    }
}

/// Whether a `Content-Type` value is `application/json`, any case, with or without parameters.
func isJSONMediaType(_ value: String) -> Bool {
    let mediaType = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    return mediaType.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
}

extension HTTPResponse {
    /// A JSON answer from a ``JSON`` value.
    static func json(_ value: JSON, status: Int = 200) -> HTTPResponse {
        var out = [UInt8]()
        value.write(into: &out)
        return .json(out, status: status)
    }
}
