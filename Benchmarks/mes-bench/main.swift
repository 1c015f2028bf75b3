import BenchSupport
import Foundation

// mes-bench: the in-process benchmarks behind tools/bench. One figure a line, with its target.
let arguments = Array(CommandLine.arguments.dropFirst())
// The event-stream benchmarks' client swarm runs in a child process of its own.
if arguments.first == "--swarm" { exit(SwarmProcess.child(Array(arguments.dropFirst()))) }
// The plant-size benchmark's bare Modbus pollers run in child processes of their own.
if arguments.first == "--plain-modbus" { exit(BenchSuite.plainModbusChild(Array(arguments.dropFirst()))) }
let short = arguments.contains("--short")
let names = arguments.filter { !$0.hasPrefix("--") }
let suite = BenchSuite(short: short)
let selected = names.isEmpty ? BenchSuite.all : names
var failed = false
for name in selected {
    do {
        try suite.run(name)
    } catch {
        print("\(name): failed: \(error)")
        failed = true
    }
}
exit(failed ? 1 : 0)
