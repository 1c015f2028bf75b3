import Foundation
import PlantModel
import Quality
import Runtime

/// A small plant: two weld cells, one inspection station; shift A 06:00–14:00 UTC.
func testPlant(alerts: String? = nil) throws -> PlantConfig {
    let weldSignals = """
      {"name": "vehicleId", "role": "vehicleId", "address": "hr:10", "type": "string", "length": 17},
      {"name": "cycleDone", "role": "cycleComplete", "address": "coil:0", "type": "bool"},
      {"name": "result", "role": "result", "address": "hr:30", "type": "uint16"},
      {"name": "state", "role": "state", "address": "hr:31", "type": "uint16",
       "states": {"0": "idle", "1": "running", "2": "fault", "3": "blocked", "4": "starved", "5": "setup", "6": "maintenance"}},
      {"name": "faultCode", "role": "faultCode", "address": "hr:32", "type": "uint16"},
      {"name": "weldCurrent", "role": "measurement", "address": "hr:20", "type": "float32", "limits": {"low": 8.0, "high": 12.0}}
    """
    let text = """
    {
      "plant": "Test line", "timezone": "UTC",
      "route": ["welding", "inspection"],
      "shifts": [{"name": "A", "start": "06:00", "end": "14:00"}, {"name": "B", "start": "14:00", "end": "22:00"}],
      \(alerts.map { "\"alerts\": \($0)," } ?? "")
      "stations": [
        {"id": "WELD-01", "name": "Weld 1", "process": "welding", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15020?unit=1", "idealCycleTimeS": 50, "offlineAlertAfterS": 5,
         "signals": [\(weldSignals)]},
        {"id": "WELD-02", "name": "Weld 2", "process": "welding", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15021?unit=1", "idealCycleTimeS": 50,
         "signals": [\(weldSignals)]},
        {"id": "INSP-01", "name": "Inspection", "process": "inspection", "protocol": "modbus",
         "endpoint": "modbus://127.0.0.1:15022?unit=1", "idealCycleTimeS": 40,
         "signals": [
           {"name": "vehicleId", "role": "vehicleId", "address": "hr:10", "type": "string", "length": 17},
           {"name": "cycleDone", "role": "cycleComplete", "address": "coil:0", "type": "bool"},
           {"name": "gap", "role": "measurement", "address": "hr:20", "type": "float32", "limits": {"low": 3.0, "high": 5.0}}
         ]}
      ]
    }
    """
    return try PlantConfig.decode(json: JSON.parse(text), file: "test.json", directory: URL(fileURLWithPath: "/tmp"))
}

/// 2026-11-21 06:00:00 UTC plus `seconds`.
func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: 1_795_240_800 + seconds) }

func op(_ id: String, vehicle: String, station: String = "WELD-01", process: String = "welding", start: Double, end: Double,
        result: OperationResult? = .ok, measurements: [String: Double] = [:], attempt: Int = 1) -> OperationRecord {
    OperationRecord(id: id, vehicleId: vehicle, station: station, process: process, startedAt: at(start), completedAt: at(end),
                    result: result, measurements: measurements, attempt: attempt)
}

func poll(_ station: String = "WELD-01", _ t: Double, state: Int64, fault: Int64 = 0) -> StationPoll {
    StationPoll(station: station, time: at(t), readings: [
        SignalReading(name: "state", value: .int(state), quality: .good),
        SignalReading(name: "faultCode", value: .int(fault), quality: .good),
    ])
}

extension [QualityOutput] {
    var alerts: [(Alert, AlertChange)] { compactMap { if case let .alert(a, c) = $0 { return (a, c) }; return nil } }
    var defects: [(Defect, DefectChange)] { compactMap { if case let .defect(d, c) = $0 { return (d, c) }; return nil } }
    var anomalies: [AnomalyEntry] { compactMap { if case let .anomaly(e) = $0 { return e }; return nil } }
    var audits: [AuditEntry] { compactMap { if case let .audit(e) = $0 { return e }; return nil } }
}

/// Deterministic noise in −1…1.
struct Noise {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double((state >> 11) % 2_000_001) / 1_000_000 - 1
    }
}

let quality = Principal(user: "li.wei", role: .quality)
