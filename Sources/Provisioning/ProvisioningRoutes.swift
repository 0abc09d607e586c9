public import Actions
public import Foundation
public import Hummingbird
import HTTPTypes
import JSONOutput
import NIOCore
import Privacy
import Store
import Storage

/// The provisioning API (`openapi/candor-v1.yaml`): sites, goals, accounts and per-site API
/// keys as JSON, for installs with many sites. A key of scope `admin:provision` (install-wide,
/// issued by an owner or the operator: `candor keys add --scope admin:provision`) may do what
/// ``Actions/Actor/Standing/provisioningKey`` allows (sites, goals, statistics keys, managers and
/// viewers): every change goes through the same actions as the dashboard and the command line
/// (``Actions/Administration``), with their checks and their audit entries ("api-key:ID").
/// Deleting a site is not offered here (the dashboard and `candor sites delete` do it, with a
/// typed confirmation).
public struct ProvisioningRoutes<Context: RequestContext>: Sendable {
    let administration: Administration
    let now: @Sendable () -> Date
    /// Largest request body read (a site or an account is a few hundred bytes).
    static var bodyLimit: Int { 64 * 1024 }

    public init(administration: Administration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.administration = administration
        self.now = now
    }

    var database: AppDatabase { administration.database }

    public func add(to router: Router<Context>) {
        router.get("/api/v1/sites") { request, _ in
            // Sites being deleted are gone for the API (as for GET /api/v1/sites/ID).
            await self.answer(request) { _ in (.ok, .object([("sites", .array(try self.database.sites().filter { $0.deletingAt == nil }.map(Self.site)))])) }
        }
        router.post("/api/v1/sites") { request, _ in
            await self.answer(request, body: NewSite.self) { actor, new in
                let site = try self.administration.addSite(name: new.name, domains: new.domains, policy: new.policy ?? "default",
                                                           timezone: new.timezone ?? "UTC", by: actor)
                return (.created, Self.site(site))
            }
        }
        router.get("/api/v1/sites/:site") { request, context in
            await self.answer(request) { _ in (.ok, Self.site(try self.site(context))) }
        }
        router.patch("/api/v1/sites/:site") { request, context in
            await self.answer(request, body: SiteChange.self) { actor, change in
                var site = try self.site(context)
                if change.name != nil || change.domains != nil || change.policy != nil || change.timezone != nil {
                    site = try self.administration.changeSite(id: site.id, name: change.name ?? site.name, domains: change.domains ?? site.domains,
                                                              policy: change.policy ?? site.policy, timezone: change.timezone, by: actor)
                }
                if let archived = change.archived, archived != (site.archivedAt != nil) {
                    site = try self.administration.setArchived(site: site.id, archived, by: actor)
                }
                return (.ok, Self.site(site))
            }
        }
        router.get("/api/v1/sites/:site/goals") { request, context in
            await self.answer(request) { _ in
                (.ok, .object([("goals", .array(try self.database.goals(site: try self.site(context).id).map(Self.goal)))]))
            }
        }
        router.post("/api/v1/sites/:site/goals") { request, context in
            await self.answer(request, body: NewGoal.self) { actor, new in
                guard let kind = Goal.Kind(rawValue: new.kind) else { throw ActionError.invalid("kind is page, event or conversion") }
                let goal = try self.administration.addGoal(site: try self.site(context).id, name: new.name, kind: kind, match: new.match, by: actor)
                return (.created, Self.goal(goal))
            }
        }
        router.delete("/api/v1/sites/:site/goals/:goal") { request, context in
            await self.answer(request) { actor in
                guard let id = context.parameters.get("goal").flatMap(Int64.init) else { throw ActionError.notFound("no such goal") }
                try self.administration.removeGoal(site: try self.site(context).id, id: id, by: actor)
                return (.noContent, nil)
            }
        }
        router.get("/api/v1/sites/:site/keys") { request, context in
            await self.answer(request) { _ in
                (.ok, .object([("keys", .array(try self.database.apiKeys(site: try self.site(context).id).map { Self.key($0) }))]))
            }
        }
        router.post("/api/v1/sites/:site/keys") { request, context in
            await self.answer(request, body: NewKey.self) { actor, new in
                guard let scope = APIKeyScope(rawValue: new.scope ?? APIKeyScope.statsRead.rawValue), scope.perSite else {
                    throw ActionError.invalid("scope is stats:read")
                }
                let issued = try self.administration.issueKey(site: try self.site(context).id, label: new.label ?? "api", scope: scope, by: actor)
                return (.created, Self.key(issued.record, token: issued.key))
            }
        }
        router.delete("/api/v1/keys/:key") { request, context in
            await self.answer(request) { actor in
                let id = context.parameters.get("key") ?? ""
                // Only per-site keys here: a provisioning key is revoked by an owner (CLI).
                guard let key = try self.database.apiKey(id: id), key.scope.perSite else { throw ActionError.notFound("no such key") }
                try self.administration.revokeKey(id: key.id, by: actor)
                return (.noContent, nil)
            }
        }
        router.get("/api/v1/users") { request, _ in
            await self.answer(request) { _ in (.ok, .object([("users", .array(try self.database.users().map(self.user)))])) }
        }
        router.post("/api/v1/users") { request, _ in
            await self.answer(request, body: NewUser.self) { actor, new in
                guard let role = Role(rawValue: new.role) else { throw ActionError.invalid("role is manager or viewer") }
                let added = try self.administration.addUser(email: new.email, role: role, sites: new.sites ?? [], by: actor)
                guard case .object(var fields) = try self.user(added.user) else { return (.created, nil) }
                fields.append(("password", .string(added.password)))
                return (.created, .object(fields))
            }
        }
        router.patch("/api/v1/users/:email") { request, context in
            await self.answer(request, body: UserChange.self) { actor, change in
                let email = context.parameters.get("email")?.removingPercentEncoding ?? ""
                guard let current = try self.database.user(email: email) else { throw ActionError.notFound("no account \(email.prefix(80))") }
                guard let role = Role(rawValue: change.role ?? current.role.rawValue) else { throw ActionError.invalid("role is manager or viewer") }
                let sites = try change.sites ?? self.database.siteIDs(user: current.id ?? -1)
                return (.ok, try self.user(try self.administration.changeUser(email: current.email, role: role, sites: sites, by: actor)))
            }
        }
        router.delete("/api/v1/users/:email") { request, context in
            await self.answer(request) { actor in
                try self.administration.removeUser(email: context.parameters.get("email")?.removingPercentEncoding ?? "", by: actor)
                return (.noContent, nil)
            }
        }
    }

    // MARK: Bodies

    struct NewSite: Decodable { var name: String; var domains: [String]; var policy: String?; var timezone: String? }
    struct SiteChange: Decodable { var name: String?; var domains: [String]?; var policy: String?; var timezone: String?; var archived: Bool? }
    struct NewGoal: Decodable { var name: String; var kind: String; var match: String }
    struct NewKey: Decodable { var label: String?; var scope: String? }
    struct NewUser: Decodable { var email: String; var role: String; var sites: [String]? }
    struct UserChange: Decodable { var role: String?; var sites: [String]? }

    // MARK: Answers

    typealias Answer = (status: HTTPResponse.Status, body: JSON?)

    /// Authenticates the request's provisioning key and runs `body` as its actor; action errors
    /// become 400, 403 or 404, anything else a 500 that says only that.
    func answer(_ request: Request, _ body: (Actor) throws -> Answer) async -> Response {
        switch authenticate(request) {
        case .refused(let refused): return refused
        case .actor(let actor):
            do {
                let (status, json) = try body(actor)
                return Self.respond(status, json)
            } catch {
                return Self.failure(error)
            }
        }
    }

    /// As ``answer(_:_:)``, with a JSON body decoded as `T` first (415 when it is not JSON, 413 when larger than 64 KB, 400 when it does not read as `T`).
    func answer<T: Decodable>(_ request: Request, body type: T.Type, _ body: (Actor, T) throws -> Answer) async -> Response {
        let actor: Actor
        switch authenticate(request) {
        case .refused(let refused): return refused
        case .actor(let a): actor = a
        }
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("application/json") else {
            return Self.error(.unsupportedMediaType, "send the body as Content-Type: application/json")
        }
        let bytes: ByteBuffer
        do { bytes = try await request.body.collect(upTo: Self.bodyLimit) } catch {
            return Self.error(.contentTooLarge, "the body is larger than \(Self.bodyLimit) bytes")
        }
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: Data(bytes.readableBytesView))
        } catch let DecodingError.keyNotFound(key, _) {
            return Self.error(.badRequest, "\(key.stringValue) is missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            return Self.error(.badRequest, "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            return Self.error(.badRequest, "the body is not a JSON object of the expected fields")
        }
        do {
            let (status, json) = try body(actor, value)
            return Self.respond(status, json)
        } catch {
            return Self.failure(error)
        }
    }

    enum Authentication { case actor(Actor), refused(Response) }

    func authenticate(_ request: Request) -> Authentication {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else {
            return .refused(Self.unauthorized("send a provisioning key as Authorization: Bearer ck_…"))
        }
        do {
            guard let key = try APIKeys.authenticate(database: database, token: String(auth.dropFirst(7)), now: now()) else {
                return .refused(Self.unauthorized("API key not recognised"))
            }
            guard key.scope == .provision else {
                return .refused(Self.error(.forbidden, "this key's scope is \(key.scope.rawValue); the provisioning API needs an admin:provision key"))
            }
            return .actor(.provisioningKey(id: key.id))
        } catch {
            return .refused(Self.error(.serviceUnavailable, "storage unavailable; retry later"))
        }
    }

    func site(_ context: Context) throws -> Site {
        let id = context.parameters.get("site") ?? ""
        guard let site = try database.site(id: id), site.deletingAt == nil else { throw ActionError.notFound("no such site") }
        return site
    }

    static func respond(_ status: HTTPResponse.Status, _ json: JSON?) -> Response {
        guard let json else { return Response(status: status) }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json.text)))
    }

    static func error(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        respond(status, .object([("error", .string(reason))]))
    }

    static func unauthorized(_ reason: String) -> Response {
        var r = error(.unauthorized, reason)
        r.headers[.wwwAuthenticate] = "Bearer"
        return r
    }

    static func failure(_ error: any Error) -> Response {
        switch error as? ActionError {
        case .forbidden(let why)?: Self.error(.forbidden, why)
        case .invalid(let why)?: Self.error(.badRequest, why)
        case .notFound(let why)?: Self.error(.notFound, why)
        case nil: Self.error(.internalServerError, "the change could not be made")
        }
    }

    // MARK: Representations

    static func site(_ s: Site) -> JSON {
        .object([("id", .string(s.id)), ("name", .string(s.name)), ("domains", .array(s.domains.map(JSON.string))), ("policy", .string(s.policy)),
                 ("timezone", .string(s.calendar.identifier)), ("created_at", .string(ISO.string(Int64(s.createdAt.timeIntervalSince1970 * 1000)))),
                 ("archived_at", s.archivedAt.map { .string(ISO.string($0)) } ?? .null)])
    }

    static func goal(_ g: Goal) -> JSON {
        .object([("id", JSON.int(g.id ?? 0)), ("name", .string(g.name)), ("kind", .string(g.kind.rawValue)), ("match", .string(g.match))])
    }

    static func key(_ k: APIKeyRecord, token: String? = nil) -> JSON {
        var fields: [(String, JSON)] = [("id", .string(k.id)), ("site", JSON(k.siteID)), ("label", .string(k.label)), ("scope", .string(k.scope.rawValue)),
                                        ("issued_by", .string(k.issuedBy)), ("created_at", .string(ISO.string(k.createdAt))),
                                        ("last_used_at", k.lastUsedAt.map { .string(ISO.string($0)) } ?? .null)]
        if let token { fields.append(("token", .string(token))) }
        return .object(fields)
    }

    func user(_ u: User) throws -> JSON {
        let sites: [String] = u.role == .owner || u.role == .admin ? [] : try database.siteIDs(user: u.id ?? -1)
        return .object([("email", .string(u.email)), ("role", .string(u.role.rawValue)), ("sites", .array(sites.map(JSON.string))),
                        ("two_factor", .bool(try database.twoFactor(user: u.id ?? -1)?.isOn == true)),
                        ("created_at", .string(ISO.string(Int64(u.createdAt.timeIntervalSince1970 * 1000))))])
    }
}
