import Admin
import Collector
import Consent
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Testing

let templatesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Public/templates").path

/// A collector with the dashboard, two sites, and accounts: an owner and a viewer of site A only.
struct DashboardFixture {
    let t: TestCollector
    let siteB: Site
    let pages: Pages
    let ownerPassword = "owner-password-123"
    let viewerPassword = "viewer-password-123"

    init() async throws {
        t = try TestCollector()
        siteB = Site(id: "sitebbbb", name: "Site B", domains: ["b.example"], policy: "default", createdAt: noon)
        try t.database.addSite(siteB)
        try t.database.addUser(User(email: "owner@example.org", passwordHash: PasswordHasher.hash(ownerPassword), role: .owner, createdAt: noon))
        let viewer = try t.database.addUser(User(email: "viewer@example.org", passwordHash: PasswordHasher.hash(viewerPassword),
                                                 role: .viewer, createdAt: noon))
        try t.database.setUserSites(user: viewer.id!, sites: [t.site.id])
        pages = try await Pages(directory: templatesDirectory)
    }

    var app: some ApplicationProtocol {
        get throws {
            let router = buildRouter(collector: t.collector)
            DashboardRoutes<CandorRequestContext>(database: t.database, policies: t.collector.policies,
                                                  auth: Authenticator(database: t.database, now: t.clock.closure), office: try t.office,
                                                  pages: pages, now: t.clock.closure).add(to: router)
            return Application(router: router)
        }
    }
}

extension TestClientProtocol {
    func login(_ email: String, _ password: String) async throws -> (TestResponse, String?) {
        let r = try await execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                  body: ByteBuffer(string: "email=\(email)&password=\(password)"))
        let cookie = r.headers[.setCookie]?.split(separator: ";").first.map(String.init)
        return (r, cookie)
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
            #expect(throttled.headers[.retryAfter] != nil)
            f.t.clock.advance(16 * 60)
            #expect(try await client.login("viewer@example.org", f.viewerPassword).0.status == .seeOther)
        }
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
            let run = try await client.execute(uri: "/privacy/run", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(token)"))
            #expect(run.status == .ok && String(buffer: run.body).contains("0 request(s) carried out."))
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

    @Test func rowsUnderKAreFoldedForViewersInHTMLCSVAndJSON() async throws {
        let f = try await DashboardFixture()
        for i in 0..<6 {
            try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/popular")], ip: "81.2.69.\(10 + i)")
        }
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/rare-page")], ip: "81.2.69.99")
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
            #expect(html.contains("1 row(s) folded."))
            #expect(html.contains("<strong>7</strong>"))   // the visitor total stays exact
            #expect(try await client.page("/sites/\(id)", owner).1.contains("rare-page"))
            let csv = try await client.page("/sites/\(id)/export?dimension=path", viewer).1
            #expect(csv == "path,visitors,pageviews\r\n/popular,6,6\r\nOther (suppressed),1,1\r\n")
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
            #expect(all.contains("<title>") && all.contains(": 7 visitors, 7 pageviews</title>"))
            let organic = try await client.page("/sites/\(id)?range=today&f.source_type=organic", owner).1
            #expect(organic.contains("<span>Visitors</span><strong>3</strong>"))
            #expect(organic.contains("<span>Visits</span><strong>3</strong>"))
            #expect(organic.contains("/from-search") && !organic.contains(">/typed<"))
            #expect(organic.contains("Sources = organic"))
            let csv = try await client.page("/sites/\(id)/export?range=today&f.source_type=organic&dimension=path", owner).1
            #expect(csv == "path,visitors,pageviews\r\n/from-search,3,3\r\n")
            let compared = try await client.page("/sites/\(id)?range=today&compare=1", owner).1
            #expect(compared.contains("<em>new</em>"))   // nothing the day before
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
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let (status, html, headers) = try await client.page("/sites/\(f.t.site.id)", owner)
            #expect(status == .ok)
            #expect(headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(!html.contains("<script>alert") && !html.contains("<img src=x") && !html.contains("<svg onload"))
            #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;") || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!html.contains("javascript:"))
            #expect(!html.contains("<script"))   // no script at all, inline or not, on dashboard pages
        }
    }

    @Test func templatesEscapeByDefaultAndEveryTemplateIsRendered() async throws {
        let f = try await DashboardFixture()
        for name in f.pages.names {
            let text = try String(contentsOfFile: templatesDirectory + "/\(name).mustache", encoding: .utf8)
            #expect(!text.contains("{{{") && !text.contains("{{&"), "\(name) uses an unescaped tag")
            #expect(!text.contains("<script") && !text.contains(" style=") && text.range(of: #" on[a-z]+="#, options: .regularExpression) == nil,
                    "\(name) has inline script, style or event handler")
        }
        _ = try t_office_request(f)
        try await f.app.test(.router) { client in
            _ = try await client.page("/login", nil)
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for uri in ["/", "/?q=nothing-matches", "/sites/\(f.t.site.id)", "/privacy", "/clients", "/sites/nope"] {
                _ = try await client.page(uri, owner)
            }
        }
        #expect(Set(f.pages.names).isSubset(of: f.pages.renderedNames), "never rendered: \(Set(f.pages.names).subtracting(f.pages.renderedNames))")
        #expect(f.pages.names.count == 8)
    }

    func t_office_request(_ f: DashboardFixture) throws -> PrivacyRequest {
        try f.t.office.file(site: f.t.site.id, identifier: .subject(subjectA), filedBy: "test")
    }
}
