import Foundation
import PlantModel
import Runtime
import Storage

/// What one pipeline step produces: events and row writes that commit together.
public struct Emission: Sendable {
    public var events: [NewEvent] = []
    public var writes: [@Sendable (Database) throws -> Void] = []

    public init() {}

    public mutating func event(_ type: String, station: String?, time: Date, _ data: JSON) {
        events.append(NewEvent(type: type, station: station, time: time, data: data.serialized()))
    }

    /// An event whose JSON text is already written (compact, one line: what `JSON.serialized()`
    /// gives); the same bytes become the event log row and the event stream's `data:` line.
    public mutating func event(_ type: String, station: String?, time: Date, json: [UInt8]) {
        events.append(NewEvent(type: type, station: station, time: time, data: String(decoding: json, as: UTF8.self)))
    }

    public mutating func write(_ work: @escaping @Sendable (Database) throws -> Void) {
        writes.append(work)
    }

    var isEmpty: Bool { events.isEmpty && writes.isEmpty }
}

/// A stage of the pipeline after the adapters (tracking, quality); runs on the pipeline thread only.
public protocol PipelineStage: AnyObject {
    func poll(_ poll: StationPoll, into emission: inout Emission)
    func connection(_ change: ConnectionChange, into emission: inout Emission)
    /// Time passes (every 250 ms of pipeline time): timers, shelving expiry, escalation, KPIs.
    func tick(_ now: Date, into emission: inout Emission)
    /// The pipeline stops (everything queued is done): last writes, committed before storage closes.
    func finish(into emission: inout Emission)
}

extension PipelineStage {
    public func finish(into emission: inout Emission) {}
}

/// Adapters → live state → `sample`/`station` events → stages → storage (→ SSE after commit).
///
/// Every input is handled in order on one thread, so the stages need no locks. Adapters call
/// ``submit(_:)`` (non-blocking); the API runs commands on the same thread with ``perform(_:)``.
/// In replay the pipeline's clock is the recording's: ticks follow the samples' times.
// @unchecked Sendable: `inbox`, the flags and the counters are guarded by `condition`; stages, observers and the clock are set up before start() and then touched only by the pipeline thread.
public final class Pipeline: Service, @unchecked Sendable {
    public enum Mode: Sendable { case live, replay }

    enum Input {
        case adapter(AdapterEvent)
        case tick(Date)
        case command(() -> Void)
    }

    public let name = "pipeline"
    public let config: PlantConfig
    public let live: LiveStations
    let eventLog: EventLog
    let logger: Logger
    public let mode: Mode
    var stages: [any PipelineStage] = []
    /// In replay: the clock storage uses (retention), moved to each sample's time.
    public var replayClock: ManualClock?
    /// Called with each poll on the pipeline thread (the recorder).
    var pollObservers: [(StationPoll) -> Void] = []
    /// Called on the pipeline thread with each step's emission just before it is committed; may add
    /// writes that commit with its events (the notification outbox).
    var emissionObservers: [(inout Emission) -> Void] = []

    private let condition = NSCondition()
    private var inbox: [Input] = []
    private var stopping = false
    private var finished = false
    private var thread: Thread?
    private var lastTick: Date?
    /// The newest time the pipeline has seen (recording time in replay).
    private(set) var clockTime: Date?
    /// `clockTime` for readers on other threads (``currentClock``).
    private let sharedClock = Locked<Date?>(nil)

    /// The pipeline's clock for any thread (the API tells pages to follow it): the wall clock live;
    /// in replay the newest recording time handled so far, nil before the first.
    public var currentClock: Date? {
        mode == .live ? Date() : sharedClock.value
    }

    /// The time of a command run now: the wall clock live, the recording's clock in replay.
    var commandTime: Date {
        mode == .live ? Date() : (clockTime ?? Date(timeIntervalSince1970: 0))
    }
    private let maxInbox = 200_000
    private var droppedInputs = 0
    /// Where each `sample` event's JSON is written (pipeline thread; its capacity is kept).
    private var sampleBytes: [UInt8] = []
    private var processed: UInt64 = 0

    public init(config: PlantConfig, eventLog: EventLog, mode: Mode, logger: Logger) {
        self.config = config
        self.live = LiveStations(config: config)
        self.eventLog = eventLog
        self.mode = mode
        self.logger = logger.named("pipeline")
    }

    public func add(stage: any PipelineStage) { stages.append(stage) }
    public func addPollObserver(_ observer: @escaping (StationPoll) -> Void) { pollObservers.append(observer) }
    public func addEmissionObserver(_ observer: @escaping (inout Emission) -> Void) { emissionObservers.append(observer) }

    /// The sink adapters deliver to (thread-safe, non-blocking).
    public var sink: AdapterSink {
        { [weak self] event in self?.submit(.adapter(event)) }
    }

    /// Queues an adapter event.
    public func submit(_ event: AdapterEvent) { submit(.adapter(event)) }

    func submit(_ input: Input) {
        condition.lock()
        if inbox.count >= maxInbox, case .adapter(.poll) = input {
            droppedInputs += 1
            if droppedInputs == 1 || droppedInputs % 10_000 == 0 {
                logger.error("pipeline behind: \(droppedInputs) polls dropped (storage too slow?)")
            }
            condition.unlock()
            return
        }
        inbox.append(input)
        if inbox.count == 1 { condition.signal() }
        condition.unlock()
    }

    /// Inputs waiting to be processed (replay uses it to keep memory flat).
    public var backlog: Int {
        condition.lock(); defer { condition.unlock() }
        return inbox.count
    }

    /// Inputs processed so far.
    public var processedCount: UInt64 {
        condition.lock(); defer { condition.unlock() }
        return processed
    }

    /// Runs `body` on the pipeline thread and returns its result (API commands: ack, hold …).
    /// `body` is `sending`: what it captures moves to the pipeline thread.
    /// Throws ``PipelineStopped`` once the pipeline has stopped (nothing would run the command).
    public func perform<T: Sendable>(_ body: sending @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        condition.lock()
        guard !stopping && !finished else {
            condition.unlock()
            throw PipelineStopped()
        }
        inbox.append(.command { box.set(Result { try body() }) })
        if inbox.count == 1 { condition.signal() }
        condition.unlock()
        return try box.wait().get()
    }

    /// Starts the pipeline thread.
    public func start() {
        condition.lock()
        guard thread == nil else { condition.unlock(); return }
        let thread = Thread { [self] in loop() }
        thread.name = "pipeline"
        self.thread = thread
        condition.unlock()
        thread.start()
    }

    /// Processes what is queued, then stops the thread.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil && !finished { condition.wait() }
        condition.unlock()
    }

    public func run() async throws {
        start()
        let ticker: Task<Void, Never>? = mode == .live ? Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 250_000_000)
                self?.submit(.tick(Date()))
            }
        } : nil
        await waitUntilCancelled()
        ticker?.cancel()
        stop()
    }

    /// Blocks until everything submitted so far has been processed (tests, replay end).
    public func drain() {
        _ = try? perform { true }
    }

    private func loop() {
        while true {
            condition.lock()
            while inbox.isEmpty && !stopping { condition.wait() }
            if inbox.isEmpty && stopping {
                condition.unlock()
                var emission = Emission()
                for stage in stages { stage.finish(into: &emission) }
                commit(emission)
                condition.lock()
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = inbox
            inbox.removeAll(keepingCapacity: true)
            condition.unlock()
            for input in batch { handle(input) }
            condition.lock()
            processed += UInt64(batch.count)
            condition.unlock()
        }
    }

    private func handle(_ input: Input) {
        var emission = Emission()
        switch input {
        case .adapter(.poll(let poll)):
            advanceClock(to: poll.time, into: &emission)
            handlePoll(poll, into: &emission)
        case .adapter(.connection(let change)):
            advanceClock(to: change.time, into: &emission)
            if live.apply(change) {
                let station = live.station(change.station)
                emission.event("station", station: change.station, time: change.time, .obj([
                    ("station", .string(change.station)),
                    ("connection", .string(change.state.rawValue)),
                    ("state", .str(station?.state)),
                    ("t", .string(Timestamp.format(change.time))),
                    ("reason", .str(change.reason)),
                ]))
            }
            for stage in stages { stage.connection(change, into: &emission) }
        case .tick(let now):
            if mode == .live { advanceClock(to: now, into: &emission) }
        case .command(let body):
            body()
        }
        commit(emission)
    }

    /// Emits ticks for every 250 ms step of pipeline time up to `time`.
    private func advanceClock(to time: Date, into emission: inout Emission) {
        if let clockTime, time < clockTime { return }
        clockTime = time
        if mode == .replay { sharedClock.set(time) }
        replayClock?.set(time)
        guard let last = lastTick else { lastTick = time; return }
        if time.timeIntervalSince(last) >= 0.25 {
            lastTick = time
            for stage in stages { stage.tick(time, into: &emission) }
        }
    }

    private func handlePoll(_ poll: StationPoll, into emission: inout Emission) {
        // Stale-only readings (an adapter repeating its last values when the PLC went away) carry
        // nothing new: they are not a sample, and must not look like a PLC that answers.
        guard poll.readings.contains(where: { $0.quality != .stale }) else { return }
        guard let change = live.apply(poll) else { return }
        for observer in pollObservers { observer(poll) }
        sampleBytes.removeAll(keepingCapacity: true)
        Self.writeSample(poll, into: &sampleBytes)
        emission.event("sample", station: poll.station, time: poll.time, json: sampleBytes)
        if change.oldState != change.newState, let station = live.station(poll.station) {
            emission.event("station", station: poll.station, time: poll.time, .obj([
                ("station", .string(poll.station)),
                ("connection", .string(station.connection.rawValue)),
                ("state", .str(station.state)),
                ("stateCode", change.newState.map { .int($0) }),
                ("t", .string(Timestamp.format(poll.time))),
            ]))
        }
        for stage in stages { stage.poll(poll, into: &emission) }
    }

    /// The `sample` event's JSON, written straight to bytes: byte for byte what
    /// `{"station","t","values":{good readings},"bad":[names of bad readings]}` serializes to
    /// (the `sample` event of docs/openapi.json), without building the JSON value first.
    static func writeSample(_ poll: StationPoll, into out: inout [UInt8]) {
        JSON.appendLiteral(#"{"station":"#, into: &out)
        JSON.writeString(poll.station, into: &out)
        JSON.appendLiteral(#","t":""#, into: &out)
        Timestamp.write(poll.time, into: &out)
        JSON.appendLiteral(#"","values":{"#, into: &out)
        var first = true
        for reading in poll.readings where reading.quality == .good {
            guard let value = reading.value else { continue }
            if !first { out.append(44) }
            first = false
            JSON.writeString(reading.name, into: &out)
            out.append(58)
            switch value {
            case .bool(let b): JSON.appendLiteral(b ? "true" : "false", into: &out)
            case .int(let i): JSON.writeInt(i, into: &out)
            case .double(let d): JSON.writeDouble(d, into: &out)
            case .string(let s): JSON.writeString(s, into: &out)
            }
        }
        JSON.appendLiteral(#"},"bad":["#, into: &out)
        first = true
        for reading in poll.readings where reading.quality == .bad {
            if !first { out.append(44) }
            first = false
            JSON.writeString(reading.name, into: &out)
        }
        JSON.appendLiteral("]}", into: &out)
    }

    func commit(_ emission: Emission) {
        guard !emission.isEmpty else { return }
        var emission = emission
        for observer in emissionObservers { observer(&emission) }
        if emission.writes.isEmpty {
            eventLog.enqueue(events: emission.events) { _ in }
        } else {
            let writes = emission.writes
            eventLog.enqueue(events: emission.events) { db in
                for write in writes { try write(db) }
            }
        }
    }
}

/// The server is shutting down: a command was not run.
public struct PipelineStopped: Error, CustomStringConvertible {
    public var description: String { "the server is shutting down" }
}
