import Actions
@testable import Admin
import Collector
import Consent
import Foundation
import Geo
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Retention
import Store
import Storage
import Testing
import Traffic
import TwoFactor

let templatesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Public/templates").path

/// A collector with the dashboard, two sites, and accounts: an owner and a viewer of site A only.
struct DashboardFixture {
    let t: TestCollector
    let siteB: Site
    let pages: Pages
    let ownerPassword = "owner-password-123"
    let viewerPassword = "viewer-password-123"
    /// The install's secret key (seals second-factor keys).
    let box = try! SecretBox(key: Sodium.randomBytes(32))
    /// Countries the dashboard's world map draws (none: no map).
    let mapCountries: Set<String>

    init(start: Date = noon, calendar: SiteCalendar = .utc, policy: Policy = .default, geo: any GeoLookup = NoGeo(),
         mapCountries: Set<String> = []) async throws {
        self.mapCountries = mapCountries
        t = try TestCollector(policy: policy, geo: geo, start: start, calendar: calendar)
        siteB = Site(id: "sitebbbb", name: "Site B", domains: ["b.example"], policy: "default", createdAt: noon)
        try t.database.addSite(siteB)
        try t.database.addUser(User(email: "owner@example.org", passwordHash: PasswordHasher.hash(ownerPassword), role: .owner, createdAt: noon))
        let viewer = try t.database.addUser(User(email: "viewer@example.org", passwordHash: PasswordHasher.hash(viewerPassword),
                                                 role: .viewer, createdAt: noon))
        try t.database.setUserSites(user: viewer.id!, sites: [t.site.id])
        pages = try await Pages(directory: templatesDirectory)
    }

    /// What the scheduler's rollup job does every minute.
    /// The server's rollup job (the rollups, then the engine reloads the days they changed).
    func rollUp() throws { try RollupJob.run(database: t.database, now: t.clock.now) }

    var app: some ApplicationProtocol {
        get throws {
            let router = buildRouter(collector: t.collector)
            let collector = t.collector
            DashboardRoutes<CandorRequestContext>(database: t.database, policies: t.collector.policies,
                                                  auth: Authenticator(database: t.database, box: box, now: t.clock.closure), office: try t.office,
                                                  pages: pages, health: {
                                                      PipelineHealth(samples: collector.metrics.samples.map {
                                                          .init(at: $0.at, received: $0.received, accepted: $0.accepted, dropped: $0.dropped,
                                                                rejected: $0.rejected, errors: $0.writeErrors)
                                                      }, queueDepth: 0, commitP50Ms: 1, commitP99Ms: 2, geo: [("City database", "none")],
                                                         webhooks: collector.metrics.webhookCounts)
                                                  }, liveDuration: .milliseconds(300), now: t.clock.closure,
                                                  // Tests name the client in X-Forwarded-For (as from a trusted proxy).
                                                  clientAddress: { peer, forwarded in forwarded ?? peer },
                                                  mapCountries: mapCountries, referrers: TrafficClassifier.installed.referrers).add(to: router)
            return Application(router: router)
        }
    }
}

extension TestClientProtocol {
    func login(_ email: String, _ password: String, from address: String? = nil, device: String? = nil) async throws -> (TestResponse, String?) {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let address { headers[.init("X-Forwarded-For")!] = address }
        if let device { headers[.cookie] = device }
        let r = try await execute(uri: "/login", method: .post, headers: headers,
                                  body: ByteBuffer(string: "email=\(email)&password=\(password)"))
        let cookie = r.headers[values: .setCookie].first { $0.hasPrefix("candor_session=") }?.split(separator: ";").first.map(String.init)
        return (r, cookie)
    }

    /// The device cookie a successful sign-in set, as a Cookie header value.
    func deviceCookie(_ r: TestResponse) -> String? {
        r.headers[values: .setCookie].first { $0.hasPrefix("candor_device=") }?.split(separator: ";").first.map(String.init)
    }

    func page(_ uri: String, _ cookie: String?) async throws -> (HTTPResponse.Status, String, HTTPFields) {
        var h: HTTPFields = [:]
        if let cookie { h[.cookie] = cookie }
        let r = try await execute(uri: uri, method: .get, headers: h)
        return (r.status, String(buffer: r.body), r.headers)
    }

    func csrf(_ cookie: String) async throws -> String {
        let html = try await page("/", cookie).1
        let marker = #"name="csrf" value=""#
        guard let start = html.range(of: marker) else { return "" }
        return String(html[start.upperBound...].prefix { $0 != "\"" })
    }
}

@Suite struct DashboardTests {
    @Test func loginSetsAStrictHttpOnlySessionAndFailuresAreThrottled() async throws {
        let f = try await DashboardFixture()
        try await f.app.test(.router) { client in
            #expect(try await client.page("/", nil).0 == .seeOther)
            let (ok, cookie) = try await client.login("owner@example.org", f.ownerPassword)
            #expect(ok.status == .seeOther)
            let set = try #require(ok.headers[.setCookie])
            #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.hasPrefix("candor_session="))
            #expect(try await client.page("/", cookie).0 == .ok)
            // The session token is not stored, only its hash.
            #expect(occurrences(of: String(cookie!.dropFirst("candor_session=".count)), inFile: f.t.dir.file("candor.sqlite-wal")) == 0)
            for _ in 0..<5 { #expect(try await client.login("viewer@example.org", "wrong").0.status == .unauthorized) }
            let throttled = try await client.login("viewer@example.org", f.viewerPassword).0
            #expect(throttled.status == .tooManyRequests)
            #expect(throttled.headers[.retryAfter] == "1")   // a delay, growing with each failure, not a lockout
            f.t.clock.advance(2)
            #expect(try await client.login("viewer@example.org", f.viewerPassword).0.status == .seeOther)
        }
    }

    /// Issue 12, finding 3: one client trying many accounts is throttled by its address (30 of 30
    /// got 401 before); failures aimed at the owner from elsewhere never lock the owner's own
    /// browser out; memory stays bounded however many e-mails and addresses are tried.
    @Test func signInThrottlingStopsSprayingWithoutLockingTheOwnerOut() async throws {
        let f = try await DashboardFixture()
        let auth = Authenticator(database: f.t.database, now: f.t.clock.closure)
        let router = buildRouter(collector: f.t.collector)
        DashboardRoutes<CandorRequestContext>(database: f.t.database, policies: f.t.collector.policies, auth: auth, office: try f.t.office,
                                              pages: f.pages, now: f.t.clock.closure,
                                              clientAddress: { peer, forwarded in forwarded ?? peer }).add(to: router)
        try await Application(router: router).test(.router) { client in
            // The owner signs in once from their browser: it becomes a known device.
            let first = try await client.login("owner@example.org", f.ownerPassword, from: "198.51.100.7")
            let device = try #require(client.deviceCookie(first.0))
            // Spraying from one address: 10 wrong answers, then 429 whatever the account.
            var statuses: [HTTPResponse.Status] = []
            for i in 0..<30 { statuses.append(try await client.login("user\(i)@example.org", "Winter2026!", from: "203.0.113.9").0.status) }
            #expect(statuses.prefix(10).allSatisfy { $0 == .unauthorized })
            #expect(statuses.dropFirst(10).allSatisfy { $0 == .tooManyRequests })
            // Guessing the owner's password from 40 addresses: the account's attempts are slowed, 30 s at most.
            for i in 0..<40 { _ = try await client.login("owner@example.org", "guess\(i)", from: "192.0.2.\(i)") }
            let stranger = try await client.login("owner@example.org", f.ownerPassword, from: "198.51.100.99").0
            #expect(stranger.status == .tooManyRequests)
            #expect(Int(stranger.headers[.retryAfter] ?? "") ?? 99 <= 30)
            // The owner's known browser is not delayed at all.
            #expect(try await client.login("owner@example.org", f.ownerPassword, from: "198.51.100.7", device: device).0.status == .seeOther)
            // 40 wrong guesses at once from one new address: no more than 10 are checked.
            let concurrent = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for i in 0..<40 { group.addTask { try await client.login("viewer@example.org", "guess\(i)", from: "203.0.113.77").0.status } }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(concurrent.filter { $0 == .unauthorized }.count <= 10, "\(concurrent.filter { $0 == .unauthorized }.count) checked")
            // 3,000 throttled attempts with fresh e-mails keep no entry per e-mail.
            for i in 0..<3000 { _ = try await client.login("nobody\(i)@example.org", "x", from: "203.0.113.9") }
            #expect(auth.throttle.entries < 50)
        }
        // Address entries are capped and expire.
        let throttle = LoginThrottle()
        for i in 0..<(throttle.limits.capacity + 500) { throttle.failed(address: "a\(i)", account: nil, device: nil, now: noon) }
        #expect(throttle.entries <= throttle.limits.capacity)
        _ = throttle.wait(address: "x", account: nil, device: nil, now: noon.addingTimeInterval(16 * 60))
        #expect(throttle.entries == 0)
    }

    @Test func formsNeedTheCSRFToken() async throws {
        let f = try await DashboardFixture()
        try await f.app.test(.router) { client in
            let cookie = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .cookie: cookie]
            #expect(try await client.execute(uri: "/privacy/run", method: .post, headers: form, body: ByteBuffer(string: "csrf=nope")).status == .forbidden)
            #expect(try await client.execute(uri: "/logout", method: .post, headers: form, body: ByteBuffer()).status == .forbidden)
            let token = try await client.csrf(cookie)
            #expect(token.count == 32)
            let huge = try await client.execute(uri: "/privacy/run", method: .post, headers: form,
                                                body: ByteBuffer(string: "csrf=\(token)&x=" + String(repeating: "a", count: 20_000)))
            #expect(huge.status == .contentTooLarge)
            let run = try await client.execute(uri: "/privacy/run", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(token)"))
            #expect(run.status == .ok && String(buffer: run.body).contains("0 request(s) done."))
            let out = try await client.execute(uri: "/logout", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(token)"))
            #expect(out.status == .seeOther)
            #expect(try await client.page("/", cookie).0 == .seeOther)   // the session is gone
        }
    }

    @Test func aViewerOfSiteASees404ForEverySiteBPageAndExport() async throws {
        let f = try await DashboardFixture()
        try await f.app.test(.router) { client in
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let b = f.siteB.id
            for uri in ["/sites/\(b)", "/sites/\(b)/export?dimension=path", "/sites/\(b)/export?dimension=path&format=json",
                        "/sites/\(b)?range=7d", "/privacy", "/privacy/record.md", "/clients"] {
                #expect(try await client.page(uri, viewer).0 == .notFound, "\(uri)")
            }
            let overview = try await client.page("/", viewer).1
            #expect(overview.contains(f.t.site.id) && !overview.contains(b))
            #expect(try await client.page("/sites/\(f.t.site.id)", viewer).0 == .ok)
            for uri in ["/sites/\(b)", "/sites/\(b)/export?dimension=path", "/privacy", "/privacy/record.md", "/clients"] {
                #expect(try await client.page(uri, owner).0 == .ok, "\(uri)")
            }
        }
    }

    /// 17 visitors, each on one page: /popular 10, /second 6, /rare-page 1 (k = 5). The rare row
    /// folds; alone in "Other" it would show its 1, so the next-smallest row (/second, 6) folds
    /// with it: "Other (suppressed)" holds 7 and nothing isolates the rare visitor.
    @Test func rowsUnderKAreFoldedForViewersInHTMLCSVAndJSON() async throws {
        let f = try await DashboardFixture()
        for i in 0..<10 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/popular")], ip: "81.2.69.\(10 + i)")
        }
        for i in 0..<6 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/second")], ip: "81.2.69.\(30 + i)")
        }
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/rare-page")], ip: "81.2.69.99")
        try f.rollUp()
        try await f.app.test(.router) { client in
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let id = f.t.site.id
            for uri in ["/sites/\(id)", "/sites/\(id)/export?dimension=path", "/sites/\(id)/export?dimension=path&format=json"] {
                let body = try await client.page(uri, viewer).1
                #expect(!body.contains("rare-page"), "\(uri)")
                #expect(body.contains("Other (suppressed)") && body.contains("/popular"), "\(uri)")
            }
            let html = try await client.page("/sites/\(id)", viewer).1
            #expect(html.contains("2 row(s) folded."))
            #expect(html.contains("<strong>17</strong>"))   // the visitor total: 17 is no small group
            #expect(!html.contains("/second"))
            #expect(try await client.page("/sites/\(id)", owner).1.contains("rare-page"))
            let csv = try await client.page("/sites/\(id)/export?dimension=path", viewer).1
            #expect(csv == "path,visitors,pageviews\r\n/popular,10,10\r\nOther (suppressed),7,7\r\n")
            let json = try await client.page("/sites/\(id)/export?dimension=path&format=json", viewer).1
            #expect(json.contains(#""folded":2,"rows":[{"value":"/popular","visitors":10,"pageviews":10},{"value":"Other (suppressed)","visitors":7,"pageviews":7}]"#))
        }
    }

    @Test func filtersNarrowEveryFigureAndExportAndTheChartAndComparisonShow() async throws {
        let f = try await DashboardFixture()
        for i in 0..<3 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/from-search", referrer: "https://www.google.com/")],
                                 ip: "81.2.69.\(30 + i)")
        }
        for i in 0..<4 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/typed")], ip: "81.2.69.\(40 + i)")
        }
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let id = f.t.site.id
            let all = try await client.page("/sites/\(id)?range=today", owner).1
            #expect(all.contains("<span>Visitors</span><strong>7</strong>"))
            #expect(all.contains("<title>") && all.contains(": 7 visitors, 7 visits, 7 pageviews, 0 conversions, revenue 0.00</title>"))
            let organic = try await client.page("/sites/\(id)?range=today&f.source_type=organic", owner).1
            #expect(organic.contains("<span>Visitors</span><strong>3</strong>"))
            #expect(organic.contains("<span>Visits</span><strong>3</strong>"))
            #expect(organic.contains("/from-search") && !organic.contains(">/typed<"))
            #expect(organic.contains("Sources = organic"))
            let csv = try await client.page("/sites/\(id)/export?range=today&f.source_type=organic&dimension=path", owner).1
            #expect(csv == "path,visitors,pageviews\r\n/from-search,3,3\r\n")
            let compared = try await client.page("/sites/\(id)?range=today&compare=1", owner).1
            #expect(compared.contains("<em>new</em>"))   // nothing the day before
            try f.rollUp()
            let monthly = try await client.page("/sites/\(id)?range=30d&compare=1", owner).1
            #expect(monthly.contains("<span>Visitors</span><strong>7</strong><em>new</em>"))
        }
    }

    @Test func privacyCenterFilesRequestsExportsAndServesReceipts() async throws {
        let f = try await DashboardFixture()
        try await f.t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let csrf = try await client.csrf(owner)
            func post(_ uri: String, _ body: String, _ cookie: String) async throws -> (HTTPResponse.Status, String, HTTPFields) {
                let r = try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie],
                                                 body: ByteBuffer(string: body))
                return (r.status, String(buffer: r.body), r.headers)
            }
            let who = "site=\(f.t.site.id)&kind=subject&value=\(subjectA)"
            let json = try await post("/privacy/export", "csrf=\(csrf)&\(who)&format=json", owner)
            #expect(json.0 == .ok && json.2[.contentDisposition]?.hasPrefix("attachment") == true && json.1.contains(#""path":"/a/2""#))
            let csv = try await post("/privacy/export", "csrf=\(csrf)&\(who)&format=csv&table=events", owner)
            #expect(csv.2[.contentType] == "text/csv; charset=utf-8" && csv.1.hasPrefix("id,client_id,ts,name,path"))
            // Filing redirects to the privacy center naming the request: reloading shows it again
            // and files nothing more.
            let filed = try await post("/privacy/file", "csrf=\(csrf)&\(who)", owner)
            let location = try #require(filed.2[.location])
            #expect(filed.0 == .seeOther && location.hasPrefix("/privacy?filed="))
            for _ in 0..<2 { #expect(try await client.page(location, owner).1.contains("received; deadline")) }
            #expect(try f.t.database.privacyRequests(site: f.t.site.id).count == 1)
            // Another reader's request id shows nothing.
            #expect(!(try await client.page("/privacy?filed=nope", owner).1.contains("received; deadline")))
            #expect(try await post("/privacy/file", "csrf=\(csrf)&\(who)", viewer).0 == .notFound)
            #expect(try await post("/privacy/run", "csrf=\(csrf)", owner).1.contains("1 request(s) done."))
            let request = try #require(try f.t.database.privacyRequests(site: f.t.site.id).first)
            #expect(request.filedBy == "user:owner@example.org")
            let page = try await client.page("/privacy", owner).1
            #expect(page.contains("/privacy/requests/\(request.id)/receipt"))
            let receipt = try await client.page("/privacy/requests/\(request.id)/receipt", owner)
            #expect(receipt.0 == .ok && receipt.1.contains(#""deleted":{"events":2"#))
            #expect(try await client.page("/privacy/requests/\(request.id)/receipt", viewer).0 == .notFound)
        }
    }

    @Test func clientDetailListsTheMonthsConversionsAndTheOverviewHasSparklines() async throws {
        let f = try await DashboardFixture()
        try f.t.database.setClientTerms(ClientTerms(siteID: f.t.site.id, percent: 10, currency: "USD"), at: 0)
        try f.t.database.insertConversion(ConversionRow(siteID: f.t.site.id, provider: "generic", externalID: "o1", kind: .sale,
                                                        timestamp: Int64(noon.timeIntervalSince1970 * 1000), value: 200, currency: "USD",
                                                        attributedVia: "payload", firstTouch: Touch(sourceType: "paid"), lastTouch: Touch(sourceType: "paid")))
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/")], ip: "81.2.69.1")
        try f.rollUp()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let page = try await client.page("/clients/\(f.t.site.id)?month=2026-03", owner).1
            #expect(page.contains("<td>generic</td><td>sale</td><td>US$200.00</td><td>payload</td><td>paid</td><td>paid</td><td>yes</td>"))
            #expect(page.contains("<span>Commission</span><strong>US$20.00</strong>"))
            // A month picker with the months around the one shown, on both pages (January wraps to December).
            #expect(page.contains(#"href="?month=2026-02" rel="prev""#) && page.contains(#"href="?month=2026-04" rel="next""#)
                    && page.contains(#"<input type="month" name="month" value="2026-03" required>"#))
            for odd in ["9223372036854775807-12", "2024-9223372036854775807", "-5-99", "2026-00", "2026-13"] {
                let status = try await client.page("/clients?month=\(odd)", owner).0
                #expect(status == .ok || status == .notFound, "\(odd)")
                #expect(try await client.page("/clients/\(f.t.site.id)?month=\(odd)", owner).0 == .notFound, "\(odd)")
            }
            let january = try await client.page("/clients?month=2026-01", owner).1
            #expect(january.contains(#"href="?month=2025-12" rel="prev""#) && january.contains(#"href="?month=2026-02" rel="next""#))
            #expect(try await client.page("/clients/\(f.t.site.id)?month=2026-03&format=csv", owner).1.contains("o1,sale,200.0,USD"))
            #expect(try await client.page("/clients/\(f.t.site.id)", viewer).0 == .notFound)
            let overview = try await client.page("/", owner).1
            #expect(overview.contains("<polyline points=\"0.0,19.0 3.4,19.0"))
            #expect(overview.contains(" 100.0,1.0\"/>"))   // today: the highest point
        }
    }

    /// 13 visitors clicked: hero 7, footer 5, sidebar 1. A viewer sees hero (7; 6 did not) and
    /// "n = 1" (13); sidebar folds, and footer (the next-smallest) folds with it: Other = 6.
    @Test func filteringByACustomEventShowsItsProperties() async throws {
        let f = try await DashboardFixture()
        for i in 0..<13 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, name: "cta_click", url: "https://example.com/",
                                                props: [("position", .string(i < 7 ? "hero" : i < 12 ? "footer" : "sidebar")), ("n", .number(1))])],
                                 ip: "81.2.69.\(60 + i)")
        }
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let uri = "/sites/\(f.t.site.id)?range=today&f.name=cta_click"
            let page = try await client.page(uri, owner).1
            #expect(page.contains("Properties of “cta_click”"))
            #expect(page.contains("<td>position = hero</td><td>7</td><td>7</td>") && page.contains("<td>position = footer</td><td>5</td><td>5</td>"))
            #expect(page.contains("<td>position = sidebar</td><td>1</td><td>1</td>") && page.contains("<td>n = 1</td><td>13</td><td>13</td>"))
            let viewed = try await client.page(uri, viewer).1
            #expect(viewed.contains("<td>n = 1</td><td>13</td><td>13</td>") && viewed.contains("<td>position = hero</td><td>7</td><td>7</td>"))
            #expect(viewed.contains("<td>Other (suppressed)</td><td>6</td><td>6</td>"))
            #expect(!viewed.contains("position = footer") && !viewed.contains("sidebar"))
        }
    }

    @Test func statsAPIAnswersWithTheSitesKeyOnlyAndFoldsSmallRows() async throws {
        let f = try await DashboardFixture()
        for i in 0..<5 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/popular")], ip: "81.2.69.\(10 + i)") }
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/rare-page", referrer: "https://www.google.com/")],
                             ip: "81.2.69.99")
        let key = try f.t.issueKey()
        let otherKey = try f.t.issueKey(site: f.siteB.id)
        try await f.app.test(.router) { client in
            func get(_ uri: String, _ key: String?) async throws -> (HTTPResponse.Status, String) {
                let r = try await client.execute(uri: uri, method: .get, headers: key.map { [.authorization: "Bearer \($0)"] } ?? [:])
                return (r.status, String(buffer: r.body))
            }
            let id = f.t.site.id
            #expect(try await get("/api/v1/sites/\(id)/stats", nil).0 == .unauthorized)
            #expect(try await get("/api/v1/sites/\(id)/stats", otherKey).0 == .notFound)
            #expect(try await get("/api/v1/sites/\(id)/stats?dimension=password", key).0 == .badRequest)
            #expect(try await get("/api/v1/sites/\(id)/stats?filters=nope==1", key).0 == .badRequest)
            let summary = try await get("/api/v1/sites/\(id)/stats?range=today", key).1
            #expect(summary.contains(#""visitors":6"#) && summary.contains(#""pageviews":6"#))
            // 6 visitors: /popular 5, /rare-page 1. The rare page folds; /popular (5, leaving 1
            // outside) folds with it: Other holds the 6.
            let pages = try await get("/api/v1/sites/\(id)/stats?range=today&dimension=path", key).1
            #expect(!pages.contains("rare-page") && pages.contains(#""folded":2"#))
            #expect(pages.contains(#"{"value":"Other (suppressed)","visitors":6,"pageviews":6}"#))
            // Issue 12, finding 4: the API returned the exact filtered total, "visitors":1.
            let filtered = try await get("/api/v1/sites/\(id)/stats?range=today&filters=source_type==organic", key).1
            #expect(filtered.contains(#""visitors":"\u003c 5""#) && !filtered.contains(#""visitors":1"#))
            // 5 of the 6 came direct: showing 5 would tell that 1 did not.
            let direct = try await get("/api/v1/sites/\(id)/stats?range=today&filters=source_type==direct", key).1
            #expect(direct.contains(#""visitors":null"#))
        }
    }

    @Test func goalsAndFunnelsFromTheSettingsPage() async throws {
        let f = try await DashboardFixture()
        // 6 visitors see the pricing page; 5 of them then sign up; 2 of those then reach /thanks.
        for i in 0..<6 {
            var events = [IncomingEvent(site: f.t.site.id, url: "https://example.com/pricing")]
            if i < 5 { events.append(IncomingEvent(site: f.t.site.id, name: "signup", url: "https://example.com/pricing")) }
            try await f.t.ingest(events, ip: "81.2.69.\(50 + i)")
            if i < 2 {
                f.t.clock.advance(1)
                try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/thanks/1")], ip: "81.2.69.\(50 + i)")
            }
        }
        // Reaching /thanks without having signed up does not count for the funnel's last step.
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/thanks/2")], ip: "81.2.69.90")
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf = try await client.csrf(owner)
            let id = f.t.site.id
            func post(_ action: String, _ body: String, _ cookie: String = owner) async throws -> (HTTPResponse.Status, String) {
                let r = try await client.execute(uri: "/sites/\(id)/settings/\(action)", method: .post,
                                                 headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie],
                                                 body: ByteBuffer(string: body))
                return (r.status, String(buffer: r.body))
            }
            // The settings page says what the site's policy does, in words.
            let words = try await client.page("/sites/\(id)/settings", owner).1
            #expect(words.contains("<summary>What the policy “default” does</summary>") && words.contains("<li>Consent mode: opt-in</li>")
                    && words.contains("<li>Do Not Track is honoured.</li>") && words.contains("<li>events: 180 days</li>")
                    && words.contains("<li>Viewers, managers and API keys see no figure from fewer than 5 visitors.</li>"), "\(words)")
            #expect(try await post("goal", "name=Pricing&kind=page&match=%2Fpricing").0 == .forbidden)
            #expect(try await post("goal", "csrf=\(csrf)&name=Pricing&kind=page&match=%2Fpricing").0 == .seeOther)
            #expect(try await post("goal", "csrf=\(csrf)&name=Signup&kind=event&match=signup").0 == .seeOther)
            #expect(try await post("goal", "csrf=\(csrf)&name=Thanks&kind=page&match=%2Fthanks%2F*").0 == .seeOther)
            #expect(try await post("goal", "csrf=\(csrf)&name=Bad&kind=page&match=pricing").0 == .badRequest)
            let goals = try f.t.database.goals(site: id).compactMap(\.id)
            #expect(goals.count == 3)
            #expect(try await post("funnel", "csrf=\(csrf)&name=Signup+funnel&step1=\(goals[0])&step2=\(goals[1])&step3=\(goals[2])").0 == .seeOther)
            let page = try await client.page("/sites/\(id)?range=today", owner).1
            #expect(page.contains("<td>Thanks <small>page /thanks/*</small></td><td>3</td><td>3</td>"))
            #expect(page.contains("<td>1. Pricing</td><td>6</td><td>100.0\u{00A0}%</td><td>–</td>"))
            #expect(page.contains("<td>2. Signup</td><td>5</td><td>83.3\u{00A0}%</td><td>16.7\u{00A0}%</td>"))
            #expect(page.contains("<td>3. Thanks</td><td>2</td><td>33.3\u{00A0}%</td><td>60.0\u{00A0}%</td>"))
            // The step chart: bars of 6, 5 and 2 visits of 6, on 360 units.
            #expect(page.contains(#"<text x="0" y="15">1. Pricing</text><rect x="220" y="2" width="360.0" height="18"></rect>"#), "\(page)")
            #expect(page.contains(#"<rect x="220" y="24" width="300.0" height="18"></rect>"#) && page.contains(#"<rect x="220" y="46" width="120.0" height="18"></rect>"#))
            // The viewer of the site sees the funnel with small counts hidden, and cannot open the settings.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let viewed = try await client.page("/sites/\(id)?range=today", viewer).1
            // Step 1 (6 of the range's 7 visits) would tell that one visit never reached it, step 2
            // (5 of 6) that one stopped after step 1; step 3 has 2 visits.
            #expect(viewed.contains("<td>1. Pricing</td><td>–</td><td>–</td><td>–</td>"))
            #expect(viewed.contains("<td>2. Signup</td><td>–</td><td>–</td><td>–</td>"))
            #expect(viewed.contains("<td>3. Thanks</td><td>&lt; 5</td><td>–</td><td>–</td>"))
            #expect(viewed.contains("<td>Thanks <small>page /thanks/*</small></td><td>&lt; 5</td><td>–</td><td>–</td>"))
            #expect(try await client.page("/sites/\(id)/settings", viewer).0 == .notFound)
            #expect(try await post("goal", "csrf=x&name=X&kind=event&match=x", viewer).0 == .notFound)
            // Settings: domains are validated, the change is audited, the snippet names the site.
            let settings = try await client.page("/sites/\(id)/settings", owner).1
            #expect(settings.contains("data-site=&quot;\(id)&quot;") && settings.contains("Installation detected"))
            // The snippet (for an opt-in policy: the pixel and consent.js, which brings its own style sheet) is
            // in the scheme the browser used (a TLS proxy says which).
            #expect(settings.contains("src=&quot;http://") && settings.contains("/consent.js&quot; data-site") && !settings.contains("consent.css"))
            let proxied = String(buffer: try await client.execute(uri: "/sites/\(id)/settings", method: .get,
                                                                  headers: [.cookie: owner, .init("X-Forwarded-Proto")!: "https"]).body)
            #expect(proxied.contains("src=&quot;https://") && !proxied.contains("src=&quot;http://"))
            #expect(try await post("site", "csrf=\(csrf)&name=Renamed&domains=https%3A%2F%2Fshop.example.com%2Fx+example.com&policy=default").0 == .seeOther)
            #expect(try f.t.database.site(id: id)?.domains == ["shop.example.com", "example.com"])
            #expect(try await post("site", "csrf=\(csrf)&name=Renamed&domains=%3Cscript%3E&policy=default").0 == .badRequest)
            let key = try await post("key", "csrf=\(csrf)&label=reporting").1
            #expect(key.contains("Copy it now") && key.contains("ck_"))
        }
        #expect(try f.t.database.recentAuditEntries(limit: 5).map(\.action).contains("site_changed"))
    }

    @Test func realTimeCountsAndALiveStreamForAdminsOnly() async throws {
        let f = try await DashboardFixture()
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, name: "<b>bold</b>", url: "https://example.com/now")], ip: "81.2.69.70")
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let id = f.t.site.id
            let page = try await client.page("/sites/\(id)/realtime", owner).1
            #expect(page.contains("<span>Visitors, last 5 minutes</span><strong id=\"rt-five\">1</strong>") && page.contains("id=\"live-events\""))
            let viewed = try await client.page("/sites/\(id)/realtime", viewer).1
            #expect(viewed.contains("<strong id=\"rt-five\">&lt; 5</strong>") && !viewed.contains("live-events") && !viewed.contains("/now"))
            // The figures the page's script refreshes, under the same rule.
            let ownerJSON = try await client.page("/sites/\(id)/realtime.json", owner)
            #expect(ownerJSON.0 == .ok && ownerJSON.1.contains(#""five":"1""#) && ownerJSON.1.contains("/now"), "\(ownerJSON.1)")
            let viewerJSON = try await client.page("/sites/\(id)/realtime.json", viewer).1
            #expect(viewerJSON.contains(#""five":"\u003c 5""#) && !viewerJSON.contains("/now"), "\(viewerJSON)")
            #expect(try await client.page("/sites/\(id)/realtime.json", nil).0 != .ok)
            #expect(try await client.page("/sites/\(id)/live", viewer).0 == .notFound)
            let (status, stream, headers) = try await client.page("/sites/\(id)/live", owner)
            #expect(status == .ok && headers[.contentType] == "text/event-stream")
            #expect(stream.hasPrefix("retry: 3000\n\nid: "))
            #expect(stream.contains(#""name":"\u003cb\u003ebold\u003c/b\u003e","path":"/now""#))
        }
    }

    @Test func pipelineHealthShowsPerMinuteFiguresToAdmins() async throws {
        let f = try await DashboardFixture()
        f.t.collector.metrics.sample(at: noon)
        f.t.collector.metrics.received.add(12)
        f.t.collector.metrics.accepted.add(10)
        f.t.collector.metrics.drop(.bot, count: 2)
        f.t.collector.metrics.sample(at: noon.addingTimeInterval(60))
        f.t.collector.metrics.webhook(provider: "stripe", outcome: "bad_signature")
        _ = try f.t.office.file(site: f.t.site.id, identifier: .subject(subjectA), filedBy: "test")
        f.t.clock.advance(31 * day)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let page = try await client.page("/health/pipeline", owner).1
            #expect(page.contains("<td>10 Mar 2026 at 12:01 GMT</td><td>12</td><td>10</td>"))
            #expect(page.contains("<th>Dropped: bot</th>"))
            #expect(page.contains("<tr class=\"overdue\"><td>stripe</td><td>bad_signature</td><td>1</td></tr>"))
            #expect(try await client.page("/", owner).1.contains("1 deletion request(s) past their deadline"))
            #expect(!(try await client.page("/", viewer).1.contains("past their deadline")))
            #expect(try await client.page("/health/pipeline", viewer).0 == .notFound)
        }
    }

    @Test func rollupsGiveTheSameFiguresAsRawEventsAndFollowErasure() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        // Three days of visits: some consented, engagement events, entry/exit paths.
        for d in 0..<3 {
            for i in 0..<(4 + d) {
                try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/p\(i % 3)", referrer: i % 2 == 0 ? "https://www.google.com/" : nil,
                                                    consent: .granted(analytics: true, marketing: false), subject: i == 0 ? subjectA : subjectB),
                                      IncomingEvent(site: id, name: "engagement", url: "https://example.com/p\(i % 3)", engagedMs: 1000 * (i + 1),
                                                    scroll: 10 * i)],
                                     ip: "81.2.69.\(100 + i)")
            }
            f.t.clock.advance(day)
        }
        try f.rollUp()
        let t = Int64(f.t.clock.now.timeIntervalSince1970 * 1000)
        let from = (t / 86_400_000 - 3) * 86_400_000
        let raw = Figures(database: f.t.database, site: id, from: from, to: t + 1, filters: Filters(), wholeDays: false, calendar: .utc)
        let rolled = Figures(database: f.t.database, site: id, from: from, to: t + 1, filters: Filters(), wholeDays: true, calendar: .utc)
        #expect(rolled.rollups && !raw.rollups)
        #expect(try raw.summary() == rolled.summary())
        #expect(try raw.summary().visitors == 15)
        for d in [Store.Dimension.page, .source, .referrer, .browser, .event] {
            #expect(try raw.breakdown(d) == rolled.breakdown(d), "\(d)")
        }
        #expect(try raw.sessionBreakdown(.entry) == rolled.sessionBreakdown(.entry))
        #expect(try raw.engagement() == rolled.engagement())
        #expect(try raw.series(hourly: false).map(\.visitors) == rolled.series(hourly: false).map(\.visitors))
        let organic = Filters([(.source, "organic")])
        let rawFiltered = Figures(database: f.t.database, site: id, from: from, to: t + 1, filters: organic, wholeDays: false, calendar: .utc)
        let pairFiltered = Figures(database: f.t.database, site: id, from: from, to: t + 1, filters: organic, wholeDays: true, calendar: .utc)
        #expect(!pairFiltered.rollups)
        for d in [Store.Dimension.page, .browser, .event, .country] {
            #expect(try rawFiltered.breakdown(d) == pairFiltered.breakdown(d), "\(d)")
        }
        #expect(try pairFiltered.breakdown(.page).map(\.visitors).reduce(0, +) == 8)
        // An erasure recomputes the rollups of the days that held the subject's events.
        let request = try f.t.office.file(site: id, identifier: .subject(subjectA), filedBy: "test")
        _ = try await f.t.office.process(request, actor: "test")
        // (A view computes its figures once: new views after the erasure.)
        let rolledAfter = rolled.narrowed(to: Filters()), rawAfter = raw.narrowed(to: Filters())
        #expect(try rolledAfter.summary().visitors == 12)
        #expect(try rawAfter.summary() == rolledAfter.summary())
    }

    @Test func adminsAddSitesAndEveryTableExports() async throws {
        let f = try await DashboardFixture()
        for i in 0..<5 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/in")], ip: "81.2.69.\(10 + i)") }
        try f.rollUp()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let csrf = try await client.csrf(owner)
            func add(_ body: String, _ cookie: String) async throws -> TestResponse {
                try await client.execute(uri: "/sites", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie],
                                         body: ByteBuffer(string: body))
            }
            #expect(try await add("csrf=\(csrf)&name=Shop&domains=shop.example&policy=default", viewer).status == .notFound)
            #expect(try await add("csrf=\(csrf)&name=Shop&domains=%3Cb%3E&policy=default", owner).status == .badRequest)
            let added = try await add("csrf=\(csrf)&name=Shop&domains=https%3A%2F%2Fshop.example%2F&policy=default", owner)
            #expect(added.status == .seeOther && added.headers[.location]?.hasSuffix("/settings") == true)
            #expect(try f.t.database.sites().contains { $0.name == "Shop" && $0.domains == ["shop.example"] })
            // A second site of that name is refused, whatever the letter case; a site whose domain
            // lies under another site's is added, and its settings say both accept those pages.
            let twin = try await add("csrf=\(csrf)&name=shop&domains=other.example&policy=default", owner)
            #expect(twin.status == .badRequest && String(buffer: twin.body).contains("already named shop"))
            let blog = try await add("csrf=\(csrf)&name=Blog&domains=blog.example.com&policy=default", owner)
            let blogSettings = try await client.page(try #require(blog.headers[.location]), owner).1
            #expect(blogSettings.contains("blog.example.com meets example.com, a domain of <a href=\"/sites/\(f.t.site.id)\">"))
            #expect(!(try await client.page("/sites/\(f.t.site.id)/settings", owner).1.contains("meets shop.example")))
            let overview = try await client.page("/export/overview", owner).1
            #expect(overview.hasPrefix("site,name,visitors,pageviews,conversions,revenue,visitors_before,pageviews_before,last_event\r\n")
                    && overview.contains(",Shop,0,0,0,0.00,0,0,"), "\(overview)")
            #expect(try await client.page("/export/overview?format=json", viewer).1.contains(#""visitors":5"#))
            #expect(!(try await client.page("/export/overview", viewer).1.contains("Shop")))
            let entry = try await client.page("/sites/\(f.t.site.id)/export?dimension=entry_path", owner).1
            #expect(entry == "entry_path,visitors,visits\r\n/in,5,5\r\n")
        }
        #expect(try f.t.database.recentAuditEntries(limit: 1).first?.action == "site_added")
    }

    @Test func siteChangesReachTheRunningCollectorWithin30Seconds() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        #expect(f.t.collector.site(id)?.0.domains == ["example.com"])
        try f.t.administration.changeSite(id: id, name: "Renamed", domains: ["other.example"], policy: "default", by: .cli)
        f.t.clock.advance(31)
        #expect(f.t.collector.site(id)?.0.domains == ["other.example"])
    }

    @Test func passwordChangeNeedsTheCurrentPasswordAndEndsSessions() async throws {
        let f = try await DashboardFixture()
        try await f.app.test(.router) { client in
            let cookie = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let csrf = try await client.csrf(cookie)
            func change(_ body: String) async throws -> HTTPResponse.Status {
                try await client.execute(uri: "/account", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie],
                                         body: ByteBuffer(string: body)).status
            }
            #expect(try await change("csrf=\(csrf)&current=wrong&new=a-new-long-password&confirm=a-new-long-password") == .badRequest)
            #expect(try await change("csrf=\(csrf)&current=\(f.viewerPassword)&new=short&confirm=short") == .badRequest)
            #expect(try await change("csrf=\(csrf)&current=\(f.viewerPassword)&new=a-new-long-password&confirm=a-new-long-password") == .seeOther)
            #expect(try await client.page("/", cookie).0 == .seeOther)
            #expect(try await client.login("viewer@example.org", f.viewerPassword).0.status == .unauthorized)
            #expect(try await client.login("viewer@example.org", "a-new-long-password").0.status == .seeOther)
        }
    }

    @Test func hostileVisitorStringsAreEscapedAndOnlyHttpReferrersBecomeLinks() async throws {
        let f = try await DashboardFixture()
        for i in 0..<5 {
            try await f.t.ingest([IncomingEvent(
                site: f.t.site.id, name: "<img src=x onerror=alert(1)>",
                url: "https://example.com/p?utm_campaign=%3Cscript%3Ealert(1)%3C%2Fscript%3E&utm_source=%22%3E%3Csvg%20onload%3Dalert(2)%3E",
                referrer: "https://evil.example\"onmouseover=alert(3)/x")], ip: "81.2.69.\(20 + i)")
        }
        try f.rollUp()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let (status, html, headers) = try await client.page("/sites/\(f.t.site.id)", owner)
            #expect(status == .ok)
            #expect(headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(!html.contains("<script>alert") && !html.contains("<img src=x") && !html.contains("<svg onload"))
            #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;") || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!html.contains("javascript:"))
            // One script, the dashboard's own file (tabs); nothing inline.
            #expect(html.components(separatedBy: "<script").count == 2 && html.contains(#"<script src="/admin.js" defer></script>"#))
        }
    }

    @Test func templatesEscapeByDefaultAndEveryTemplateIsRendered() async throws {
        let f = try await DashboardFixture()
        for name in f.pages.names {
            let text = try String(contentsOfFile: templatesDirectory + "/\(name).mustache", encoding: .utf8)
            #expect(!text.contains("{{{") && !text.contains("{{&"), "\(name) uses an unescaped tag")
            #expect(text.range(of: #"<script(?![^>]*\ssrc="/)"#, options: .regularExpression) == nil && !text.contains(" style=")
                    && text.range(of: #" on[a-z]+="#, options: .regularExpression) == nil,
                    "\(name) has inline script, style or event handler")
        }
        _ = try t_office_request(f)
        try await f.app.test(.router) { client in
            _ = try await client.page("/login", nil)
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for uri in ["/", "/?q=nothing-matches", "/sites/\(f.t.site.id)", "/privacy", "/clients", "/sites/nope", "/clients/\(f.t.site.id)",
                        "/sites/\(f.t.site.id)/settings", "/account", "/sites/\(f.t.site.id)/realtime", "/health/pipeline", "/users",
                        "/sites/\(f.t.site.id)?range=custom&from=2026-02-02&to=2026-02-01", "/consent?site=\(f.t.site.id)",
                        "/sites/\(f.t.site.id)/destinations", "/sites/\(f.t.site.id)/details?dimension=path", "/alerts"] {
                _ = try await client.page(uri, owner)
            }
            // The second factor's pages: enrolment, the recovery codes it shows, the code step of a sign-in.
            let enrol = try await client.page("/account/two-factor", owner).1
            let key = try #require(enrol.firstMatch(of: /id="totp-secret">([A-Z2-7 ]+)</).map { String($0.1) })
            let code = TOTP(secret: try #require(Base32.decode(key))).code(at: f.t.clock.now)
            _ = try await client.execute(uri: "/account/two-factor/enable", method: .post,
                                         headers: [.contentType: "application/x-www-form-urlencoded", .cookie: owner],
                                         body: ByteBuffer(string: "csrf=\(try await client.csrf(owner))&code=\(code)"))
            _ = try await client.page("/login/code", "candor_challenge=" + String(repeating: "0", count: 64))
            // A shared link's password page.
            let link = try await client.execute(uri: "/sites/\(f.t.site.id)/settings/share", method: .post,
                                                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: owner],
                                                body: ByteBuffer(string: "csrf=\(try await client.csrf(owner))&label=p&filters=&password=a-password"))
            let token = try #require(String(buffer: link.body).firstMatch(of: /\/share\/([0-9a-f]{64})</).map { String($0.1) })
            _ = try await client.page("/share/\(token)", nil)
        }
        #expect(Set(f.pages.names).isSubset(of: f.pages.renderedNames), "never rendered: \(Set(f.pages.names).subtracting(f.pages.renderedNames))")
        #expect(f.pages.names.count == 23)
    }

    func t_office_request(_ f: DashboardFixture) throws -> PrivacyRequest {
        try f.t.office.file(site: f.t.site.id, identifier: .subject(subjectA), filedBy: "test")
    }
}

/// Issue 12, finding 5: who may do what is decided in one place, and every path (CLI or
/// dashboard) writes the same audit entry in the transaction of its change.
@Suite struct AdministrationTests {
    @Test func permissionsAndLastOwnerGuard() async throws {
        let t = try TestCollector()
        let admin = t.administration
        let owner = try admin.addUser(email: "owner@example.org", role: .owner, sites: [], by: .cli).user
        let adminUser = try admin.addUser(email: "admin@example.org", role: .admin, sites: [], by: .cli).user
        let manager = try admin.addUser(email: "manager@example.org", role: .manager, sites: [t.site.id], by: .cli).user
        let asOwner = Actor.user(owner, sites: [])
        let asAdmin = Actor.user(adminUser, sites: [])
        let asManager = Actor.user(manager, sites: [t.site.id])

        // Managers issue statistics keys for their sites only; officer keys need an owner or admin.
        #expect(throws: ActionError.self) { try admin.issueKey(site: t.site.id, label: "x", scope: .privacyOfficer, by: asManager) }
        #expect(throws: ActionError.self) { try admin.issueKey(site: "othersite", label: "x", scope: .statsRead, by: asManager) }
        let stats = try admin.issueKey(site: t.site.id, label: "x", scope: .statsRead, by: asManager)
        let officer = try admin.issueKey(site: t.site.id, label: "dpo", scope: .privacyOfficer, by: asAdmin)
        #expect(officer.record.issuedBy == "user:admin@example.org" && officer.record.scope == .privacyOfficer)
        #expect(throws: ActionError.self) { try admin.revokeKey(id: officer.record.id, by: asManager) }
        try admin.revokeKey(id: stats.record.id, by: asManager)
        #expect(try t.database.apiKey(id: stats.record.id) == nil)

        // Admins manage everyone but owners; the last owner stays an owner.
        #expect(throws: ActionError.self) { try admin.changeUser(email: "owner@example.org", role: .viewer, sites: [], by: asAdmin) }
        #expect(throws: ActionError.self) { try admin.addUser(email: "x@example.org", role: .owner, sites: [], by: asAdmin) }
        #expect(throws: ActionError.self) { try admin.removeUser(email: "owner@example.org", by: asAdmin) }
        #expect(throws: ActionError.self) { try admin.changeUser(email: "owner@example.org", role: .admin, sites: [], by: asOwner) }
        #expect(throws: ActionError.self) { try admin.removeUser(email: "owner@example.org", by: .cli) }
        #expect(throws: ActionError.self) { try admin.addUser(email: "y@example.org", role: .viewer, sites: [], by: asManager) }
        // A manager configures the site but cannot pick its policy (which decides what managers read).
        #expect(throws: ActionError.self) { try admin.changeSite(id: t.site.id, name: "x", domains: ["example.com"], policy: "other", by: asManager) }
        try admin.changeSite(id: t.site.id, name: "Renamed", domains: ["example.com"], policy: t.site.policy, by: asManager)
        try admin.changeUser(email: "manager@example.org", role: .viewer, sites: [t.site.id], by: asAdmin)
        try admin.removeUser(email: "manager@example.org", by: asAdmin)
        #expect(try t.database.user(email: "manager@example.org") == nil)

        let actions = try t.database.auditEntries().map { "\($0.actor) \($0.action)" }
        for expected in ["cli user_added", "user:manager@example.org api_key_issued", "user:admin@example.org api_key_issued",
                         "user:manager@example.org api_key_revoked", "user:admin@example.org user_role_changed",
                         "user:admin@example.org user_removed"] {
            #expect(actions.contains(expected), "\(expected)")
        }
        // Refused actions left no entry, and the chain verifies.
        #expect(!actions.contains("user:admin@example.org user_added"))
        #expect(try AuditLog(database: t.database).verify().isIntact)
    }

    @Test func keysAreScopedAndRevocableFromTheDashboard() async throws {
        let f = try await DashboardFixture()
        let manager = try f.t.administration.addUser(email: "manager@example.org", role: .manager, sites: [f.t.site.id], by: .cli)
        try await f.t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await f.app.test(.router) { client in
            let cookie = try #require(try await client.login("manager@example.org", manager.password).1)
            let csrf = try await client.csrf(cookie)
            func post(_ action: String, _ form: String) async throws -> (HTTPResponse.Status, String) {
                let r = try await client.execute(uri: "/sites/\(f.t.site.id)/settings/\(action)", method: .post,
                                                 headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "csrf=\(csrf)&" + form))
                return (r.status, String(buffer: r.body))
            }
            let page = try await client.page("/sites/\(f.t.site.id)/settings", cookie).1
            #expect(page.contains(#"<option value="stats:read">"#) && !page.contains(#"<option value="privacy:officer">"#))
            #expect(try await post("key", "label=x&scope=privacy%3Aofficer").0 == .badRequest)
            let created = try await post("key", "label=reporting&scope=stats%3Aread")
            #expect(created.0 == .ok && created.1.contains("id=\"new-key\""))
            let key = try #require(try f.t.database.apiKeys(site: f.t.site.id).first)
            #expect(key.scope == .statsRead && key.issuedBy == "user:manager@example.org")
            #expect(try await post("revoke-key", "key=\(key.id)").0 == .seeOther)
            #expect(try f.t.database.apiKeys(site: f.t.site.id).isEmpty)
            // A manager has no users page.
            #expect(try await client.page("/users", cookie).0 == .notFound)
        }
    }
}

/// Countries are shown by name from Debian's iso-codes (codes stay in filters and exports).
@Suite struct CountryNameTests {
    @Test func namesComeFromTheInstalledList() throws {
        try #require(FileManager.default.fileExists(atPath: CountryNames.path), "make test installs iso-codes")
        let names = CountryNames.installed
        #expect(names.names.count >= 240)
        #expect(names.name("DE") == "Germany" && names.name("gb") == "United Kingdom" && names.name("BO") == "Bolivia")
        #expect(names.name("XK") == "XK" && names.name("") == "")
        #expect(CountryNames(path: "/nonexistent").name("DE") == "DE")
    }
}

/// Each table opens in full ("Details"): searched by the value as shown, sorted by any column,
/// filter links back to the site page, the reader's k rule kept; rows carry their share of the
/// view's visitors as a bar; today's chart lays out the whole day.
@Suite struct TableDetailsTests {
    @Test func detailsSearchSortAndShareOfVisitors() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        // 6 visitors: /pricing 3, /blog 2, /about 1; /blog is viewed twice by one of them.
        for (n, path) in ["/pricing", "/pricing", "/pricing", "/blog", "/blog", "/about"].enumerated() {
            try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com\(path)")], ip: "81.2.69.\(60 + n)")
        }
        try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/blog")], ip: "81.2.69.63")
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let site = try await client.page("/sites/\(id)?range=today", owner).1
            // Shares of the 6 visitors, in steps of 2 %: 3 → 50 %, 2 → 34 % (33.3 rounded to the step), 1 → 16 %.
            #expect(site.contains(#"<tr class="s50"><td><a href="/sites/\#(id)?f.path=%2Fpricing&amp;range=today" class="filter">/pricing</a></td><td>3</td><td>3</td></tr>"#), "\(site)")
            #expect(site.contains(#"<tr class="s34"><td><a href="/sites/\#(id)?f.path=%2Fblog&amp;range=today" class="filter">/blog</a></td><td>2</td><td>3</td></tr>"#))
            #expect(site.contains(#"<tr class="s16"><td><a href="/sites/\#(id)?f.path=%2Fabout&amp;range=today" class="filter">/about</a></td><td>1</td><td>1</td></tr>"#))
            #expect(site.contains(#"<a href="/sites/\#(id)/details?dimension=path&amp;range=today">Details</a>"#))
            // Today's chart spans the day: the caption runs to 23:00 although it is noon.
            #expect(site.contains("– 10 Mar 2026 23:00 (UTC+00:00) (UTC)"), "\(site)")
            #expect(!site.contains("<polyline"))
            // The metric switch: today's 12:00 bar is 6 visitors on a scale of 6, or 7 pageviews on a scale of 8.
            #expect(site.contains(#"<rect x="340.0" y="8.0" width="24.0" height="120.0""#) && site.contains(#"aria-label="Visitors over time, scale up to 6""#))
            let views = try await client.page("/sites/\(id)?range=today&metric=pageviews", owner).1
            #expect(views.contains(#"<rect x="340.0" y="23.0" width="24.0" height="105.0""#) && views.contains("<figcaption>Pageviews, 10 Mar 2026 00:00"), "\(views)")
            #expect(views.contains(#"<a href="?range=today" aria-current="true">"#) == false && views.contains(#"<a href="?metric=pageviews&amp;range=today" aria-current="true">Pageviews</a>"#))
            // Comparing draws yesterday's hours over today's bars (nobody came yesterday: a line at 0) and lists them.
            let compared = try await client.page("/sites/\(id)?range=today&compare=1", owner).1
            #expect(compared.contains(#"<polyline class="previous" points="52.5,128.0 "#), "\(compared)")
            #expect(compared.contains("Dashed line: visitors of the period before, 9 Mar 2026 00:00 (UTC+00:00) – 9 Mar 2026 12:00 (UTC+00:00)."))
            #expect(compared.contains("<td>10 Mar 2026 12:00 (UTC+00:00) (so far)</td><td>6</td><td>6</td><td>7</td><td>0</td><td>0.00</td><td>0</td></tr>"), "\(compared)")

            func rows(_ html: String) -> [String] {
                html.components(separatedBy: "class=\"filter\">").dropFirst().map { String($0.prefix { $0 != "<" }) }
            }
            let (status, details, _) = try await client.page("/sites/\(id)/details?dimension=path&range=today", owner)
            #expect(status == .ok && rows(details) == ["/pricing", "/blog", "/about"], "\(details)")
            #expect(details.contains("3 row(s)") && details.contains(#"<th aria-sort="descending"><a href="?dimension=path&amp;range=today">Visitors</a></th>"#))
            #expect(rows(try await client.page("/sites/\(id)/details?dimension=path&range=today&sort=value", owner).1) == ["/about", "/blog", "/pricing"])
            #expect(rows(try await client.page("/sites/\(id)/details?dimension=path&range=today&sort=count", owner).1) == ["/pricing", "/blog", "/about"])
            let searched = try await client.page("/sites/\(id)/details?dimension=path&range=today&q=BL", owner).1
            #expect(rows(searched) == ["/blog"] && searched.contains("1 of 3 row(s) match “BL”"))
            #expect(try await client.page("/sites/\(id)/details?dimension=nope&range=today", owner).0 == .notFound)
            #expect(try await client.page("/sites/\(f.siteB.id)/details?dimension=path&range=today", nil).0 != .ok)
            // A viewer (k = 5) sees no group under 5 visitors, in full or searched.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            for uri in ["/sites/\(id)/details?dimension=path&range=today", "/sites/\(id)/details?dimension=path&range=today&q=pricing"] {
                let page = try await client.page(uri, viewer).1
                #expect(!page.contains("/pricing</a>") && !page.contains("/blog</a>") && !page.contains("/about</a>"), "\(page)")
            }
        }
    }
}

extension TableDetailsTests {
    /// A bar is a row's share of the shown visitors total: where the reader's rule withholds the
    /// total, a shown row's bar would give it away (k = 5: 21 visitors, 20 from search; the
    /// filtered total 20 is withheld, /y's 10 of 20 would draw exactly half), so rows get none.
    @Test func noBarWhereTheTotalIsWithheld() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        for n in 0..<21 {
            let path = n < 10 || n == 20 ? "/x" : "/y"
            try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com\(path)", referrer: n == 20 ? nil : "https://www.google.com/")],
                                 ip: "81.2.70.\(10 + n)")
        }
        try await f.app.test(.router) { client in
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let page = try await client.page("/sites/\(id)?range=today&f.source_type=organic", viewer).1
            #expect(page.contains("<span>Visitors</span><strong>–</strong>") && page.contains(">/y</a></td><td>10</td>"), "\(page)")
            #expect(!page.contains("<tr class=\"s"))
            let details = try await client.page("/sites/\(id)/details?range=today&f.source_type=organic&dimension=path", viewer).1
            #expect(details.contains(">/y</a></td><td>10</td>") && !details.contains("<tr class=\"s"), "\(details)")
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            #expect(try await client.page("/sites/\(id)?range=today&f.source_type=organic", owner).1.contains(#"<tr class="s50"><td><a href="/sites/\#(id)?f.path=%2Fy&amp;f.source_type=organic&amp;range=today" class="filter">/y</a>"#))
        }
    }
}

/// Values are shown as people read them: durations in minutes and seconds, rows without a value
/// named for what they mean, export links only under tables that have rows.
@Suite struct ReadableValuesTests {
    @Test func durationsReadAsMinutesAndSeconds() {
        #expect(Format.duration(0) == "0 s" && Format.duration(42_900) == "42 s" && Format.duration(115_000) == "1 min 55 s")
        #expect(Format.duration(120_000) == "2 min" && Format.duration(7_500_000) == "2 h 5 min" && Format.duration(3_600_000) == "1 h" && Format.duration(-5) == "0 s")
    }

    @Test func rowsWithoutAValueSayWhatTheyMean() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/direct")], ip: "81.2.69.51")
        f.t.clock.advance(115)
        try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/next")], ip: "81.2.69.51")
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(id)?range=today", owner).1
            #expect(page.contains("<td>Direct / none</td>") && page.contains("<td>(not set)</td>") && page.contains("<td>Unknown</td>"))
            #expect(!page.contains("(none)"))
            #expect(page.contains("<span>Visit duration</span><strong>1 min 55 s</strong>"))
            // The events table has no custom event: no export link under it; the pages table has one.
            #expect(page.contains("/export?dimension=path&amp;range=today\">CSV</a>") && !page.contains("/export?dimension=name&amp;"))
            // Exports keep the empty value empty.
            #expect(try await client.page("/sites/\(id)/export?range=today&dimension=referrer_host", owner).1 == "referrer_host,visitors,pageviews\r\n,1,2\r\n")
        }
    }
}

/// Dates and amounts as the reader's locale writes them (Accept-Language), in the site's zone.
@Suite struct ReaderFormatTests {
    @Test func theLocaleComesFromAcceptLanguage() {
        #expect(Format.locale(acceptLanguage: "de-DE,de;q=0.9,en;q=0.8").identifier == "de-DE")
        #expect(Format.locale(acceptLanguage: "zz-ZZ, fr;q=0.5").identifier == "fr", "an unknown language is passed over")
        #expect(Format.locale(acceptLanguage: "en;q=0.2, ja;q=0.9").identifier == "ja", "the highest weight wins")
        #expect(Format.locale(acceptLanguage: "de;q=0, *").identifier == "en-GB", "q=0 and * give the fallback")
        #expect(Format.locale(acceptLanguage: "<script>, ../../etc").identifier == "en-GB")
        #expect(Format.locale(acceptLanguage: String(repeating: "de,", count: 400)).identifier == "en-GB", "an over-long header is ignored")
        #expect(Format.locale(acceptLanguage: nil).identifier == "en-GB")
    }

    @Test func datesFollowTheLocaleAndTheSitesZone() throws {
        let berlin = try #require(SiteCalendar(identifier: "Europe/Berlin"))
        // 2026-10-25 00:30 UTC is 02:30 CEST in Berlin, on the day the clocks go back.
        let ms: Int64 = 1_792_888_200_000
        func reading<T>(_ id: String, _ body: () -> T) -> T { Format.$locale.withValue(Locale(identifier: id), operation: body) }
        #expect(reading("en-GB") { Format.moment(ms, berlin) } == "25 Oct 2026 at 2:30")
        #expect(reading("de-DE") { Format.moment(ms, berlin) } == "25. Okt. 2026, 2:30")
        #expect(reading("en-GB") { Format.moment(ms, .utc, zone: true) } == "25 Oct 2026 at 00:30 GMT")
        let day = berlin.day(of: ms)
        #expect(reading("en-US") { Format.day(day) } == "Oct 25, 2026" && reading("fr") { Format.day(day) } == "25 oct. 2026")
        #expect(Format.day(day) == "25 Oct 2026", "without a reader's locale: en-GB")
    }

    @Test func numbersAndAmountsFollowTheLocale() {
        func reading<T>(_ id: String, _ body: () -> T) -> T { Format.$locale.withValue(Locale(identifier: id), operation: body) }
        #expect(reading("en") { Format.amount(3036.5, "EUR") } == "€3,036.50")
        #expect(reading("de-DE") { Format.amount(3036.5, "EUR") } == "3.036,50\u{00A0}€")
        #expect(reading("de-DE") { Format.grouped(12345) + " / " + Format.percent(0.125) } == "12.345 / 12,5\u{00A0}%")
        #expect(Format.grouped(12345) == "12,345" && Format.percent(0.125) == "12.5\u{00A0}%" && Format.grouped(-1200) == "-1,200")
        #expect(reading("en") { Format.amount(12, "") } == "12.00")
        #expect(reading("en") { Format.amount(12, "<b>") } == "12.00 <b>", "not a currency code: written as given (the template escapes it)")
        #expect(reading("en") { Format.money(Revenue(["EUR": 3036.5, "USD": 120])) } == "€3,036.50 · $120.00")
        #expect(reading("en") { Format.money(Revenue()) } == "0.00")
    }

    @Test func aPageIsWrittenInTheReadersLocale() async throws {
        let f = try await DashboardFixture()
        for i in 0..<3 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/")], ip: "81.2.69.\(10 + i)") }
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            func page(_ language: String?, range: String = "7d") async throws -> String {
                var h: HTTPFields = [.cookie: owner]
                if let language { h[.acceptLanguage] = language }
                return String(buffer: try await client.execute(uri: "/sites/\(f.t.site.id)?range=\(range)", method: .get, headers: h).body)
            }
            let german = try await page("de-DE,de;q=0.9,en;q=0.5")
            #expect(german.contains("10. März 2026") && german.contains("<span>Revenue</span><strong>0,00</strong>"), "\(german)")
            let english = try await page(nil)
            #expect(english.contains("10 Mar 2026") && english.contains("<span>Revenue</span><strong>0.00</strong>"))
            // Chart hours: 24 hours with two digits, or 12 with AM/PM (ICU's narrow no-break space before it).
            let american = try await page("en-US", range: "today")
            #expect(american.contains("<title>Mar 10, 2026 12:00\u{202F}PM (UTC+00:00) (so far): 3 visitors,") && american.contains(">4:00\u{202F}AM</text>"),
                    "\(american)")
            let hours = try await page("de-DE", range: "today")
            #expect(hours.contains("<title>10. März 2026 12:00 (UTC+00:00) (so far): 3 visitors,") && hours.contains(">04:00</text>"), "\(hours)")
        }
    }
}

/// The world map on the site page draws the countries table as the reader sees it.
@Suite struct CountryMapTests {
    @Test func theMapDrawsOnlyTheCountryRowsTheReaderIsShown() async throws {
        func visits(_ f: DashboardFixture) async throws {
            for i in 0..<5 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/")], ip: "175.16.199.\(10 + i)") }
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/")], ip: "89.160.20.112")
        }
        let geo = try MaxMindGeo(cityPath: Fixtures.cityDB, asnPath: Fixtures.asnDB)
        let f = try await DashboardFixture(geo: geo, mapCountries: ["CN", "SE", "JP"])
        try await visits(f)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(f.t.site.id)?range=today", owner).1
            #expect(page.contains(#"<svg class="map" viewBox="0 0 990 555""#) && page.contains(#"<use href="/world.svg#land" class="land"></use>"#))
            #expect(page.contains(#"<use href="/world.svg#cn" class="m5"><title>China: 5 visitors</title></use>"#), "\(page)")
            #expect(page.contains(#"<use href="/world.svg#se" class="m1"><title>Sweden: 1 visitor</title></use>"#))
            #expect(!page.contains("world.svg#jp"), "a country without visitors is not drawn")
            // A viewer (k = 5) is not shown Sweden's single visitor, nor (by complement) China's 5
            // of 6: the map draws neither.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let (status, restricted, _) = try await client.page("/sites/\(f.t.site.id)?range=today", viewer)
            #expect(status == .ok && restricted.contains(#"id="t-country""#))
            #expect(!restricted.contains("world.svg#se") && !restricted.contains("world.svg#cn"))
        }
        // Without a map (none installed), the site page has no map.
        let plain = try await DashboardFixture(geo: geo)
        try await visits(plain)
        try await plain.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", plain.ownerPassword).1)
            let page = try await client.page("/sites/\(plain.t.site.id)?range=today", owner).1
            #expect(page.contains("China") && !page.contains("svg class=\"map\""))
        }
    }
}
