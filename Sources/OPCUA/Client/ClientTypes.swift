import Foundation

/// An error of the OPC UA client.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case badEndpointURL(String)
    case notConnected
    case timeout
    case closed
    case connectionLost(String)
    case noSuitableEndpoint(String)
    /// The security of the connection failed: a refused server certificate (the trust's status), a bad
    /// signature, a rejected policy or user (BadUserAccessDenied …). README.md, "OPC UA security".
    case security(StatusCode, String)

    public var description: String {
        switch self {
        case .badEndpointURL(let url): "bad endpoint URL \(url)"
        case .notConnected: "not connected"
        case .timeout: "request timed out"
        case .closed: "client closed"
        case .connectionLost(let reason): "connection lost: \(reason)"
        case .noSuitableEndpoint(let reason): "no suitable endpoint: \(reason)"
        case .security(let status, let reason): "security: \(status): \(reason)"
        }
    }
}

/// The connection state the client reports to its observer.
public enum ConnectionState: Sendable, Equatable {
    /// Opening the channel and session (first time or after a loss).
    case connecting
    /// Session active; subscriptions (re)created.
    case connected
    /// The connection is down; values from it are stale. The client retries if `autoReconnect`.
    case disconnected(String)
    /// `close()` was called.
    case closed
}

/// One item to monitor: a node and its sampling interval in milliseconds.
public struct MonitoredItemSpec: Sendable, Equatable {
    public var nodeId: NodeId
    public var samplingIntervalMs: Double
    public var attribute: AttributeId
    public var queueSize: UInt32

    public init(_ nodeId: NodeId, samplingIntervalMs: Double, attribute: AttributeId = .value, queueSize: UInt32 = 1) {
        self.nodeId = nodeId
        self.samplingIntervalMs = samplingIntervalMs
        self.attribute = attribute
        self.queueSize = queueSize
    }
}

/// A subscription made by ``OPCUAClient/subscribe(items:publishingIntervalMs:handler:)``.
public struct SubscriptionHandle: Sendable, Hashable {
    /// The client's own id for it; stable across reconnects.
    public let id: Int
}

/// Per-item outcome of a subscribe: item `i` has client handle `UInt32(i)`.
public struct SubscriptionResult: Sendable {
    public let handle: SubscriptionHandle
    /// The server's status for each item, in the order given (e.g. BadNodeIdUnknown for a bad node).
    public let itemStatuses: [StatusCode]
    public let revisedPublishingIntervalMs: Double
}

/// Called with (client handle, value) for every data change; runs on the thread that serves the client (its event loop), so keep it short.
public typealias DataChangeHandler = @Sendable (UInt32, DataValue) -> Void

