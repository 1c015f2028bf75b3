import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage

/// Shift history's commands and live facts (README "Shift calendar and shift history");
/// ``PlantStage`` implements it. Throws storage errors (503).
public protocol ShiftBackend: Sendable {
    /// `POST /api/shifts/notes`: a handover note in the current shift on the pipeline's clock,
    /// returned once it is stored.
    func addShiftNote(text: String, by principal: Principal) throws -> ShiftNote
    /// The shift window at the pipeline's clock (nil in replay before the first sample).
    func currentShift() -> ShiftWindow?
}

/// Past shifts and handover notes as the API reads them from storage (any thread; storage errors → 503).
public protocol ShiftQueries: Sendable {
    /// The stored shift of a plant-local date (`YYYY-MM-DD`) and name.
    func shift(date: String, name: String) throws -> StoredShift?
    /// The newest stored shift that ended at or before `end` (the newest of all with nil).
    func latestShift(endingBy end: Date?) throws -> StoredShift?
    /// Stored shifts starting in `from ..< to`, newest first.
    func shifts(from: Date?, to: Date?, limit: Int) throws -> [StoredShift]
    /// Handover notes, newest first; those of one shift when `date` and `shift` are given.
    func notes(date: String?, shift: String?, limit: Int) throws -> [ShiftNote]
}

/// ``ShiftQueries`` over the event log's read connections.
public struct StoreShiftQueries: ShiftQueries {
    let eventLog: EventLog

    public init(eventLog: EventLog) { self.eventLog = eventLog }

    public func shift(date: String, name: String) throws -> StoredShift? {
        try eventLog.read { try ShiftStore.shift(date: date, name: name, in: $0) }
    }

    public func latestShift(endingBy end: Date?) throws -> StoredShift? {
        try eventLog.read { try ShiftStore.latest(endingBy: end, in: $0) }
    }

    public func shifts(from: Date?, to: Date?, limit: Int) throws -> [StoredShift] {
        try eventLog.read { try ShiftStore.shifts(from: from, to: to, limit: limit, in: $0) }
    }

    public func notes(date: String?, shift: String?, limit: Int) throws -> [ShiftNote] {
        try eventLog.read { try ShiftStore.notes(date: date, shift: shift, limit: limit, in: $0) }
    }
}
