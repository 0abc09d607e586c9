import Consent
import Foundation
public import Hummingbird
import HTTPTypes
import JSONOutput
import Logging
import NIOCore
public import Privacy
import Store
import Storage

/// Data-subject endpoints.
///
/// Self-service, from the visitor's browser (`candor('forget')`, `candor('export')`): the pixel
/// sends the privacy key it keeps (``Privacy/PrivacyKey``), never put in a URL, from which the
/// subject id is derived; the gate (``SelfServiceGate``) checks and limits first. Officer API,
/// with a site's `privacy:officer` key (`Authorization: Bearer ck_…`): file deletion requests,
/// read their status and receipt, export.
public struct PrivacyRoutes<Context: RemoteAddressRequestContext>: Sendable {
    let collector: Collector
    let office: PrivacyOffice
    let gate: SelfServiceGate

    public init(collector: Collector, office: PrivacyOffice, gate: SelfServiceGate) {
        self.collector = collector
        self.office = office
        self.gate = gate
    }

    public func add(to router: Router<Context>) {
        router.post("/api/privacy/forget") { request, context in await self.selfService(request, context, export: false) }
        router.post("/api/privacy/export") { request, context in await self.selfService(request, context, export: true) }
        for path in ["/api/privacy/forget", "/api/privacy/export"] {
            router.on(RouterPath(stringLiteral: path), method: .options) { request, _ in
                CollectorRoutes<CandorRequestContext>(collector: collector).preflight(request)
            }
        }
        router.post("/api/v1/privacy/requests") { request, _ in await self.fileRequest(request) }
        router.get("/api/v1/privacy/requests/:id") { request, context in
            await self.showRequest(request, id: context.parameters.get("id") ?? "", receiptOnly: false)
        }
        router.get("/api/v1/privacy/requests/:id/receipt") { request, context in
            await self.showRequest(request, id: context.parameters.get("id") ?? "", receiptOnly: true)
        }
        router.post("/api/v1/privacy/export") { request, _ in await self.officerExport(request) }
    }

    // MARK: Self-service

    /// `{"site": ID, "key": PRIVACY_KEY}` from the visitor's browser (see ``SelfServiceGate``).
    func selfService(_ request: Request, _ context: Context, export: Bool) async -> Response {
        let admitted: SelfServiceGate.Admitted
        switch await gate.admit(request, peer: context.remoteAddress, endpoint: export ? .export : .forget) {
        case .failure(let refusal): return refusal.response
        case .success(let a): admitted = a
        }
        guard let subject = admitted.subject else { return withOrigin(jsonError(400, "no privacy key"), request) }
        let site = admitted.site
        do {
            // Nothing held: nothing to export or erase, and nothing worth a bucket or a request.
            guard try collector.database.holdsSubject(site: site.id, hash: subject.hash) else {
                return withOrigin(jsonError(404, "nothing is held for this browser on this site"), request)
            }
            if let limited = gate.limit(export ? .export : .forget, subject: subject.hash, request) { return limited }
            if export {
                let data = try office.export(site: site.id, identifier: .subject(subject.id), actor: "self-service")
                return withOrigin(download(data.json, name: "candor-export-\(site.id).json"), request)
            }
            let filed = try office.file(site: site.id, identifier: .subject(subject.id), filedBy: "self-service")
            return withOrigin(json(.accepted, requestJSON(filed)), request)
        } catch {
            return withOrigin(failure(error), request)
        }
    }

    // MARK: Officer API (site API key)

    func authenticated(_ request: Request) -> Result<APIKeyRecord, Refusal> { apiKey(request, collector, scope: .privacyOfficer) }

    func identifier(_ doc: JSONValue) -> PrivacyOffice.Identifier? {
        if case .string(let s)? = doc["subject"] { return .subject(s) }
        if case .string(let s)? = doc["email"] { return .email(s) }
        if case .string(let s)? = doc["user_id"] { return .userID(s) }
        return nil
    }

    func officerBody(_ request: Request) async -> Result<(APIKeyRecord, String, PrivacyOffice.Identifier), Refusal> {
        let key: APIKeyRecord
        switch authenticated(request) {
        case .failure(let r): return .failure(r)
        case .success(let k): key = k
        }
        let doc: JSONValue
        switch await readJSON(request, limit: 4096) {
        case .failure(let r): return .failure(r)
        case .success(let d): doc = d
        }
        guard let id = identifier(doc) else { return .refuse(jsonError(400, "name the subject with one of subject, email, user_id")) }
        // An officer key belongs to a site (the table's check says so).
        guard let site = key.siteID else { return .refuse(jsonError(403, "this key belongs to no site")) }
        return .success((key, site, id))
    }

    func fileRequest(_ request: Request) async -> Response {
        switch await officerBody(request) {
        case .failure(let r): return r.response
        case .success(let (key, site, id)):
            do {
                let filed = try office.file(site: site, identifier: id, filedBy: "api-key:\(key.id)")
                return json(.accepted, requestJSON(filed))
            } catch { return failure(error) }
        }
    }

    func officerExport(_ request: Request) async -> Response {
        switch await officerBody(request) {
        case .failure(let r): return r.response
        case .success(let (key, site, id)):
            do {
                let data = try office.export(site: site, identifier: id, actor: "api-key:\(key.id)")
                return download(data.json, name: "candor-export-\(site).json")
            } catch { return failure(error) }
        }
    }

    func showRequest(_ request: Request, id: String, receiptOnly: Bool) async -> Response {
        let key: APIKeyRecord
        switch authenticated(request) {
        case .failure(let r): return r.response
        case .success(let k): key = k
        }
        // Another site's request is indistinguishable from a missing one.
        guard let found = try? office.database.privacyRequest(id: id), found.siteID == key.siteID else {
            return jsonError(404, "no such request")
        }
        if receiptOnly {
            guard let receipt = found.receipt else { return jsonError(409, "request \(found.id) is \(found.status.rawValue); no receipt yet") }
            return download(receipt, name: "candor-receipt-\(found.id).json")
        }
        return json(.ok, requestJSON(found))
    }

    // MARK: Answers

    func requestJSON(_ r: PrivacyRequest) -> String {
        var members: [(String, JSON)] = [
            ("request", .string(r.id)), ("site", .string(r.siteID)), ("status", .string(r.status.rawValue)),
            ("subject_kind", .string(r.subjectKind.rawValue)),
            ("received_at", .string(ISO.string(r.receivedAt))), ("deadline_at", .string(ISO.string(r.deadlineAt))),
            ("overdue", .bool(r.isOpen && r.deadlineAt < Int64(collector.now().timeIntervalSince1970 * 1000))),
        ]
        if let reason = r.reason { members.append(("reason", .string(reason))) }
        if let p = r.processedAt { members.append(("processed_at", .string(ISO.string(p)))) }
        if let receipt = r.receipt { members.append(("receipt", .raw(receipt))) }
        return JSON.object(members).text
    }

    func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func download(_ text: String, name: String) -> Response {
        var r = json(.ok, text)
        r.headers[.contentDisposition] = "attachment; filename=\"\(name.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) })\""
        return r
    }

    func failure(_ error: any Error) -> Response {
        switch error {
        case PrivacyOfficeError.unknownSite(let s): return jsonError(404, "unknown site \(s.prefix(64))")
        case PrivacyOfficeError.invalidIdentifier(let why): return jsonError(400, why)
        default:
            collector.logger.error("privacy request failed", metadata: ["error": "\(error)"])
            return jsonError(503, "storage unavailable; retry later")
        }
    }
}

/// The site API key a request presents as `Authorization: Bearer ck_…`, if it has `scope`
/// (403 otherwise: a statistics key does no officer work, an officer key reads no statistics).
func apiKey(_ request: Request, _ collector: Collector, scope: APIKeyScope) -> Result<APIKeyRecord, Refusal> {
    guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else {
        return .refuse(unauthorized("send a site API key as Authorization: Bearer ck_…"))
    }
    do {
        guard let key = try APIKeys.authenticate(database: collector.database, token: String(auth.dropFirst(7)), now: collector.now()) else {
            return .refuse(unauthorized("API key not recognised"))
        }
        guard key.scope == scope else {
            return .refuse(jsonError(403, "this key's scope is \(key.scope.rawValue); this endpoint needs a \(scope.rawValue) key"))
        }
        return .success(key)
    } catch {
        return .refuse(jsonError(503, "storage unavailable; retry later"))
    }
}

func unauthorized(_ reason: String) -> Response {
    var r = jsonError(401, reason)
    r.headers[.wwwAuthenticate] = "Bearer"
    return r
}

/// A request refused with this answer.
struct Refusal: Error {
    let response: Response
}

extension Result where Failure == Refusal {
    static func refuse(_ response: Response) -> Self { .failure(Refusal(response: response)) }
}

/// Reads a small JSON body (any media type; browsers send text/plain to avoid a preflight).
func readJSON(_ request: Request, limit: Int) async -> Result<JSONValue, Refusal> {
    let body: ByteBuffer
    do { body = try await request.body.collect(upTo: limit) } catch { return .refuse(withOrigin(jsonError(413, "body larger than \(limit) bytes"), request)) }
    do {
        return .success(try body.withUnsafeReadableBytes { (b) throws(JSONError) -> JSONValue in try JSONParser.parse(b) })
    } catch {
        return .refuse(withOrigin(jsonError(400, error.description), request))
    }
}
