import CModbus
import Foundation
import PlantModel
import Runtime

/// How a simulated Modbus PLC behaves (fault tests).
public enum ModbusServerBehavior: Sendable, Equatable {
    /// Answers requests.
    case normal
    /// Accepts connections and reads requests but never answers.
    case stall
    /// Answers every request with bytes that are not a Modbus response.
    case garbage
    /// Closes every connection as soon as it is accepted or sends a request.
    case closeConnections
}

/// A simulated Modbus TCP PLC for one station: a libmodbus server on its own thread, serving
/// the station's register map to any number of clients at once (one epoll loop).
///
/// It answers only the station's unit id; any other unit id gets the exception
/// "gateway target device failed to respond" (0x0B). ``start()`` binds and returns the port;
/// ``stop()`` closes every socket and joins the thread. It can be started again after a stop
/// (on the same port). Thread-safe.
public final class ModbusStationServer: Sendable {
    private struct State {
        var requestedPort: UInt16
        var boundPort: UInt16?
        var behavior: ModbusServerBehavior = .normal
        var running = false
        var wake: WakeFd?
        var finished: DispatchSemaphore?
        var requestsServed: UInt64 = 0
    }

    public let station: StationConfig
    /// The values served; write them with ``set(signal:value:)``.
    public let map: ModbusRegisterMap
    public let host: String
    public let unit: Int

    private let logger: Logger
    private let state: Locked<State>

    /// - Parameters:
    ///   - station: a `modbus` station with a TCP endpoint (its host, port and unit are used).
    ///   - port: overrides the endpoint's port (0 picks a free one); tests use this.
    ///   - map: the register map to serve (default: a new one sized from the station).
    public init(station: StationConfig, host: String? = nil, port: UInt16? = nil, map: ModbusRegisterMap? = nil,
                logger: Logger = Logger(label: "modbus-sim")) {
        self.station = station
        self.map = map ?? ModbusRegisterMap(station: station)
        var endpointHost = "127.0.0.1", endpointPort: UInt16 = 502
        if case let .modbusTCP(h, p, _) = station.endpoint { endpointHost = h; endpointPort = p }
        self.host = host ?? endpointHost
        self.state = Locked(State(requestedPort: port ?? endpointPort))
        self.unit = station.endpoint.unit ?? 1
        self.logger = logger.with("station.id", station.id)
    }

    deinit { assert(!state.value.running, "ModbusStationServer of \(station.id) dropped while running: call stop()") }

    /// The port bound by the last ``start()``.
    public var port: UInt16? { state.value.boundPort }

    /// How the server answers (switch at any time).
    public var behavior: ModbusServerBehavior {
        get { state.value.behavior }
        set { state.withLock { $0.behavior = newValue } }
    }

    /// Requests answered so far.
    public var requestCount: UInt64 { state.value.requestsServed }

    /// Writes a signal's value (see ``ModbusRegisterMap/set(signal:value:)``).
    public func set(signal: String, value: SignalValue) throws {
        try map.set(signal: signal, value: value)
    }

    /// Binds and starts serving; returns the bound port. A restart reuses the first bound port.
    @discardableResult
    public func start() throws -> UInt16 {
        let (runningPort, wantedPort) = state.withLock { state in
            (state.running ? state.boundPort : nil, state.boundPort ?? state.requestedPort)
        }
        if let runningPort { return runningPort }

        let listenFd = try Socket.listen(host: host, port: wantedPort, backlog: 128, nonBlocking: true)
        let port: UInt16
        let wake: WakeFd
        let epoll: Epoll
        do {
            port = try Socket.localPort(listenFd)
            wake = try WakeFd()
            do {
                epoll = try Epoll(context: "modbus server \(station.id)")
            } catch {
                wake.close()
                throw error
            }
            do {
                try epoll.add(wake.fd, Epoll.readable)
                try epoll.add(listenFd, Epoll.readable)
            } catch {
                epoll.close()
                wake.close()
                throw error
            }
        } catch {
            Socket.close(listenFd)
            throw error
        }
        let done = DispatchSemaphore(value: 0)
        state.withLock { state in
            state.boundPort = port
            state.running = true
            state.wake = wake
            state.finished = done
        }
        // The serving thread takes over the epoll set (it is not Sendable).
        startThread(named: "modbus-sim.\(station.id)") { [self] in
            if let ctx = modbus_new_tcp("127.0.0.1", Int32(port)) {
                modbus_set_slave(ctx, Int32(unit))
                modbus_set_byte_timeout(ctx, 0, 200_000)
                serve(ctx: ctx, listenFd: listenFd, epoll: epoll, wakeFd: wake.fd)
                modbus_free(ctx)
            } else {
                logger.error("modbus_new_tcp failed: errno \(cmodbus_errno())")
            }
            epoll.close()
            Socket.close(listenFd)
            done.signal()
        }
        logger.debug("serving Modbus TCP on \(host):\(port) unit \(unit)")
        return port
    }

    /// Stops serving: closes the listener and every client connection, joins the thread.
    public func stop() {
        let stopping: (done: DispatchSemaphore, wake: WakeFd?)? = state.withLock { state in
            guard state.running, let done = state.finished else { return nil }
            state.running = false
            return (done, state.wake)
        }
        guard let (done, wake) = stopping else { return }
        wake?.signal()
        done.wait()
        wake?.close()
        state.withLock { state in
            state.finished = nil
            state.wake = nil
        }
    }

    private var isRunning: Bool { state.value.running }

    private func serve(ctx: OpaquePointer, listenFd: Int32, epoll: Epoll, wakeFd: Int32) {
        var clients: [Int32] = []
        let query = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(CMODBUS_TCP_MAX_ADU))
        defer {
            query.deallocate()
            for fd in clients { Socket.close(fd) }
        }
        let headerLength = Int(modbus_get_header_length(ctx))
        var ready: [Int32] = []
        while isRunning {
            ready.removeAll(keepingCapacity: true)
            do {
                try epoll.wait(timeoutMs: 1000) { fd, _ in ready.append(fd) }
            } catch {
                logger.error("\(error)")
                return
            }
            if ready.contains(wakeFd) { return }
            if ready.contains(listenFd) {
                while let fd = try? syscall("accept", { accept(listenFd, nil, nil) }),
                      case .done(let client) = fd {
                    if behavior == .closeConnections {
                        Socket.close(client)
                    } else {
                        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                        Socket.setNoDelay(client)
                        do {
                            try epoll.add(client, Epoll.readable)
                            clients.append(client)
                        } catch {
                            logger.warning("\(error)")
                            Socket.close(client)
                        }
                    }
                }
            }
            var closed: Set<Int32> = []
            for fd in ready where fd != listenFd {
                modbus_set_socket(ctx, fd)
                let length = modbus_receive(ctx, query)
                if length < 0 {
                    closed.insert(fd)
                    continue
                }
                if length == 0 { continue }
                switch behavior {
                case .stall:
                    continue
                case .closeConnections:
                    closed.insert(fd)
                    continue
                case .garbage:
                    var junk: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0xFF, 0x83, 0x7F]
                    _ = send(fd, &junk, junk.count, Int32(MSG_NOSIGNAL))
                case .normal:
                    let requestUnit = headerLength > 0 ? Int(query[headerLength - 1]) : unit
                    let rc: Int32
                    if requestUnit != unit {
                        rc = modbus_reply_exception(ctx, query, UInt32(MODBUS_EXCEPTION_GATEWAY_TARGET))
                    } else {
                        rc = map.reply(ctx, request: query, length: length)
                    }
                    if rc < 0 { closed.insert(fd) }
                    state.withLock { $0.requestsServed += 1 }
                }
            }
            if !closed.isEmpty {
                for fd in closed {
                    try? epoll.remove(fd)
                    Socket.close(fd)
                }
                clients.removeAll { closed.contains($0) }
            }
        }
    }
}
