import Actions
@testable import Admin
import Collector
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Storage
import Testing

/// Shared links through the dashboard's routes on an injected clock: the same page a client
/// viewer reads (k-anonymised), within the link's fixed filters, behind its password, until it
/// expires or is revoked; only the token's hash is stored.
@Suite struct SharedLinkTests {
    @Test func aSharedLinkShowsTheViewersPageWithinItsFiltersUntilItEnds() async throws {
        let f = try await DashboardFixture()
        // 17 visitors: /popular 10, /second 6, /rare-page 1 (the same data as the viewer's k test).
        for i in 0..<10 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/popular")], ip: "81.2.69.\(10 + i)") }
        for i in 0..<6 { try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/second")], ip: "81.2.69.\(30 + i)") }
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/rare-page")], ip: "81.2.69.99")
        try f.rollUp()
        let id = f.t.site.id
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf = try await client.csrf(owner)
            func post(_ uri: String, _ body: String, _ cookie: String?) async throws -> (HTTPResponse.Status, String, HTTPFields) {
                var h: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
                if let cookie { h[.cookie] = cookie }
                let r = try await client.execute(uri: uri, method: .post, headers: h, body: ByteBuffer(string: body))
                return (r.status, String(buffer: r.body), r.headers)
            }
            func token(_ page: String) throws -> String {
                try #require(page.firstMatch(of: /id="new-link">http:\/\/[^\/]*\/share\/([0-9a-f]{64})</).map { String($0.1) })
            }
            // The whole site, no password, no expiry: the viewer's page, without exports, settings or account.
            let whole = try token(try await post("/sites/\(id)/settings/share", "csrf=\(csrf)&label=Client+report&filters=&password=&days=", owner).1)
            let page = try await client.page("/share/\(whole)", nil)
            #expect(page.0 == .ok && page.1.contains("Shared view “Client report”") && page.2[.init("X-Robots-Tag")!] == "noindex, nofollow")
            #expect(page.1.contains("<strong>17</strong>") && page.1.contains("/popular") && page.1.contains("Other (suppressed)"))
            #expect(!page.1.contains("rare-page") && !page.1.contains("/second"))
            for word in ["/sites/", "Sign out", "/privacy", "/account", "csrf"] {
                #expect(!page.1.contains(word), "\(word): \(page.1.components(separatedBy: word).first?.suffix(300) ?? "")")
            }
            // A row's filter link stays on the shared link.
            #expect(page.1.contains("href=\"/share/\(whole)?f.path=%2Fpopular"))
            #expect(try await client.page("/share/\(whole)?f.path=%2Fpopular&range=7d", nil).0 == .ok)

            // Fixed filters, a password, a day's life.
            let made = try await post("/sites/\(id)/settings/share", "csrf=\(csrf)&label=Popular&filters=f.path%3D%252Fpopular&password=open-sesame-1&days=1", owner)
            let fixed = try token(made.1)
            #expect(made.1.contains("Pages = /popular"), "\(made.1.components(separatedBy: "shared-links").last?.prefix(1500) ?? "")")
            let locked = try await client.page("/share/\(fixed)", nil)
            #expect(locked.0 == .ok && locked.1.contains("Password of this link") && !locked.1.contains("/popular"))
            #expect(try await post("/share/\(fixed)", "password=wrong-password", nil).0 == .unauthorized)
            let unlocked = try await post("/share/\(fixed)", "password=open-sesame-1", nil)
            let cookie = try #require(unlocked.2[values: .setCookie].first { $0.hasPrefix("candor_share=") })
            #expect(unlocked.0 == .seeOther && cookie.contains("Path=/share/\(fixed); HttpOnly; SameSite=Lax"))
            let share = String(cookie.split(separator: ";")[0])
            // The link's filter replaces one of the same dimension in the address; others may be added.
            let filtered = try await client.page("/share/\(fixed)?f.path=%2Frare-page", share).1
            #expect(filtered.contains("<strong>10</strong>") && filtered.contains("Pages = /popular") && !filtered.contains("Pages = /rare-page"))
            #expect(!filtered.contains("aria-label=\"Remove filter\""))
            // The cookie of one link opens no other.
            let other = try token(try await post("/sites/\(id)/settings/share", "csrf=\(csrf)&label=Other&filters=&password=another-secret&days=", owner).1)
            #expect(try await client.page("/share/\(other)", share).1.contains("Password of this link"))
            // Expired: 404, like any missing page.
            f.t.clock.advance(86_401)
            #expect(try await client.page("/share/\(fixed)", share).0 == .notFound)
            // Revoked: 404. (The owner signs in again: a day went by.)
            let owner2 = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf2 = try await client.csrf(owner2)
            let listed = try f.t.database.sharedLinks(site: id)
            let wholeLink = try #require(listed.first { $0.label == "Client report" })
            #expect(try await post("/sites/\(id)/settings/unshare", "csrf=\(csrf2)&link=\(wholeLink.id)", owner2).2[.location]?.contains("done=link-revoked") == true)
            #expect(try await client.page("/share/\(whole)", nil).0 == .notFound)
            #expect(try await client.page("/share/" + String(repeating: "a", count: 64), nil).0 == .notFound)
            // A viewer may not make links; bad input is refused with its reason.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            #expect(try await post("/sites/\(id)/settings/share", "csrf=\(try await client.csrf(viewer))&label=x&filters=", viewer).0 == .notFound)
            let bad = try await post("/sites/\(id)/settings/share", "csrf=\(csrf2)&label=x&filters=path%3D%2Fa", owner2)
            #expect(bad.0 == .badRequest && bad.1.contains("Filters are written as on the site page"))
            let many = try await post("/sites/\(id)/settings/share", "csrf=\(csrf2)&label=x&filters=f.path%3D%2Fa%26f.os%3DLinux%26f.browser%3DChrome%26f.device%3DDesktop", owner2)
            #expect(many.0 == .badRequest && many.1.contains("at most 3 filters"))
            // Only the tokens' hashes are stored.
            let disk = try Data(contentsOf: URL(fileURLWithPath: f.t.dir.file("candor.sqlite")))
                + ((try? Data(contentsOf: URL(fileURLWithPath: f.t.dir.file("candor.sqlite-wal")))) ?? Data())
            for t in [whole, fixed, other] { #expect(disk.range(of: Data(t.utf8)) == nil) }
        }
        // Creation and revocation are audited.
        let audit = try f.t.database.recentAuditEntries(limit: 20)
        #expect(audit.filter { $0.action == "shared_link_created" }.count == 3 && audit.contains { $0.action == "shared_link_revoked" })
    }
}
