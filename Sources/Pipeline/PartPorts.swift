import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage
import Tracking

/// The key part commands, run on the pipeline thread; each returns once
/// its rows and events are committed. ``PlantStage`` implements it. Throws `PartError` (the API
/// maps it to 404/409/422) or storage errors (503).
public protocol PartBackend: Sendable {
    /// `POST /api/vehicles/{id}/parts` → the new binding.
    func bindPart(vehicleId: String, partType: String, serial: String, partNumber: String?, station: String?,
                  by principal: Principal) throws -> JSON
    /// `POST /api/vehicles/{id}/parts/{type}/replace` → the new binding.
    func replacePart(vehicleId: String, partType: String, serial: String, partNumber: String?, station: String?,
                     reason: String, by principal: Principal) throws -> JSON
}

/// What a recall asks (`GET /api/recall`); nil criteria are not asked.
public struct RecallCriteria: Sendable, Equatable {
    public var lot: String?
    public var partNumber: String?
    public var serial: String?
    public var station: String?
    public var from: Date?
    public var to: Date?
    public var model: String?
    public var limit: Int

    public init(lot: String? = nil, partNumber: String? = nil, serial: String? = nil, station: String? = nil,
                from: Date? = nil, to: Date? = nil, model: String? = nil, limit: Int = 1_000) {
        self.lot = lot
        self.partNumber = partNumber
        self.serial = serial
        self.station = station
        self.from = from
        self.to = to
        self.model = model
        self.limit = limit
    }

    public var isEmpty: Bool {
        lot == nil && partNumber == nil && serial == nil && station == nil && from == nil && to == nil && model == nil
    }

    /// The criteria given, as the answer's `criteria` object.
    public var json: JSON {
        .obj([
            ("lot", lot.map { .string($0) }),
            ("partNumber", partNumber.map { .string($0) }),
            ("serial", serial.map { .string($0) }),
            ("station", station.map { .string($0) }),
            ("from", from.map { .string(Timestamp.format($0)) }),
            ("to", to.map { .string(Timestamp.format($0)) }),
            ("model", model.map { .string($0) }),
        ])
    }
}

/// Key parts and recalls as the API reads them from storage (any thread; storage errors → 503).
public protocol PartQueries: Sendable {
    /// Every binding of a serial, newest first (empty: never seen).
    func bindings(serial: String) throws -> [PartBinding]
    /// `GET /api/recall`: `{criteria, count, vehicles}`.
    func recall(_ criteria: RecallCriteria) throws -> JSON
}

/// ``PartQueries`` over the event log's read connections.
public struct StorePartQueries: PartQueries {
    let eventLog: EventLog
    /// Every station id: a time window without a station is asked of each (the index is per station).
    let stations: [String]

    public init(eventLog: EventLog, config: PlantConfig) {
        self.eventLog = eventLog
        self.stations = config.stations.map(\.id)
    }

    public func bindings(serial: String) throws -> [PartBinding] {
        try eventLog.read { try PartStore.bindings(serial: serial, in: $0) }
    }

    public func recall(_ c: RecallCriteria) throws -> JSON {
        let windowStations = c.station.map { [$0] } ?? (c.from != nil || c.to != nil ? stations : [])
        return try eventLog.read { db in
            try PartStore.recall(lot: c.lot, partNumber: c.partNumber, serial: c.serial, stations: windowStations,
                                 from: c.from, to: c.to, model: c.model, criteria: c.json, limit: c.limit, in: db)
        }
    }
}

extension StoreQueries {
    /// What `GET /api/vehicles/{id}` adds for key parts: `parts` (every binding, current and
    /// removed, newest first) and, while on hold, `holdReason`.
    static func partMembers(vehicleId: String, onHold: Bool, in db: Database) throws -> [(String, JSON)] {
        var members: [(String, JSON)] = [("parts", .array(try PartStore.bindings(vehicleId: vehicleId, in: db).map(\.json)))]
        if onHold { members.append(("holdReason", .str(try PartStore.holdReason(vehicleId: vehicleId, in: db)))) }
        return members
    }
}
