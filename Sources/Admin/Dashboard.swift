public import Consent
public import Foundation
public import Hummingbird
import HTTPTypes
import Integrations
import JSONOutput
import Logging
import Mustache
import NIOCore
public import Privacy
public import Store
import Synchronization

/// A breakdown after k-anonymity: rows with fewer than `k` distinct visitors folded into one.
public struct FoldedBreakdown: Sendable, Equatable {
    public var rows: [BreakdownRow]
    /// How many rows were folded into "Other (suppressed)".
    public var folded: Int
}

public enum KAnonymity {
    public static let otherLabel = "Other (suppressed)"

    /// Folds rows under `k` visitors when `suppress` is set; totals stay exact (the folded row carries their sum).
    public static func fold(_ rows: [BreakdownRow], k: Int, suppress: Bool) -> FoldedBreakdown {
        guard suppress else { return FoldedBreakdown(rows: rows, folded: 0) }
        let small = rows.filter { $0.visitors < k }
        guard !small.isEmpty else { return FoldedBreakdown(rows: rows, folded: 0) }
        var kept = rows.filter { $0.visitors >= k }
        kept.append(BreakdownRow(value: otherLabel, visitors: small.reduce(0) { $0 + $1.visitors },
                                 pageviews: small.reduce(0) { $0 + $1.pageviews }))
        return FoldedBreakdown(rows: kept, folded: small.count)
    }
}

/// What the pipeline-health page shows, read from the running collector when the page is asked for.
public struct PipelineHealth: Sendable {
    /// Cumulative counters sampled once a minute, oldest first.
    public struct Sample: Sendable {
        public var at: Date
        public var received: Int
        public var accepted: Int
        public var dropped: [String: Int]
        public var rejected: Int
        public var errors: Int
        public init(at: Date, received: Int, accepted: Int, dropped: [String: Int], rejected: Int, errors: Int) {
            self.at = at; self.received = received; self.accepted = accepted; self.dropped = dropped; self.rejected = rejected; self.errors = errors
        }
    }
    public var samples: [Sample]
    public var queueDepth: Int
    public var commitP50Ms: Double?
    public var commitP99Ms: Double?
    /// Label and state of each GeoIP database.
    public var geo: [(String, String)]
    /// Webhook deliveries since start by provider and outcome (stored, duplicate, ignored, bad_signature, stale, …).
    public var webhooks: [(provider: String, outcome: String, count: Int)]

    public init(samples: [Sample], queueDepth: Int, commitP50Ms: Double?, commitP99Ms: Double?, geo: [(String, String)],
                webhooks: [(provider: String, outcome: String, count: Int)] = []) {
        self.samples = samples; self.queueDepth = queueDepth; self.commitP50Ms = commitP50Ms; self.commitP99Ms = commitP99Ms; self.geo = geo
        self.webhooks = webhooks
    }
}

/// Server-rendered pages from `templates/*.mustache` (escaped by default; no template may use
/// `{{{…}}}` or `{{&…}}`, a test checks). Records which templates were rendered (tests).
public final class Pages: Sendable {
    let library: MustacheLibrary
    public let names: [String]
    private let rendered = Mutex<Set<String>>([])

    public init(directory: String) async throws {
        library = try await MustacheLibrary(directory: directory)
        names = (try FileManager.default.contentsOfDirectory(atPath: directory)).filter { $0.hasSuffix(".mustache") }
            .map { String($0.dropLast(9)) }.sorted()
    }

    public var renderedNames: Set<String> { rendered.withLock { $0 } }

    func render(_ name: String, _ context: [String: Any]) -> String {
        rendered.withLock { $0.insert(name) }
        for partial in ["header", "footer"] { rendered.withLock { $0.insert(partial) } }
        return library.render(context, withTemplate: name) ?? "template \(name) missing"
    }
}

/// The staff dashboard: login, overview of the sites a user may see, a site's figures and
/// breakdowns (k-anonymized for managers and viewers), CSV/JSON exports, the privacy center and
/// the client commission list. Every page answers with a strict CSP and no inline script.
public struct DashboardRoutes<Context: RemoteAddressRequestContext>: Sendable {
    let database: AppDatabase
    let policies: PolicyBook
    let auth: Authenticator
    let office: PrivacyOffice
    let pages: Pages
    let now: @Sendable () -> Date
    let secureCookies: Bool
    let health: @Sendable () -> PipelineHealth?
    /// How long one live-events stream lasts before the browser reconnects.
    let liveDuration: Duration
    let clientKey = Sodium.randomBytes(32)

    public init(database: AppDatabase, policies: PolicyBook, auth: Authenticator, office: PrivacyOffice, pages: Pages,
                secureCookies: Bool = false, health: @escaping @Sendable () -> PipelineHealth? = { nil },
                liveDuration: Duration = .seconds(30 * 60), now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database; self.policies = policies; self.auth = auth; self.office = office; self.pages = pages
        self.secureCookies = secureCookies; self.health = health; self.liveDuration = liveDuration; self.now = now
    }

    public static var csp: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    public func add(to router: Router<Context>) {
        router.get("/login") { _, _ in self.loginPage(error: nil) }
        router.post("/login") { request, context in try await self.login(request, context) }
        router.post("/logout") { request, _ in try await self.withViewer(request) { v in try await self.logout(request, v) } }
        router.get("/") { request, _ in try await self.withViewer(request) { v in try self.overview(request, v) } }
        router.get("/sites/:site") { request, context in
            try await self.withViewer(request) { v in try self.site(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/sites/:site/export") { request, context in
            try await self.withViewer(request) { v in try self.export(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/privacy") { request, _ in try await self.withViewer(request) { v in try self.privacyCenter(v, message: nil) } }
        router.post("/privacy/run") { request, _ in try await self.withViewer(request) { v in try await self.runRequests(request, v) } }
        router.post("/privacy/file") { request, _ in try await self.withViewer(request) { v in try await self.fileRequest(request, v) } }
        router.post("/privacy/export") { request, _ in try await self.withViewer(request) { v in try await self.officerExport(request, v) } }
        router.get("/privacy/requests/:id/receipt") { request, context in
            try await self.withViewer(request) { v in try self.receipt(v, context.parameters.get("id") ?? "") }
        }
        router.get("/clients/:site") { request, context in
            try await self.withViewer(request) { v in try self.clientDetail(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/privacy/record.md") { request, _ in
            try await self.withViewer(request) { v in
                guard v.isStaffAdmin else { return self.notFound() }
                return Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: RecordOfProcessing.markdown(self.policies))))
            }
        }
        router.get("/clients") { request, _ in try await self.withViewer(request) { v in try self.clients(request, v) } }
        router.get("/api/v1/sites/:site/stats") { request, context in try self.statsAPI(request, context.parameters.get("site") ?? "") }
        router.post("/sites") { request, _ in try await self.withViewer(request) { v in try await self.addSite(request, v) } }
        router.get("/export/overview") { request, _ in try await self.withViewer(request) { v in try self.exportOverview(request, v) } }
        router.get("/sites/:site/settings") { request, context in
            try await self.withViewer(request) { v in try self.settings(request, v, context.parameters.get("site") ?? "", message: nil) }
        }
        router.post("/sites/:site/settings/:action") { request, context in
            try await self.withViewer(request) { v in
                try await self.changeSettings(request, v, context.parameters.get("site") ?? "", context.parameters.get("action") ?? "")
            }
        }
        router.get("/sites/:site/realtime") { request, context in
            try await self.withViewer(request) { v in try self.realtime(v, context.parameters.get("site") ?? "") }
        }
        router.get("/sites/:site/live") { request, context in
            try await self.withViewer(request) { v in try self.live(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/health/pipeline") { request, _ in try await self.withViewer(request) { v in try self.pipelineHealth(v) } }
        router.get("/account") { request, _ in try await self.withViewer(request) { v in self.account(v, message: nil) } }
        router.post("/account") { request, _ in try await self.withViewer(request) { v in try await self.changePassword(request, v) } }
    }

    // MARK: Adding a site (owner, admin)

    func addSite(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let f = try await form(request)
        guard csrfOK(f, v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let policy = f["policy"] ?? "default"
        var problem: String?
        var domains: [String] = []
        switch Bootstrap.domains((f["domains"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)) {
        case .success(let d): domains = d
        case .failure(let p): problem = p.description
        }
        if !(1...200).contains(name.count) { problem = "The name must be 1–200 characters." }
        if policies[policy] == nil { problem = "Choose one of the policies." }
        if let problem {
            var r = try overview(request, v, message: problem)
            r.status = .badRequest
            return r
        }
        let site = Site(id: Bootstrap.newSiteID(), name: name, domains: domains, policy: policy, createdAt: now())
        try database.addSite(site)
        try office.audit.record(actor: "user:\(v.user.email)", action: "site_added", site: site.id,
                                detail: ["domains": .string(domains.joined(separator: " ")), "policy": .string(policy)])
        return Response(status: .seeOther, headers: [.location: "/sites/\(site.id)/settings"])
    }

    func exportOverview(_ request: Request, _ v: Viewer) throws -> Response {
        let r = range(request)
        var rows: [[Cell]] = []
        for site in try database.sites() where v.may(see: site.id) {
            let s = try figures(site.id, r).summary()
            rows.append([.text(site.id), .text(site.name), .integer(Int64(s.visitors)), .integer(Int64(s.pageviews)),
                         .integer(Int64(s.conversions)), .real((s.revenue * 100).rounded() / 100),
                         s.lastEvent.map { .text(ISO.string($0)) } ?? .null])
        }
        let table = ResultTable(name: "overview-\(r.key)", columns: ["site", "name", "visitors", "pageviews", "conversions", "revenue", "last_event"],
                                rows: rows)
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.array(rows.map { row in .object(zip(table.columns, row).map { ($0, $1.json) }) })
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"overview-\(r.key).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"overview-\(r.key).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
    }

    // MARK: Site settings (owner, admin, or a manager of the site)

    func mayConfigure(_ v: Viewer, _ site: String) -> Bool { v.may(see: site) && v.user.role != .viewer }

    func settings(_ request: Request, _ v: Viewer, _ id: String, message: String?, newKey: String? = nil,
                  status: HTTPResponse.Status = .ok) throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        var c = base(v, title: "Settings — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name, "domains": site.domains.joined(separator: " ")]
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0, "selected": $0 == site.policy] }
        if let message { c["message"] = message }
        if let newKey { c["newKey"] = newKey }
        let origin = "http://" + (request.head.authority ?? "localhost:8080")
        c["snippet"] = """
            <script defer src="\(origin)/pixel.js" data-site="\(site.id)"></script>
            <script defer src="\(origin)/consent.js" data-site="\(site.id)"></script>
            """
        let last = try database.newest(.events, site: id)
        c["installed"] = last != nil
        c["lastEvent"] = last.map { ISO.string($0) } ?? ""
        let goals = try database.goals(site: id)
        c["goals"] = goals.map { ["id": $0.id ?? 0, "name": $0.name, "kind": $0.kind.rawValue, "match": $0.match] }
        c["hasGoals"] = !goals.isEmpty
        c["stepSlots"] = (1...5).map { ["n": $0, "goals": goals.map { ["id": $0.id ?? 0, "name": $0.name] }] }
        let names = Dictionary(uniqueKeysWithValues: goals.compactMap { g in g.id.map { ($0, g.name) } })
        c["funnels"] = try database.funnels(site: id).map { f in
            ["id": f.id ?? 0, "name": f.name, "steps": f.steps.compactMap { names[$0] }.joined(separator: " → ")]
        }
        c["keys"] = try database.apiKeys(site: id).map { ["id": $0.id, "label": $0.label, "created": ISO.string($0.createdAt),
                                                          "used": $0.lastUsedAt.map { ISO.string($0) } ?? "never"] }
        return html("settings", c, status: status)
    }

    func changeSettings(_ request: Request, _ v: Viewer, _ id: String, _ action: String) async throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        let f = try await form(request)
        guard csrfOK(f, v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        func refuse(_ why: String) throws -> Response { try settings(request, v, id, message: why, status: .badRequest) }
        let actor = "user:\(v.user.email)"
        switch action {
        case "site":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
            guard (1...200).contains(name.count) else { return try refuse("The name must be 1–200 characters.") }
            guard let policy = f["policy"], policies[policy] != nil else { return try refuse("Choose one of the policies.") }
            let domains: [String]
            switch Bootstrap.domains((f["domains"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" }).map(String.init)) {
            case .success(let d): domains = d
            case .failure(let problem): return try refuse(problem.description)
            }
            try database.updateSite(id: id, name: name, domains: domains, policy: policy)
            try office.audit.record(actor: actor, action: "site_changed", site: id,
                                    detail: ["policy": .string(policy), "domains": .string(domains.joined(separator: " "))])
            if policy != site.policy {
                try office.audit.record(actor: actor, action: "policy_changed", site: id, detail: ["from": .string(site.policy), "to": .string(policy)])
            }
            return try settings(request, v, id, message: "Saved.")
        case "goal":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces), match = (f["match"] ?? "").trimmingCharacters(in: .whitespaces)
            guard let kind = Goal.Kind(rawValue: f["kind"] ?? ""), (1...100).contains(name.count), (1...200).contains(match.count) else {
                return try refuse("A goal needs a name, a kind and what to match.")
            }
            if kind == .conversion && !["sale", "lead", "call"].contains(match) { return try refuse("A conversion goal matches sale, lead or call.") }
            if kind == .page && !match.hasPrefix("/") { return try refuse("A page goal matches a path starting with /.") }
            try database.addGoal(Goal(siteID: id, name: name, kind: kind, match: match))
            return try settings(request, v, id, message: "Goal added.")
        case "delete-goal":
            guard let g = f["goal"].flatMap(Int64.init) else { return try refuse("No goal given.") }
            try database.deleteGoal(site: id, id: g)
            return try settings(request, v, id, message: "Goal deleted.")
        case "funnel":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
            let known = Set(try database.goals(site: id).compactMap(\.id))
            let steps = (1...5).compactMap { f["step\($0)"].flatMap(Int64.init) }.filter(known.contains)
            guard (1...100).contains(name.count), steps.count >= 2 else { return try refuse("A funnel needs a name and at least two steps.") }
            try database.addFunnel(Funnel(siteID: id, name: name, steps: steps))
            return try settings(request, v, id, message: "Funnel added.")
        case "delete-funnel":
            guard let fid = f["funnel"].flatMap(Int64.init) else { return try refuse("No funnel given.") }
            try database.deleteFunnel(site: id, id: fid)
            return try settings(request, v, id, message: "Funnel deleted.")
        case "key":
            let key = try APIKeys.issue(database: database, site: id, label: f["label"].map { String($0.prefix(100)) } ?? "api", now: now())
            try office.audit.record(actor: actor, action: "api_key_issued", site: id, detail: ["key": .string(String(key.split(separator: "_")[1]))])
            return try settings(request, v, id, message: "Key created. Copy it now: it is not shown again.", newKey: key)
        default:
            return notFound()
        }
    }

    // MARK: Real time

    /// The live stream shows single events, so only owners and admins (who see unfolded figures) get it.
    func mayWatchLive(_ v: Viewer) -> Bool { v.isStaffAdmin }

    func realtime(_ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let policy = policies[site.policy] ?? .default
        var c = base(v, title: "Real time — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name]
        let five = try database.activeVisitors(site: id, since: t - 5 * 60_000)
        let thirty = try database.activeVisitors(site: id, since: t - 30 * 60_000)
        func shown(_ n: Int) -> String { v.suppressesSmallGroups && n > 0 && n < policy.kThreshold ? "< \(policy.kThreshold)" : String(n) }
        c["five"] = shown(five)
        c["thirty"] = shown(thirty)
        let pages = KAnonymity.fold(try database.breakdown(site: id, from: t - 30 * 60_000, to: t + 1, dimension: .page),
                                    k: policy.kThreshold, suppress: v.suppressesSmallGroups)
        c["pages"] = pages.rows.prefix(10).map { ["value": $0.value ?? "(none)", "visitors": $0.visitors] }
        c["live"] = mayWatchLive(v)
        return html("realtime", c)
    }

    /// Server-Sent Events: the site's new events as JSON, polled from the database every second,
    /// for `liveDuration` (30 minutes; the browser then reconnects with Last-Event-ID).
    func live(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), mayWatchLive(v), try database.site(id: id) != nil else { return notFound() }
        let database = self.database
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
        let ends = ContinuousClock.now + liveDuration
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store",
                                               .init("X-Accel-Buffering")!: "no"],
                        body: ResponseBody { writer in
            var last = resume
            try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
            while ContinuousClock.now < ends {
                let events = try database.liveEvents(site: id, after: last, limit: last == nil ? 20 : 200)
                var text = ""
                for e in events {
                    let data = JSON.object([("ts", .string(ISO.string(e.timestamp))), ("name", .string(e.name)), ("path", .string(e.path)),
                                            ("source", .string(e.sourceType)), ("referrer", JSON(e.referrerHost)),
                                            ("country", JSON(e.country)), ("device", JSON(e.device))]).text
                    text += "id: \(e.id)\ndata: \(data)\n\n"
                    last = e.id
                }
                if last == nil { last = 0 }
                // A comment line keeps proxies from closing an idle stream.
                try await writer.write(ByteBuffer(string: text.isEmpty ? ": idle\n\n" : text))
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        })
    }

    // MARK: Pipeline health (owner, admin)

    func pipelineHealth(_ v: Viewer) throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        var c = base(v, title: "Pipeline health")
        let h = health()
        let samples = h?.samples ?? []
        let reasons = Set(samples.flatMap { $0.dropped.keys }).sorted()
        var minutes: [[String: Any]] = []
        for (a, b) in zip(samples, samples.dropFirst()) {
            let dropped = reasons.map { (b.dropped[$0] ?? 0) - (a.dropped[$0] ?? 0) }
            minutes.append(["at": ISO.string(Int64(b.at.timeIntervalSince1970 * 1000)), "received": b.received - a.received,
                            "accepted": b.accepted - a.accepted, "dropped": dropped.map { ["n": $0] },
                            "rejected": b.rejected - a.rejected, "errors": b.errors - a.errors])
        }
        c["reasons"] = reasons.map { ["name": $0] }
        c["minutes"] = Array(minutes.reversed())
        c["hasMinutes"] = !minutes.isEmpty
        c["queueDepth"] = h?.queueDepth ?? 0
        c["p50"] = h?.commitP50Ms.map { String(format: "≤ %.1f ms", $0) } ?? "–"
        c["p99"] = h?.commitP99Ms.map { String(format: "≤ %.1f ms", $0) } ?? "–"
        c["geo"] = (h?.geo ?? []).map { ["label": $0.0, "value": $0.1] }
        c["webhooks"] = (h?.webhooks ?? []).map { ["provider": $0.provider, "outcome": $0.outcome, "count": $0.count,
                                                     "bad": !["stored", "duplicate", "ignored"].contains($0.outcome)] }
        let runs = Dictionary(uniqueKeysWithValues: try database.jobRuns().map { ($0.name, $0) })
        c["jobs"] = [("Salt rotation", "salt_rotation"), ("Retention purge", "purge"), ("Deletion requests", "deletion_requests")].map { label, name in
            ["label": label, "at": runs[name].map { ISO.string($0.lastRunAt) } ?? "never", "detail": runs[name]?.detail ?? ""]
        }
        return html("health", c)
    }

    // MARK: Account

    func account(_ v: Viewer, message: String?, status: HTTPResponse.Status = .ok) -> Response {
        var c = base(v, title: "Account")
        if let message { c["message"] = message }
        return html("account", c, status: status)
    }

    func changePassword(_ request: Request, _ v: Viewer) async throws -> Response {
        let f = try await form(request)
        guard csrfOK(f, v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        guard PasswordHasher.verify(f["current"] ?? "", hash: v.user.passwordHash) else {
            return account(v, message: "The current password is wrong.", status: .badRequest)
        }
        let new = f["new"] ?? ""
        guard new.count >= 12, new.count <= 200 else { return account(v, message: "Choose at least 12 characters.", status: .badRequest) }
        guard new == f["confirm"] else { return account(v, message: "The two new passwords differ.", status: .badRequest) }
        try database.setPasswordHash(user: v.user.id!, hash: PasswordHasher.hash(new))
        try office.audit.record(actor: "user:\(v.user.email)", action: "password_changed")
        // Every session of the account ended with the change; sign in again.
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: "candor_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"])
    }

    // MARK: Stats API

    static func apiError(_ status: Int, _ reason: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: JSON.object([("error", .string(reason))]).text)))
    }

    /// `GET /api/v1/sites/:site/stats?range=…|from=YYYY-MM-DD&to=YYYY-MM-DD[&dimension=D][&filters=D==V;D==V]`
    /// with the site's key. Breakdowns are always k-anonymized (API callers are treated like client viewers).
    func statsAPI(_ request: Request, _ id: String) throws -> Response {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer "),
              let key = try APIKeys.authenticate(database: database, token: String(auth.dropFirst(7)), now: now()) else {
            var r = Self.apiError(401, "send the site's API key as Authorization: Bearer ck_…")
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        guard key.siteID == id, let site = try database.site(id: id) else { return Self.apiError(404, "no such site") }
        let params = request.uri.queryParameters
        var r = range(request)
        if params.get("range") == nil, let f = params.get("from").flatMap(Self.day), let t = params.get("to").flatMap(Self.day) {
            guard f <= t else { return Self.apiError(400, "from must not be after to") }
            r = Range(key: "custom", from: f, to: t + 86_400_000, label: "")
        }
        var terms: [(Store.Dimension, String)] = []
        for part in (params.get("filters") ?? "").split(separator: ";") where !part.isEmpty {
            let kv = part.components(separatedBy: "==")
            guard kv.count == 2, let d = Store.Dimension(rawValue: kv[0]) else {
                return Self.apiError(400, "filters are DIMENSION==VALUE separated by ;, dimensions: \(Store.Dimension.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            terms.append((d, kv[1]))
        }
        let filters = Filters(terms)
        let policy = policies[site.policy] ?? .default
        var members: [(String, JSON)] = [("site", .string(id)), ("from", .string(ISO.string(r.from))), ("to", .string(ISO.string(r.to)))]
        if let name = params.get("dimension") {
            guard let d = Store.Dimension(rawValue: name) else { return Self.apiError(400, "unknown dimension \(name.prefix(40))") }
            let folded = KAnonymity.fold(try figures(id, r, filters).breakdown(d),
                                         k: policy.kThreshold, suppress: true)
            members.append(("dimension", .string(d.rawValue)))
            members.append(("folded", JSON(folded.folded)))
            members.append(("results", .array(folded.rows.map {
                .object([("value", JSON($0.value)), ("visitors", JSON($0.visitors)), ("pageviews", JSON($0.pageviews))])
            })))
        } else {
            let s = try figures(id, r, filters).summary()
            members.append(("results", .object([
                ("visitors", JSON(s.visitors)), ("visits", JSON(s.visits)), ("pageviews", JSON(s.pageviews)),
                ("views_per_visit", .double((s.viewsPerVisit * 100).rounded() / 100)),
                ("bounce_rate", .double((s.bounceRate * 1000).rounded() / 1000)), ("visit_duration_s", .int(s.averageDurationMs / 1000)),
                ("conversions", JSON(s.conversions)), ("revenue", .double((s.revenue * 100).rounded() / 100)),
            ])))
        }
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: JSON.object(members).text)))
    }

    // MARK: Session plumbing

    func token(_ request: Request) -> String? {
        request.headers[.cookie]?.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("candor_session=") }.map { String($0.dropFirst("candor_session=".count)) }
    }

    func withViewer(_ request: Request, _ body: (Viewer) async throws -> Response) async throws -> Response {
        guard let token = token(request), let viewer = try auth.viewer(token: token) else {
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        return try await body(viewer)
    }

    func form(_ request: Request) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 16 * 1024)
        return FormFields.urlencoded(Array(body.readableBytesView))
    }

    func csrfOK(_ form: [String: String], _ v: Viewer) -> Bool {
        Sodium.equal(Array((form["csrf"] ?? "").utf8), Array(v.csrf.utf8))
    }

    func html(_ name: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [
            .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.csp, .cacheControl: "no-store",
            .init("X-Content-Type-Options")!: "nosniff", .init("Referrer-Policy")!: "same-origin",
        ], body: .init(byteBuffer: ByteBuffer(string: pages.render(name, context))))
    }

    /// Another site's page, or a page the role may not see, is indistinguishable from a missing one.
    func notFound() -> Response {
        html("notfound", ["title": "Not found"], status: .notFound)
    }

    func base(_ v: Viewer, title: String) -> [String: Any] {
        ["title": title, "user": v.user.email, "role": v.user.role.rawValue, "csrf": v.csrf, "staff": v.isStaffAdmin,
         "viewerOnly": v.user.role == .viewer]
    }

    // MARK: Login

    func loginPage(error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var c: [String: Any] = ["title": "Sign in"]
        if let error { c["error"] = error }
        return html("login", c, status: status)
    }

    func login(_ request: Request, _ context: Context) async throws -> Response {
        let f = try await form(request)
        // Login CSRF: a cross-site form post carries no Origin of ours.
        if let origin = request.headers[.origin], let host = request.head.authority, !origin.hasSuffix("//" + host) {
            return loginPage(error: "Sign-in must come from this site.", status: .forbidden)
        }
        let address = context.remoteAddress.map { "\($0)" } ?? "unknown"
        let key = Hex.encode(clientKey.withUnsafeBytes { k in Array(address.utf8).withUnsafeBytes { Sodium.keyedHash(key: k, message: $0) } })
        switch try auth.login(email: f["email"] ?? "", password: f["password"] ?? "", clientKey: key) {
        case .success(let token):
            var cookie = "candor_session=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(Authenticator.sessionLifetime))"
            if secureCookies { cookie += "; Secure" }
            return Response(status: .seeOther, headers: [.location: "/", .setCookie: cookie])
        case .invalid:
            return loginPage(error: "E-mail or password is wrong.", status: .unauthorized)
        case .throttled(let retry):
            var r = loginPage(error: "Too many failed attempts; try again in \(retry / 60 + 1) minutes.", status: .tooManyRequests)
            r.headers[.retryAfter] = String(retry)
            return r
        }
    }

    func logout(_ request: Request, _ v: Viewer) async throws -> Response {
        guard csrfOK(try await form(request), v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        if let token = token(request) { try auth.logout(token: token) }
        return Response(status: .seeOther, headers: [.location: "/login",
                                                     .setCookie: "candor_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"])
    }

    // MARK: Ranges

    struct Range {
        var key: String
        var from: Int64
        var to: Int64
        var label: String
        /// Whole UTC days (every range but "today", which is shown by the hour).
        var wholeDays: Bool { key != "today" }
    }

    func figures(_ site: String, _ r: Range, _ f: Filters = Filters()) -> Figures {
        Figures(database: database, site: site, from: r.from, to: r.to, filters: f, wholeDays: r.wholeDays)
    }

    func range(_ request: Request) -> Range {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let today = t - t % 86_400_000
        let key = request.uri.queryParameters.get("range") ?? "30d"
        if key == "custom", let f = request.uri.queryParameters.get("from").flatMap(Self.day), let t2 = request.uri.queryParameters.get("to").flatMap(Self.day),
           f <= t2, t2 - f <= 366 * 86_400_000 {
            return Range(key: key, from: f, to: t2 + 86_400_000, label: "\(ISO.day(f)) – \(ISO.day(t2))")
        }
        switch key {
        case "today": return Range(key: key, from: today, to: t + 1, label: "Today")
        case "7d": return Range(key: key, from: today - 6 * 86_400_000, to: t + 1, label: "Last 7 days")
        case "90d": return Range(key: key, from: today - 89 * 86_400_000, to: t + 1, label: "Last 90 days")
        case "month":
            let start = Commission.bounds(month: Commission.month(of: now()))?.0 ?? today
            return Range(key: key, from: start, to: t + 1, label: "This month")
        default: return Range(key: "30d", from: today - 29 * 86_400_000, to: t + 1, label: "Last 30 days")
        }
    }

    /// Midnight UTC (ms) of a YYYY-MM-DD date.
    static func day(_ text: String) -> Int64? {
        guard let d = try? Date(text + "T00:00:00Z", strategy: .iso8601) else { return nil }
        return Int64(d.timeIntervalSince1970 * 1000)
    }

    static var ranges: [(String, String)] { [("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("month", "This month")] }

    // MARK: Pages

    func overview(_ request: Request, _ v: Viewer, message: String? = nil) throws -> Response {
        let r = range(request)
        let q = (request.uri.queryParameters.get("q") ?? "").lowercased()
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            if !q.isEmpty && !site.name.lowercased().contains(q) && !site.domains.contains(where: { $0.contains(q) }) { continue }
            let s = try figures(site.id, r).summary()
            let status = s.lastEvent.map { t - $0 < 86_400_000 ? "active" : "no events in 24 h" } ?? "no events yet"
            // Sparkline: visitors per day over the last 30 days, from the rollups.
            let today = t / 86_400_000
            let series = try database.rollupSeries(site: site.id, fromDay: today - 29, toDay: today).map(\.visitors)
            let top = Double(max(series.max() ?? 1, 1))
            let spark = series.enumerated().map { String(format: "%.1f,%.1f", Double($0.offset) * 100 / 29, 19 - Double($0.element) / top * 18) }
                .joined(separator: " ")
            rows.append(["id": site.id, "name": site.name, "domains": site.domains.joined(separator: ", "), "visitors": s.visitors,
                         "pageviews": s.pageviews, "conversions": s.conversions, "revenue": String(format: "%.2f", s.revenue),
                         "last": s.lastEvent.map { ISO.string($0) } ?? "never", "status": status,
                         "statusClass": status == "active" ? "ok" : "warn", "spark": spark])
        }
        var c = base(v, title: "Sites")
        if let message { c["message"] = message }
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0] }
        c["rangeKey"] = r.key
        if v.isStaffAdmin {
            let overdue = try database.privacyRequestCounts(now: t).overdue
            if overdue > 0 { c["overdue"] = overdue }
        }
        c["sites"] = rows
        c["empty"] = rows.isEmpty
        c["q"] = q
        c["range"] = r.label
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key] }
        return html("overview", c)
    }

    static var siteDimensions: [Store.Dimension] {
        [.page, .source, .referrer, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent, .country, .region, .city, .asnOrg,
         .browser, .os, .device, .screen, .event]
    }

    /// `f.<dimension>=value` query parameters.
    func filters(_ request: Request) -> Filters {
        Filters(Store.Dimension.allCases.compactMap { d in
            request.uri.queryParameters.get("f.\(d.rawValue)").map { (d, String($0.prefix(500))) }
        })
    }

    /// A query string for this view with `change` applied (nil value removes the key).
    static func query(_ request: Request, _ change: [String: String?]) -> String {
        var items: [(String, String)] = []
        for (k, v) in request.uri.queryParameters where change[String(k)] == nil {
            items.append((String(k), String(v)))
        }
        for (k, v) in change { if let v = v { items.append((k, v)) } }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }
        return "?" + items.sorted { $0.0 < $1.0 }.map { "\(enc($0.0))=\(enc($0.1))" }.joined(separator: "&")
    }

    static func delta(_ now: Double, _ before: Double) -> String {
        guard before != 0 else { return now == 0 ? "±0 %" : "new" }
        let p = Int(((now - before) / before * 100).rounded())
        return p > 0 ? "+\(p) %" : p == 0 ? "±0 %" : "−\(-p) %"
    }

    func site(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let r = range(request)
        let f = filters(request)
        let policy = policies[site.policy] ?? .default
        let figures = figures(id, r, f)
        let s = try figures.summary()
        let compare = request.uri.queryParameters.get("compare") == "1"
        let previous = compare ? try figures.previous().summary() : nil
        var c = base(v, title: site.name)
        c["site"] = ["id": site.id, "name": site.name]
        c["range"] = r.label
        c["rangeKey"] = r.key
        c["query"] = Self.query(request, [:])
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key,
                                         "href": Self.query(request, ["range": $0.0, "from": nil, "to": nil])] }
        c["compareHref"] = Self.query(request, ["compare": compare ? nil : "1"])
        c["compareLabel"] = compare ? "Stop comparing" : "Compare to the previous period"
        c["filters"] = f.terms.map { ["label": $0.0.label, "value": $0.1, "remove": Self.query(request, ["f.\($0.0.rawValue)": nil])] }
        c["hasFilters"] = !f.isEmpty
        c["filterInputs"] = f.terms.map { ["name": "f.\($0.0.rawValue)", "value": $0.1] }
        c["conversionsUnfiltered"] = !f.isEmpty && !f.appliesToConversions
        let cards: [(String, Double, String)] = [
            ("Visitors", Double(s.visitors), String(s.visitors)), ("Visits", Double(s.visits), String(s.visits)),
            ("Pageviews", Double(s.pageviews), String(s.pageviews)),
            ("Views per visit", s.viewsPerVisit, String(format: "%.1f", s.viewsPerVisit)),
            ("Bounce rate", s.bounceRate, String(format: "%.0f %%", s.bounceRate * 100)),
            ("Visit duration", Double(s.averageDurationMs), "\(s.averageDurationMs / 1000) s"),
            ("Conversions", Double(s.conversions), String(s.conversions)), ("Revenue", s.revenue, String(format: "%.2f", s.revenue)),
        ]
        let before: [Double] = previous.map { p in
            [Double(p.visitors), Double(p.visits), Double(p.pageviews), p.viewsPerVisit, p.bounceRate, Double(p.averageDurationMs),
             Double(p.conversions), p.revenue]
        } ?? []
        c["summary"] = cards.enumerated().map { i, card -> [String: Any] in
            var m: [String: Any] = ["label": card.0, "value": card.2]
            if !before.isEmpty { m["delta"] = Self.delta(card.1, before[i]) }
            return m
        }
        c["empty"] = s.pageviews == 0 && s.visits == 0
        c["suppressed"] = v.suppressesSmallGroups
        c["k"] = policy.kThreshold
        c["chart"] = try chart(figures, r)
        func table(_ label: String, _ key: String, _ rows: [BreakdownRow], filterable: Store.Dimension?) -> [String: Any] {
            let folded = KAnonymity.fold(rows, k: policy.kThreshold, suppress: v.suppressesSmallGroups)
            return ["label": label, "dimension": key, "folded": folded.folded, "hasFolded": folded.folded > 0,
                    "empty": folded.rows.isEmpty, "events": filterable != nil,
                    "rows": folded.rows.prefix(10).map { row -> [String: Any] in
                        var cell: [String: Any] = ["value": row.value ?? "(none)", "visitors": row.visitors, "pageviews": row.pageviews]
                        if let d = filterable, let value = row.value, value != KAnonymity.otherLabel {
                            cell["filter"] = Self.query(request, ["f.\(d.rawValue)": value])
                        }
                        // Only plain host names become links, always https.
                        if filterable == .referrer, let host = row.value, host != KAnonymity.otherLabel,
                           host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
                            cell["href"] = "https://" + host
                        }
                        return cell
                    }]
        }
        var tables: [[String: Any]] = []
        for d in Self.siteDimensions {
            tables.append(table(d.label, d.rawValue, try figures.breakdown(d),
                                filterable: d))
            if d == .page {
                for sd in SessionDimension.allCases {
                    tables.append(table(sd.label, sd.rawValue,
                                        try figures.sessionBreakdown(sd),
                                        filterable: nil))
                }
            }
        }
        c["tables"] = tables
        // Filtering by a custom event shows its properties.
        if let event = f.terms.first(where: { $0.0 == .event })?.1, event != "pageview" {
            let folded = KAnonymity.fold(try database.propertyBreakdown(site: id, from: r.from, to: r.to, event: event, filters: f),
                                         k: policy.kThreshold, suppress: v.suppressesSmallGroups)
            c["properties"] = ["event": event, "folded": folded.folded, "hasFolded": folded.folded > 0, "empty": folded.rows.isEmpty,
                               "rows": folded.rows.prefix(50).map { ["value": $0.value ?? "", "visitors": $0.visitors, "events": $0.pageviews] }]
        }
        c["mayConfigure"] = mayConfigure(v, id)
        let goalResults = try database.goalResults(site: id, from: r.from, to: r.to, filters: f)
        c["goals"] = goalResults.map { g -> [String: Any] in
            let hide = v.suppressesSmallGroups && g.visitors > 0 && g.visitors < policy.kThreshold
            return ["name": g.goal.name, "kind": g.goal.kind.rawValue, "match": g.goal.match,
                    "visitors": hide ? "< \(policy.kThreshold)" : String(g.visitors), "completions": hide ? "–" : String(g.completions),
                    "rate": s.visitors == 0 || hide ? "–" : String(format: "%.1f %%", Double(g.visitors) / Double(s.visitors) * 100)]
        }
        c["hasGoals"] = !goalResults.isEmpty
        c["funnels"] = try database.funnels(site: id).map { funnel -> [String: Any] in
            let result = try database.funnelResult(funnel, from: r.from, to: r.to)
            let first = result.steps.first?.visits ?? 0
            return ["name": funnel.name, "steps": result.steps.enumerated().map { i, step -> [String: Any] in
                let previous = i == 0 ? first : result.steps[i - 1].visits
                // Counts under k are hidden from roles that get folded figures.
                let hide = v.suppressesSmallGroups && step.visits > 0 && step.visits < policy.kThreshold
                return ["n": i + 1, "name": step.goal.name, "visits": hide ? "< \(policy.kThreshold)" : String(step.visits),
                        "ofFirst": first == 0 || hide ? "–" : String(format: "%.1f %%", Double(step.visits) / Double(first) * 100),
                        "dropOff": i == 0 || previous == 0 || hide ? "–" : String(format: "%.1f %%", Double(previous - step.visits) / Double(previous) * 100)]
            }]
        }
        // Engagement per page: only pages that reach k pageviews are shown to roles that get folded figures.
        c["engagement"] = try figures.engagement()
            .filter { !v.suppressesSmallGroups || $0.pageviews >= policy.kThreshold }.prefix(15).map {
                ["path": $0.path, "pageviews": $0.pageviews, "engaged": "\($0.averageEngagedMs / 1000) s", "scroll": "\($0.averageScroll) %"]
            }
        return html("site", c)
    }

    /// Bars of visitors per hour (ranges up to two days) or per day, as SVG geometry for the template;
    /// each bar's `<title>` holds its values (shown on hover, read by screen readers).
    func chart(_ figures: Figures, _ r: Range) throws -> [String: Any] {
        let hourly = r.to - r.from <= 2 * 86_400_000
        let points = try figures.series(hourly: hourly)
        let top = max(1, points.map(\.visitors).max() ?? 1)
        let width = 600.0, height = 120.0
        let w = width / Double(max(points.count, 1))
        return ["width": Int(width), "height": Int(height) + 20, "max": top,
                "bars": points.enumerated().map { i, p -> [String: Any] in
                    let h = max(p.visitors > 0 ? 1 : 0, height * Double(p.visitors) / Double(top))
                    let when = hourly ? ISO.string(p.start) : ISO.day(p.start)
                    return ["x": String(format: "%.1f", Double(i) * w), "y": String(format: "%.1f", height - h),
                            "w": String(format: "%.1f", max(w - 1, 0.5)), "h": String(format: "%.1f", h),
                            "title": "\(when): \(p.visitors) visitors, \(p.pageviews) pageviews"]
                },
                "first": points.first.map { hourly ? ISO.string($0.start) : ISO.day($0.start) } ?? "",
                "last": points.last.map { hourly ? ISO.string($0.start) : ISO.day($0.start) } ?? ""]
    }

    func export(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let key = request.uri.queryParameters.get("dimension") ?? ""
        let r = range(request)
        let figures = figures(id, r, filters(request))
        let rows: [BreakdownRow]
        // Event breakdowns, or entry/exit pages (sessions; the second column counts visits).
        if let d = Store.Dimension(rawValue: key) {
            rows = try figures.breakdown(d)
        } else if let d = SessionDimension(rawValue: key) {
            rows = try figures.sessionBreakdown(d)
        } else {
            return notFound()
        }
        let policy = policies[site.policy] ?? .default
        let folded = KAnonymity.fold(rows, k: policy.kThreshold, suppress: v.suppressesSmallGroups)
        let name = "\(site.id)-\(key)-\(r.key)"
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.object([("site", .string(site.id)), ("dimension", .string(key)), ("range", .string(r.key)),
                                    ("folded", JSON(folded.folded)),
                                    ("rows", .array(folded.rows.map { .object([("value", JSON($0.value)), ("visitors", JSON($0.visitors)),
                                                                               ("pageviews", JSON($0.pageviews))]) }))])
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"\(name).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        let table = ResultTable(name: name, columns: [key, "visitors", "pageviews"], rows: folded.rows.map {
            [$0.value.map(Cell.text) ?? .null, .integer(Int64($0.visitors)), .integer(Int64($0.pageviews))]
        })
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
    }

    func privacyCenter(_ v: Viewer, message: String?) throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var c = base(v, title: "Privacy center")
        if let message { c["message"] = message }
        let open = try database.privacyRequests(openOnly: true)
        c["hasRequests"] = !open.isEmpty
        c["requests"] = open.map { r -> [String: Any] in
            ["id": r.id, "site": r.siteID, "kind": r.subjectKind.rawValue, "status": r.status.rawValue, "received": ISO.string(r.receivedAt),
             "deadline": ISO.string(r.deadlineAt), "overdue": r.deadlineAt < t, "filedBy": r.filedBy]
        }
        c["done"] = try database.privacyRequests(limit: 20).filter { !$0.isOpen }.map { r -> [String: Any] in
            ["id": r.id, "site": r.siteID, "status": r.status.rawValue, "processed": r.processedAt.map { ISO.string($0) } ?? "",
             "reason": r.reason ?? "", "hasReceipt": r.receipt != nil]
        }
        c["sites"] = try database.sites().filter { v.may(see: $0.id) }.map { ["id": $0.id, "name": $0.name] }
        var retention: [[String: Any]] = []
        for site in try database.sites() {
            let policy = policies[site.policy] ?? .default
            for (cls, table) in [(DataClass.events, RetainedTable.events), (.sessions, .sessions), (.consentRecords, .consentRecords),
                                 (.conversions, .conversions), (.leads, .leads)] {
                let oldest = try database.oldest(table, site: site.id)
                let days = policy.retentionDays[cls]
                let age = oldest.map { Int((t - $0) / 86_400_000) }
                retention.append(["site": site.name, "class": cls.rawValue, "limit": days.map { "\($0) days" } ?? "kept",
                                  "oldest": age.map { "\($0) days" } ?? "none", "over": (age ?? 0) > (days ?? .max)])
            }
        }
        c["retention"] = retention
        let runs = try database.jobRuns()
        c["jobs"] = runs.filter { !$0.name.hasPrefix("policy:") }.map { ["name": $0.name, "at": ISO.string($0.lastRunAt), "detail": $0.detail ?? ""] }
        let verification = try office.audit.verify()
        c["auditOK"] = verification.isIntact
        c["auditSummary"] = verification.isIntact
            ? "Intact: \(verification.entries) entries, head \(verification.head.map(Hex.encode) ?? "-")"
            : "BROKEN at entry \(verification.firstBroken ?? 0): \(verification.problem ?? "")"
        c["audit"] = try database.recentAuditEntries(limit: 30).map {
            ["seq": $0.seq, "at": ISO.string($0.timestamp), "actor": $0.actor, "action": $0.action, "site": $0.siteID ?? "", "detail": $0.detail]
        }
        return html("privacy", c)
    }

    /// The identifier a privacy-center form names (kind + value).
    func identifier(_ f: [String: String]) -> PrivacyOffice.Identifier? {
        let value = (f["value"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else { return nil }
        switch f["kind"] {
        case "subject": return .subject(value)
        case "email": return .email(value)
        case "user": return .userID(value)
        default: return nil
        }
    }

    func fileRequest(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let f = try await form(request)
        guard csrfOK(f, v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        guard let site = f["site"], v.may(see: site), let id = identifier(f) else {
            return try privacyCenter(v, message: "Choose a site, the kind of identifier and its value.")
        }
        do {
            let filed = try office.file(site: site, identifier: id, filedBy: "user:\(v.user.email)")
            return try privacyCenter(v, message: "Request \(filed.id) received; deadline \(ISO.string(filed.deadlineAt)).")
        } catch let error as PrivacyOfficeError {
            return try privacyCenter(v, message: "Not filed: \(error.description).")
        }
    }

    func officerExport(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let f = try await form(request)
        guard csrfOK(f, v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        guard let site = f["site"], v.may(see: site), let id = identifier(f) else {
            return try privacyCenter(v, message: "Choose a site, the kind of identifier and its value.")
        }
        do {
            let export = try office.export(site: site, identifier: id, actor: "user:\(v.user.email)")
            if f["format"] == "csv", let name = f["table"], let table = export.table(name) {
                return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .cacheControl: "no-store",
                                                        .contentDisposition: "attachment; filename=\"subject-\(site)-\(name).csv\""],
                                body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
            }
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store",
                                                    .contentDisposition: "attachment; filename=\"subject-\(site).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: export.json)))
        } catch let error as PrivacyOfficeError {
            return try privacyCenter(v, message: "No export: \(error.description).")
        }
    }

    func receipt(_ v: Viewer, _ id: String) throws -> Response {
        guard v.isStaffAdmin, let r = try database.privacyRequest(id: id), v.may(see: r.siteID), let receipt = r.receipt else { return notFound() }
        return Response(status: .ok, headers: [.contentType: "application/json",
                                               .contentDisposition: "attachment; filename=\"receipt-\(r.id).json\""],
                        body: .init(byteBuffer: ByteBuffer(string: receipt)))
    }

    func clientDetail(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.user.role != .viewer, v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let month = request.uri.queryParameters.get("month") ?? Commission.month(of: now())
        guard let r = try Commission.report(database: database, site: site, month: month) else { return notFound() }
        if request.uri.queryParameters.get("format") == "csv" {
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                    .contentDisposition: "attachment; filename=\"commission-\(site.id)-\(month).csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(r.table))))
        }
        var c = base(v, title: "\(site.name) — \(month)")
        func money(_ d: Double) -> String { String(format: "%.2f %@", d, r.terms.currency) }
        c["site"] = ["id": site.id, "name": site.name]
        c["month"] = month
        c["figures"] = [["label": "Sales", "value": String(r.sales)], ["label": "Revenue", "value": money(r.totalRevenue)],
                        ["label": "Attributed revenue", "value": money(r.attributedRevenue)],
                        ["label": "Our leads / calls", "value": "\(r.ourLeads) / \(r.ourCalls)"],
                        ["label": "Unattributed", "value": String(r.unattributed)], ["label": "Commission", "value": money(r.commission)]]
        c["terms"] = "\(r.terms.percent) % of attributed revenue, \(money(r.terms.perLead)) per lead, \(money(r.terms.perCall)) per call, minimum \(money(r.terms.monthlyMinimum)); credit: \(r.terms.credit.rawValue) touch; our sources: \(r.terms.ourSources.isEmpty ? "every attributed conversion" : r.terms.ourSources.joined(separator: ", "))"
        c["lines"] = r.lines.map { line, counted -> [String: Any] in
            func touch(_ t: Touch?) -> String { t.map { [$0.sourceType, $0.utmSource, $0.utmCampaign].compactMap { $0 }.joined(separator: " / ") } ?? "–" }
            return ["time": ISO.string(line.timestamp), "provider": line.provider, "kind": line.kind.rawValue,
                    "value": String(format: "%.2f %@", line.value, line.currency ?? ""), "via": line.attributedVia,
                    "first": touch(line.firstTouch), "last": touch(line.lastTouch), "counted": counted ? "yes" : "no"]
        }
        c["empty"] = r.lines.isEmpty
        return html("client", c)
    }

    func runRequests(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        guard csrfOK(try await form(request), v) else { return html("notfound", ["title": "Invalid form"], status: .forbidden) }
        let done = try office.processOpenRequests(actor: "user:\(v.user.email)")
        return try privacyCenter(v, message: "\(done.count) request(s) carried out.")
    }

    func clients(_ request: Request, _ v: Viewer) throws -> Response {
        guard v.user.role != .viewer else { return notFound() }
        let month = request.uri.queryParameters.get("month") ?? Commission.month(of: now())
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            guard let r = try Commission.report(database: database, site: site, month: month) else { return notFound() }
            rows.append(["id": site.id, "name": site.name, "sales": r.sales, "leads": r.leads + r.calls,
                         "revenue": String(format: "%.2f", r.attributedRevenue), "commission": String(format: "%.2f %@", r.commission, r.terms.currency),
                         "unattributed": r.unattributed])
        }
        var c = base(v, title: "Clients")
        c["month"] = month
        c["clients"] = rows
        c["empty"] = rows.isEmpty
        return html("clients", c)
    }
}
