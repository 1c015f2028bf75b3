import Foundation
import PlantModel
import Runtime
import Tracking
import XCTest

/// A small five-process plant: PRESS (no vehicles, lots), WELD (bool cycle), PAINT (bool cycle,
/// paint lot), ASSY (numeric cycle counter, operator), INSP (bool cycle).
enum Fixtures {
    static let base = Date(timeIntervalSince1970: 1_795_000_000) // 2026-11-18, any instant works

    static func config() -> PlantConfig {
        func modbus(_ port: UInt16) -> Endpoint { .modbusTCP(host: "127.0.0.1", port: port, unit: 1) }
        let states: [Int64: String] = [0: "idle", 1: "running", 2: "fault"]
        return PlantConfig(
            plant: "test", timezone: TimeZone(identifier: "UTC")!,
            route: ["stamping", "welding", "paint", "assembly", "inspection"],
            shifts: [Shift(name: "A", startMinute: 0, endMinute: 720), Shift(name: "B", startMinute: 720, endMinute: 0)],
            stations: [
                StationConfig(id: "PRESS", name: "press", process: "stamping", protocol: .modbus, endpoint: modbus(1), signals: [
                    SignalConfig(name: "strokes", role: .counter, type: .uint32),
                    SignalConfig(name: "panelLot", role: .lotId, type: .string),
                    SignalConfig(name: "tonnage", role: .measurement, type: .float32),
                ]),
                StationConfig(id: "WELD", name: "weld", process: "welding", protocol: .modbus, endpoint: modbus(2), signals: [
                    SignalConfig(name: "vehicleId", role: .vehicleId, type: .string),
                    SignalConfig(name: "cycleDone", role: .cycleComplete, type: .bool),
                    SignalConfig(name: "result", role: .result, type: .uint16, okValues: [1]),
                    SignalConfig(name: "state", role: .state, type: .uint16, states: states),
                    SignalConfig(name: "weldCurrent", role: .measurement, type: .float32),
                    SignalConfig(name: "panelLot", role: .lotId, type: .string),
                ]),
                StationConfig(id: "PAINT", name: "paint", process: "paint", protocol: .opcua,
                              endpoint: .opcua(url: "opc.tcp://127.0.0.1:3", host: "127.0.0.1", port: 3), signals: [
                    SignalConfig(name: "vehicleId", role: .vehicleId, type: .string),
                    SignalConfig(name: "cycleDone", role: .cycleComplete, type: .bool),
                    SignalConfig(name: "filmThickness", role: .measurement, type: .double),
                    SignalConfig(name: "paintLot", role: .lotId, type: .string),
                ]),
                StationConfig(id: "ASSY", name: "assy", process: "assembly", protocol: .opcua,
                              endpoint: .opcua(url: "opc.tcp://127.0.0.1:4", host: "127.0.0.1", port: 4), signals: [
                    SignalConfig(name: "vehicleId", role: .vehicleId, type: .string),
                    SignalConfig(name: "cycleCount", role: .cycleComplete, type: .uint32),
                    SignalConfig(name: "result", role: .result, type: .uint16, okValues: [1, 3]),
                    SignalConfig(name: "torque", role: .measurement, type: .double),
                    SignalConfig(name: "operator", role: .operator, type: .string),
                    SignalConfig(name: "boltLot", role: .lotId, type: .string),
                ]),
                StationConfig(id: "INSP", name: "insp", process: "inspection", protocol: .modbus, endpoint: modbus(5), signals: [
                    SignalConfig(name: "vehicleId", role: .vehicleId, type: .string),
                    SignalConfig(name: "cycleDone", role: .cycleComplete, type: .bool),
                    SignalConfig(name: "result", role: .result, type: .uint16),
                    SignalConfig(name: "gap", role: .measurement, type: .float64),
                ]),
            ])
    }

    static func t(_ seconds: Double) -> Date { base.addingTimeInterval(seconds) }

    static func poll(_ station: String, _ seconds: Double, _ values: [String: SignalValue]) -> StationPoll {
        StationPoll(station: station, time: t(seconds),
                    readings: values.sorted { $0.key < $1.key }.map { SignalReading(name: $0.key, value: $0.value, quality: .good) })
    }

    /// Arrive at `start`, complete at `start + 10` with the given extra values, leave at `start + 12`.
    /// A bool-cycle station; ASSY uses its counter (`counter` is its value after this cycle).
    static func pass(_ vehicle: String, at station: String, start: Double, values: [String: SignalValue] = [:],
                     counter: Int64 = 1) -> [StationPoll] {
        if station == "ASSY" {
            return [
                poll(station, start, ["vehicleId": .string(vehicle), "cycleCount": .int(counter - 1)]),
                poll(station, start + 10, values.merging(["cycleCount": .int(counter)]) { a, _ in a }),
                poll(station, start + 12, ["vehicleId": .string("")]),
            ]
        }
        return [
            poll(station, start, ["vehicleId": .string(vehicle), "cycleDone": .bool(false)]),
            poll(station, start + 10, values.merging(["cycleDone": .bool(true)]) { a, _ in a }),
            poll(station, start + 12, ["vehicleId": .string(""), "cycleDone": .bool(false)]),
        ]
    }
}

extension Tracker {
    /// Feeds polls in order and returns every output.
    mutating func feed(_ polls: [StationPoll]) -> [TrackingOutput] {
        polls.flatMap { process($0) }
    }
}

extension Array where Element == TrackingOutput {
    var completed: [OperationRecord] {
        compactMap { if case .operationCompleted(let op) = $0 { return op }; return nil }
    }
    var started: [OperationRecord] {
        compactMap { if case .operationStarted(let op) = $0 { return op }; return nil }
    }
    var aborted: [OperationRecord] {
        compactMap { if case .operationAborted(let op) = $0 { return op }; return nil }
    }
    var issues: [SequenceIssue] {
        compactMap { if case .sequenceIssue(let issue) = $0 { return issue }; return nil }
    }
    var vehicles: [VehicleSummary] {
        compactMap { if case .vehicleChanged(let v) = $0 { return v }; return nil }
    }
    var lotCounts: [LotCount] {
        compactMap { if case .lotCounted(let c) = $0 { return c }; return nil }
    }
}
