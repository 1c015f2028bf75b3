import Foundation
import API
import HTTP
import PlantModel
import Runtime
import Storage

/// Wires the plant-specific parts around the pipeline: tracking and quality stages, their
/// tables and routes, the adapters or the replay, the simulators and the recorder.
final class PlantAssembly: @unchecked Sendable {
    static var migrations: [MigrationGroup] { [] }

    let config: PlantConfig
    let pipeline: Pipeline
    let eventLog: EventLog
    let logger: Logger
    let facts: any PlantFacts = NoPlantFacts()

    init(config: PlantConfig, pipeline: Pipeline, eventLog: EventLog, logger: Logger) throws {
        self.config = config
        self.pipeline = pipeline
        self.eventLog = eventLog
        self.logger = logger
    }

    func addRoutes(to router: inout Router, context: APIContext) {}

    func middlewares(context: APIContext) -> [any HTTPMiddleware] { [] }

    /// The services that feed the pipeline: simulators and adapters, or a replay.
    func inputServices(options: ServerOptions) throws -> [any Service] { [] }
}
