import Foundation
import PlantModel
import Tracking
import XCTest

/// The key part rules of ``PartBook`` (README "Key parts, recall and the quality gate"), without storage.
final class PartBookTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_795_298_400)

    func testPLCScanBindsAndSameSerialAgainChangesNothing() {
        var book = PartBook()
        let first = book.scan(PartScan(partType: "engine", serial: "E1", partNumber: "ENG-20T"), vehicleId: "V1", station: "ASSY-01",
                              at: t0, expected: "ENG-20T")
        XCTAssertEqual(first.issues, [])
        XCTAssertEqual(first.updates.map(\.change), [.bound])
        XCTAssertEqual(first.updates[0].binding.boundBy, "plc")
        XCTAssertEqual(first.updates[0].binding.id, 1)
        XCTAssertEqual(book.parts(of: "V1")["engine"]?.serial, "E1")
        let again = book.scan(PartScan(partType: "engine", serial: "E1", partNumber: "ENG-20T"), vehicleId: "V1", station: "ASSY-01",
                              at: t0.addingTimeInterval(60), expected: "ENG-20T")
        XCTAssertEqual(again.updates, [], "a repeated cycle with the same serial binds nothing new")
    }

    func testDuplicateSerialFromPLCKeepsBothBindingsAndReportsTheSecondVehicle() {
        var book = PartBook()
        _ = book.scan(PartScan(partType: "engine", serial: "E1"), vehicleId: "V1", station: "ASSY-01", at: t0, expected: nil)
        let second = book.scan(PartScan(partType: "engine", serial: "E1"), vehicleId: "V2", station: "ASSY-02", at: t0.addingTimeInterval(60), expected: nil)
        XCTAssertEqual(second.updates.map(\.change), [.bound], "the binding is kept")
        XCTAssertEqual(second.issues.count, 1)
        XCTAssertEqual(second.issues[0].kind, .duplicateSerial)
        XCTAssertEqual(second.issues[0].vehicleId, "V2")
        XCTAssertEqual(second.issues[0].found, "V1")
        XCTAssertEqual(second.issues[0].defectCode, "DUPLICATE_SERIAL:engine")
        XCTAssertEqual(Set(book.holders(of: "E1", except: "nobody")), ["V1", "V2"])
    }

    func testWrongPartNumberAgainstTheSpec() {
        var book = PartBook()
        let result = book.scan(PartScan(partType: "engine", serial: "E1", partNumber: "ENG-15T"), vehicleId: "V1", station: "ASSY-01",
                               at: t0, expected: "ENG-20T")
        XCTAssertEqual(result.issues.map(\.defectCode), ["WRONG_PART:engine"])
        XCTAssertEqual(result.issues[0].found, "ENG-15T")
        XCTAssertEqual(result.issues[0].expected, "ENG-20T")
        XCTAssertTrue(result.issues[0].message.contains("ENG-15T") && result.issues[0].message.contains("ENG-20T"), result.issues[0].message)
        // No part number reported, or none in the spec: nothing to compare.
        XCTAssertEqual(book.scan(PartScan(partType: "seat", serial: "S1"), vehicleId: "V1", station: "ASSY-01", at: t0, expected: "SEAT-1").issues, [])
        XCTAssertEqual(book.scan(PartScan(partType: "hud", serial: "H1", partNumber: "X"), vehicleId: "V1", station: "ASSY-01", at: t0, expected: nil).issues, [])
    }

    func testANewSerialFromThePLCReplacesTheOldOne() {
        var book = PartBook()
        _ = book.scan(PartScan(partType: "engine", serial: "E1"), vehicleId: "V1", station: "ASSY-01", at: t0, expected: nil)
        let result = book.scan(PartScan(partType: "engine", serial: "E2"), vehicleId: "V1", station: "ASSY-01", at: t0.addingTimeInterval(60), expected: nil)
        XCTAssertEqual(result.updates.map(\.change), [.removed, .bound])
        XCTAssertEqual(result.updates[0].binding.serial, "E1")
        XCTAssertEqual(result.updates[0].binding.removedBy, "plc")
        XCTAssertEqual(result.updates[0].binding.reason, "replaced by E2 at ASSY-01")
        XCTAssertEqual(book.holders(of: "E1", except: "nobody"), [], "E1 is free again")
    }

    func testAPIBindRefusesDuplicatesAndASecondPartOfAType() throws {
        var book = PartBook()
        _ = try book.bind(partType: "engine", serial: "E1", partNumber: nil, vehicleId: "V1", station: nil, by: "wang.fang", at: t0, expected: nil)
        XCTAssertThrowsError(try book.bind(partType: "engine", serial: "E1", partNumber: nil, vehicleId: "V2", station: nil, by: "wang.fang", at: t0, expected: nil)) {
            XCTAssertEqual(($0 as? PartError)?.kind, .duplicateSerial)
        }
        XCTAssertThrowsError(try book.bind(partType: "engine", serial: "E9", partNumber: nil, vehicleId: "V1", station: nil, by: "wang.fang", at: t0, expected: nil)) {
            XCTAssertEqual(($0 as? PartError)?.kind, .conflict)
        }
        XCTAssertThrowsError(try book.bind(partType: "seat", serial: "E1", partNumber: nil, vehicleId: "V1", station: nil, by: "wang.fang", at: t0, expected: nil)) {
            XCTAssertEqual(($0 as? PartError)?.kind, .conflict, "one serial is one part")
        }
        let wrong = try book.bind(partType: "seat", serial: "S1", partNumber: "SEAT-B", vehicleId: "V2", station: "ASSY-02", by: "wang.fang", at: t0, expected: "SEAT-A")
        XCTAssertEqual(wrong.updates.count, 1, "a wrong part is bound")
        XCTAssertEqual(wrong.issues.map(\.defectCode), ["WRONG_PART:seat"])
    }

    func testReplaceKeepsHistoryAndFreesTheOldSerial() throws {
        var book = PartBook(current: [], nextId: 41)
        _ = try book.bind(partType: "engine", serial: "E1", partNumber: "ENG-20T", vehicleId: "V1", station: "ASSY-01", by: "plc", at: t0, expected: nil)
        XCTAssertThrowsError(try book.replace(partType: "seat", serial: "S", partNumber: nil, vehicleId: "V1", station: nil, reason: "x", by: "li.wei", at: t0, expected: nil)) {
            XCTAssertEqual(($0 as? PartError)?.kind, .notFound)
        }
        XCTAssertThrowsError(try book.replace(partType: "engine", serial: "E1", partNumber: nil, vehicleId: "V1", station: nil, reason: "x", by: "li.wei", at: t0, expected: nil)) {
            XCTAssertEqual(($0 as? PartError)?.kind, .conflict)
        }
        let result = try book.replace(partType: "engine", serial: "E2", partNumber: "ENG-20T", vehicleId: "V1", station: nil,
                                      reason: "oil leak", by: "li.wei", at: t0.addingTimeInterval(3600), expected: "ENG-20T")
        XCTAssertEqual(result.updates.map(\.change), [.removed, .bound])
        let old = result.updates[0].binding
        XCTAssertEqual(old.id, 41)
        XCTAssertEqual(old.removedBy, "li.wei")
        XCTAssertEqual(old.reason, "oil leak")
        XCTAssertEqual(old.removedAt, t0.addingTimeInterval(3600))
        XCTAssertEqual(result.updates[1].binding.id, 42)
        XCTAssertEqual(result.updates[1].binding.station, "ASSY-01", "the new part keeps the station of the old one when none is given")
        // E1 may now go into another vehicle.
        XCTAssertNoThrow(try book.bind(partType: "engine", serial: "E1", partNumber: nil, vehicleId: "V2", station: nil, by: "wang.fang", at: t0, expected: nil))
    }

    func testMissingPartsAgainstTheSpecAndARestoredBook() {
        let stored = [PartBinding(id: 7, partType: "engine", serial: "E1", partNumber: "ENG-20T", vehicleId: "V1", station: "ASSY-01",
                                  boundAt: t0, boundBy: "plc"),
                      PartBinding(id: 8, partType: "seat", serial: "S1", partNumber: nil, vehicleId: "V1", station: nil,
                                  boundAt: t0, boundBy: "wang.fang", removedAt: t0, removedBy: "li.wei", reason: "torn")]
        var book = PartBook(current: stored, nextId: 9)
        let missing = book.missing(vehicleId: "V1", spec: ["engine": "ENG-20T", "seat": "SEAT-A", "airbag": "AB-1"], station: "INSP-01", at: t0)
        XCTAssertEqual(missing.map(\.defectCode), ["MISSING_PART:airbag", "MISSING_PART:seat"], "a removed part is missing")
        XCTAssertEqual(missing.first?.expected, "AB-1")
        // The restored serial still counts for duplicates; new ids go on after the stored ones.
        let dup = book.scan(PartScan(partType: "engine", serial: "E1"), vehicleId: "V3", station: "ASSY-02", at: t0, expected: nil)
        XCTAssertEqual(dup.issues.map(\.kind), [.duplicateSerial])
        XCTAssertEqual(dup.updates.last?.binding.id, 9)
    }
}
