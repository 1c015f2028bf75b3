import Foundation
import HTTP
import Pipeline
import Quality
import Runtime

extension APIRoutes {
    /// Adds `POST /api/alerts/{id}/assign` and `POST /api/defects/{id}/assign` (role `quality`):
    /// `{"owner", "dueAt"}`, `owner` a user of the config's `people`, `dueAt` optional (RFC 3339).
    public static func addAssign(to router: inout Router, backend: any PlantBackend, auth: AuthPolicy) {
        @Sendable func arguments(_ request: HTTPRequest) throws -> (id: Int64, owner: String, dueAt: Date?, user: Principal) {
            guard let user = try auth.authorize(request, role: .quality, backend: backend, now: Date()) else {
                throw HTTPError(401, code: "unauthorized", "send Authorization: Bearer <token>")
            }
            let body = try jsonBody(request)
            guard let owner = body["owner"]?.stringValue, !owner.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw HTTPError(422, code: "unprocessable", "owner is required (a user of the plant config's people)")
            }
            var dueAt: Date?
            if let value = body["dueAt"], !value.isNull {
                guard let text = value.stringValue, let date = Timestamp.parse(text) else {
                    throw HTTPError(422, code: "unprocessable", "dueAt must be an RFC 3339 time such as 2026-03-01T08:00:00Z")
                }
                dueAt = date
            }
            let text = request.parameters["id"] ?? ""
            guard let id = Int64(text) else { throw HTTPError(404, code: "not_found", "no such id \(JSON.string(text).serialized())") }
            return (id, owner, dueAt, user)
        }

        // Commands: the role is checked from the header before the body is read, and the answer is
        // computed on the command pool (the loop never waits on the pipeline).
        let command = RouteOptions(lane: .command, precheck: { _ = try auth.authorize($0, role: .quality, backend: backend, now: Date()) })

        router.post("/api/alerts/{id}/assign", options: command) { request in
            let a = try arguments(request)
            do {
                return .json(try backend.assignAlert(id: a.id, owner: a.owner, dueAt: a.dueAt, by: a.user))
            } catch {
                throw HTTPError.command(error)
            }
        }

        router.post("/api/defects/{id}/assign", options: command) { request in
            let a = try arguments(request)
            do {
                return .json(try backend.assignDefect(id: a.id, owner: a.owner, dueAt: a.dueAt, by: a.user))
            } catch {
                throw HTTPError.command(error)
            }
        }
    }
}
