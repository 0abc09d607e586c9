@testable import Admin
import Collector
import Consent
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Store
import Storage
import Testing

/// A database file as a version before an upgrade left it: migrated up to `upgrade` only, with
/// the site "oldsite"; the caller keeps the directory alive.
func databaseBefore(upgrade: String) throws -> (TempDir, String) {
    let dir = TempDir()
    let path = dir.file("old.sqlite")
    let old = try AppDatabase(path: path, migratingUpTo: upgrade)
    _ = old
    // The site as the schema of that version stores it.
    #expect(try sqlite3(path, "INSERT INTO sites (id, name, domains, policy, created_at) VALUES ('oldsite', 'Old', 'example.com', 'default', \(Int64(noon.timeIntervalSince1970 * 1000)))").status == 0)
    return (dir, path)
}

/// Issue 13: sources, referrers and campaigns belong to the visit (its landing event), checked
/// against a hand-computed scenario through the site page, CSV, JSON and the stats API.
@Suite struct AcquisitionTests {
    /// Six visitors, seven visits, sixteen pageviews, all on the fixture's day (each visitor five
    /// times over, from five addresses, so that the stats API's k-anonymity shows every row):
    /// - A, B, C land on /from-search from Google, then click to /pricing and /signup (internal
    ///   referrers): three organic visits of 3 pageviews;
    /// - D types the address (/typed), then clicks to /pricing: one direct visit of 2;
    /// - E lands on /news from a newsletter campaign, clicks to /pricing, and 5 minutes later comes
    ///   back through an ad (/offer, utm_medium=cpc): one email visit of 3 (the visit belongs to
    ///   how it began, as in Plausible and GA4);
    /// - F lands on /a from news.example.org, and 40 minutes later opens /b directly: a referral
    ///   visit of 1 and a direct visit of 1.
    func scenario(_ f: DashboardFixture, copy n: Int) async throws {
        let site = f.t.site.id
        func page(_ path: String, referrer: String? = nil) -> IncomingEvent {
            IncomingEvent(site: site, url: "https://example.com\(path)", referrer: referrer)
        }
        for ip in ["81.2.\(n).30", "81.2.\(n).31", "81.2.\(n).32"] {
            try await f.t.ingest([page("/from-search", referrer: "https://www.google.com/")], ip: ip)
            f.t.clock.advance(20)
            try await f.t.ingest([page("/pricing", referrer: "https://example.com/from-search")], ip: ip)
            f.t.clock.advance(20)
            try await f.t.ingest([page("/signup", referrer: "https://example.com/pricing")], ip: ip)
        }
        try await f.t.ingest([page("/typed")], ip: "81.2.\(n).40")
        f.t.clock.advance(20)
        try await f.t.ingest([page("/pricing", referrer: "https://example.com/typed")], ip: "81.2.\(n).40")
        try await f.t.ingest([page("/news?utm_source=letter&utm_medium=email&utm_campaign=spring")], ip: "81.2.\(n).41")
        f.t.clock.advance(20)
        try await f.t.ingest([page("/pricing", referrer: "https://example.com/news")], ip: "81.2.\(n).41")
        f.t.clock.advance(300)
        try await f.t.ingest([page("/offer?utm_source=ads&utm_medium=cpc", referrer: "https://example.com/pricing")], ip: "81.2.\(n).41")
        try await f.t.ingest([page("/a", referrer: "https://news.example.org/story")], ip: "81.2.\(n).42")
        f.t.clock.advance(40 * 60)
        try await f.t.ingest([page("/b")], ip: "81.2.\(n).42")
    }

    func scenario(_ f: DashboardFixture, copies: Int = 1) async throws {
        for n in 0..<copies {
            f.t.clock.set(noon)   // each copy at the same times, from its own addresses
            try await scenario(f, copy: n)
        }
    }

    /// The stored events: every event of a visit carries the visit's source.
    @Test func everyEventOfAVisitCarriesItsLandingSource() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        let events = try f.t.database.events(site: f.t.site.id)
        #expect(events.count == 16)
        let sessions = Dictionary(grouping: events, by: { $0.sessionID! })
        #expect(sessions.count == 7)
        for (_, visit) in sessions {
            #expect(Set(visit.map(\.sourceType)).count == 1 && Set(visit.map(\.referrerHost)).count == 1
                    && Set(visit.map(\.utmCampaign)).count == 1, "\(visit.map(\.path))")
        }
        let bySource = Dictionary(grouping: sessions.values, by: { $0[0].sourceType }).mapValues(\.count)
        #expect(bySource == ["organic": 3, "direct": 2, "email": 1, "referral": 1])
        #expect(events.filter { $0.path == "/offer" }.map(\.utmCampaign) == ["spring"])
        let pricing = events.filter { $0.path == "/pricing" }.map(\.sourceType).sorted()
        #expect(pricing == ["direct", "email", "organic", "organic", "organic"])
    }

    @Test func sourcesCountVisitsAndAFilterKeepsEveryPageOfThem() async throws {
        let f = try await DashboardFixture()
        try await scenario(f, copies: 5)
        let key = try f.t.issueKey()
        let id = f.t.site.id
        let sources = "source_type,visitors,pageviews\r\norganic,15,45\r\ndirect,10,15\r\nemail,5,15\r\nreferral,5,5\r\n"
        let organicPages = "path,visitors,pageviews\r\n/from-search,15,15\r\n/pricing,15,15\r\n/signup,15,15\r\n"
        let directPages = "path,visitors,pageviews\r\n/b,5,5\r\n/pricing,5,5\r\n/typed,5,5\r\n"
        let sourceRows = #"{"value":"organic","visitors":15,"pageviews":45},{"value":"direct","visitors":10,"pageviews":15},"#
            + #"{"value":"email","visitors":5,"pageviews":15},{"value":"referral","visitors":5,"pageviews":5}"#
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for range in ["today", "30d"] {
                if range == "30d" { try f.rollUp() }   // the same figures from the rollups
                let html = try await client.page("/sites/\(id)?range=\(range)", owner).1
                #expect(html.contains("<span>Visitors</span><strong>30</strong>") && html.contains("<span>Visits</span><strong>35</strong>")
                        && html.contains("<span>Pageviews</span><strong>80</strong>"), "\(range)")
                #expect(html.contains(#"class="filter">organic</a></td><td>15</td><td>45</td>"#), "\(range)")
                #expect(html.contains(#"class="filter">direct</a></td><td>10</td><td>15</td>"#), "\(range)")
                #expect(try await client.page("/sites/\(id)/export?range=\(range)&dimension=source_type", owner).1 == sources, "\(range)")
                let json = try await client.page("/sites/\(id)/export?range=\(range)&dimension=source_type&format=json", owner).1
                #expect(json.contains(sourceRows), "\(range)")
                let api = try await client.execute(uri: "/api/v1/sites/\(id)/stats?range=\(range)&dimension=source_type", method: .get,
                                                   headers: [.authorization: "Bearer \(key)"])
                #expect(String(buffer: api.body).contains(sourceRows), "\(range)")

                // Filtered by a source: every page of those visits, not only their landing pages.
                let organic = try await client.page("/sites/\(id)?range=\(range)&f.source_type=organic", owner).1
                #expect(organic.contains("<span>Visits</span><strong>15</strong>") && organic.contains("<span>Pageviews</span><strong>45</strong>"))
                #expect(try await client.page("/sites/\(id)/export?range=\(range)&f.source_type=organic&dimension=path", owner).1 == organicPages)
                #expect(try await client.page("/sites/\(id)/export?range=\(range)&f.source_type=direct&dimension=path", owner).1 == directPages)
                let referrers = try await client.page("/sites/\(id)/export?range=\(range)&dimension=referrer_host", owner).1
                #expect(referrers == "referrer_host,visitors,pageviews\r\ngoogle.com,15,45\r\n,15,30\r\nnews.example.org,5,5\r\n", "\(range)")
                let campaigns = try await client.page("/sites/\(id)/export?range=\(range)&dimension=utm_campaign", owner).1
                #expect(campaigns == "utm_campaign,visitors,pageviews\r\n,25,65\r\nspring,5,15\r\n", "\(range)")
                let apiOrganic = try await client.execute(uri: "/api/v1/sites/\(id)/stats?range=\(range)&filters=source_type%3D%3Dorganic",
                                                          method: .get, headers: [.authorization: "Bearer \(key)"])
                #expect(String(buffer: apiOrganic.body).contains(#""visitors":15,"visits":15,"pageviews":45"#), "\(range)")
            }
        }
    }

    /// A range whose days are not all rolled up is counted from the events, and the page says so.
    @Test func aRangeStillBeingRolledUpIsReadFromTheEventsNotSummedFromReadyDays() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/day-one")], ip: "81.2.69.50")
        try f.rollUp()
        f.t.clock.advance(86_400)
        try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/day-two")], ip: "81.2.69.51")
        // Today's rollup exists, yesterday's is gone (as after an import or an upgrade).
        try f.rollUp()
        let yesterday = Int64(f.t.clock.now.timeIntervalSince1970) / 86_400 - 1
        #expect(try sqlite3(f.t.database.path!, "DELETE FROM rollup_days WHERE day = \(yesterday); DELETE FROM rollup_values WHERE day = \(yesterday);")
            .status == 0)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(id)?range=7d", owner).1
            #expect(page.contains("<span>Visitors</span><strong>2</strong>"))
            #expect(page.contains("still being built"))
            try f.rollUp()   // the job backfills the missing day
            let ready = try await client.page("/sites/\(id)?range=7d", owner).1
            #expect(ready.contains("<span>Visitors</span><strong>2</strong>") && !ready.contains("still being built"))
        }
    }

    /// The upgrade gives old events their visit's source and drops the rollups to rebuild them.
    @Test func theUpgradeGivesStoredEventsTheirVisitsSource() async throws {
        let (dir, path) = try databaseBefore(upgrade: "v10-verified-erasure")
        defer { _ = dir }
        let ts = Int64(noon.timeIntervalSince1970 * 1000)
        let sql = """
            INSERT INTO sessions (id, site_id, visitor, decision, started_at, last_seen, entry_path, exit_path, pageviews, source_type,
              referrer_host, utm_source, utm_medium, utm_campaign) VALUES (1, 'oldsite', 7, 'anonymous', \(ts), \(ts + 60000), '/in', '/out', 2,
              'email', NULL, 'letter', 'email', 'spring');
            INSERT INTO events (site_id, ts, name, path, decision, visitor, session_id, source_type, utm_source, utm_medium, utm_campaign, utm_term)
              VALUES ('oldsite', \(ts), 'pageview', '/in', 'anonymous', 7, 1, 'email', 'letter', 'email', 'spring', 'shoes'),
                     ('oldsite', \(ts + 60000), 'pageview', '/out', 'anonymous', 7, 1, 'direct', NULL, NULL, NULL, NULL);
            INSERT INTO rollup_days (site_id, day, visitors, pageviews, visits, bounces, duration_ms, refreshed_at)
              VALUES ('oldsite', \(ts / 86_400_000), 1, 2, 1, 0, 60000, \(ts)), ('oldsite', \(ts / 86_400_000 - 400), 9, 9, 9, 0, 0, \(ts));
            """
        #expect(try sqlite3(path, sql).status == 0)
        let upgraded = try AppDatabase(path: path)
        let events = try upgraded.events(site: "oldsite")
        #expect(events.map(\.sourceType) == ["email", "email"])
        #expect(events.map(\.utmCampaign) == ["spring", "spring"] && events.map(\.utmTerm) == ["shoes", "shoes"])
        #expect(try upgraded.daysWithoutRollup(site: "oldsite", limit: 10) == [ts / 86_400_000])
        // A day whose events retention removed long ago keeps its rollup (nothing could rebuild it).
        #expect(try upgraded.rollupSummary(site: "oldsite", fromDay: ts / 86_400_000 - 400, toDay: ts / 86_400_000 - 400).visitors == 9)
    }
}

/// The pixel keeps a landing page's campaign and click-id parameters for the visit (a single-page
/// app drops them from the URL on its next page): it must know every click id the server does.
@Suite struct PixelClickIDTests {
    @Test func thePixelKnowsEveryClickIDTheServerKnows() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try String(contentsOf: root.appendingPathComponent("Public/pixel.js"), encoding: .utf8)
        let found = try #require(source.range(of: #"\^\([a-z_|]+\)\$/\.test\(k\)"#, options: .regularExpression))
        let keys = source[found].dropFirst(2).prefix { $0 != ")" }.split(separator: "|").map(String.init)
        #expect(Set(keys) == Set(Policy.clickIDKeys) && keys.count == Policy.clickIDKeys.count, "\(keys)")
    }
}
