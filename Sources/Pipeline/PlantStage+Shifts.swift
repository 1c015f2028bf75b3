import Foundation
import PlantModel
import PlantStore
import Quality
import Runtime
import Storage

/// Shift history on the pipeline thread: each ended shift's KPI document stored with the step
/// that ended it, and handover notes (README "Shift calendar and shift history").
extension PlantStage: ShiftBackend {
    /// Stores the shifts quality reports as ended, each as the KPI document of `GET /api/kpis` at
    /// its end, and saves the new shift's counters at once (so a restart never takes the ended
    /// shift's counters for its own).
    func storeEndedShifts(into emission: inout Emission) {
        let ended = quality.takeEndedShifts()
        guard let document = kpiDocument else {
            logger.warning("no KPI document writer set: \(ended.count) ended shift(s) not stored")
            return
        }
        let state = tracker.state()
        for k in ended {
            guard let window = k.shift else { continue }
            var kpis = PlantKPIs(quality: k, lineWIP: state.lineWIP, inProcess: state.inProcess, onHold: state.onHold)
            if ordersActive { kpis.plan = shiftPlan(at: window.start) }
            let record = StoredShift(date: window.date, shift: window.name, start: window.start, end: window.end,
                                     document: document(kpis).serialized())
            let replace = !k.fromSavedCounters
            emission.write { db in try ShiftStore.save(record, replace: replace, to: db) }
            logger.info("shift \(window.name) of \(window.date) ended at \(Timestamp.format(window.end)): its KPIs are stored"
                        + (k.fromSavedCounters ? " (from the counters saved before the stop)" : ""))
        }
        if let counters = quality.shiftCounters {
            emission.write { db in try QualityStore.save(counters, to: db) }
        }
    }

    public func currentShift() -> ShiftWindow? { kpis().quality.shift }

    public func addShiftNote(text: String, by principal: Principal) throws -> ShiftNote {
        guard let pipeline else { throw EventLogError.closed }
        let note: ShiftNote = try pipeline.perform { [self] in
            let now = pipeline.commandTime
            var window = quality.shift.flatMap { now >= $0.start && now < $0.end ? $0 : nil } ?? quality.shiftWindow(at: now)
            // Written between shifts: the handover of the shift that ended last, which the next one reads.
            if window.name == "off-shift" { window = quality.shiftWindow(at: window.start.addingTimeInterval(-1)) }
            let id = try nextNoteId ?? eventLog.read { try ShiftStore.nextNoteId($0) }
            nextNoteId = id + 1
            let note = ShiftNote(id: id, date: window.date, shift: window.name, user: principal.user, text: text, t: now)
            let audit = AuditEntry(t: now, by: principal, action: "shift.note", target: "shift:\(window.date)/\(window.name)",
                                   detail: "note \(id)")
            var emission = Emission()
            emission.write { db in
                try ShiftStore.append(note, to: db)
                _ = try QualityStore.append(audit, to: db)
            }
            pipeline.commit(emission)
            return note
        }
        try eventLog.flush(timeout: 10)
        return note
    }
}
