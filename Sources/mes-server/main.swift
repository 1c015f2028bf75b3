import Foundation
import MESApp
import Runtime

// mes-server: parse the command line, assemble the server, serve until SIGINT/SIGTERM.
// `mes-server tokens add …` manages a tokens file instead (README "Tokens").
if CommandLine.arguments.dropFirst().first == "tokens" {
    do {
        let added = try TokensCommand.run(Array(CommandLine.arguments.dropFirst(2)))
        print(added.token)
        FileHandle.standardError.write(Data("mes-server: \(added.note)\n".utf8))
        exit(0)
    } catch let error as UsageError {
        FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
        exit(2)
    } catch {
        FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
        exit(1)
    }
}
let options: ServerOptions
do {
    options = try ServerOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
    exit(2)
}
let logger = Logger(label: "mes-server", level: Logger.Level(name: options.logLevel) ?? .info)
if ClusterNode.isGroup(database: options.database) {
    // A node of a group on one PostgreSQL database (README "Two nodes").
    do {
        let node = try ClusterNode(options: options, logger: logger)
        try await node.run()
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("mes-server: \(error)\n".utf8))
        exit(1)
    }
}
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
