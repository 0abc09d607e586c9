import Actions
@testable import Admin
import Collector
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Testing

/// Notes on the charts' days: a marker over the day's bar with the note as its title, the note
/// listed under the chart (escaped), a site's notes on that site only and every site's on each;
/// who configures a site writes its notes, viewers read them.
@Suite struct AnnotationTests {
    @Test func notesMarkTheirDayOnTheChartAndAreListed() async throws {
        let f = try await DashboardFixture()
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/a")])
        try f.rollUp()
        let twoDaysAgo = SiteCalendar.dateText(SiteCalendar.utc.day(of: Int64(f.t.clock.now.timeIntervalSince1970 * 1000)) - 2)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf = try await client.csrf(owner)
            func post(_ uri: String, _ body: String, _ cookie: String) async throws -> (HTTPResponse.Status, HTTPFields) {
                let r = try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie],
                                                 body: ByteBuffer(string: body))
                return (r.status, r.headers)
            }
            let added = try await post("/sites/\(f.t.site.id)/settings/annotate", "csrf=\(csrf)&date=\(twoDaysAgo)&text=Newsletter+%3Cscript%3E&range=30d", owner)
            #expect(added.0 == .seeOther && added.1[.location] == "/sites/\(f.t.site.id)?range=30d#notes")
            #expect(try await post("/sites/\(f.t.site.id)/settings/annotate", "csrf=\(csrf)&date=\(twoDaysAgo)&text=Theme+changed&every=1", owner).0 == .seeOther)
            #expect(try await post("/sites/\(f.t.site.id)/settings/annotate", "csrf=\(csrf)&date=yesterday&text=x", owner).0 == .badRequest)
            let page = try await client.page("/sites/\(f.t.site.id)?range=30d", owner).1
            let marker = try #require(page.firstMatch(of: /<circle class="marker" cx="[0-9.]+" cy="4" r="3.5"><title>([^<]*)<\/title><\/circle>/))
            #expect(marker.1.contains("Newsletter &lt;script&gt;") && marker.1.contains("Theme changed") && marker.1.contains("; "), "\(marker.1)")
            #expect(page.contains("Newsletter &lt;script&gt;") && !page.contains("Newsletter <script>") && page.contains("(every site)"))
            #expect(page.components(separatedBy: "class=\"marker\"").count == 2)   // one day, one marker
            // The other site shows the every-site note only.
            let other = try await client.page("/sites/\(f.siteB.id)?range=30d", owner).1
            #expect(other.contains("Theme changed") && !other.contains("Newsletter"))
            // A viewer reads the notes, cannot write or remove them.
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let seen = try await client.page("/sites/\(f.t.site.id)?range=30d", viewer).1
            #expect(seen.contains("Newsletter &lt;script&gt;") && !seen.contains("/settings/unannotate") && !seen.contains("/settings/annotate"))
            #expect(try await post("/sites/\(f.t.site.id)/settings/annotate", "csrf=\(try await client.csrf(viewer))&date=\(twoDaysAgo)&text=x", viewer).0 == .notFound)
            // Removed: gone from the chart and the list; both changes audited.
            let id = try #require(try f.t.database.annotations(site: f.t.site.id, first: twoDaysAgo, last: twoDaysAgo).first { $0.siteID != nil }?.id)
            #expect(try await post("/sites/\(f.t.site.id)/settings/unannotate", "csrf=\(csrf)&note=\(id)", owner).0 == .seeOther)
            #expect(!(try await client.page("/sites/\(f.t.site.id)?range=30d", owner).1.contains("Newsletter")))
            #expect(try f.t.database.recentAuditEntries(limit: 10).map(\.action).filter { $0.hasPrefix("annotation_") } == ["annotation_removed", "annotation_added", "annotation_added"])
        }
    }
}
