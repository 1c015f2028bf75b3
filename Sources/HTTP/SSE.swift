import Foundation
import Runtime

/// One server-sent event: its persisted sequence number, its type and one line of JSON.
public struct SSEEvent: Sendable, Equatable {
    public var id: Int64
    public var type: String
    public var data: String

    public init(id: Int64, type: String, data: String) {
        self.id = id
        self.type = type
        self.data = data
    }

    /// The wire form `id: N\nevent: T\ndata: …\n\n` (a multi-line `data` becomes several `data:` lines).
    public var encoded: [UInt8] {
        var out = [UInt8]()
        append(to: &out)
        return out
    }

    /// Appends ``encoded`` to `out`.
    ///
    /// The type and data are looked at once, as bytes: without a line break in them (compact JSON
    /// has none) they go out as they are, after `id: N\nevent: ` and `\ndata: `.
    func append(to out: inout [UInt8]) {
        var type = self.type
        var data = self.data
        let plain = type.withUTF8 { !Self.hasLineBreak($0) } && data.withUTF8 { !Self.hasLineBreak($0) }
        guard plain else {
            out.append(contentsOf: textWithLineBreaks.utf8)
            return
        }
        out.reserveCapacity(out.count + type.utf8.count + data.utf8.count + 48)
        JSON.appendLiteral("id: ", into: &out)
        JSON.writeInt(id, into: &out)
        JSON.appendLiteral("\nevent: ", into: &out)
        type.withUTF8 { out.append(contentsOf: $0) }
        JSON.appendLiteral("\ndata: ", into: &out)
        data.withUTF8 { out.append(contentsOf: $0) }
        JSON.appendLiteral("\n\n", into: &out)
    }

    /// Whether UTF-8 text holds a character Swift counts as a line break (`Character.isNewline`:
    /// U+000A…U+000D, U+0085, U+2028, U+2029): only then is the text taken apart.
    static func hasLineBreak(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        let count = bytes.count
        // Eight bytes at a time while none is below 0x0E or above 0x7F (plain ASCII text).
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                // A byte below 0x0E sets its high bit in (word - 0x0E…) where it was clear in word.
                if (word | ((word &- ones &* 0x0E) & ~word)) & highs != 0 { break }
                index += 8
            }
        }
        while index < count {
            let byte = bytes[index]
            switch byte {
            case 0x0A...0x0D:
                return true
            case 0xC2:
                if index + 1 < count && bytes[index + 1] == 0x85 { return true }
            case 0xE2:
                if index + 2 < count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9) { return true }
            default:
                break
            }
            index += 1
        }
        return false
    }

    /// The wire form of an event whose type or data holds line breaks: the type without them,
    /// each line of the data on a `data:` line of its own.
    private var textWithLineBreaks: String {
        var text = "id: \(id)\nevent: "
        text += type.contains(where: \.isNewline) ? type.filter { !$0.isNewline } : type
        text += "\n"
        if data.contains(where: \.isNewline) {
            for line in data.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
                text += "data: " + line + "\n"
            }
        } else {
            text += "data: " + data + "\n"
        }
        text += "\n"
        return text
    }
}

/// An event encoded once and shared by every client.
final class EncodedSSEEvent: Sendable {
    let id: Int64
    let type: String
    let bytes: [UInt8]
    init(_ event: SSEEvent) {
        id = event.id
        type = event.type
        bytes = event.encoded
    }
}

/// Reads stored events after an id (storage): `(afterId, limit) -> events`, ascending ids, at most `limit`.
///
/// Called on a server loop thread, one page at a time, while a client resumes.
public typealias SSEBacklog = @Sendable (_ afterId: Int64, _ limit: Int) -> [SSEEvent]

/// How one client's event stream is set up; a handler answers `.eventStream(stream)`.
public struct SSEStream: Sendable {
    public var hub: SSEHub
    /// Only these event types are sent; nil sends all.
    public var types: Set<String>?
    /// Send stored events after this id first (from `Last-Event-ID` or `?since=`); nil → live events only.
    public var resumeAfter: Int64?
    /// Where stored events come from when resuming; without it a resume point only filters live ids.
    public var backlog: SSEBacklog?
    /// Extra response headers.
    public var headers: HTTPHeaders

    public init(hub: SSEHub, types: Set<String>? = nil, resumeAfter: Int64? = nil, backlog: SSEBacklog? = nil,
                headers: HTTPHeaders = HTTPHeaders()) {
        self.hub = hub
        self.types = types
        self.resumeAfter = resumeAfter
        self.backlog = backlog
        self.headers = headers
    }

    /// A stream set up from the request: `?types=a,b` filters, `Last-Event-ID: N` (preferred) or
    /// `?since=N` resumes. Throws ``HTTPError`` 400 for a resume point that is not an integer.
    public init(request: HTTPRequest, hub: SSEHub, backlog: SSEBacklog?) throws {
        var types: Set<String>?
        if let list = request.query["types"] {
            let names = list.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
            if !names.isEmpty { types = Set(names) }
        }
        var resume: Int64?
        if let header = request.headers["Last-Event-ID"], !header.isEmpty {
            guard let id = Int64(header.trimmingCharacters(in: .whitespaces)) else {
                throw HTTPError.badRequest("Last-Event-ID must be an integer event id")
            }
            resume = id
        } else if let since = request.query["since"], !since.isEmpty {
            guard let id = Int64(since) else { throw HTTPError.badRequest("since must be an integer event id") }
            resume = id
        }
        self.init(hub: hub, types: types, resumeAfter: resume, backlog: backlog)
    }
}

/// Counters of an ``SSEHub``.
public struct SSEMetrics: Sendable, Equatable {
    /// Clients connected now.
    public var connectedClients: Int
    /// Clients dropped because they fell behind (buffer full).
    public var droppedClients: Int
    /// Events written into clients' queues (one per client per event, backlog included).
    public var eventsSent: Int
    /// Events handed to ``SSEHub/publish(_:)``.
    public var eventsPublished: Int
}

/// Receives published events: an event loop of a server with clients of this hub.
protocol SSESink: AnyObject, Sendable {
    func deliver(_ events: [EncodedSSEEvent], from hub: SSEHub)
}

/// The fan-out point: the app publishes events here; every connected stream of this hub gets them.
///
/// ``publish(_:)`` may be called from any thread; call it from one thread in id order, after the
/// event is persisted (resume relies on that). Each event is encoded once (and not at all before
/// the first client connects); delivery to clients happens on the servers' loop threads, so
/// `publish` never blocks on a slow client.
public final class SSEHub: Sendable {
    private struct State {
        var sinks: [ObjectIdentifier: any SSESink] = [:]
        var counters = SSEMetrics(connectedClients: 0, droppedClients: 0, eventsSent: 0, eventsPublished: 0)
    }

    private let state = Locked(State())

    public init() {}

    /// Sends an event to every connected client whose filter accepts its type.
    public func publish(_ event: SSEEvent) {
        publish([event])
    }

    /// Sends events (in id order) to every connected client whose filter accepts their type: each
    /// encoded once, handed to each event loop once for the whole batch (one wake-up, and one
    /// write per client for all of them).
    public func publish(_ events: [SSEEvent]) {
        guard !events.isEmpty else { return }
        let targets = state.withLock { state in
            state.counters.eventsPublished += events.count
            return state.sinks.isEmpty ? [] : Array(state.sinks.values)
        }
        guard !targets.isEmpty else { return }
        var encoded: [EncodedSSEEvent] = []
        encoded.reserveCapacity(events.count)
        for event in events { encoded.append(EncodedSSEEvent(event)) }
        for sink in targets { sink.deliver(encoded, from: self) }
    }

    /// The counters now.
    public var metrics: SSEMetrics { state.withLock { $0.counters } }

    func attach(_ sink: any SSESink) {
        state.withLock { $0.sinks[ObjectIdentifier(sink)] = sink }
    }

    func detach(_ sink: any SSESink) {
        state.withLock { $0.sinks[ObjectIdentifier(sink)] = nil }
    }

    /// Counts a new client unless `limit` are connected.
    func reserveClient(limit: Int) -> Bool {
        state.withLock { state in
            guard state.counters.connectedClients < limit else { return false }
            state.counters.connectedClients += 1
            return true
        }
    }

    func releaseClient(dropped: Bool) {
        state.withLock { state in
            state.counters.connectedClients -= 1
            if dropped { state.counters.droppedClients += 1 }
        }
    }

    func countSent(_ n: Int) {
        guard n > 0 else { return }
        state.withLock { $0.counters.eventsSent += n }
    }
}
