import Foundation
import HTTP
import Pipeline
import PlantModel
import Quality
import Runtime

extension APIRoutes {
    /// `GET /api/equipment` and `GET /api/reports/equipment` (README "Energy and equipment health").
    public static func addEquipment(to router: inout Router, context: APIContext, backend: any PlantBackend, below: Double) {
        router.get("/api/equipment") { request in
            // The CSV rule of list endpoints (README "Operations query and exports (CSV)"): the units
            // are the config's condition signals, so the rows are few and built in memory, the same
            // rows as the health report's CSV (worst first).
            if try CSVExport.requested(request) {
                let report = EquipmentReport(plant: context.config.plant, generatedAt: context.clock().time, units: backend.equipment(), below: below)
                var response = HTTPResponse.text(report.csv, contentType: "text/csv; charset=utf-8")
                response.headers.set("Content-Disposition", "attachment; filename=\"equipment.csv\"")
                return response
            }
            return .json(.array(backend.equipment().map(\.json)))
        }

        router.get("/api/reports/equipment") { request in
            let report = EquipmentReport(plant: context.config.plant, generatedAt: context.clock().time, units: backend.equipment(), below: below)
            switch request.query["format"] ?? "json" {
            case "json", "": return .json(report.json)
            case "csv":
                var response = HTTPResponse.text(report.csv, contentType: "text/csv; charset=utf-8")
                response.headers.set("Content-Disposition", "attachment; filename=\"equipment.csv\"")
                return response
            case "html": return .text(report.html, contentType: "text/html; charset=utf-8")
            case let other: throw HTTPError(400, code: "bad_request", "format must be json, csv or html, not \"\(other)\"")
            }
        }
    }
}
