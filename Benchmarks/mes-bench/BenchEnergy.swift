import BenchSupport
import Foundation
import MESApp
import PlantModel
import Runtime
import Simulation

/// Energy and equipment health (README "Energy and equipment health"): the 8-hour default shift
/// with its meters, power and condition signals replayed through the whole server, against the same
/// shift without them (the plant without those signals and without its utilities station, the
/// recording without their lines), in the same run.
extension BenchSuite {
    func energy() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-energy-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plant = ProcessInfo.processInfo.environment["MES_BENCH_CONFIG"] ?? "Stations/plant.json"
        let with = try Self.writeConfig(from: plant, models: false, in: dir, name: "with.json")
        let without = try Self.energyFreeConfig(from: with, in: dir)
        let config = try PlantConfig.load(path: with)
        let removed = Set(config.stations.flatMap { station in
            station.signals.filter { $0.role == .energy || $0.role == .power || $0.role == .condition || !config.isOnRoute(station) }
                .map { "\"station\":\"\(station.id)\",\"signal\":\"\($0.name)\"" }
        })
        let duration: TimeInterval = short ? 600 : 8 * 3600
        let full = dir.appendingPathComponent("with.jsonl").path
        let generated = try generateRecording(config: config, duration: duration, to: full, mode: .everyPoll)
        // The same shift without the energy and condition lines.
        let plain = dir.appendingPathComponent("without.jsonl").path
        var kept = 0
        do {
            let text = try String(contentsOfFile: full, encoding: .utf8)
            var out = ""
            out.reserveCapacity(text.utf8.count)
            for line in text.split(separator: "\n") where !removed.contains(where: { line.contains($0) }) {
                out += line
                out += "\n"
                kept += 1
            }
            try out.write(toFile: plain, atomically: true, encoding: .utf8)
        }
        func replay(_ config: String, _ recording: String, _ name: String) throws -> Double {
            var options = ServerOptions()
            options.config = config
            options.database = dir.appendingPathComponent(name + ".sqlite").path
            options.port = 0
            options.replay = recording
            options.speed = .max
            options.exitAfterReplay = true
            let server = try MESServer(options: options, logger: Logger(label: "bench", level: .error))
            let started = Monotonic.nanoseconds()
            try blocking { try await server.run(installSignalHandlers: false) }
            return Double(Monotonic.nanoseconds() - started) / 1e9
        }
        // Three rounds in alternating order, best of each (a shared machine's load moves between runs).
        var withS = Double.infinity, withoutS = Double.infinity
        for round in 0..<3 {
            if round % 2 == 0 {
                withoutS = min(withoutS, try replay(without, plain, "without-\(round)"))
                withS = min(withS, try replay(with, full, "with-\(round)"))
            } else {
                withS = min(withS, try replay(with, full, "with-\(round)"))
                withoutS = min(withoutS, try replay(without, plain, "without-\(round)"))
            }
        }
        let withRate = Double(generated.samples) / withS
        let withoutRate = Double(kept) / withoutS
        Self.figure("replay with meters and condition signals vs without, samples/s", withRate / withoutRate * 100, unit: "%",
                    target: 90, higherIsBetter: true,
                    reference: String(format: "%.1f-hour shift: %.0f samples/s with (%llu samples, %.1f s), %.0f without (%d samples, %.1f s); shift time per second %.0f× vs %.0f× (%.0f %%)",
                                      duration / 3600, withRate, generated.samples, withS, withoutRate, kept, withoutS,
                                      duration / withS, duration / withoutS, withoutS / withS * 100))
    }

    /// The plant without `energy`, `power` and `condition` signals and without stations off the route.
    static func energyFreeConfig(from path: String, in dir: URL) throws -> String {
        guard case .object(var members) = try JSON.parse(String(contentsOfFile: path, encoding: .utf8)) else {
            throw UsageError("\(path) is not a JSON object")
        }
        let route = Set((members.first { $0.0 == "route" }?.1.arrayValue ?? []).compactMap(\.stringValue))
        if let index = members.firstIndex(where: { $0.0 == "stations" }), let stations = members[index].1.arrayValue {
            members[index].1 = .array(stations.compactMap { station -> JSON? in
                guard case .object(var fields) = station, let process = station["process"]?.stringValue, route.contains(process) else { return nil }
                if let s = fields.firstIndex(where: { $0.0 == "signals" }), let signals = fields[s].1.arrayValue {
                    fields[s].1 = .array(signals.filter { !["energy", "power", "condition"].contains($0["role"]?.stringValue ?? "") })
                }
                return .object(fields)
            })
        }
        let out = dir.appendingPathComponent("without.json").path
        try JSON.object(members).serialized().write(toFile: out, atomically: true, encoding: .utf8)
        return out
    }
}
