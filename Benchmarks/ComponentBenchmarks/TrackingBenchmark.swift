import Foundation
import PlantModel
import Runtime
import Tracking

/// Tracking throughput on a synthetic line, for `tools/bench` and tests.
public enum TrackingBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var polls: Int
        /// Signal readings fed (one sample = one reading).
        public var samples: Int
        public var seconds: Double
        public var operationsCompleted: Int
        public var sequenceIssues: Int
        public var outputs: Int

        public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
        public var pollsPerSecond: Double { seconds > 0 ? Double(polls) / seconds : 0 }

        public var description: String {
            "tracking: \(samples) samples in \(polls) polls, \(String(format: "%.3f", seconds)) s, "
                + "\(Int(samplesPerSecond)) samples/s, \(operationsCompleted) operations, \(sequenceIssues) issues"
        }
    }

    /// A plant shaped like the default one: a press (lots) and four vehicle stations in a row.
    public static func plant() -> PlantConfig {
        let states: [Int64: String] = [0: "idle", 1: "running", 2: "fault"]
        func endpoint(_ port: UInt16) -> Endpoint { .modbusTCP(host: "127.0.0.1", port: port, unit: 1) }
        func vehicleStation(_ id: String, _ process: String, _ port: UInt16, lot: String) -> StationConfig {
            StationConfig(id: id, name: id, process: process, protocol: .modbus, endpoint: endpoint(port), signals: [
                SignalConfig(name: "vehicleId", role: .vehicleId, type: .string, length: 17),
                SignalConfig(name: "cycleDone", role: .cycleComplete, type: .bool),
                SignalConfig(name: "result", role: .result, type: .uint16),
                SignalConfig(name: "state", role: .state, type: .uint16, states: states),
                SignalConfig(name: "faultCode", role: .faultCode, type: .uint16),
                SignalConfig(name: "value1", role: .measurement, type: .float32),
                SignalConfig(name: "value2", role: .measurement, type: .float32),
                SignalConfig(name: "lot", role: .lotId, type: .string, length: 12),
            ])
        }
        return PlantConfig(
            plant: "bench", timezone: TimeZone(identifier: "UTC")!,
            route: ["stamping", "welding", "paint", "assembly", "inspection"],
            shifts: [Shift(name: "A", startMinute: 360, endMinute: 840), Shift(name: "B", startMinute: 840, endMinute: 1320),
                     Shift(name: "C", startMinute: 1320, endMinute: 360)],
            stations: [
                StationConfig(id: "PRESS-01", name: "press", process: "stamping", protocol: .modbus, endpoint: endpoint(1), signals: [
                    SignalConfig(name: "strokes", role: .counter, type: .uint32),
                    SignalConfig(name: "tonnage", role: .measurement, type: .float32),
                    SignalConfig(name: "state", role: .state, type: .uint16, states: states),
                    SignalConfig(name: "panelLot", role: .lotId, type: .string, length: 12),
                ]),
                vehicleStation("WELD-01", "welding", 2, lot: "panelLot"),
                vehicleStation("PAINT-01", "paint", 3, lot: "paintLot"),
                vehicleStation("ASSY-01", "assembly", 4, lot: "boltLot"),
                vehicleStation("INSP-01", "inspection", 5, lot: "gaugeLot"),
            ])
    }

    /// Every station polled every 100 ms (sample time) with all its signals; each vehicle spends
    /// `dwellPolls` polls at each station (arrive, run, complete, leave). Polls are built first;
    /// only ``Tracker/process(_:)`` is timed.
    public static func makePolls(vehicles: Int, dwellPolls: Int = 10) -> [StationPoll] {
        let config = plant()
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        let vehicleStations = config.stations.dropFirst().map(\.id)
        let steps = (vehicles + vehicleStations.count) * dwellPolls
        var polls: [StationPoll] = []
        polls.reserveCapacity(steps * config.stations.count)
        for step in 0..<steps {
            let time = start.addingTimeInterval(Double(step) * 0.1)
            let phase = step % dwellPolls
            let slot = step / dwellPolls
            let strokes = Int64(step / 3)
            let lot = "P-" + String(strokes / 500)
            polls.append(StationPoll(station: "PRESS-01", time: time, readings: [
                SignalReading(name: "strokes", value: .int(strokes), quality: .good),
                SignalReading(name: "tonnage", value: .double(8000 + Double(step % 7)), quality: .good),
                SignalReading(name: "state", value: .int(1), quality: .good),
                SignalReading(name: "panelLot", value: .string(lot), quality: .good),
            ]))
            for (position, station) in vehicleStations.enumerated() {
                let number = slot - position
                // Present for all but the last poll of the slot: leaving leaves the station empty once.
                let present = number >= 0 && number < vehicles && phase < dwellPolls - 1
                let vehicle = present ? "VIN" + String(100_000 + number) : ""
                let done = present && phase >= dwellPolls - 3
                polls.append(StationPoll(station: station, time: time, readings: [
                    SignalReading(name: "vehicleId", value: .string(vehicle), quality: .good),
                    SignalReading(name: "cycleDone", value: .bool(done), quality: .good),
                    SignalReading(name: "result", value: .int(number % 50 == 7 ? 2 : 1), quality: .good),
                    SignalReading(name: "state", value: .int(present && !done ? 1 : 0), quality: .good),
                    SignalReading(name: "faultCode", value: .int(0), quality: .good),
                    SignalReading(name: "value1", value: .double(10 + Double(step % 13) * 0.01), quality: .good),
                    SignalReading(name: "value2", value: .double(8 + Double(step % 11) * 0.01), quality: .good),
                    SignalReading(name: "lot", value: .string(present ? lot : ""), quality: .good),
                ]))
            }
        }
        return polls
    }

    /// Runs the synthetic line through a fresh tracker and times it.
    public static func run(vehicles: Int = 10_000, dwellPolls: Int = 10) -> Result {
        let polls = makePolls(vehicles: vehicles, dwellPolls: dwellPolls)
        var tracker = Tracker(config: plant())
        let samples = polls.reduce(0) { $0 + $1.readings.count }
        var completed = 0, issues = 0, outputs = 0
        let begin = Monotonic.nanoseconds()
        for poll in polls {
            let out = tracker.process(poll)
            outputs += out.count
            for output in out {
                switch output {
                case .operationCompleted: completed += 1
                case .sequenceIssue: issues += 1
                default: break
                }
            }
        }
        let seconds = Double(Monotonic.nanoseconds() - begin) / 1e9
        return Result(polls: polls.count, samples: samples, seconds: seconds, operationsCompleted: completed,
                      sequenceIssues: issues, outputs: outputs)
    }
}
