/// Limits and timeouts of an ``HTTPServer``; every field has the default of README's `limits` table.
public struct HTTPLimits: Sendable {
    /// Largest request line + header block, in bytes; beyond → 431.
    public var maxHeaderBytes = 16384
    /// Largest request body, in bytes; a larger `Content-Length` → 413 before the body is read.
    public var maxBodyBytes = 1_048_576
    /// Request body bytes all connections together may hold while bodies arrive; a body that would
    /// pass it answers 503 before it is read. Counted by declared `Content-Length`.
    public var maxBufferedBodyBytes = 32 * 1_048_576
    /// The whole body must arrive within this many seconds after the header, or 408 and close.
    public var bodyTimeout: Double = 30
    /// Most event-stream clients at once; beyond → 503.
    public var maxSseClients = 10000
    /// Most open connections; beyond → 503 and close. Nil: derived from the descriptor limit
    /// (which the server raises to its hard limit at start) less a reserve; a set value is capped by it.
    public var maxConnections: Int?
    /// A client must finish its request header within this many seconds of its first byte, or is closed.
    public var headerReadTimeout: Double = 10
    /// A keep-alive connection with no request in progress is closed after this many seconds.
    public var idleTimeout: Double = 60
    /// An event stream gets a `: keep-alive` comment when it has been silent this many seconds.
    public var sseKeepAliveInterval: Double = 15
    /// Bytes queued for one event-stream client beyond which it is dropped (it reconnects and resumes).
    public var sseClientBufferBytes = 256 * 1024
    /// Bytes queued for all event-stream clients together; a client whose queue would pass it is dropped.
    public var sseTotalBufferBytes = 256 * 1_048_576
    /// Events fetched from the backlog provider per call while a client resumes.
    public var sseBacklogPageSize = 500
    /// The `retry:` (milliseconds) sent at the start of every event stream; nil sends none.
    public var sseRetryMilliseconds: Int? = 2000
    /// Requests of one connection answered per loop wakeup before the loop turns to its other clients.
    public var requestsPerWakeup = 16
    /// Threads of the read pool (deferred reads, event-stream backlog pages).
    public var readWorkers = 3
    /// Threads of the command pool (deferred commands waiting on the pipeline).
    public var commandWorkers = 2
    /// Jobs waiting per pool; past it a deferred request answers 503 with `Retry-After`.
    public var workerQueueLimit = 256
    /// `Host` names (lowercase, no port) a request may carry; another answers 421. Nil accepts any;
    /// `*` in the set accepts any.
    public var allowedHosts: Set<String>?

    public init(maxHeaderBytes: Int = 16384, maxBodyBytes: Int = 1_048_576, maxSseClients: Int = 10000) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxSseClients = maxSseClients
    }
}
