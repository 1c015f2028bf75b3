import Foundation
import MESApp
import Runtime

// mes-server: parse the command line, assemble the server, serve until SIGINT/SIGTERM.
let options: ServerOptions
do {
    options = try ServerOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
    exit(2)
}
let logger = Logger(label: "mes-server", level: Logger.Level(name: options.logLevel) ?? .info)
let server: MESServer
do {
    server = try MESServer(options: options, logger: logger)
} catch {
    FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
    exit(1)
}
do {
    try await server.run()
    exit(0)
} catch {
    FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
    exit(1)
}
