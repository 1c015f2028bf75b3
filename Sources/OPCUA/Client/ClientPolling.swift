import Foundation
import Runtime

/// What one slot of a poll gives: the values read, or why there are none.
public enum PollOutcome: Sendable {
    /// The values in the order of the items, and the time from request to response.
    case values([DataValue], latencyNs: UInt64)
    /// Not connected, timed out, a service fault, or a response that did not fit the request.
    case failed(any Error)
}

extension OPCUAClient {
    /// Reads `items` every `intervalMs` on the client's event loop, at fixed slots from the next 10 ms tick
    /// (shared with the other polls of the loop, so they take one wake-up; no drift; a
    /// slot that passes while a read is still out is skipped, as are slots missed while behind), and calls
    /// `handler` with each outcome on the loop thread: keep it short and never block in it.
    ///
    /// The read goes out from the loop when its slot is due and its response is decoded there: no thread
    /// or task hop per read. While the connection is down every slot reports ``ClientError/notConnected``
    /// at once. Reads of more than ``Options/maxNodesPerRead`` nodes are split into requests sent together.
    /// Runs until ``OPCUAPoll/stop()``; closing the client does not stop it (its slots then fail).
    public func startPolling(_ items: [ReadValueId], intervalMs: Int, timestamps: TimestampsToReturn = .both,
                             handler: @escaping @Sendable (PollOutcome) -> Void) -> OPCUAPoll {
        let poll = ClientPoll(client: self, items: items, intervalNs: UInt64(max(1, intervalMs)) * 1_000_000,
                              timestamps: timestamps, handler: handler)
        homeLoop.add(poll)
        return OPCUAPoll(poll)
    }

    /// Reads the Value attribute of `nodes` every `intervalMs`; see ``startPolling(_:intervalMs:timestamps:handler:)``.
    public func startPolling(_ nodes: [NodeId], intervalMs: Int, handler: @escaping @Sendable (PollOutcome) -> Void) -> OPCUAPoll {
        startPolling(nodes.map { ReadValueId(nodeId: $0) }, intervalMs: intervalMs, handler: handler)
    }
}

/// A running poll of ``OPCUAClient/startPolling(_:intervalMs:timestamps:handler:)``.
public final class OPCUAPoll: Sendable {
    private let poll: ClientPoll

    init(_ poll: ClientPoll) { self.poll = poll }

    /// Stops the poll: no slot fires and no outcome is reported once the loop has taken this in. Idempotent.
    public func stop() { poll.stop() }
}

/// The loop's side of an ``OPCUAPoll``.
///
/// Its state is touched by its loop's thread alone (answers that arrive on the client's own thread are
/// handed to the loop first).
final class ClientPoll: ClientLoopTimer, @unchecked Sendable {
    let client: OPCUAClient
    private let chunks: [[ReadValueId]]
    private let intervalNs: UInt64
    private let timestamps: TimestampsToReturn
    private let handler: @Sendable (PollOutcome) -> Void
    private let loop: OPCUAClientLoop

    // Loop thread state.
    private var active = false
    private var slot: UInt64 = 0
    private var inFlight = false
    /// Counts reads sent; an answer to an earlier one is ignored.
    private var round: UInt64 = 0
    private var sentNs: UInt64 = 0
    private var results: [[DataValue]?] = []
    private var remaining = 0

    init(client: OPCUAClient, items: [ReadValueId], intervalNs: UInt64, timestamps: TimestampsToReturn,
         handler: @escaping @Sendable (PollOutcome) -> Void) {
        self.client = client
        let size = max(1, client.options.maxNodesPerRead)
        chunks = stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min(items.count, $0 + size)]) }
        self.intervalNs = intervalNs
        self.timestamps = timestamps
        self.handler = handler
        loop = client.homeLoop
    }

    func stop() { loop.remove(self) }

    /// Added to the loop (loop thread): the first read goes out at the next shared tick (within 10 ms).
    func started(_ loop: OPCUAClientLoop) {
        active = true
        slot = OPCUAClientLoop.tick(atOrAfter: Monotonic.nanoseconds())
        loop.schedule(self, at: slot)
    }

    /// Removed from the loop (loop thread). False when it was not running.
    func stopOnLoop(_ loop: OPCUAClientLoop) -> Bool {
        guard active else { return false }
        active = false
        inFlight = false
        round &+= 1
        results = []
        loop.cancel(self)
        return true
    }

    override func fire(now: UInt64, _ loop: OPCUAClientLoop) {
        guard active else { return }
        slot += intervalNs
        if slot <= now {
            // Behind: skip the missed slots instead of bursting.
            slot = now + intervalNs - (now - slot) % intervalNs
        }
        loop.schedule(self, at: slot)
        // A read still out keeps its slot; this one is skipped (its timeout ends it at the latest).
        guard !inFlight else { return }
        send()
    }

    private func send() {
        if chunks.isEmpty {
            handler(.values([], latencyNs: 0))
            return
        }
        inFlight = true
        round &+= 1
        let current = round
        sentNs = Monotonic.nanoseconds()
        remaining = chunks.count
        results = Array(repeating: nil, count: chunks.count)
        for (index, chunk) in chunks.enumerated() {
            var request = ReadRequest(nodesToRead: chunk)
            request.timestampsToReturn = timestamps
            let failure = client.submitRequest(request, timeoutMs: client.options.requestTimeoutMs,
                                               waiter: .expiring { [weak self] result in self?.answered(current, index, result) })
            if let failure {
                finish(current, .failed(failure))
                return
            }
        }
    }

    /// A response or failure for chunk `index` of read `current` (any thread: hopped to the loop when not on it).
    private func answered(_ current: UInt64, _ index: Int, _ result: Result<[UInt8], any Error>) {
        if loop.onLoopThread {
            take(current, index, result)
        } else {
            loop.execute { [self] in take(current, index, result) }
        }
    }

    private func take(_ current: UInt64, _ index: Int, _ result: Result<[UInt8], any Error>) {
        guard active, inFlight, current == round, index < results.count else { return }
        do {
            let response = try decodeServiceResponse(try result.get(), as: ReadResponse.self)
            guard response.results.count == chunks[index].count else { throw StatusCode.badUnexpectedError }
            results[index] = response.results
            remaining -= 1
            guard remaining == 0 else { return }
            let values = results.count == 1 ? response.results : results.flatMap { $0 ?? [] }
            finish(current, .values(values, latencyNs: Monotonic.nanoseconds() - sentNs))
        } catch {
            finish(current, .failed(error))
        }
    }

    private func finish(_ current: UInt64, _ outcome: PollOutcome) {
        guard active, current == round else { return }
        inFlight = false
        results.removeAll(keepingCapacity: true)
        handler(outcome)
    }
}
