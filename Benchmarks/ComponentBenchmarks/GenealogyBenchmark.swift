import BenchSupport
import Foundation
import PlantModel
import PlantStore
import Runtime
import Storage
import Tracking

/// Genealogy query latency on a large store, for `tools/bench` and tests.
public enum GenealogyBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var operations: Int
        public var vehicles: Int
        public var insertSeconds: Double
        public var vehicleQueries: Int
        /// `GenealogyStore.vehicle(id:)` plus serialization, on a read-only connection.
        public var vehicleQueryP50Ms: Double
        public var vehicleQueryP99Ms: Double
        public var vehicleQueryMaxMs: Double
        /// Vehicles in the traced lot.
        public var lotVehicles: Int
        public var lotQueryP50Ms: Double
        public var lotQueryMaxMs: Double

        public var description: String {
            func f(_ v: Double) -> String { String(format: "%.3f", v) }
            return "genealogy: \(operations) operations / \(vehicles) vehicles stored in \(f(insertSeconds)) s; "
                + "vehicle query p50 \(f(vehicleQueryP50Ms)) ms p99 \(f(vehicleQueryP99Ms)) ms max \(f(vehicleQueryMaxMs)) ms "
                + "(\(vehicleQueries) queries); lot of \(lotVehicles) vehicles p50 \(f(lotQueryP50Ms)) ms max \(f(lotQueryMaxMs)) ms"
        }
    }

    static let stations: [(String, String)] = [
        ("WELD-01", "welding"), ("PAINT-01", "paint"), ("ASSY-01", "assembly"), ("ASSY-02", "assembly"), ("INSP-01", "inspection"),
    ]

    /// Fills a new database at `path` with `operations` operations (five per vehicle, panel lots of
    /// `lotVehicles` vehicles), then times random vehicle queries and the lot query.
    /// The file must not exist; it is left in place for the caller to delete.
    public static func run(path: String, operations: Int = 1_000_000, lotVehicles: Int = 5_000,
                           vehicleQueries: Int = 2_000, lotQueries: Int = 20) throws -> Result {
        let vehicleCount = max(1, operations / stations.count)
        let writer = try Database(path: path)
        defer { writer.close() }
        try Migrator(groups: [GenealogySchema.migrations]).migrate(writer)
        let base = Date(timeIntervalSince1970: 1_795_000_000)
        let begin = Monotonic.nanoseconds()
        var number = 0
        while number < vehicleCount {
            let end = min(vehicleCount, number + 2_000)
            try writer.transaction {
                for n in number..<end {
                    try GenealogyStore.apply(outputs(vehicle: n, base: base, lotVehicles: lotVehicles), to: writer)
                }
            }
            number = end
        }
        let insertSeconds = Double(Monotonic.nanoseconds() - begin) / 1e9
        try writer.execute("ANALYZE")

        let reader = try Database(path: path, mode: .readOnly)
        defer { reader.close() }
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        var vehicleTimes: [Double] = []
        vehicleTimes.reserveCapacity(vehicleQueries)
        for _ in 0..<vehicleQueries {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            let id = vin(Int((random >> 33) % UInt64(vehicleCount)))
            let start = Monotonic.nanoseconds()
            guard let json = try GenealogyStore.vehicle(id: id, in: reader) else { throw BenchError("vehicle \(id) missing") }
            _ = json.serialized()
            vehicleTimes.append(Double(Monotonic.nanoseconds() - start) / 1e6)
        }
        let lotId = lot(0)
        var lotTimes: [Double] = []
        var linked = 0
        for _ in 0..<lotQueries {
            let start = Monotonic.nanoseconds()
            guard let json = try GenealogyStore.lot(id: lotId, in: reader) else { throw BenchError("lot \(lotId) missing") }
            _ = json.serialized()
            lotTimes.append(Double(Monotonic.nanoseconds() - start) / 1e6)
            linked = json["vehicles"]?.arrayValue?.count ?? 0
        }
        vehicleTimes.sort()
        lotTimes.sort()
        return Result(operations: vehicleCount * stations.count, vehicles: vehicleCount, insertSeconds: insertSeconds,
                      vehicleQueries: vehicleQueries, vehicleQueryP50Ms: percentile(sorted: vehicleTimes, 0.5),
                      vehicleQueryP99Ms: percentile(sorted: vehicleTimes, 0.99), vehicleQueryMaxMs: vehicleTimes.last ?? 0,
                      lotVehicles: linked, lotQueryP50Ms: percentile(sorted: lotTimes, 0.5), lotQueryMaxMs: lotTimes.last ?? 0)
    }

    static func vin(_ n: Int) -> String { "VIN" + String(10_000_000 + n) }
    static func lot(_ n: Int) -> String { "PL-" + String(n) }

    /// What the tracker would report for one vehicle passing every station.
    static func outputs(vehicle n: Int, base: Date, lotVehicles: Int) -> [TrackingOutput] {
        let id = vin(n)
        let t0 = base.addingTimeInterval(Double(n) * 60)
        var out: [TrackingOutput] = []
        for (i, (station, process)) in stations.enumerated() {
            let start = t0.addingTimeInterval(Double(i) * 70)
            var op = OperationRecord(id: "\(station):\(Timestamp.format(start))", vehicleId: id, station: station, process: process,
                                     startedAt: start, completedAt: start.addingTimeInterval(55),
                                     result: n % 40 == 3 ? .nok : .ok,
                                     measurements: ["value1": 10 + Double(n % 17) * 0.01, "value2": 8 + Double(n % 13) * 0.01],
                                     lots: [], shift: "A", attempt: 1)
            if i == 0 { op.lots = [lot(n / max(1, lotVehicles))] }
            if i == 2 { op.lots = ["BL-" + String(n / 997)] }
            out.append(.operationCompleted(op))
        }
        out.append(.vehicleChanged(VehicleSummary(vehicleId: id, status: .completed, currentStation: nil, firstSeenAt: t0,
                                                  lastSeenAt: t0.addingTimeInterval(Double(stations.count) * 70),
                                                  lastRouteIndex: 4)))
        return out
    }
}
