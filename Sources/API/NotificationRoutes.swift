import Foundation
import HTTP
import Notify
import Pipeline
import Quality
import Runtime
import Storage

extension APIRoutes {
    /// Adds `GET /api/notifications?status=pending|sent|failed&to=&limit=` (role `quality`; docs/openapi.json).
    public static func addNotifications(to router: inout Router, context: APIContext, backend: any PlantBackend, auth: AuthPolicy) {
        let log = context.eventLog
        router.on(.get, "/api/notifications", options: .offLoop) { request in
            _ = try auth.authorize(request, role: .quality, backend: backend, now: Date())
            var status: NotificationStatus?
            if let text = request.query["status"], !text.isEmpty {
                guard let value = NotificationStatus(rawValue: text) else {
                    throw HTTPError(400, code: "bad_request", "status must be pending, sent or failed, not \(JSON.string(text).serialized())")
                }
                status = value
            }
            let to = request.query["to"].flatMap { $0.isEmpty ? nil : $0 }
            if try CSVExport.requested(request) {
                let limit = try CSVExport.limit(request)
                return try CSVExport.reply(request, filename: "notifications.csv", columns: CSVColumns.notifications) {
                    try log.rows(Outbox.listQuery(status: status, to: to, limit: limit), row: Outbox.row).map { $0.json }
                }
            }
            let limit = try limitParameter(request)
            let list: [NotifyMessage]
            do {
                list = try log.read { try Outbox.list(status: status, to: to, limit: limit, in: $0) }
            } catch {
                throw HTTPError(503, code: "unavailable", "storage read failed: \(error)")
            }
            return .response(.json(JSON.array(list.map(\.json))))
        }
    }
}
