import Foundation
import XCTest
import TestSupport
import PlantModel
import Runtime

/// Seeded random damage to the default plant config: every outcome is a config or a one-line `ConfigError`.
final class ConfigHardeningTests: XCTestCase {
    private let plantPath = repoRoot.appendingPathComponent("Stations/plant.json").path

    private func plantJSON() throws -> JSON {
        try JSON.parse(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: plantPath))))
    }

    /// Replaces, deletes or adds one node somewhere in `value`.
    private func damage(_ value: JSON, _ rng: inout SplitMix64, depth: Int = 0) -> JSON {
        let here = depth > 0 && rng.chance(0.25)
        switch value {
        case .object(var members) where !members.isEmpty && !here:
            let i = rng.below(members.count)
            switch rng.below(6) {
            case 0: members.remove(at: i)
            case 1: members.append((rng.element(["id", "x", "signals", "length", ""]), replacement(&rng)))
            case 2: members.append(members[i])                                  // a duplicate key
            default: members[i].1 = damage(members[i].1, &rng, depth: depth + 1)
            }
            return .object(members)
        case .array(var items) where !items.isEmpty && !here:
            let i = rng.below(items.count)
            switch rng.below(5) {
            case 0: items.remove(at: i)
            case 1: items.append(items[i])                                      // a duplicate station / signal
            default: items[i] = damage(items[i], &rng, depth: depth + 1)
            }
            return .array(items)
        default:
            return replacement(&rng)
        }
    }

    private func replacement(_ rng: inout SplitMix64) -> JSON {
        rng.element([
            .null, .bool(true), .int(-1), .int(0), .int(65536), .int(Int64.max), .int(Int64.min), .double(1e300), .double(-0.5),
            .double(.nan), .string(""), .string("hr:-1"), .string("hr:99999999999999999999"), .string("coil:65536"),
            .string("modbus://127.0.0.1:99999?unit=300"), .string("opc.tcp://[::1"), .string("ns=2;s="), .string("25:61"),
            .string("Mars/Olympus"), .string("abcd"), .string("float64"), .string("\u{0}"), .array([]), .object([]),
            .array([.string("welding"), .string("welding")]),
        ])
    }

    /// Decodes `json`; nil when it is a valid config, else the error (checked to be one line naming the file).
    private func check(_ json: JSON, round: Int) -> ConfigError? {
        do {
            _ = try PlantConfig.decode(json: json, file: "plant.json", directory: repoRoot.appendingPathComponent("Stations"))
            return nil
        } catch let error as ConfigError {
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), "round \(round): \(text)")
            XCTAssertTrue(text.contains("plant.json"), "round \(round): \(text)")
            XCTAssertFalse(error.message.isEmpty, "round \(round)")
            return error
        } catch {
            XCTFail("round \(round): not a ConfigError: \(error)")
            return ConfigError(file: "", path: "", message: "")
        }
    }

    func testTheDefaultPlantDecodes() throws {
        XCTAssertNil(check(try plantJSON(), round: -1))
    }

    func testDamagedTreesDecodeOrFailWithOneLineNamingThePath() throws {
        let plant = try plantJSON()
        var rng = SplitMix64(seed: 0xC0F1)
        var failures = 0, pathsNamed = 0
        for round in 0..<5000 {
            var json = plant
            for _ in 0...rng.below(3) { json = damage(json, &rng) }
            if let error = check(json, round: round) {
                failures += 1
                if !error.path.isEmpty { pathsNamed += 1 }
            }
        }
        XCTAssertGreaterThan(failures, 2500, "most damage must be caught")
        XCTAssertGreaterThan(pathsNamed, failures * 9 / 10, "errors name the JSON path")
    }

    func testDamagedFileBytesLoadOrFailWithOneLine() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: plantPath)))
        let dir = makeTempDirectory(self, prefix: "hardening")
        try Data(contentsOf: repoRoot.appendingPathComponent("Stations/tokens.json")).write(to: dir.appendingPathComponent("tokens.json"))
        let file = dir.appendingPathComponent("plant.json")
        var rng = SplitMix64(seed: 0xF11E)
        for round in 0..<1500 {
            let damaged = rng.chance(0.3) ? Array(bytes.prefix(rng.below(bytes.count))) : Mutator.mutate(bytes, &rng)
            try Data(damaged).write(to: file)
            do {
                _ = try PlantConfig.load(path: file.path)
            } catch let error as ConfigError {
                XCTAssertFalse("\(error)".contains("\n"), "round \(round): \(error)")
                XCTAssertTrue("\(error)".contains(file.path), "round \(round): \(error)")
            } catch {
                XCTFail("round \(round): not a ConfigError: \(error)")
            }
        }
    }
}
