import BenchSupport
import Foundation
import PlantModel
import Quality
import Runtime

/// Throughput and per-input delay of the quality engine on its own, with every rule on.
///
/// Synthetic line: `stations` weld-like stations in pairs of one process, polled every 100 ms
/// (state, fault code; a fault episode now and then), an operation every 10 polls per station with
/// three measurements (one slowly drifting, NOK now and then), a sequence issue every 500
/// operations, a fault episode per station every 10 minutes, an 8 s connection drop every 20 minutes and a tick per second.
public enum QualityBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var inputs: Int
        public var polls: Int
        public var operations: Int
        public var outputs: Int
        public var seconds: Double
        public var inputsPerSecond: Double
        public var meanDelayMicros: Double
        public var p99DelayMicros: Double
        public var maxDelayMicros: Double

        public var description: String {
            "quality engine: \(inputs) inputs (\(polls) polls, \(operations) operations) → \(outputs) outputs in "
                + String(format: "%.3f s = %.0f inputs/s; delay per input mean %.2f µs, p99 %.2f µs, max %.1f µs",
                         seconds, inputsPerSecond, meanDelayMicros, p99DelayMicros, maxDelayMicros)
        }
    }

    /// The synthetic plant used by ``run(inputs:stations:)``.
    public static func plant(stations count: Int = 8) -> PlantConfig {
        var stations: [StationConfig] = []
        for i in 0..<count {
            let id = "ST-\(i)"
            stations.append(StationConfig(
                id: id, name: id, process: "p\(i / 2)", protocol: .modbus,
                endpoint: .modbusTCP(host: "127.0.0.1", port: UInt16(15_000 + i), unit: 1), idealCycleTimeS: 0.9,
                signals: [
                    SignalConfig(name: "vehicleId", role: .vehicleId, address: ModbusAddress(table: .holdingRegister, index: 10), type: .string, length: 17),
                    SignalConfig(name: "cycleDone", role: .cycleComplete, address: ModbusAddress(table: .coil, index: 0), type: .bool),
                    SignalConfig(name: "result", role: .result, address: ModbusAddress(table: .holdingRegister, index: 30), type: .uint16),
                    SignalConfig(name: "state", role: .state, address: ModbusAddress(table: .holdingRegister, index: 31), type: .uint16,
                                 states: [0: "idle", 1: "running", 2: "fault", 5: "setup"]),
                    SignalConfig(name: "faultCode", role: .faultCode, address: ModbusAddress(table: .holdingRegister, index: 32), type: .uint16),
                    SignalConfig(name: "current", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 20), type: .float32,
                                 limits: SpecLimits(low: 8, high: 12)),
                    SignalConfig(name: "voltage", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 22), type: .float32,
                                 limits: SpecLimits(low: 6, high: 10)),
                    SignalConfig(name: "force", role: .measurement, address: ModbusAddress(table: .holdingRegister, index: 24), type: .float32,
                                 limits: SpecLimits(low: 2, high: 4)),
                ]))
        }
        return PlantConfig(plant: "bench", timezone: TimeZone(identifier: "UTC")!, route: (0..<(count + 1) / 2).map { "p\($0)" },
                           shifts: [Shift(name: "A", startMinute: 0, endMinute: 720), Shift(name: "B", startMinute: 720, endMinute: 0)],
                           stations: stations)
    }

    /// The synthetic inputs, in time order.
    public static func inputs(count: Int, stations: Int = 8) -> [QualityInput] {
        var inputs: [QualityInput] = []
        inputs.reserveCapacity(count)
        var rng: UInt64 = 12345
        func noise() -> Double {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Double((rng >> 11) % 2_000_001) / 1_000_000 - 1
        }
        let start = Date(timeIntervalSince1970: 1_795_219_200) // 2026-11-21T00:00:00Z
        var step = 0, operations = 0
        var states = [Int64](repeating: 1, count: stations)
        while inputs.count < count {
            let t = start.addingTimeInterval(Double(step) * 0.1)
            if step % 10 == 0 { inputs.append(.tick(t)) }
            for s in 0..<stations where inputs.count < count {
                let id = "ST-\(s)"
                // Per station every 10 min: 30 s setup, 130 s fault (a downtime alert), running otherwise.
                let phase = (step + s * 370) % 6000
                states[s] = phase < 300 ? 5 : (phase >= 4000 && phase < 5300 ? 2 : 1)
                // Offline for 8 s once every 20 min (a connection alert).
                let offline = (step + s * 1010) % 12_000
                if offline == 0 {
                    inputs.append(.connection(ConnectionChange(station: id, state: .offline, time: t, reason: "bench")))
                }
                if offline < 80 { continue }
                inputs.append(.poll(StationPoll(station: id, time: t, readings: [
                    SignalReading(name: "state", value: .int(states[s]), quality: .good),
                    SignalReading(name: "faultCode", value: .int(states[s] == 2 ? Int64(10 + s % 3) : 0), quality: .good),
                    SignalReading(name: "vehicleId", value: .string("V\(step / 10)"), quality: .good),
                    SignalReading(name: "cycleDone", value: .bool(step % 10 == 0), quality: .good),
                    SignalReading(name: "result", value: .int(1), quality: .good),
                    SignalReading(name: "current", value: .double(10 + 0.1 * noise()), quality: .good),
                ])))
                if step % 10 == 5, inputs.count < count {
                    operations += 1
                    let drift = Double(operations % 4000) / 4000 * 2.5 // a slow drift that restarts
                    let op = OperationRecord(
                        id: "\(id)-\(step)", vehicleId: "V\(step / 10)", station: id, process: "p\(s / 2)",
                        startedAt: t.addingTimeInterval(-1), completedAt: t, result: operations % 53 == 0 ? .nok : .ok,
                        measurements: ["current": 10 + 0.1 * noise() + (s == 0 ? drift : 0), "voltage": 8 + 0.1 * noise(),
                                       "force": 3 + 0.05 * noise()],
                        attempt: operations % 97 == 0 ? 2 : 1)
                    inputs.append(.operation(op))
                    if operations % 500 == 0, inputs.count < count {
                        inputs.append(.sequenceIssue(SequenceIssueInput(kind: .skipped, vehicleId: op.vehicleId, station: id,
                                                                        skippedProcesses: ["p0"], time: t)))
                    }
                }
            }
            step += 1
        }
        return inputs
    }

    /// Runs the engine over `inputs` synthetic inputs and measures it.
    public static func run(inputs count: Int = 500_000, stations: Int = 8) -> Result {
        let config = plant(stations: stations)
        let inputs = inputs(count: count, stations: stations)
        var engine = QualityEngine(config: config, rules: QualityRules())
        var delays = [UInt32](repeating: 0, count: inputs.count)
        var out: [QualityOutput] = []
        out.reserveCapacity(64)
        var outputs = 0
        let begin = Monotonic.nanoseconds()
        for (i, input) in inputs.enumerated() {
            let t0 = Monotonic.nanoseconds()
            engine.process(input, into: &out)
            delays[i] = UInt32(min(Monotonic.nanoseconds() - t0, UInt64(UInt32.max)))
            outputs += out.count
            out.removeAll(keepingCapacity: true)
        }
        let seconds = Double(Monotonic.nanoseconds() - begin) / 1e9
        let sorted = delays.map { Double($0) / 1000 }.sorted()
        let mean = Double(delays.reduce(0) { $0 + UInt64($1) }) / Double(max(1, delays.count)) / 1000
        var polls = 0, operations = 0
        for input in inputs {
            if case .poll = input { polls += 1 }
            if case .operation = input { operations += 1 }
        }
        return Result(inputs: inputs.count, polls: polls, operations: operations, outputs: outputs, seconds: seconds,
                      inputsPerSecond: Double(inputs.count) / seconds, meanDelayMicros: mean,
                      p99DelayMicros: percentile(sorted: sorted, 0.99), maxDelayMicros: sorted.last ?? .nan)
    }
}
