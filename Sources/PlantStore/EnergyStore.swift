import Foundation
import PlantModel
import Quality
import Runtime
import Storage
import Tracking

/// Energy per operation and the quality engine's learned state (README "Energy and equipment health").
///
/// Its own migration group `energy`: the column `operations.energy_kwh` (kWh of the operation's
/// station between start and completion; NULL without a meter), `operations.energy_start_kwh`
/// (the station's energy odometer when the operation started, for a completion after a restart)
/// and the table `learned_state` (anomaly baselines, equipment units, the alert load history,
/// the stations' energy odometers, as JSON). Apply the group after `genealogy` (it adds columns
/// to that group's table).
public enum EnergyStore {
    public static let migrations = MigrationGroup(name: "energy", migrations: [
        Migration(version: 1, name: "operation energy, learned state", sql: """
            ALTER TABLE operations ADD COLUMN energy_kwh REAL;
            CREATE TABLE learned_state (
                name TEXT PRIMARY KEY,
                saved_ms INTEGER NOT NULL,
                data TEXT NOT NULL
            ) WITHOUT ROWID;
            """),
        Migration(version: 2, name: "operation energy at start", sql: """
            ALTER TABLE operations ADD COLUMN energy_start_kwh REAL;
            """),
    ])

    /// Whether any operation among `outputs` carries energy (a completed one's, a started one's odometer).
    public static func hasEnergy(_ outputs: [TrackingOutput]) -> Bool {
        outputs.contains {
            switch $0 {
            case .operationCompleted(let op): return op.energyKWh != nil
            case .operationStarted(let op): return op.energyStartKWh != nil
            default: return false
            }
        }
    }

    /// Stores the energy of completed operations and the odometer at the start of started ones
    /// (after ``GenealogyStore/apply(_:to:)`` in the same transaction).
    public static func apply(_ outputs: [TrackingOutput], to db: Database) throws {
        for output in outputs {
            switch output {
            case .operationCompleted(let op):
                guard let kWh = op.energyKWh else { continue }
                try db.run("UPDATE operations SET energy_kwh = ? WHERE id = ?", [.real(kWh), .text(op.id)])
            case .operationStarted(let op):
                guard let start = op.energyStartKWh else { continue }
                try db.run("UPDATE operations SET energy_start_kwh = ? WHERE id = ?", [.real(start), .text(op.id)])
            default:
                continue
            }
        }
    }

    /// The stored odometer at the start of every operation in progress (state `running`), for
    /// ``QualityEngine/restoreOperationEnergy(_:)`` after a restart.
    public static func operationStarts(_ db: Database) throws -> [(operation: String, station: String, kWh: Double)] {
        try db.query("SELECT id, station, energy_start_kwh FROM operations WHERE state = 'running' AND energy_start_kwh IS NOT NULL",
                     row: { (operation: $0.text(0) ?? "", station: $0.text(1) ?? "", kWh: $0.double(2)) })
    }

    /// A vehicle's operations' energy by operation id (operations without energy left out).
    public static func operationEnergy(vehicleId: String, in db: Database) throws -> [String: Double] {
        var result: [String: Double] = [:]
        for (id, kWh) in try db.query("SELECT id, energy_kwh FROM operations WHERE vehicle_id = ? AND energy_kwh IS NOT NULL",
                                       [.text(vehicleId)], row: { ($0.text(0) ?? "", $0.double(1)) }) {
            result[id] = kWh
        }
        return result
    }

    /// The vehicle JSON of ``GenealogyStore/vehicle(id:in:)`` with `energyKWh` on each operation
    /// and the vehicle's total `energyKWh` (null when none of its operations was metered).
    public static func addEnergy(to vehicle: JSON, vehicleId: String, in db: Database) throws -> JSON {
        guard case .object(var members) = vehicle else { return vehicle }
        let energy = try operationEnergy(vehicleId: vehicleId, in: db)
        if let index = members.firstIndex(where: { $0.0 == "operations" }), case .array(let ops) = members[index].1 {
            members[index].1 = .array(ops.map { op in
                guard case .object(var fields) = op, let id = fields.first(where: { $0.0 == "id" })?.1.stringValue else { return op }
                if let at = fields.firstIndex(where: { $0.0 == "energyKWh" }) { fields[at].1 = .number(energy[id]) } else { fields.append(("energyKWh", .number(energy[id]))) }
                return .object(fields)
            })
        }
        let total = energy.isEmpty ? nil : (energy.values.reduce(0, +) * 1_000_000).rounded() / 1_000_000
        members.append(("energyKWh", .number(total)))
        return .object(members)
    }

    /// Saves the learned state (encoded here, on the writer thread).
    public static func save(_ state: LearnedState, at time: Date, to db: Database) throws {
        try save(encoded: try state.encoded(), at: time, to: db)
    }

    /// Saves a learned state encoded beforehand (``LearnedState/encoded()``), so that the writer
    /// thread does not spend the encoding's time while commits wait.
    public static func save(encoded text: String, at time: Date, to db: Database) throws {
        try db.run("INSERT OR REPLACE INTO learned_state (name, saved_ms, data) VALUES ('quality', ?, ?)",
                   [.integer(Int64((time.timeIntervalSince1970 * 1000).rounded(.down))), .text(text)])
    }

    /// The saved learned state, if any; throws when it does not decode.
    public static func learnedState(_ db: Database) throws -> LearnedState? {
        guard let text = try db.scalarText("SELECT data FROM learned_state WHERE name = 'quality'") else { return nil }
        return try LearnedState.decode(text)
    }
}
