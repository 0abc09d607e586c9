import Actions
@testable import Admin
import Collector
import Consent
import Foundation
import HTTPTypes
import HummingbirdTesting
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Retention
@testable import Store
import Storage
import Testing

private func instant(_ iso: String) -> Date { try! Date(iso, strategy: .iso8601) }
private func ms(_ iso: String) -> Int64 { Int64(instant(iso).timeIntervalSince1970 * 1000) }

/// The site calendar: days, hours and months of an IANA zone, DST included.
@Suite struct SiteCalendarTests {
    let berlin = SiteCalendar(identifier: "Europe/Berlin")!

    @Test func daysOfTwentyThreeAndTwentyFiveHours() {
        let spring = SiteCalendar.dayNumber(year: 2026, month: 3, day: 29), autumn = SiteCalendar.dayNumber(year: 2026, month: 10, day: 25)
        #expect(berlin.start(of: spring) == ms("2026-03-28T23:00:00Z") && berlin.end(of: spring) == ms("2026-03-29T22:00:00Z"))
        #expect(berlin.start(of: autumn) == ms("2026-10-24T22:00:00Z") && berlin.end(of: autumn) == ms("2026-10-25T23:00:00Z"))
        #expect(berlin.end(of: autumn) - berlin.start(of: autumn) == 25 * 3_600_000)
        // The instant before a day's start is the previous day's; its start is its own.
        for day in [spring - 1, spring, autumn, autumn + 1] {
            #expect(berlin.day(of: berlin.start(of: day)) == day && berlin.day(of: berlin.start(of: day) - 1) == day - 1)
        }
        // 02:30 happens twice on the autumn day: both are that day.
        #expect(berlin.day(of: ms("2026-10-25T00:30:00Z")) == autumn && berlin.day(of: ms("2026-10-25T01:30:00Z")) == autumn)
        #expect(berlin.iso(ms("2026-10-25T00:30:00Z")) == "2026-10-25T02:30:00.000+02:00")
        #expect(berlin.iso(ms("2026-10-25T01:30:00Z")) == "2026-10-25T02:30:00.000+01:00")
        #expect(SiteCalendar.utc.iso(ms("2026-10-25T01:30:00Z")) == "2026-10-25T01:30:00.000+00:00")
    }

    @Test func aMidnightThatDoesNotExistStartsTheDayAfterTheGap() throws {
        // Chile springs forward at midnight: 2026-09-06 begins at 01:00 local (04:00 UTC).
        let santiago = try #require(SiteCalendar(identifier: "America/Santiago"))
        let day = SiteCalendar.dayNumber(year: 2026, month: 9, day: 6)
        #expect(santiago.start(of: day) == ms("2026-09-06T04:00:00Z"))
        #expect(santiago.day(of: ms("2026-09-06T03:59:59.999Z")) == day - 1)
        // Half-hour offsets: India's days start at 18:30 UTC.
        let kolkata = try #require(SiteCalendar(identifier: "Asia/Kolkata"))
        #expect(kolkata.start(of: day) == ms("2026-09-05T18:30:00Z") && kolkata.clock(ms("2026-09-05T19:00:00Z")) == "00:30")
    }

    @Test func monthsDatesAndNames() {
        #expect(berlin.bounds(month: "2026-11")! == (ms("2026-10-31T23:00:00Z"), ms("2026-11-30T23:00:00Z")))
        #expect(berlin.month(of: ms("2026-10-31T23:30:00Z")) == "2026-11" && SiteCalendar.utc.month(of: ms("2026-10-31T23:30:00Z")) == "2026-10")
        #expect(berlin.bounds(month: "2026-13") == nil && berlin.bounds(month: "26-01") == nil)
        #expect(SiteCalendar.day(parsing: "2024-02-29") == SiteCalendar.dayNumber(year: 2024, month: 2, day: 29))
        for bad in ["2023-02-29", "2026-1-05", "2026-01-32", "x", "1969-12-31", "2026-01-05T00:00"] { #expect(SiteCalendar.day(parsing: bad) == nil, "\(bad)") }
        for d: Int64 in [-1, 0, 59, 10_957, 20_000, 2_932_896] { #expect(SiteCalendar.day(parsing: SiteCalendar.dateText(d)) == (d < 0 ? nil : d)) }
        #expect(SiteCalendar(identifier: "Mars/Olympus") == nil && SiteCalendar(identifier: "../etc/passwd") == nil && SiteCalendar(identifier: "") == nil)
        #expect(SiteCalendar.knownIdentifiers.contains("Europe/Berlin") && SiteCalendar.knownIdentifiers.first == "UTC")
        // Links of the tz database are names too.
        #expect(SiteCalendar(identifier: "Asia/Calcutta") != nil && SiteCalendar(identifier: "US/Eastern") != nil)
    }
}

/// Issue 13: a site's days follow its time zone — rollups, the engine, charts, ranges,
/// comparisons, "today", visitor salts and commission months — checked against a hand-computed
/// scenario across the end of summer time in Berlin, through HTML, CSV, JSON and the stats API.
@Suite struct TimeZoneTests {
    static let berlin = SiteCalendar(identifier: "Europe/Berlin")!

    /// Berlin leaves summer time on Sunday 2026-10-25 at 03:00 (01:00 UTC): that day (D2) lasts
    /// 25 hours, 2026-10-24T22:00Z to 2026-10-25T23:00Z, and 02:30 happens twice.
    /// - A lands on / from Google at 23:50 on D1 and opens /pricing at 00:10 on D2 (same visit,
    ///   an organic one that began on D1);
    /// - B opens / directly at 02:30 summer time and again at 02:30 winter time (an hour apart:
    ///   two direct visits, two bounces);
    /// - a crawler (Googlebot) at noon: dropped;
    /// - C lands on / from news.example.org at 23:50 on D2 and opens /signup at 00:10 on D3, where
    ///   the pixel also tracks a 49 EUR sale (a referral visit of D2);
    /// - D's browser queues a pageview of /offline at 22:00 on D2 and sends it at 10:00 on D3
    ///   (a direct visit of D2, one bounce).
    /// D1: 1 visitor, 1 pageview, 1 visit. D2: 4 visitors (A, B, C, D), 5 pageviews, 4 visits,
    /// 3 bounces; sources by visit: direct 2 visitors / 3 pageviews, organic 1 / 1, referral 1 / 1.
    /// D3: 1 visitor (C), 1 pageview, no visit begun, 1 conversion of 49 EUR.
    /// UTC days would count otherwise: A's /pricing lies on Oct 24 in UTC, C's /signup and sale on Oct 25.
    func scenario(_ f: DashboardFixture) async throws {
        let site = f.t.site.id
        func page(_ path: String, referrer: String? = nil) -> IncomingEvent {
            IncomingEvent(site: site, url: "https://example.com\(path)", referrer: referrer)
        }
        f.t.clock.set(instant("2026-10-24T21:50:00Z"))
        try await f.t.ingest([page("/", referrer: "https://www.google.com/")], ip: "81.2.69.60")
        f.t.clock.set(instant("2026-10-24T22:10:00Z"))
        try await f.t.ingest([page("/pricing", referrer: "https://example.com/")], ip: "81.2.69.60")
        f.t.clock.set(instant("2026-10-25T00:30:00Z"))
        try await f.t.ingest([page("/")], ip: "81.2.69.61")
        f.t.clock.set(instant("2026-10-25T01:30:00Z"))
        try await f.t.ingest([page("/")], ip: "81.2.69.61")
        f.t.clock.set(instant("2026-10-25T11:00:00Z"))
        let bot = try await f.t.ingest([page("/")], ip: "66.249.66.1",
                                       ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
        #expect(bot.rows.isEmpty)
        f.t.clock.set(instant("2026-10-25T22:50:00Z"))
        try await f.t.ingest([page("/", referrer: "https://news.example.org/story")], ip: "81.2.69.62")
        f.t.clock.set(instant("2026-10-25T23:10:00Z"))
        try await f.t.ingest([page("/signup", referrer: "https://example.com/"),
                              IncomingEvent(site: site, name: "conversion", url: "https://example.com/signup", value: 49, currency: "EUR")],
                             ip: "81.2.69.62")
        // The rollup job in the first hours of D3 rolls up D3 and D2 (and backfills D1).
        f.t.clock.set(instant("2026-10-26T00:30:00Z"))
        try f.rollUp()
        f.t.clock.set(instant("2026-10-26T09:00:00Z"))
        var queued = page("/offline")
        queued.clientTime = ms("2026-10-25T21:00:00Z")
        try await f.t.ingest([queued], ip: "81.2.69.63")
        f.t.clock.set(instant("2026-10-26T09:30:00Z"))
    }

    @Test func daysChartsRangesAndExportsFollowTheSiteTimeZone() async throws {
        var policy = Policy.default
        policy.name = "open"
        policy.kThreshold = 1
        let f = try await DashboardFixture(start: instant("2026-10-24T12:00:00Z"), calendar: Self.berlin, policy: policy)
        try await scenario(f)
        let id = f.t.site.id
        let key = try f.t.issueKey()
        let d2 = SiteCalendar.dayNumber(year: 2026, month: 10, day: 25)
        // The queued event marked D2 stale. A server that holds no day in memory yet (still
        // loading) counts from the raw events; once the job has run again, the rollups and the
        // engine give the same figures.
        #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10) == [d2])
        f.t.database.facts.unload(site: id)
        for pass in ["raw events", "rollups and engine"] {
            if pass != "raw events" {
                try f.rollUp()
                #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10).isEmpty)
                #expect(f.t.database.facts.view(site: id, from: Self.berlin.start(of: d2 - 1), to: Self.berlin.end(of: d2 + 1)) != nil)
            }
            try await f.app.test(.router) { client in
                let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
                let day = try await client.page("/sites/\(id)?range=custom&from=2026-10-25&to=2026-10-25", owner).1
                #expect(day.contains("<span>Visitors</span><strong>4</strong>") && day.contains("<span>Pageviews</span><strong>5</strong>"), "\(pass)")
                #expect(day.contains("<span>Visits</span><strong>4</strong>") && day.contains("<span>Bounce rate</span><strong>75\u{00A0}%</strong>"), "\(pass)")
                // 25 hourly bars; 02:00 twice, with B's two pageviews and visits; A's visit began on D1.
                #expect(day.components(separatedBy: "<rect ").count - 1 == 25, "\(pass)")
                #expect(day.contains("<title>25 Oct 2026 02:00 (UTC+02:00): 1 visitors, 1 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(day.contains("<title>25 Oct 2026 02:00 (UTC+01:00): 1 visitors, 1 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(day.contains("<title>25 Oct 2026 00:00 (UTC+02:00): 1 visitors, 0 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(day.contains("<title>25 Oct 2026 22:00 (UTC+01:00): 1 visitors, 1 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(day.contains("<title>25 Oct 2026 23:00 (UTC+01:00): 1 visitors, 1 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(day.contains("(Europe/Berlin)"), "\(pass)")
                // Compared with the day before (D1: 1 visitor).
                let compared = try await client.page("/sites/\(id)?range=custom&from=2026-10-25&to=2026-10-25&compare=1", owner).1
                #expect(compared.contains("<span>Visitors</span><strong>4</strong><em>+300\u{00A0}%</em>") || compared.contains("+300\u{00A0}%"), "\(pass)")
                // Three days by the day: 1, 4, 1 visitors; 1, 4, 0 visits begun; C's sale on D3.
                let days = try await client.page("/sites/\(id)?range=custom&from=2026-10-24&to=2026-10-26", owner).1
                #expect(days.contains("<title>24 Oct 2026: 1 visitors, 1 visits, 1 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                #expect(days.contains("<title>25 Oct 2026: 4 visitors, 4 visits, 5 pageviews, 0 conversions, revenue 0.00</title>"), "\(pass)")
                // D3 is today: its bar is the period under way.
                #expect(days.contains("<title>26 Oct 2026 (so far): 1 visitors, 0 visits, 1 pageviews, 1 conversions, revenue €49.00</title>") && days.contains("class=\"partial\""), "\(pass)")
                #expect(days.contains("<span>Visitors</span><strong>6</strong>") && days.contains("<span>Visits</span><strong>5</strong>"), "\(pass)")
                // Today is D3 since 23:00 UTC: C's /signup and sale.
                let today = try await client.page("/sites/\(id)?range=today", owner).1
                #expect(today.contains("<span>Visitors</span><strong>1</strong>") && today.contains("<span>Conversions</span><strong>1</strong>"), "\(pass)")
                #expect(today.contains("<span>Revenue</span><strong>€49.00</strong>"), "\(pass)")
                // Sources of D2 by visit, CSV and JSON.
                let csv = try await client.page("/sites/\(id)/export?range=custom&from=2026-10-25&to=2026-10-25&dimension=source_type", owner).1
                #expect(csv == "source_type,visitors,pageviews\r\ndirect,2,3\r\norganic,1,1\r\nreferral,1,1\r\n", "\(pass)")
                let json = try await client.page("/sites/\(id)/export?range=custom&from=2026-10-25&to=2026-10-25&dimension=path&format=json", owner).1
                #expect(json.contains(#""rows":[{"value":"/","visitors":2,"pageviews":3},{"value":"/offline","visitors":1,"pageviews":1},{"value":"/pricing","visitors":1,"pageviews":1}]"#),
                        "\(pass): \(json)")
                // The stats API: dates are the site's, the bounds carry their offsets.
                let api = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=2026-10-25&to=2026-10-25", method: .get,
                                                                  headers: [.authorization: "Bearer \(key)"]).body)
                #expect(api.contains(#""timezone":"Europe/Berlin","from":"2026-10-25T00:00:00.000+02:00","to":"2026-10-26T00:00:00.000+01:00""#), "\(api)")
                #expect(api.contains(#""visitors":4,"visits":4,"pageviews":5"#) && api.contains(#""bounce_rate":0.75"#), "\(pass): \(api)")
                let sources = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=2026-10-25&to=2026-10-25&dimension=source_type",
                                                                      method: .get, headers: [.authorization: "Bearer \(key)"]).body)
                #expect(sources.contains(#"[{"value":"direct","visitors":2,"pageviews":3},{"value":"organic","visitors":1,"pageviews":1},{"value":"referral","visitors":1,"pageviews":1}]"#),
                        "\(pass): \(sources)")
                let bad = try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=2026-10-25&to=25.10.2026", method: .get,
                                                   headers: [.authorization: "Bearer \(key)"])
                #expect(bad.status == .badRequest && String(buffer: bad.body).contains("Europe/Berlin"))
            }
        }
        // A visitor is one visitor for the whole local day: B's two visits an hour apart, across
        // the clock change, carry one hash.
        let b = try f.t.database.events(site: id).filter { $0.path == "/" && $0.referrerHost == nil }.map(\.visitor)
        #expect(b.count == 2 && Set(b).count == 1)
    }

    /// A range that cannot be read is refused with its reason (page, export, overview, stats
    /// API), never answered with the figures of another period.
    @Test func anUnreadableRangeIsRefusedNotReplaced() async throws {
        let f = try await DashboardFixture(start: instant("2026-10-24T12:00:00Z"), calendar: Self.berlin)
        let id = f.t.site.id
        let key = try f.t.issueKey()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let reversed = "range=custom&from=2026-10-20&to=2026-10-10"
            for path in ["/sites/\(id)?\(reversed)", "/sites/\(id)/export?\(reversed)&dimension=path", "/?\(reversed)", "/export/overview?\(reversed)",
                         "/sites/\(id)?range=2d", "/sites/\(id)?range=custom&from=2026-10-20"] {
                let (status, body, _) = try await client.page(path, owner)
                #expect(status == .badRequest, "\(path): \(status)")
                #expect(!body.contains("Last 30 days") && !body.contains("<span>Visitors</span>"), "\(path)")
            }
            let page = try await client.page("/sites/\(id)?\(reversed)", owner).1
            #expect(page.contains("the range starts (2026-10-20) after it ends (2026-10-10)"))
            for query in [reversed, "range=fortnight", "from=2026-10-20&to=2026-10-10"] {
                let r = try await client.execute(uri: "/api/v1/sites/\(id)/stats?\(query)", method: .get, headers: [.authorization: "Bearer \(key)"])
                #expect(r.status == .badRequest, "\(query)")
                #expect(String(buffer: r.body).contains("range") || String(buffer: r.body).contains("from"), "\(query)")
            }
            // A readable range still answers.
            #expect(try await client.page("/sites/\(id)?range=custom&from=2026-10-10&to=2026-10-20", owner).0 == .ok)
        }
    }

    @Test func commissionMonthsAreTheSitesMonths() async throws {
        let f = try await DashboardFixture(start: instant("2026-10-31T23:30:00Z"), calendar: Self.berlin)
        let attributor = Attributor(database: f.t.database, subjects: try SubjectHasher(database: f.t.database))
        // 00:30 on 1 November in Berlin, still 31 October in UTC.
        let sale = WebhookEvent(externalID: "pi_nov", kind: .sale, value: 100, currency: "USD")
        #expect(try f.t.database.insertConversion(try attributor.conversion(sale, site: f.t.site.id, provider: .stripe, receivedAt: f.t.clock.now)))
        let site = try #require(try f.t.database.site(id: f.t.site.id))
        #expect(Commission.month(of: f.t.clock.now, in: site.calendar) == "2026-11")
        let november = try #require(try Commission.report(database: f.t.database, site: site, month: "2026-11"))
        let october = try #require(try Commission.report(database: f.t.database, site: site, month: "2026-10"))
        #expect(november.sales == 1 && october.sales == 0)
        #expect(try CSVRendering.text(november.table).contains("2026-11-01T00:30:00.000+01:00,stripe,pi_nov,sale"))
        #expect(november.json.text.contains(#""timezone":"Europe/Berlin""#))
    }

    /// The scenario on a UTC site, rolled up.
    func utcSite() async throws -> DashboardFixture {
        let f = try await DashboardFixture(start: instant("2026-10-24T12:00:00Z"))
        try await scenario(f)
        try f.rollUp()
        return f
    }

    @Test func movingASiteToAnotherZoneRecountsItsDays() async throws {
        let f = try await utcSite()
        let id = f.t.site.id
        let d2 = SiteCalendar.dayNumber(year: 2026, month: 10, day: 25)
        // In UTC, Oct 25 holds B's two pageviews, D's and C's landing (C's /signup is 23:10Z: Oct 25 too).
        #expect(try f.t.database.rollupSummary(site: id, fromDay: d2, toDay: d2).pageviews == 5)
        #expect(try f.t.database.rollupSummary(site: id, fromDay: d2, toDay: d2).visitors == 3)
        // A day whose events retention purged keeps its rollup, counted in UTC.
        #expect(try sqlite3(f.t.dir.file("candor.sqlite"), """
            INSERT INTO rollup_days (site_id, day, visitors, pageviews, visits, bounces, duration_ms, refreshed_at)
              VALUES ('\(id)', \(d2 - 10), 7, 9, 7, 5, 0, 0)
            """).status == 0)
        let admin = f.t.administration
        #expect(throws: ActionError.self) { try admin.changeSite(id: id, name: "Test", domains: ["example.com"], policy: "default", timezone: "Mars/Base", by: .cli) }
        try admin.changeSite(id: id, name: "Test", domains: ["example.com"], policy: "default", timezone: "Europe/Berlin", by: .cli)
        #expect(try f.t.database.site(id: id)?.calendar == Self.berlin)
        #expect(try f.t.database.auditEntries().contains { $0.action == "timezone_changed" && $0.detail.contains("Europe/Berlin") })
        // Every day with events waits to be recounted; the engine no longer answers with the old days.
        #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10).count == 3)
        #expect(f.t.database.facts.view(site: id, from: Self.berlin.start(of: d2), to: Self.berlin.end(of: d2)) == nil)
        try f.rollUp()
        #expect(try f.t.database.rollupSummary(site: id, fromDay: d2, toDay: d2).visitors == 4)
        // B's hashes were made under UTC days; in Berlin's D2 they are still one visitor (one UTC day).
        #expect(try f.t.database.rollupSummary(site: id, fromDay: d2, toDay: d2).pageviews == 5)
        #expect(f.t.database.facts.view(site: id, from: Self.berlin.start(of: d2), to: Self.berlin.end(of: d2)) != nil)
        #expect(try f.t.database.rollupSummary(site: id, fromDay: d2 - 10, toDay: d2 - 10).visitors == 7)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(id)?range=custom&from=2026-10-14&to=2026-10-26", owner).1
            #expect(page.contains("Days up to 2026-10-15 were counted in the time zone UTC, before the site moved to Europe/Berlin"))
            #expect(page.contains("<span>Visitors</span><strong>13</strong>"))
            let recent = try await client.page("/sites/\(id)?range=custom&from=2026-10-24&to=2026-10-26", owner).1
            #expect(!recent.contains("Days up to"))
        }
    }

    /// Moving west: the first stored event's new day is an old day whose rollup holds purged
    /// events; that rollup is kept, never rebuilt from the few hours left.
    @Test func aDayKeptFromBeforeAMoveIsNotRebuilt() async throws {
        let f = try await utcSite()
        let id = f.t.site.id
        let oct24 = SiteCalendar.dayNumber(year: 2026, month: 10, day: 24)
        // Retention took A's events (Oct 24 in UTC); the day's rollup stays.
        #expect(try sqlite3(f.t.dir.file("candor.sqlite"), "DELETE FROM events WHERE site_id = '\(id)' AND ts < \(ms("2026-10-25T00:00:00Z"))").status == 0)
        #expect(try f.t.database.rollupSummary(site: id, fromDay: oct24, toDay: oct24).pageviews == 2)
        try f.t.administration.changeSite(id: id, name: "Test", domains: ["example.com"], policy: "default", timezone: "America/Los_Angeles", by: .cli)
        // B's 00:30 UTC on Oct 25 is Oct 24 in Los Angeles: that day keeps its UTC rollup.
        try f.rollUp()
        #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10).isEmpty)
        #expect(try f.t.database.rollupSummary(site: id, fromDay: oct24, toDay: oct24).pageviews == 2)
        #expect(try f.t.database.rollupZones(site: id, fromDay: oct24, toDay: oct24 + 2).map(\.zone) == ["UTC"])
    }

    /// A zone the settings do not list (a link set on the command line) stays selected, so saving
    /// the form keeps it.
    @Test func settingsKeepAZoneTheyDoNotList() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        try f.t.administration.changeSite(id: id, name: "Test", domains: ["example.com"], policy: "default", timezone: "US/Eastern", by: .cli)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(id)/settings", owner).1
            #expect(page.contains(#"<option value="US/Eastern" selected>US/Eastern</option>"#))
            #expect(page.components(separatedBy: " selected>").count == 3, "the policy and the zone")
        }
    }
}
