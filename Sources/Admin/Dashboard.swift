public import Consent
public import Foundation
public import Hummingbird
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
    let clientKey = Sodium.randomBytes(32)

    public init(database: AppDatabase, policies: PolicyBook, auth: Authenticator, office: PrivacyOffice, pages: Pages,
                secureCookies: Bool = false, now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database; self.policies = policies; self.auth = auth; self.office = office; self.pages = pages
        self.secureCookies = secureCookies; self.now = now
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
        router.get("/privacy/record.md") { request, _ in
            try await self.withViewer(request) { v in
                guard v.isStaffAdmin else { return self.notFound() }
                return Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: RecordOfProcessing.markdown(self.policies))))
            }
        }
        router.get("/clients") { request, _ in try await self.withViewer(request) { v in try self.clients(request, v) } }
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
    }

    func range(_ request: Request) -> Range {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let today = t - t % 86_400_000
        let key = request.uri.queryParameters.get("range") ?? "30d"
        switch key {
        case "today": return Range(key: key, from: today, to: t + 1, label: "Today")
        case "7d": return Range(key: key, from: t - 7 * 86_400_000, to: t + 1, label: "Last 7 days")
        case "90d": return Range(key: key, from: t - 90 * 86_400_000, to: t + 1, label: "Last 90 days")
        case "month":
            let start = Commission.bounds(month: Commission.month(of: now()))?.0 ?? today
            return Range(key: key, from: start, to: t + 1, label: "This month")
        default: return Range(key: "30d", from: t - 30 * 86_400_000, to: t + 1, label: "Last 30 days")
        }
    }

    static var ranges: [(String, String)] { [("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("month", "This month")] }

    // MARK: Pages

    func overview(_ request: Request, _ v: Viewer) throws -> Response {
        let r = range(request)
        let q = (request.uri.queryParameters.get("q") ?? "").lowercased()
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            if !q.isEmpty && !site.name.lowercased().contains(q) && !site.domains.contains(where: { $0.contains(q) }) { continue }
            let s = try database.summary(site: site.id, from: r.from, to: r.to)
            let status = s.lastEvent.map { t - $0 < 86_400_000 ? "active" : "no events in 24 h" } ?? "no events yet"
            rows.append(["id": site.id, "name": site.name, "domains": site.domains.joined(separator: ", "), "visitors": s.visitors,
                         "pageviews": s.pageviews, "conversions": s.conversions, "revenue": String(format: "%.2f", s.revenue),
                         "last": s.lastEvent.map { ISO.string($0) } ?? "never", "status": status,
                         "statusClass": status == "active" ? "ok" : "warn"])
        }
        var c = base(v, title: "Sites")
        c["sites"] = rows
        c["empty"] = rows.isEmpty
        c["q"] = q
        c["range"] = r.label
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key] }
        return html("overview", c)
    }

    static var siteDimensions: [Store.Dimension] { [.page, .source, .referrer, .utmCampaign, .country, .browser, .device, .event] }

    func site(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let r = range(request)
        let policy = policies[site.policy] ?? .default
        let s = try database.summary(site: id, from: r.from, to: r.to)
        var c = base(v, title: site.name)
        c["site"] = ["id": site.id, "name": site.name]
        c["range"] = r.label
        c["rangeKey"] = r.key
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key] }
        c["summary"] = [
            ["label": "Visitors", "value": String(s.visitors)], ["label": "Visits", "value": String(s.visits)],
            ["label": "Pageviews", "value": String(s.pageviews)],
            ["label": "Views per visit", "value": String(format: "%.1f", s.viewsPerVisit)],
            ["label": "Bounce rate", "value": String(format: "%.0f %%", s.bounceRate * 100)],
            ["label": "Visit duration", "value": "\(s.averageDurationMs / 1000) s"],
            ["label": "Conversions", "value": String(s.conversions)], ["label": "Revenue", "value": String(format: "%.2f", s.revenue)],
        ]
        c["empty"] = s.pageviews == 0 && s.visits == 0
        c["suppressed"] = v.suppressesSmallGroups
        c["k"] = policy.kThreshold
        c["tables"] = try Self.siteDimensions.map { d -> [String: Any] in
            let folded = KAnonymity.fold(try database.breakdown(site: id, from: r.from, to: r.to, dimension: d), k: policy.kThreshold,
                                         suppress: v.suppressesSmallGroups)
            return ["label": d.label, "dimension": d.rawValue, "folded": folded.folded, "hasFolded": folded.folded > 0,
                    "empty": folded.rows.isEmpty,
                    "rows": folded.rows.prefix(10).map { row -> [String: Any] in
                        var cell: [String: Any] = ["value": row.value ?? "(none)", "visitors": row.visitors, "pageviews": row.pageviews]
                        // Only http(s) referrers become links.
                        if d == .referrer, let host = row.value, host != KAnonymity.otherLabel,
                           host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
                            cell["href"] = "https://" + host
                        }
                        return cell
                    }]
        }
        return html("site", c)
    }

    func export(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        guard let d = Store.Dimension(rawValue: request.uri.queryParameters.get("dimension") ?? "") else { return notFound() }
        let r = range(request)
        let policy = policies[site.policy] ?? .default
        let folded = KAnonymity.fold(try database.breakdown(site: id, from: r.from, to: r.to, dimension: d), k: policy.kThreshold,
                                     suppress: v.suppressesSmallGroups)
        let name = "\(site.id)-\(d.rawValue)-\(r.key)"
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.object([("site", .string(site.id)), ("dimension", .string(d.rawValue)), ("range", .string(r.key)),
                                    ("folded", JSON(folded.folded)),
                                    ("rows", .array(folded.rows.map { .object([("value", JSON($0.value)), ("visitors", JSON($0.visitors)),
                                                                               ("pageviews", JSON($0.pageviews))]) }))])
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"\(name).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        let table = ResultTable(name: name, columns: [d.rawValue, "visitors", "pageviews"], rows: folded.rows.map {
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
             "reason": r.reason ?? ""]
        }
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
