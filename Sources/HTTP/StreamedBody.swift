import Foundation
import Runtime

/// Produces a response body piece by piece (an export read from the database): the server asks
/// for the next piece on a worker pool only while the client keeps up, so memory stays flat
/// however large the body (see ``HTTPReply/streamed(_:)``).
///
/// Threads: ``produce(into:)`` and ``close()`` run on worker threads, one call at a time and
/// never concurrently; ``close()`` may instead run on a loop thread when the pool refuses it.
public protocol BodyProducer: AnyObject, Sendable {
    /// Appends the next piece of the body to `out` (empty on entry; aim for about
    /// ``StreamedResponse/pieceBytes``); returns false when the body is complete (`out` may hold
    /// its last bytes). A throw ends the answer early: the connection is closed without the final
    /// chunk, so the client sees a truncated body, never a short "complete" one.
    func produce(into out: inout [UInt8]) throws -> Bool
    /// Releases what the producer holds (a database cursor). Called exactly once: after the last
    /// piece, after a throw, or when the client leaves first.
    func close()
}

/// A streamed answer: status and headers now, the body from a ``BodyProducer``, sent with
/// `Transfer-Encoding: chunked` (HTTP/1.0: without a length, closing the connection at the end).
public struct StreamedResponse: Sendable {
    /// Bytes a producer aims for per piece.
    public static let pieceBytes = 128 * 1024

    public var status: Int
    public var headers: HTTPHeaders
    public var producer: any BodyProducer
    /// The pool the pieces are produced on.
    public var lane: WorkLane

    public init(status: Int = 200, headers: HTTPHeaders, producer: any BodyProducer, lane: WorkLane = .read) {
        self.status = status
        self.headers = headers
        self.producer = producer
        self.lane = lane
    }
}

/// The loop's side of a streamed answer: which producer, whether a piece is being made, and the
/// one-time close shared by the loop and the workers.
// @unchecked Sendable: `running`, `cancelled` and `closed` are guarded by `lock`; the producer is called by one thread at a time (a job is submitted only when none runs).
final class BodyPump: @unchecked Sendable {
    let producer: any BodyProducer
    let lane: WorkLane
    let chunked: Bool
    private let lock = NSLock()
    private var running = false
    private var cancelled = false
    private var closed = false
    /// Bytes of body sent so far (loop thread).
    var bodyBytes = 0

    init(producer: any BodyProducer, lane: WorkLane, chunked: Bool) {
        self.producer = producer
        self.lane = lane
        self.chunked = chunked
    }

    /// What a worker made.
    enum Piece {
        case bytes([UInt8], last: Bool)
        case failed(any Error)
        /// The client left meanwhile; the producer is closed.
        case cancelled
    }

    /// Marks a piece as being made; false if one already is or the pump ended. Loop thread.
    func begin() -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard !running, !cancelled, !closed else { return false }
        running = true
        return true
    }

    /// A submitted piece that the pool refused. Loop thread.
    func abandon() {
        lock.lock(); running = false; lock.unlock()
    }

    /// Makes one piece (worker thread); closes the producer after the last piece, an error, or a
    /// cancel that came while it ran.
    func produce() -> Piece {
        var out = [UInt8]()
        out.reserveCapacity(StreamedResponse.pieceBytes + 4096)
        let piece: Piece
        do {
            let more = try producer.produce(into: &out)
            piece = .bytes(out, last: !more)
        } catch {
            piece = .failed(error)
        }
        lock.lock()
        running = false
        var ending: Bool
        switch piece {
        case .bytes(_, let last): ending = last || cancelled
        case .failed, .cancelled: ending = true
        }
        if closed { ending = false }
        if ending { closed = true }
        let wasCancelled = cancelled
        lock.unlock()
        if ending { producer.close() }
        return wasCancelled ? .cancelled : piece
    }

    /// The client left (or the server stops): closes the producer now unless a piece is being
    /// made (that job closes it). Returns whether the caller must run `producer.close()` itself.
    func cancel() -> Bool {
        lock.lock(); defer { lock.unlock() }
        cancelled = true
        guard !running, !closed else { return false }
        closed = true
        return true
    }
}
