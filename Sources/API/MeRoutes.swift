import Foundation
import HTTP
import Pipeline
import Quality
import Runtime

extension APIRoutes {
    /// Adds `GET /api/me` (who the request's token stands for; needs a token) and `GET /api/people`
    /// (the config's `people`, without their channels; a read like any other) (docs/openapi.json;
    /// the "my items" page and the assign dialogs, README "My items").
    public static func addMe(to router: inout Router, context: APIContext, backend: any PlantBackend, auth: AuthPolicy) {
        let people = context.config.people
        @Sendable func signedIn(_ request: HTTPRequest) throws -> Principal {
            // A read that needs a token even when reads are anonymous: "who am I" has no anonymous answer.
            guard let user = try auth.authorize(request, role: .viewer, backend: backend, now: Date()) else {
                throw HTTPError(401, code: "unauthorized", "send Authorization: Bearer <token> to learn who you are",
                                headers: ["WWW-Authenticate": "Bearer"])
            }
            return user
        }

        router.get("/api/me") { request in
            let user = try signedIn(request)
            let person = people.person(user.user)
            return .json(.obj([
                ("user", .string(user.user)),
                ("role", .string(user.role.rawValue)),
                ("name", .str(person?.name)),
                ("person", .bool(person != nil)),
                ("ownership", .bool(!people.responsibility.isEmpty)),
            ]))
        }

        router.get("/api/people") { request in
            // A read like the owners on alerts: anonymous while reads are (`auth.anonymousRead`).
            _ = try auth.authorize(request, role: .viewer, backend: backend, now: Date())
            return .json(.array(people.people.map { person in
                .obj([("user", .string(person.user)), ("name", .string(person.name))])
            }))
        }
    }
}
