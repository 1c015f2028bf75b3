/// Limits and timeouts of an ``HTTPServer``; every field has the contract's default.
public struct HTTPLimits: Sendable {
    /// Largest request line + header block, in bytes; beyond → 431.
    public var maxHeaderBytes = 16384
    /// Largest request body, in bytes; a larger `Content-Length` → 413 before the body is read.
    public var maxBodyBytes = 1_048_576
    /// Most event-stream clients at once; beyond → 503.
    public var maxSseClients = 10000
    /// Most open connections; beyond → 503 and close.
    public var maxConnections = 20000
    /// A client must finish its request header within this many seconds of its first byte, or is closed.
    public var headerReadTimeout: Double = 10
    /// A keep-alive connection with no request in progress is closed after this many seconds.
    public var idleTimeout: Double = 60
    /// An event stream gets a `: keep-alive` comment when it has been silent this many seconds.
    public var sseKeepAliveInterval: Double = 15
    /// Bytes queued for one event-stream client beyond which it is dropped (it reconnects and resumes).
    public var sseClientBufferBytes = 1_048_576
    /// Events fetched from the backlog provider per call while a client resumes.
    public var sseBacklogPageSize = 500
    /// The `retry:` (milliseconds) sent at the start of every event stream; nil sends none.
    public var sseRetryMilliseconds: Int? = 2000

    public init(maxHeaderBytes: Int = 16384, maxBodyBytes: Int = 1_048_576, maxSseClients: Int = 10000) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxSseClients = maxSseClients
    }
}
