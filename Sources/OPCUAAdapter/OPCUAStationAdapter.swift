import Foundation
import OPCUA
import PlantModel
import Runtime

/// Converts an OPC UA value to a signal value, honouring the configured `type` (docs/CONFIG.md:
/// the value's own type when none is given) and `scale`/`offset`.
public enum OPCUAValueConversion {
    /// Nil when the variant cannot be a signal value (null, structures, arrays) or does not fit `type`.
    public static func signalValue(_ variant: Variant?, signal: SignalConfig) -> SignalValue? {
        guard let variant else { return nil }
        let raw: SignalValue
        switch variant {
        case .boolean(let b): raw = .bool(b)
        case .sbyte, .byte, .int16, .uint16, .int32, .uint32, .int64:
            guard let i = variant.int64Value else { return nil }
            raw = .int(i)
        case .uint64(let u): raw = u <= UInt64(Int64.max) ? .int(Int64(u)) : .double(Double(u))
        case .float(let f): raw = .double(Double(f))
        case .double(let d): raw = .double(d)
        case .string(let s): raw = .string(s ?? "")
        case .localizedText, .xmlElement, .nodeId, .qualifiedName:
            guard let s = variant.stringValue else { return nil }
            raw = .string(s)
        case .dateTime(let t): raw = .string(Timestamp.format(t.date))
        case .statusCode(let s): raw = .int(Int64(s.rawValue))
        default: return nil
        }
        return convert(raw, to: signal)
    }

    static func convert(_ value: SignalValue, to signal: SignalConfig) -> SignalValue? {
        var typed = value
        if let type = signal.type {
            switch type {
            case .bool:
                guard let n = value.number else { return nil }
                typed = .bool(n != 0)
            case .string, .datetime:
                typed = .string(value.text)
            case .float32, .float64, .double, .float:
                guard let n = value.number else { return nil }
                typed = .double(n)
            case .int16, .uint16, .int32, .uint32, .int64, .uint64, .byte, .sbyte:
                guard let n = value.number, n.isFinite else { return nil }
                typed = .int(Int64(n.rounded(.towardZero)))
            }
        }
        if signal.scale != nil || signal.offset != nil, let n = typed.number, !(typed == .bool(true) || typed == .bool(false)) {
            return .double(signal.scaled(n))
        }
        return typed
    }
}

/// Polls (batched Read) or subscribes (monitored items) one OPC UA station and reports samples.
///
/// One `OPCUAClient` per station, served by the process's shared OPC UA event loops (polls and publish
/// answers are handled on the loop thread, with no hop); this service reconnects with backoff
/// when the first connection fails and relies on the client's own reconnect (new session,
/// subscriptions recreated) after that. A bad NodeId marks that one signal `bad` with its status
/// code; the station stays online.
public final class OPCUAStationAdapter: StationAdapter, Sendable {
    public let config: StationConfig
    public var stationID: String { config.id }
    public var name: String { "opcua.\(config.id)" }
    private let sink: AdapterSink
    private let logger: Logger
    private let nodes: [NodeId?]
    private struct State {
        var figures = StationStats()
        var reported: PlantModel.ConnectionState?
        /// Latest value per signal (subscription mode), and whether a change waits to be sent.
        var latest: [SignalReading]
        var flushScheduled = false
    }

    private let state: Locked<State>
    private let flushQueue: DispatchQueue
    /// The station's security (nil: SecurityPolicy None) and the trust that says why a server was refused.
    private let security: ClientSecurity?
    private let trust: RecordingTrust?
    private let identity: UserIdentity
    /// This client's certificate file, named when a server refuses it.
    private let ownCertificatePath: String?

    /// - Parameter securityContext: the plant's PKI and passwords; needed by a station with a `security` block.
    public init(config: StationConfig, sink: @escaping AdapterSink, logger: Logger, securityContext: OPCUAClientSecurityContext? = nil) {
        self.config = config
        self.sink = sink
        self.logger = logger
        let secured = securityContext?.clientSecurity(for: config)
        security = secured?.0
        trust = secured?.1
        identity = securityContext?.identity(for: config) ?? .anonymous
        ownCertificatePath = securityContext?.store.ownCertificatePath
        nodes = config.signals.map { $0.node.flatMap(NodeId.init) }
        state = Locked(State(latest: config.signals.map { SignalReading(name: $0.name, value: nil, quality: .stale) }))
        flushQueue = DispatchQueue(label: "opcua.\(config.id).flush")
    }

    public func stats() -> StationStats { state.withLock { $0.figures } }

    private var endpointURL: String {
        if case .opcua(let url, _, _) = config.endpoint { return url }
        return config.endpoint.description
    }

    private func report(_ state: PlantModel.ConnectionState, reason: String? = nil) {
        let changed = self.state.withLock { current in
            // A new reason while offline is news too (connection refused → certificate not trusted).
            let changed = current.reported != state || (state == .offline && reason != nil && current.figures.lastError != reason)
            current.reported = state
            if state == .offline { current.figures.lastError = reason }
            return changed
        }
        guard changed else { return }
        if state == .offline {
            logger.warning("offline: \(reason ?? "connection lost")")
        } else if state == .online {
            logger.info("online at \(endpointURL)")
        }
        sink(.connection(ConnectionChange(station: config.id, state: state, time: Date(), reason: reason)))
    }

    private func countError(_ kind: String, _ message: String) {
        state.withLock { state in
            state.figures.errors[kind, default: 0] += 1
            state.figures.lastError = message
        }
    }

    static func errorKind(_ error: Any) -> String {
        if let error = error as? any Error, let kind = errorKind(security: error) { return kind }
        let text = "\(error)".lowercased()
        if text.contains("timeout") || text.contains("timed out") { return "timeout" }
        if text.contains("refused") { return "refused" }
        if text.contains("closed") || text.contains("lost") || text.contains("reset") || text.contains("not connected") { return "closed" }
        return "bad_response"
    }

    public func run() async throws {
        var failures = 0
        while !Task.isCancelled {
            var options = OPCUAClient.Options(endpointURL: endpointURL)
            options.connectTimeoutMs = config.timeoutMs
            options.requestTimeoutMs = max(config.timeoutMs, 200)
            options.autoReconnect = true
            options.maxReconnectDelayMs = 2000
            options.logger = logger
            options.identity = identity
            options.security = security
            let client: OPCUAClient
            do {
                client = try OPCUAClient(options: options)
            } catch {
                report(.offline, reason: "\(error)")
                return
            }
            client.onStateChange { [weak self] state in self?.clientState(state) }
            do {
                try await client.connect()
                failures = 0
                if config.subscribe {
                    try await subscribe(client)
                    await waitUntilCancelled()
                } else {
                    try await pollLoop(client)
                }
                await client.close()
                return
            } catch {
                await client.close()
                if Task.isCancelled { return }
                countError(Self.errorKind(error), "\(error)")
                report(.offline, reason: offlineReason(error))
                markStale()
                failures += 1
                state.withLock { $0.figures.reconnects += 1 }
                let delay = min(5_000, 100 * (1 << min(failures, 6)))
                try? await Task.sleep(nanoseconds: UInt64(delay) * 1_000_000)
            }
        }
    }

    private func clientState(_ state: OPCUA.ConnectionState) {
        switch state {
        case .connected: break // online is reported with the first good values
        case .disconnected(let reason):
            countError(Self.errorKind(reason), reason)
            report(.offline, reason: OPCUASecurityExplanation.explain(reason: reason, trust: trust) ?? "\(endpointURL): \(reason)")
            markStale()
        case .connecting, .closed: break
        }
    }

    /// The station's status for a failed connection: one sentence for a security failure
    /// (README "Connecting to a PLC that requires security"), else the endpoint and the error.
    private func offlineReason(_ error: any Error) -> String {
        OPCUASecurityExplanation.explain(error, station: config, trust: trust, ownCertificatePath: ownCertificatePath)
            ?? "\(endpointURL): \(error)"
    }

    static func errorKind(security error: any Error) -> String? {
        guard case ClientError.security = error else { return nil }
        return "security"
    }

    private func markStale() {
        let readings = state.withLock { state in
            let readings = state.latest.filter { $0.value != nil }.map { SignalReading(name: $0.name, value: $0.value, quality: .stale) }
            for index in state.latest.indices where state.latest[index].value != nil { state.latest[index].quality = .stale }
            return readings
        }
        if !readings.isEmpty { sink(.poll(StationPoll(station: config.id, time: Date(), readings: readings))) }
    }

    private func reading(_ index: Int, _ value: DataValue?) -> SignalReading {
        let signal = config.signals[index]
        guard nodes[index] != nil else {
            return SignalReading(name: signal.name, value: nil, quality: .bad, status: "not a NodeId: \(signal.node ?? "")")
        }
        guard let value else { return SignalReading(name: signal.name, value: nil, quality: .bad, status: "no value") }
        if let status = value.status, status.isBad {
            return SignalReading(name: signal.name, value: nil, quality: .bad, status: status.description)
        }
        guard let converted = OPCUAValueConversion.signalValue(value.value, signal: signal) else {
            return SignalReading(name: signal.name, value: nil, quality: .bad, status: "value does not convert to \(signal.type?.rawValue ?? "a signal value")")
        }
        return SignalReading(name: signal.name, value: converted, quality: .good)
    }

    // MARK: Polling

    /// Polls on the client's event loop: each slot's read goes out from the loop and its values are handed to
    /// the sink there (no task or thread hop per read); see ``OPCUAClient/startPolling(_:intervalMs:timestamps:handler:)``.
    private func pollLoop(_ client: OPCUAClient) async throws {
        let valid = nodes.indices.filter { nodes[$0] != nil }
        let ids = valid.map { nodes[$0]! }
        let poll = client.startPolling(ids, intervalMs: config.pollIntervalMs) { [weak self] outcome in
            self?.polled(outcome, valid: valid)
        }
        await withTaskCancellationHandler { await waitUntilCancelled() } onCancel: { poll.stop() }
        poll.stop()
    }

    /// One slot's outcome (on the client's loop thread).
    private func polled(_ outcome: PollOutcome, valid: [Int]) {
        switch outcome {
        case .failed(let error):
            // The client reconnects by itself; report and wait for the next slot.
            countError(Self.errorKind(error), "\(error)")
            report(.offline, reason: offlineReason(error))
            markStale()
        case .values(let values, let latencyNs):
            let latency = Double(latencyNs) / 1e6
            var byIndex: [DataValue?] = Array(repeating: nil, count: config.signals.count)
            for (position, index) in valid.enumerated() where position < values.count { byIndex[index] = values[position] }
            let readings = config.signals.indices.map { reading($0, byIndex[$0]) }
            state.withLock { state in
                state.figures.polls += 1
                state.figures.lastLatencyMs = latency
                state.figures.latencySumMs += latency
                state.latest = readings
            }
            report(.online)
            sink(.poll(StationPoll(station: config.id, time: Date(), readings: readings, latencyMs: latency)))
        }
    }

    // MARK: Subscription

    private func subscribe(_ client: OPCUAClient) async throws {
        let valid = nodes.indices.filter { nodes[$0] != nil }
        let items = valid.map { MonitoredItemSpec(nodes[$0]!, samplingIntervalMs: Double(config.pollIntervalMs)) }
        let result = try await client.subscribe(items: items, publishingIntervalMs: Double(config.pollIntervalMs), handler: { [weak self] handle, value in
            guard let self, Int(handle) < valid.count else { return }
            self.received(index: valid[Int(handle)], value: value)
        }, published: { [weak self] in self?.flush() })
        let statuses = result.itemStatuses
        state.withLock { state in
            for (position, status) in statuses.enumerated() where status.isBad && position < valid.count {
                state.latest[valid[position]] = SignalReading(name: config.signals[valid[position]].name, value: nil, quality: .bad,
                                                              status: status.description)
            }
            for index in nodes.indices where nodes[index] == nil {
                state.latest[index] = reading(index, nil)
            }
        }
        scheduleFlush()
    }

    /// One data change (on the client's loop thread); sent with the others of its publish response by ``flush()``.
    private func received(index: Int, value: DataValue) {
        let reading = reading(index, value)
        state.withLock { $0.latest[index] = reading }
    }

    /// The initial statuses: sent 1 ms later, with whatever the first publish response brought by then.
    private func scheduleFlush() {
        let schedule = state.withLock { state in
            let schedule = !state.flushScheduled
            state.flushScheduled = true
            return schedule
        }
        guard schedule else { return }
        flushQueue.asyncAfter(deadline: .now() + .milliseconds(1)) { [weak self] in
            self?.state.withLock { $0.flushScheduled = false }
            self?.flush()
        }
    }

    /// Sends the latest values as one poll: after each publish response (on the client's loop thread, no hop).
    private func flush() {
        let readings = state.withLock { state in
            state.figures.polls += 1
            return state.latest
        }
        guard readings.contains(where: { $0.quality != .stale }) else { return }
        report(.online)
        sink(.poll(StationPoll(station: config.id, time: Date(), readings: readings.filter { $0.quality != .stale })))
    }
}
