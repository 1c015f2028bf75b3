import Foundation
import MESApp
import PlantModel
import Runtime
import Simulation

// station-sim: serve simulated stations over Modbus TCP and OPC UA (README "Executables"), or write a
// recording of a simulated shift (--generate).
let usage = """
usage: station-sim --config FILE [--station ID ...] [--scenario FILE] [--seed N] [--replay FILE [--speed X]]
       station-sim --config FILE --generate FILE [--duration 8h] [--scenario FILE] [--seed N]
  --station ID     serve only this station (repeatable; default: all)
  --scenario FILE  drive the stations from a scenario (Stations/scenarios/*.json)
  --seed N         random seed (default: the scenario's, 1 for the built-in normal shift)
  --replay FILE    serve a recording instead (JSON Lines, see Stations/README-stations.md), at --speed X (default 1)
  --generate FILE  write a recording of a simulated run instead of serving (with --duration, e.g. 8h, 30m, 600s)
  --pki DIR        the simulator's OPC UA PKI folder (its own certificate in DIR/own/; default var/sim-pki):
                   stations with a "security" block serve that policy, mode and user (README "A secure plant in station-sim")
  --log-level L    trace, debug, info, warning, error (default info)
  --exit-with-parent  stop when the process that started this one ends (benchmarks, scripts)
  --orders URL     create and release the orders of the vehicles it builds on the server at URL
                   (http://HOST:PORT; plants with models), with --token T (an engineer's token)
"""

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("station-sim: \(message)\n".utf8))
    exit(code)
}

var configPath: String?
var stationIDs: [String] = []
var scenarioPath: String?
var seed: UInt64?
var replayPath: String?
var speed = ReplaySpeed.factor(1)
var generatePath: String?
var durationS = 8.0 * 3600
var logLevel = "info"
var exitWithParent = false
var ordersURL: String?
var ordersToken = ""
var pkiFolder = "var/sim-pki"
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    func value() -> String {
        guard !arguments.isEmpty, !arguments[0].hasPrefix("--") else { fail("\(flag) needs a value\n\(usage)") }
        return arguments.removeFirst()
    }
    switch flag {
    case "--config": configPath = value()
    case "--station": stationIDs.append(value())
    case "--scenario": scenarioPath = value()
    case "--seed":
        let text = value()
        guard let n = UInt64(text) else { fail("--seed takes a whole number, not \"\(text)\"") }
        seed = n
    case "--replay": replayPath = value()
    case "--speed":
        let text = value()
        guard let s = ReplaySpeed.parse(text) else { fail("--speed takes a positive number or \"max\", not \"\(text)\"") }
        speed = s
    case "--generate": generatePath = value()
    case "--duration":
        let text = value()
        guard let d = SimDuration.parse(text), d > 0 else { fail("--duration takes e.g. 8h, 30m or 600s, not \"\(text)\"") }
        durationS = d
    case "--log-level": logLevel = value()
    case "--exit-with-parent": exitWithParent = true
    case "--orders": ordersURL = value()
    case "--token": ordersToken = value()
    case "--pki": pkiFolder = value()
    case "--help", "-h":
        print(usage)
        exit(0)
    default: fail("unknown option \"\(flag)\"\n\(usage)")
    }
}
guard let configPath else { fail("--config is required\n\(usage)") }
if exitWithParent {
    // A parent killed without stopping us (kill -9, Ctrl-C on a pipeline) leaves us to init.
    let parent = getppid()
    Thread {
        while getppid() == parent { usleep(250_000) }
        FileHandle.standardError.write(Data("station-sim: the process that started it (pid \(parent)) is gone: stopping\n".utf8))
        exit(0)
    }.start()
}
let logger = Logger(label: "station-sim", level: Logger.Level(name: logLevel) ?? .info)
do {
    let config = try PlantConfig.load(path: configPath)
    let scenario = try scenarioPath.map { try Scenario.load(path: $0) } ?? .normalShift
    if let generatePath {
        let summary = try generateRecording(config: config, scenario: scenario, seed: seed, duration: durationS, to: generatePath) { progress in
            FileHandle.standardError.write(Data("station-sim: \(progress)\n".utf8))
        }
        FileHandle.standardError.write(Data("station-sim: wrote \(generatePath): \(summary)\n".utf8))
        exit(0)
    }
    let source: PlantSimulationService.Source = replayPath.map { .recording(path: $0, speed: speed) } ?? .scenario(scenario, seed: seed ?? (scenarioPath == nil ? 1 : nil))
    var security: SimulatorSecurity?
    if config.stations.contains(where: { $0.protocol == .opcua && $0.security?.isSecure == true }) {
        let made = try SimulatorSecurity(config: config, pkiFolder: pkiFolder, logger: logger.named("pki"))
        logger.info("secure OPC UA stations use the certificate \(made.store.ownCertificatePath) (thumbprint \(made.own.certificate.thumbprintHex)); mes-server trusts it once the file is in its pki/trusted/")
        security = made
    }
    let plant = try PlantSimulationService(config: config, stationIDs: stationIDs.isEmpty ? nil : stationIDs, source: source, logger: logger,
                                           security: security)
    if let ordersURL {
        guard config.hasModels else { fail("--orders needs a plant config with models") }
        try SimulatedOrdersSetup.attach(to: plant, url: ordersURL, token: ordersToken, logger: logger)
    }
    try plant.start()
    let group = ServiceGroup(services: [plant], logger: logger)
    group.installSignalHandlers()
    logger.info("serving \(stationIDs.isEmpty ? "every station" : stationIDs.joined(separator: ", ")) of \(config.plant); Ctrl-C stops")
    try await group.run()
    exit(0)
} catch {
    fail("\(error)", code: 1)
}
