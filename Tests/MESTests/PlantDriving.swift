import Foundation
@testable import MESApp
import PlantModel
import Runtime

/// Drives a running server's pipeline with polls on a test clock, as a PLC would: shared by the
/// API tests that build vehicles operation by operation.
protocol PlantDriving: AnyObject {
    var server: MESServer! { get }
    /// The test clock; each poll moves it 1 s.
    var clock: Date { get set }
    /// The value a numeric cycle counter has reached.
    var operationCounter: Int { get set }
}

extension PlantDriving {
    /// A poll of `station` with `values` (names of the server's config), at the test clock, which moves 1 s.
    func poll(_ station: String, _ values: [String: SignalValue]) {
        clock = clock.addingTimeInterval(1)
        let readings = values.map { SignalReading(name: $0.key, value: $0.value, quality: .good) }.sorted { $0.name < $1.name }
        server.pipeline.submit(.poll(StationPoll(station: station, time: clock, readings: readings)))
    }

    /// One operation of `vin` at a station: vehicle appears, running, measurements, cycle completes,
    /// vehicle leaves. The cycle signal is the station's `cycleComplete` signal of the config: a
    /// `bool` rises, a number counts up.
    func operate(_ vin: String, at station: String, result: Int64 = 1,
                 measurements: [String: SignalValue] = [:], lots: [String: SignalValue] = [:]) {
        let signal = server.pipeline.config.station(station)?.signals.first { $0.role == .cycleComplete }
        let cycle = signal?.name ?? "cycleDone"
        let isCounter = signal.map { $0.type != .bool } ?? false
        var base: [String: SignalValue] = ["vehicleId": .string(vin), "state": .int(1), "result": .int(result), "faultCode": .int(0)]
        base.merge(lots) { $1 }
        base[cycle] = isCounter ? .int(Int64(operationCounter)) : .bool(false)
        poll(station, base)
        var done = base.merging(measurements) { $1 }
        done[cycle] = isCounter ? .int(Int64(operationCounter + 1)) : .bool(true)
        poll(station, done)
        operationCounter += 1
        var left = done
        left["vehicleId"] = .string("")
        left["state"] = .int(0)
        left[cycle] = isCounter ? .int(Int64(operationCounter)) : .bool(false)
        poll(station, left)
    }
}

/// An in-process server on a config and database, as the API tests start it: replay of nothing
/// (`/dev/null`), so the pipeline's clock is the test clock of the polls; port 0. With `replay` a
/// recording instead, played at full speed.
struct InProcessServer {
    let server: MESServer
    let task: Task<Void, any Error>
    let http: TestHTTP

    init(config: String, database: String, replay: String = "/dev/null", level: Logger.Level = .warning) throws {
        var options = ServerOptions()
        options.config = config
        options.database = database
        options.port = 0
        options.replay = replay
        if replay != "/dev/null" { options.speed = .max }
        let server = try MESServer(options: options, logger: Logger(label: "test", level: level))
        self.server = server
        task = Task { try await server.run(installSignalHandlers: false) }
        http = TestHTTP(port: server.port)
    }

    /// Stops it and waits until it has stopped (its database closed).
    func stop() async throws {
        server.shutdown()
        try await task.value
    }
}
