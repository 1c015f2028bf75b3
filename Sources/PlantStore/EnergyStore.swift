import Foundation
import PlantModel
import Quality
import Runtime
import Storage
import Tracking

/// Energy per operation and the quality engine's learned state (README "Energy and equipment health").
///
/// Its own migration group `energy`: the column `operations.energy_kwh` (kWh of the operation's
/// station between start and completion; NULL without a meter) and the table `learned_state`
/// (anomaly baselines, equipment units, the alert load history as JSON). Apply the group after
/// `genealogy` (it adds a column to that group's table).
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
    ])

    /// Whether any completed operation among `outputs` carries energy.
    public static func hasEnergy(_ outputs: [TrackingOutput]) -> Bool {
        outputs.contains { if case .operationCompleted(let op) = $0 { return op.energyKWh != nil } else { return false } }
    }

    /// Stores the energy of completed operations (after ``GenealogyStore/apply(_:to:)`` in the same transaction).
    public static func apply(_ outputs: [TrackingOutput], to db: Database) throws {
        for case .operationCompleted(let op) in outputs {
            guard let kWh = op.energyKWh else { continue }
            try db.run("UPDATE operations SET energy_kwh = ? WHERE id = ?", [.real(kWh), .text(op.id)])
        }
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
        try db.run("INSERT OR REPLACE INTO learned_state (name, saved_ms, data) VALUES ('quality', ?, ?)",
                   [.integer(Int64((time.timeIntervalSince1970 * 1000).rounded(.down))), .text(try state.encoded())])
    }

    /// The saved learned state, if any; throws when it does not decode.
    public static func learnedState(_ db: Database) throws -> LearnedState? {
        guard let text = try db.scalarText("SELECT data FROM learned_state WHERE name = 'quality'") else { return nil }
        return try LearnedState.decode(text)
    }
}
