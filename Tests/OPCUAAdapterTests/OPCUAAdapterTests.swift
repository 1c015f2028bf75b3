import Foundation
import XCTest
import TestSupport
import OPCUA
@testable import OPCUAAdapter
import PlantModel
import Runtime

/// Collects what an adapter reports.
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var polls: [StationPoll] = []
    private(set) var changes: [ConnectionChange] = []
    var sink: AdapterSink {
        { [self] event in
            lock.withLock {
                switch event {
                case .poll(let p): polls.append(p)
                case .connection(let c): changes.append(c)
                }
            }
        }
    }
    func snapshot() -> ([StationPoll], [ConnectionChange]) { lock.withLock { (polls, changes) } }
}

final class OPCUAAdapterTests: XCTestCase {
    func makeServer(port: UInt16 = 0) throws -> OPCUAServer {
        var options = OPCUAServer.Options()
        options.port = port
        let server = OPCUAServer(options: options)
        try server.addVariable(nodeId: NodeId("Paint.VehicleId", namespace: 2), browseName: "VehicleId", value: .string("VIN00000000000001"))
        try server.addVariable(nodeId: NodeId(1007, namespace: 2), browseName: "FilmThickness", value: .double(110.5))
        try server.addVariable(nodeId: NodeId("Paint.State", namespace: 2), browseName: "State", value: .uint16(1))
        try server.addVariable(nodeId: NodeId("Paint.Count", namespace: 2), browseName: "Count", value: .int32(7))
        try server.start()
        return server
    }

    func station(port: UInt16, subscribe: Bool) -> StationConfig {
        StationConfig(id: "PAINT-01", name: "Paint", process: "paint", protocol: .opcua,
                      endpoint: .opcua(url: "opc.tcp://127.0.0.1:\(port)", host: "127.0.0.1", port: port),
                      pollIntervalMs: 50, subscribe: subscribe, timeoutMs: 500, signals: [
                        SignalConfig(name: "vehicleId", role: .vehicleId, node: "ns=2;s=Paint.VehicleId", type: .string),
                        SignalConfig(name: "film", role: .measurement, node: "ns=2;i=1007", type: .double),
                        SignalConfig(name: "state", role: .state, node: "ns=2;s=Paint.State"),
                        SignalConfig(name: "countScaled", node: "ns=2;s=Paint.Count", scale: 0.5),
                        SignalConfig(name: "missing", node: "ns=2;s=Does.Not.Exist"),
                      ])
    }

    func run(_ adapter: OPCUAStationAdapter) -> Task<Void, Never> {
        Task { try? await adapter.run() }
    }

    func checkValues(_ poll: StationPoll) {
        let byName = Dictionary(uniqueKeysWithValues: poll.readings.map { ($0.name, $0) })
        XCTAssertEqual(byName["vehicleId"]?.value, .string("VIN00000000000001"))
        XCTAssertEqual(byName["film"]?.value, .double(110.5))
        XCTAssertEqual(byName["state"]?.value, .int(1))
        XCTAssertEqual(byName["countScaled"]?.value, .double(3.5))
        XCTAssertEqual(byName["missing"]?.quality, .bad, "a bad NodeId marks that one signal bad")
        XCTAssertNil(byName["missing"]?.value)
        XCTAssertTrue(byName["missing"]?.status?.contains("BadNodeIdUnknown") ?? false, "\(String(describing: byName["missing"]?.status))")
    }

    func testPollingReadsEveryTypeAndMarksABadNodeOnly() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let collector = Collector()
        let adapter = OPCUAStationAdapter(config: station(port: server.port, subscribe: false), sink: collector.sink,
                                          logger: Logger(label: "t", level: .critical))
        let task = run(adapter)
        XCTAssertTrue(eventually { collector.snapshot().0.count >= 3 })
        let (polls, changes) = collector.snapshot()
        checkValues(polls[0])
        XCTAssertEqual(changes.last?.state, .online)
        XCTAssertNotNil(polls[0].latencyMs)
        try server.setValue(nodeId: NodeId(1007, namespace: 2), value: .double(125.25))
        XCTAssertTrue(eventually { collector.snapshot().0.last?.readings.first { $0.name == "film" }?.value == .double(125.25) })
        XCTAssertGreaterThan(adapter.stats().polls, 2)
        task.cancel()
        await task.value
    }

    func testSubscriptionDeliversChanges() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let collector = Collector()
        let adapter = OPCUAStationAdapter(config: station(port: server.port, subscribe: true), sink: collector.sink,
                                          logger: Logger(label: "t", level: .critical))
        let task = run(adapter)
        XCTAssertTrue(eventually { collector.snapshot().0.contains { p in p.readings.contains { $0.name == "film" } } })
        let first = collector.snapshot().0.last!
        XCTAssertEqual(first.readings.first { $0.name == "film" }?.value, .double(110.5))
        XCTAssertEqual(first.readings.first { $0.name == "missing" }?.quality, .bad)
        for v in [111.0, 112.0, 113.0] {
            try server.setValue(nodeId: NodeId(1007, namespace: 2), value: .double(v))
            XCTAssertTrue(eventually { collector.snapshot().0.last?.readings.first { $0.name == "film" }?.value == .double(v) }, "change to \(v) arrives")
        }
        task.cancel()
        await task.value
    }

    func testServerRestartGoesOfflineThenOnlineAgain() async throws {
        var server = try makeServer()
        let port = server.port
        let collector = Collector()
        let adapter = OPCUAStationAdapter(config: station(port: port, subscribe: false), sink: collector.sink,
                                          logger: Logger(label: "t", level: .critical))
        let task = run(adapter)
        XCTAssertTrue(eventually { collector.snapshot().1.last?.state == .online })
        server.stop()
        XCTAssertTrue(eventually { collector.snapshot().1.last?.state == .offline }, "offline after the server stops")
        server = try makeServer(port: port)
        defer { server.stop() }
        try server.setValue(nodeId: NodeId(1007, namespace: 2), value: .double(99.0))
        XCTAssertTrue(eventually(timeout: 20) { collector.snapshot().1.last?.state == .online }, "online again without restarting the adapter")
        XCTAssertTrue(eventually { collector.snapshot().0.last?.readings.first { $0.name == "film" }?.value == .double(99.0) })
        task.cancel()
        await task.value
    }

    func testConversions() {
        let s = SignalConfig(name: "x", type: .bool)
        XCTAssertEqual(OPCUAValueConversion.signalValue(.int32(2), signal: s), .bool(true))
        XCTAssertEqual(OPCUAValueConversion.signalValue(.double(3.7), signal: SignalConfig(name: "x", type: .int32)), .int(3))
        XCTAssertEqual(OPCUAValueConversion.signalValue(.float(1.5), signal: SignalConfig(name: "x")), .double(1.5))
        XCTAssertEqual(OPCUAValueConversion.signalValue(.string("abc"), signal: SignalConfig(name: "x", type: .double)), nil)
        XCTAssertEqual(OPCUAValueConversion.signalValue(.uint16(10), signal: SignalConfig(name: "x", scale: 0.1, offset: 1)), .double(2))
        XCTAssertNil(OPCUAValueConversion.signalValue(nil, signal: s))
    }
}
