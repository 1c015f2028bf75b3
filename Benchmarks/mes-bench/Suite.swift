import ComponentBenchmarks
import Foundation
import MESApp
import Runtime

/// The in-process benchmarks of `tools/bench` (via `mes-bench`): each prints one line per figure,
/// with its target and whether it is met. `short` runs them small, only to check they work.
struct BenchSuite: Sendable {
    static let all = ["eventlog", "tracking", "quality", "genealogy", "modbus", "opcua", "opcua-secure", "replay", "e2e", "soak", "sse-fanout", "sse-fanout-tls", "sse-idle", "slow-headers", "abuse", "orders", "notify", "operations", "recall", "energy", "pg-eventlog", "plant-size", "takeover", "pipeline"]
    let short: Bool

    init(short: Bool) { self.short = short }

    /// Prints `name: value unit (target …) MET|NOT MET [reference]`.
    static func figure(_ name: String, _ value: Double, unit: String, target: Double, higherIsBetter: Bool,
                              reference: String? = nil) {
        let met = higherIsBetter ? value >= target : value <= target
        let formatted = value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
        var line = "\(name): \(formatted) \(unit) (target \(higherIsBetter ? "≥" : "≤") \(target.formatted()) \(unit)) \(met ? "MET" : "NOT MET")"
        if let reference { line += " [\(reference)]" }
        print(line)
        fflush(nil)
    }

    func run(_ name: String) throws {
        switch name {
        case "eventlog": try eventLog()
        case "tracking": tracking()
        case "quality": quality()
        case "genealogy": try genealogy()
        case "modbus": try modbus()
        case "opcua": try opcua()
        case "opcua-secure": try opcuaSecure()
        case "replay": try replay()
        case "e2e": try endToEnd()
        case "soak": try soak()
        case "sse-fanout": try sseFanout()
        case "sse-fanout-tls": try sseFanoutTLS()
        case "sse-idle": try sseIdle()
        case "slow-headers": try slowHeaders()
        case "abuse": try abuse()
        case "orders": try orders()
        case "notify": try notify()
        case "operations": try operationsQuery()
        case "recall": try recall()
        case "energy": try energy()
        case "pg-eventlog": try postgresEventLog()
        case "plant-size": try plantSize()
        case "takeover": try takeover()
        case "pipeline": try pipelinePoll()
        default: throw UsageError("unknown benchmark \"\(name)\" (known: \(Self.all.joined(separator: ", ")))")
        }
    }

    func eventLog() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mes-bench-eventlog-\(getpid()).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let count = short ? 5_000 : 200_000
        let plain = try EventLogBenchmark.plainInsertLoop(path: path, count: short ? 500 : 5_000)
        let result = try EventLogBenchmark.run(path: path, count: count)
        Self.figure("events persisted per second (group commit)", result.eventsPerSecond, unit: "events/s", target: 20_000,
                    higherIsBetter: true, reference: String(format: "plain insert loop: %.0f events/s", plain.eventsPerSecond))
        Self.figure("event log commit p99", result.commitP99Ms, unit: "ms", target: 25, higherIsBetter: false,
                    reference: "\(result.transactions) transactions for \(result.events) events")
    }

    /// Durable events/s into PostgreSQL through the event log, against plain libpq insert loops in
    /// the same run. The server: `MES_BENCH_PG` or `MES_TEST_PG` (`tools/bench` starts a throw-away
    /// one with `start_pg`, tools/lib.sh).
    func postgresEventLog() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let url = [environment["MES_BENCH_PG"], environment["MES_TEST_PG"]].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw UsageError("pg-eventlog needs a PostgreSQL server: set MES_BENCH_PG=postgresql://… (tools/bench starts one)")
        }
        let results = try PostgresEventLogBenchmark.run(adminURL: url, events: short ? 5_000 : 300_000,
                                                        autocommitEvents: short ? 200 : 3_000, transactionEvents: short ? 2_000 : 50_000)
        let group = results.groupCommit
        Self.figure("durable events per second into PostgreSQL (event log, group commit)", group.eventsPerSecond, unit: "events/s",
                    target: 50_000, higherIsBetter: true,
                    reference: String(format: "same run, plain libpq loops: one INSERT per event in autocommit %.0f events/s, one transaction of %d INSERTs %.0f events/s; %d transactions for %d events, commit p99 %.2f ms, append→commit p99 %.2f ms; synchronous_commit=%@",
                                      results.autocommitLoop.eventsPerSecond, results.transactionLoop.events, results.transactionLoop.eventsPerSecond,
                                      group.transactions, group.events, group.commitP99Ms, group.appendToCommitP99Ms, results.synchronousCommit))
    }

    func tracking() {
        let result = TrackingBenchmark.run(vehicles: short ? 500 : 10_000)
        Self.figure("tracking throughput in replay", result.samplesPerSecond, unit: "samples/s", target: 50_000, higherIsBetter: true,
                    reference: "\(result.operationsCompleted) operations")
    }
}
