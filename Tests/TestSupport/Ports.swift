import Foundation
import Runtime

/// A free TCP port on loopback: bound to port 0, read, closed, so that a peer process can bind it.
/// (A server of our own should bind port 0 itself instead: no window for another process to take it.)
public func freePort() throws -> UInt16 {
    let fd = try Socket.listen(host: "127.0.0.1", port: 0)
    defer { Socket.close(fd) }
    return try Socket.localPort(fd)
}
