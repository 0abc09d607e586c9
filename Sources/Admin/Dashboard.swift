public import Consent
public import Destinations
public import Foundation
public import Hummingbird
import HTTPTypes
import Actions
import Integrations
import JSONOutput
import Logging
import Mustache
public import Notify
import NIOCore
public import Privacy
public import Store
import Storage
public import Traffic
import Synchronization

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
    /// Destination delivery attempts since start by kind and outcome.
    public var deliveries: [(kind: String, outcome: String, count: Int)]
    /// Label and state of each classification dataset (package, version, entries, path).
    public var datasets: [(String, String)]
    /// Events dropped as bots since start, by layer.
    public var botDrops: [(layer: String, count: Int)]

    public init(samples: [Sample], queueDepth: Int, commitP50Ms: Double?, commitP99Ms: Double?, geo: [(String, String)],
                webhooks: [(provider: String, outcome: String, count: Int)] = [],
                deliveries: [(kind: String, outcome: String, count: Int)] = [], datasets: [(String, String)] = [],
                botDrops: [(layer: String, count: Int)] = []) {
        self.samples = samples; self.queueDepth = queueDepth; self.commitP50Ms = commitP50Ms; self.commitP99Ms = commitP99Ms; self.geo = geo
        self.webhooks = webhooks; self.deliveries = deliveries; self.datasets = datasets; self.botDrops = botDrops
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
    /// The client's address from the peer and X-Forwarded-For (trusted proxies honoured), as
    /// abuse limits count it (`candor serve` passes the /64 of IPv6 addresses).
    let clientAddress: @Sendable (_ peer: String?, _ forwardedFor: String?) -> String?
    /// Adds and changes destinations (nil: the page shows them read-only).
    let destinationSetup: DestinationSetup?
    /// Countries `/world.svg` draws (upper-case codes); empty: no map.
    let mapCountries: Set<String>
    /// Seals alert channels' URLs (nil: channels cannot be added).
    let secretBox: SecretBox?
    /// Sends alert e-mail (nil: no SMTP server configured).
    let mailer: Mailer?
    /// The collector's referrer list: imported sources are classified as collected ones.
    let referrers: ReferrerList?

    public init(database: AppDatabase, policies: PolicyBook, auth: Authenticator, office: PrivacyOffice, pages: Pages,
                secureCookies: Bool = false, health: @escaping @Sendable () -> PipelineHealth? = { nil },
                liveDuration: Duration = .seconds(30 * 60), now: @escaping @Sendable () -> Date = { Date() },
                clientAddress: @escaping @Sendable (_ peer: String?, _ forwardedFor: String?) -> String? = { peer, _ in peer },
                destinations: DestinationSetup? = nil, secretBox: SecretBox? = nil, mailer: Mailer? = nil, mapCountries: Set<String> = [],
                referrers: ReferrerList? = nil) {
        self.database = database; self.policies = policies; self.auth = auth; self.office = office; self.pages = pages
        self.secureCookies = secureCookies; self.health = health; self.liveDuration = liveDuration; self.now = now
        self.clientAddress = clientAddress; self.destinationSetup = destinations; self.mapCountries = mapCountries
        self.secretBox = secretBox; self.mailer = mailer; self.referrers = referrers
    }

    var administration: Administration { Administration(database: database, policies: policies, now: now) }

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
        router.get("/sites/:site/details") { request, context in
            try await self.withViewer(request) { v in try self.details(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/sites/:site/export") { request, context in
            try await self.withViewer(request) { v in try self.export(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/privacy") { request, _ in
            try await self.withViewer(request) { v in try self.privacyCenter(v, message: nil, filed: request.uri.queryParameters.get("filed")) }
        }
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
        router.get("/consent") { request, _ in try await self.withViewer(request) { v in try self.consentPage(request, v) } }
        router.get("/clients") { request, _ in try await self.withViewer(request) { v in try self.clients(request, v) } }
        router.get("/api/v1/sites/:site/stats") { request, context in try self.statsAPI(request, context.parameters.get("site") ?? "") }
        router.post("/sites") { request, _ in try await self.withViewer(request) { v in try await self.addSite(request, v) } }
        router.get("/export/overview") { request, _ in try await self.withViewer(request) { v in try self.exportOverview(request, v) } }
        router.get("/sites/:site/settings") { request, context in
            try await self.withViewer(request) { v in try self.settings(request, v, context.parameters.get("site") ?? "", message: nil) }
        }
        router.post("/sites/:site/imports") { request, context in
            try await self.withViewer(request) { v in try await self.importUpload(request, v, context.parameters.get("site") ?? "") }
        }
        router.post("/sites/:site/settings/:action") { request, context in
            try await self.withViewer(request) { v in
                try await self.changeSettings(request, v, context.parameters.get("site") ?? "", context.parameters.get("action") ?? "")
            }
        }
        router.get("/sites/:site/destinations") { request, context in
            try await self.withViewer(request) { v in
                let q = request.uri.queryParameters
                return try self.destinationsPage(v, context.parameters.get("site") ?? "",
                                                 message: Self.doneMessage(q.get("done"), q.get("n").flatMap { Int($0) } ?? 0))
            }
        }
        router.post("/sites/:site/destinations/:action") { request, context in
            try await self.withViewer(request) { v in
                try await self.changeDestinations(request, v, context.parameters.get("site") ?? "", context.parameters.get("action") ?? "")
            }
        }
        router.get("/sites/:site/realtime") { request, context in
            try await self.withViewer(request) { v in try self.realtime(v, context.parameters.get("site") ?? "") }
        }
        router.get("/sites/:site/realtime.json") { request, context in
            try await self.withViewer(request) { v in try self.realtimeJSON(v, context.parameters.get("site") ?? "") }
        }
        router.get("/sites/:site/live") { request, context in
            try await self.withViewer(request) { v in try self.live(request, v, context.parameters.get("site") ?? "") }
        }
        router.get("/health/pipeline") { request, _ in try await self.withViewer(request) { v in try self.pipelineHealth(v) } }
        router.get("/account") { request, _ in try await self.withViewer(request) { v in try self.account(v, message: nil) } }
        router.get("/users") { request, _ in try await self.withViewer(request) { v in try self.users(v, message: nil) } }
        router.post("/users/:action") { request, context in
            try await self.withViewer(request) { v in try await self.changeUsers(request, v, context.parameters.get("action") ?? "") }
        }
        router.post("/account") { request, _ in try await self.withViewer(request) { v in try await self.changePassword(request, v) } }
        addTwoFactorRoutes(to: router)
        addShareRoutes(to: router)
        addAlertRoutes(to: router)
    }

    // MARK: Session plumbing

    func token(_ request: Request) -> String? { cookie("candor_session", request) }

    func cookie(_ name: String, _ request: Request) -> String? { Authenticator.cookie(name, request.headers) }

    func withViewer(_ request: Request, _ body: (Viewer) async throws -> Response) async throws -> Response {
        guard let token = token(request), let viewer = try auth.viewer(token: token) else {
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        if viewer.mustEnrolTwoFactor, !Self.reachableBeforeEnrolment(request.uri.path) {
            return Response(status: .seeOther, headers: [.location: "/account/two-factor"])
        }
        // Pages are written in the reader's locale (dates, numbers, amounts).
        return try await Format.$locale.withValue(Format.locale(acceptLanguage: request.headers[.acceptLanguage])) { try await body(viewer) }
    }

    /// The urlencoded form of a POST; a body over 16 KiB is refused with 413.
    func form(_ request: Request) async throws -> [String: String] {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: 16 * 1024) } catch {
            throw HTTPError(.contentTooLarge, message: "form larger than 16 KiB")
        }
        return FormFields.urlencoded(Array(body.readableBytesView))
    }

    /// The form of a POST whose CSRF token matches the session's, or nil (answer with ``invalidForm()``).
    func postedForm(_ request: Request, _ v: Viewer) async throws -> [String: String]? {
        let f = try await form(request)
        return Sodium.equal(Array((f["csrf"] ?? "").utf8), Array(v.csrf.utf8)) ? f : nil
    }

    func invalidForm() -> Response { html("notfound", ["title": "Invalid form"], status: .forbidden) }

    /// A Set-Cookie value that ends the dashboard session in the browser.
    static var endSessionCookie: String { "candor_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" }

    func html(_ name: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [
            .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.csp, .cacheControl: "no-store",
            .init("X-Content-Type-Options")!: "nosniff", .init("Referrer-Policy")!: "same-origin",
        ], body: .init(byteBuffer: ByteBuffer(string: pages.render(name, context))))
    }

    /// An instant on a page about the whole install (requests, jobs, the audit log, keys, users):
    /// in UTC, named, in the reader's locale.
    func when(_ ms: Int64, _ v: Viewer) -> String { Format.moment(ms, .utc, zone: true) }

    /// Another site's page, or a page the role may not see, is indistinguishable from a missing one.
    func notFound() -> Response {
        html("notfound", ["title": "Not found"], status: .notFound)
    }

    func base(_ v: Viewer, title: String) -> [String: Any] {
        ["title": title, "user": v.user.email, "role": v.user.role.rawValue, "csrf": v.csrf, "staff": v.isStaffAdmin,
         "viewerOnly": v.user.role == .viewer, "manageUsers": v.actor.may(.manageUser(current: .viewer, new: .viewer))]
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
        let result = try await auth.login(email: f["email"] ?? "", password: f["password"] ?? "", address: addressKey(request, context),
                                          device: cookie("candor_device", request), userAgent: request.headers[.userAgent] ?? "")
        if case .secondFactor(let challenge) = result {
            return Response(status: .seeOther, headers: [.location: "/login/code", .setCookie:
                "\(Self.challengeCookie)=\(challenge); Path=/login; HttpOnly; SameSite=Strict; Max-Age=\(Int(Authenticator.challengeLifetime))\(secureCookies ? "; Secure" : "")"])
        }
        return signInResponse(result, page: { loginPage(error: $0, status: $1) })
    }

    /// The keyed hash of the caller's resolved address (X-Forwarded-For from trusted proxies) that
    /// sign-in throttling counts; never the address itself.
    func addressKey(_ request: Request, _ context: Context) -> String {
        let address = clientAddress(context.remoteAddress?.ipAddress, request.headers[.init("X-Forwarded-For")!]) ?? "unknown"
        return Hex.encode(clientKey.withUnsafeBytes { k in Array(address.utf8).withUnsafeBytes { Sodium.keyedHash(key: k, message: $0) } })
    }

    /// The answer to the last step of a sign-in: the session's cookies and the dashboard, or
    /// `page` with the reason.
    func signInResponse(_ result: Authenticator.LoginResult, page: (String, HTTPResponse.Status) -> Response) -> Response {
        switch result {
        case .success(let token, let device):
            let secure = secureCookies ? "; Secure" : ""
            var headers: HTTPFields = [.location: "/"]
            headers.append(HTTPField(name: .setCookie, value:
                "candor_session=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(Authenticator.sessionLifetime))\(secure)"))
            headers.append(HTTPField(name: .setCookie, value:
                "candor_device=\(device); Path=/login; HttpOnly; SameSite=Strict; Max-Age=\(Int(Authenticator.deviceLifetime))\(secure)"))
            headers.append(HTTPField(name: .setCookie, value: "\(Self.challengeCookie)=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"))
            return Response(status: .seeOther, headers: headers)
        case .invalid, .secondFactor, .challengeEnded, .codesLocked:
            return page("E-mail or password is wrong.", .unauthorized)
        case .throttled(let retry):
            var r = page("Too many failed attempts; try again in \(retry < 60 ? "\(retry) seconds" : "\(retry / 60 + 1) minutes").", .tooManyRequests)
            r.headers[.retryAfter] = String(retry)
            return r
        case .busy:
            var r = page("Too many sign-ins at once; try again in a moment.", .serviceUnavailable)
            r.headers[.retryAfter] = "2"
            return r
        case .unavailable:
            return page("This server cannot check authenticator codes now (its secret key is missing); use a recovery code, "
                        + "or ask an operator to reset your second factor (candor users reset-2fa).", .serviceUnavailable)
        }
    }

    func logout(_ request: Request, _ v: Viewer) async throws -> Response {
        guard try await postedForm(request, v) != nil else { return invalidForm() }
        if let token = token(request) { try auth.logout(token: token) }
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: Self.endSessionCookie])
    }

    // MARK: Ranges

    typealias Range = ViewRange

    func figures(_ site: Site, _ r: Range, _ f: Filters = Filters()) -> Figures {
        Figures(database: database, site: site.id, from: r.from, to: r.to, filters: f, wholeDays: r.wholeDays, calendar: r.calendar)
    }

    /// The range a request asks for (`range=today|7d|30d|90d|month`, or `range=custom&from=&to=`
    /// with YYYY-MM-DD dates, both included), in the site's days; 30 days when it names none. A
    /// range that cannot be read is refused with its reason, never replaced by another period.
    func range(_ request: Request, _ calendar: SiteCalendar) -> Result<Range, RangeRefusal> {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let today = calendar.day(of: t)
        let q = request.uri.queryParameters
        let key = q.get("range") ?? "30d"
        func last(_ days: Int64, _ key: String, _ label: String) -> Range {
            Range(key: key, from: calendar.start(of: today - days + 1), to: t + 1, label: label, calendar: calendar)
        }
        switch key {
        case "custom": return Self.customRange(from: q.get("from"), to: q.get("to"), calendar)
        case "today": return .success(last(1, key, "Today"))
        case "7d": return .success(last(7, key, "Last 7 days"))
        case "30d": return .success(last(30, key, "Last 30 days"))
        case "90d": return .success(last(90, key, "Last 90 days"))
        case "month":
            let start = calendar.bounds(month: calendar.month(of: t))?.from ?? calendar.start(of: today)
            return .success(Range(key: key, from: start, to: t + 1, label: "This month", calendar: calendar))
        default:
            return .failure(RangeRefusal(reason: "range is one of today, 7d, 30d, 90d, month or custom (with from and to), not \(key.prefix(40))"))
        }
    }

    /// The days `from` to `to` (YYYY-MM-DD, both included, at most 366 days) in the site's days,
    /// or why not.
    static func customRange(from: String?, to: String?, _ calendar: SiteCalendar) -> Result<Range, RangeRefusal> {
        guard let f = from.flatMap(SiteCalendar.day(parsing:)), let l = to.flatMap(SiteCalendar.day(parsing:)) else {
            return .failure(RangeRefusal(reason: "from and to are dates (YYYY-MM-DD) in the site's time zone (\(calendar))"))
        }
        guard f <= l else {
            return .failure(RangeRefusal(reason: "the range starts (\(SiteCalendar.dateText(f))) after it ends (\(SiteCalendar.dateText(l))): from must not be after to"))
        }
        guard l - f < 366 else { return .failure(RangeRefusal(reason: "a range spans at most 366 days")) }
        return .success(Range(key: "custom", from: calendar.start(of: f), to: calendar.end(of: l),
                              label: "\(SiteCalendar.dateText(f)) – \(SiteCalendar.dateText(l))", calendar: calendar))
    }

    static var ranges: [(String, String)] { [("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("month", "This month")] }
}

/// Why a custom range was refused.
struct RangeRefusal: Error {
    let reason: String
}

/// The period a view shows, in the site's days.
struct ViewRange {
    var key: String
    var from: Int64
    var to: Int64
    var label: String
    /// The site's days the range is made of.
    var calendar: SiteCalendar
    /// Whole local days (every range but "today", which is shown by the hour).
    var wholeDays: Bool { key != "today" }
}
