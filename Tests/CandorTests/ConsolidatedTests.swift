@testable import Admin
import Consent
import Notify
import Collector
import Foundation
import Integrations
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Testing

/// The overview as a consolidated view: every site's figures with their change and the totals,
/// the same through the page, CSV and JSON, and no total next to a figure a reader may not see.
@Suite struct ConsolidatedTests {
    /// Hand-counted: yesterday A has 2 visitors (2 pageviews) and B 1 (1); today A has 3 visitors
    /// (one of them views 2 pages: 4 pageviews) and B 6 (6). Today's totals: 9 visitors, +200 %
    /// against 3; 10 pageviews against 3.
    @Test func totalsAreTheSumOfTheSitesAndHideWhenASiteIsHidden() async throws {
        let f = try await DashboardFixture()
        let a = f.t.site.id, b = f.siteB.id
        func visit(_ site: String, _ n: Int, ip: String, pages: Int = 1) async throws {
            let host = site == a ? "example.com" : "b.example"
            let events = (0..<pages).map { IncomingEvent(site: site, url: "https://\(host)/p\($0)") }
            _ = try await f.t.ingest(events, into: site, ip: ip)
        }
        f.t.clock.set(noon.addingTimeInterval(-86_400))
        try await visit(a, 1, ip: "81.2.69.1"); try await visit(a, 1, ip: "81.2.69.2")
        try await visit(b, 1, ip: "81.2.69.3")
        f.t.clock.set(noon)
        try await visit(a, 1, ip: "81.2.69.11", pages: 2); try await visit(a, 1, ip: "81.2.69.12"); try await visit(a, 1, ip: "81.2.69.13")
        for i in 0..<6 { try await visit(b, 1, ip: "81.2.69.\(20 + i)") }
        try f.rollUp()
        let viewerID = try #require(try f.t.database.users().first { $0.email == "viewer@example.org" }?.id)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/?range=today", owner).1
            let rows = page.matches(of: /<tr><td><a href="\/sites\/([a-z0-9-]+)">[^<]*<\/a>.*?<\/svg><\/td><td class="[a-z]+">[^<]*<\/td>\n<td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/)
                .map { [String($0.1), String($0.2), String($0.3), String($0.4)] }
            #expect(rows.contains([a, "3", "+50\u{00A0}%", "4"]) && rows.contains([b, "6", "+500\u{00A0}%", "6"]), "\(rows)")
            let total = try #require(page.firstMatch(of: /<tfoot><tr><th scope="row" colspan="3">All sites \(2\) <small>sum of the sites<\/small><\/th><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/))
            #expect([String(total.1), String(total.2), String(total.3)] == ["9", "+200\u{00A0}%", "10"])
            #expect(!page.contains("A total is shown only when"))

            let csv = try await client.page("/export/overview?range=today", owner).1
            #expect(csv.contains("\(a),Test,3,4,0,0.00,2,2,"), "\(csv)")
            #expect(csv.contains("\(b),Site B,6,6,0,0.00,1,1,"), "\(csv)")
            #expect(csv.hasSuffix("total,All sites (2),9,10,0,0.00,3,3,\r\n"), "\(csv)")
            let json = try await client.page("/export/overview?range=today&format=json", owner).1
            #expect(json.contains(#""total":{"site":"total","name":"All sites (2)","visitors":9,"pageviews":10,"conversions":0,"revenue":{},"visitors_before":3,"pageviews_before":3,"last_event":null}"#), "\(json)")
            #expect(json.hasPrefix(#"{"range":{"key":"today","#))

            // A viewer of both sites under a k of 5: A's 3 visitors read "< 5", so no total of visitors or pageviews.
            try f.t.database.setUserSites(user: viewerID, sites: [a, b])
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let seen = try await client.page("/?range=today", viewer).1
            let hidden = try #require(seen.firstMatch(of: /<tfoot><tr><th scope="row" colspan="3">All sites \(2\) <small>sum of the sites<\/small><\/th><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/))
            #expect([String(hidden.1), String(hidden.2), String(hidden.3)] == ["–", "", "–"], "\(hidden.output)")
            #expect(seen.contains("&lt; 5") && seen.contains("A total is shown only when every site"))
            let viewerCSV = try await client.page("/export/overview?range=today", viewer).1
            #expect(viewerCSV.hasSuffix("total,All sites (2),–,–,0,0.00,–,–,\r\n"), "\(viewerCSV)")
            let viewerJSON = try await client.page("/export/overview?range=today&format=json", viewer).1
            #expect(viewerJSON.contains(#""total":{"site":"total","name":"All sites (2)","visitors":null,"pageviews":null,"#), "\(viewerJSON)")
        }

        // The consolidated report of yesterday (the last whole day): A 2 visitors, B 1, nothing
        // the day before: "new". The owner reads them; the viewer of both sites under k = 5 reads "< 5" and no total.
        let maker = ReportMaker(database: f.t.database, policies: f.t.collector.policies, now: f.t.clock.closure)
        let owner = try #require(try f.t.database.user(email: "owner@example.org"))
        let made = try maker.makeConsolidated(period: .day, reader: owner)
        #expect(made.subject == "[Candor] All sites: daily report, \(SiteCalendar.dateText(SiteCalendar.utc.day(of: Int64(noon.timeIntervalSince1970 * 1000)) - 1))")
        #expect(made.text.contains("Visitors: 3 (new)\nPageviews: 3 (new)\n") && made.text.contains("  Test: 2 visitors (new)\n  Site B: 1 visitor (new)\n  All sites (2): 3 visitors (new)"),
                "\(made.text)")
        #expect(made.attachments.map(\.type) == ["application/pdf"] && made.attachments[0].bytes.starts(with: Array("%PDF".utf8)))
        let viewer = try #require(try f.t.database.user(email: "viewer@example.org"))
        let restricted = try maker.makeConsolidated(period: .day, reader: viewer)
        #expect(restricted.text.contains("Visitors: –\n") && restricted.text.contains("  Test: < 5 visitors\n") && restricted.text.contains("A total is shown only when"),
                "\(restricted.text)")
    }

    /// The monthly report carries the month's commission section for readers of the commission
    /// page (an owner), not for a viewer nor an address without an account; other periods have none.
    @Test func theMonthlyReportHasTheCommissionForItsReaders() async throws {
        let f = try await DashboardFixture()
        try f.t.database.setClientTerms(ClientTerms(siteID: f.t.site.id, percent: 10, currency: "USD"), at: 0)
        let maker = ReportMaker(database: f.t.database, policies: f.t.collector.policies, now: f.t.clock.closure)
        let site = try #require(try f.t.database.site(id: f.t.site.id))
        let owner = try #require(try f.t.database.user(email: "owner@example.org"))
        let viewer = try #require(try f.t.database.user(email: "viewer@example.org"))
        #expect(try maker.make(site: site, period: .month, reader: owner).text.contains("goals and funnels, and the month's commission."))
        #expect(try maker.make(site: site, period: .month, reader: viewer).text.contains("goals and funnels.\n"))
        #expect(try maker.make(site: site, period: .month, reader: nil).text.contains("goals and funnels.\n"))
        #expect(try maker.make(site: site, period: .week, reader: owner).text.contains("goals and funnels.\n"))
    }

    /// v30 rebuilds the subscriptions' table so that a subscription may name no site (the
    /// consolidated report): the rows from before are kept as they were.
    @Test func subscriptionsFromBeforeTheUpgradeAreKept() throws {
        let (dir, path) = try databaseBefore(upgrade: "v29-free-space-scrubs")
        #expect(try sqlite3(path, "INSERT INTO users (id, email, password_hash, role, created_at) VALUES (1, 'o@example.org', 'x', 'owner', 1)").status == 0)
        #expect(try sqlite3(path, """
            INSERT INTO report_subscriptions (id, user_id, site_id, period, csv, last_first_day, created_at) VALUES ('s1', 1, 'oldsite', 'week', 1, 20000, 5)
            """).status == 0)
        let upgraded = try AppDatabase(path: path)
        #expect(try upgraded.reportSubscriptions() == [ReportSubscription(id: "s1", userID: 1, siteID: "oldsite", period: "week", csv: true,
                                                                          lastFirstDay: 20000, createdAt: 5)])
        try upgraded.insertReportSubscription(ReportSubscription(id: "s2", userID: 1, siteID: nil, period: "day", csv: false, createdAt: 6))
        #expect(try upgraded.reportSubscriptions().map(\.siteID) == ["oldsite", nil])
        _ = dir
    }
}
