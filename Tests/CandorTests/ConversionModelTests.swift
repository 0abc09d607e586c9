@testable import Admin
import Collector
import Foundation
import HTTPTypes
import HummingbirdTesting
import Consent
import Integrations
import NIOCore
import Privacy
@testable import Store
import Testing

/// Issue 13: one conversion model (pixel and webhook conversions count alike, attributed to a
/// visit), revenue per currency, and the events table's meaning, against a hand-computed scenario
/// through the site page, CSV, JSON and the stats API.
@Suite struct ConversionModelTests {
    /// Three visitors and two webhook sales:
    /// - A lands from Google on /, converts twice through the pixel (49 and 30 EUR) and sends an
    ///   engagement event: an organic visit with 2 sales, 79 EUR;
    /// - B types the address (/), signs up (a custom event) and converts without a value (a lead);
    /// - C, consented with subject A's id, lands on /pricing from a newsletter; a Stripe-like sale
    ///   of 100 USD carrying that subject is attributed to C's visit;
    /// - a sale of 20 USD that links to nothing.
    /// Conversions 5; revenue 120.00 USD and 79.00 EUR (never added up).
    func scenario(_ f: DashboardFixture) async throws {
        let site = f.t.site.id
        try await f.t.ingest([IncomingEvent(site: site, url: "https://example.com/", referrer: "https://www.google.com/")], ip: "81.2.69.60")
        f.t.clock.advance(30)
        try await f.t.ingest([IncomingEvent(site: site, name: "conversion", url: "https://example.com/", value: 49, currency: "EUR"),
                              IncomingEvent(site: site, name: "engagement", url: "https://example.com/", engagedMs: 5000, scroll: 40)],
                             ip: "81.2.69.60")
        f.t.clock.advance(30)
        try await f.t.ingest([IncomingEvent(site: site, name: "conversion", url: "https://example.com/thanks", value: 30, currency: "EUR")],
                             ip: "81.2.69.60")
        try await f.t.ingest([IncomingEvent(site: site, url: "https://example.com/"),
                              IncomingEvent(site: site, name: "signup", url: "https://example.com/", props: [("plan", .string("pro"))]),
                              IncomingEvent(site: site, name: "conversion", url: "https://example.com/")], ip: "81.2.69.61")
        try await f.t.ingest([IncomingEvent(site: site, url: "https://example.com/pricing?utm_source=letter&utm_medium=email",
                                            consent: .granted(analytics: true, marketing: false), subject: subjectA)], ip: "81.2.69.62")
        f.t.clock.advance(600)
        let attributor = Attributor(database: f.t.database, subjects: try SubjectHasher(database: f.t.database))
        var linked = WebhookEvent(externalID: "pi_linked", kind: .sale, value: 100, currency: "USD")
        linked.subjectID = subjectA
        #expect(try f.t.database.insertConversion(try attributor.conversion(linked, site: site, provider: .stripe, receivedAt: f.t.clock.now)))
        let lone = WebhookEvent(externalID: "pi_lone", kind: .sale, value: 20, currency: "USD")
        #expect(try f.t.database.insertConversion(try attributor.conversion(lone, site: site, provider: .stripe, receivedAt: f.t.clock.now)))
        _ = try f.t.database.addGoal(Goal(siteID: site, name: "Sales", kind: .conversion, match: "sale"))
        _ = try f.t.database.addGoal(Goal(siteID: site, name: "Leads", kind: .conversion, match: "lead"))
        _ = try f.t.database.addGoal(Goal(siteID: site, name: "Signups", kind: .event, match: "signup"))
    }

    @Test func pixelAndWebhookConversionsCountAlikeAndRevenueStaysPerCurrency() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        let stored = try f.t.database.conversions(site: f.t.site.id)
        #expect(stored.count == 5)
        #expect(stored.filter { $0.provider == "pixel" }.map(\.kind) == [.sale, .sale, .lead])
        #expect(stored.filter { $0.provider == "pixel" }.allSatisfy { $0.attributedVia == "visit" && $0.visit != nil })
        #expect(stored.first { $0.externalID == "pi_linked" }?.visit != nil && stored.first { $0.externalID == "pi_lone" }?.visit == nil)
        let key = try f.t.issueKey()
        let id = f.t.site.id
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for range in ["today", "30d"] {
                if range == "30d" { try f.rollUp() }
                let html = try await client.page("/sites/\(id)?range=\(range)", owner).1
                #expect(html.contains("<span>Conversions</span><strong>5</strong>"), "\(range)")
                #expect(html.contains("<span>Revenue</span><strong>US$120.00 · €79.00</strong>"), "\(range)")
                // Goals: sales by A (2) and C (1) plus the lone one; the lead by B; the signup by B.
                #expect(html.contains("<td>Sales <small>conversion sale</small></td><td>2</td><td>4</td><td>66.7\u{00A0}%</td>"), "\(range)")
                #expect(html.contains("<td>Leads <small>conversion lead</small></td><td>1</td><td>1</td><td>33.3\u{00A0}%</td>"), "\(range)")
                #expect(html.contains("<td>Signups <small>event signup</small></td><td>1</td><td>1</td><td>33.3\u{00A0}%</td>"), "\(range)")
                // The events table: custom events with visitors and events sent; no pageview, no engagement.
                #expect(html.contains("<th>Events</th><th>Visitors</th><th>Events</th>"), "\(range)")
                let events = try await client.page("/sites/\(id)/export?range=\(range)&dimension=name", owner).1
                #expect(events == "name,visitors,events\r\nconversion,2,3\r\nsignup,1,1\r\n", "\(range)")
                let json = try await client.page("/sites/\(id)/export?range=\(range)&dimension=name&format=json", owner).1
                #expect(json.contains(#""rows":[{"value":"conversion","visitors":2,"events":3},{"value":"signup","visitors":1,"events":1}]"#))
                let api = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?range=\(range)", method: .get,
                                                                  headers: [.authorization: "Bearer \(key)"]).body)
                #expect(api.contains(#""conversions":5,"revenue":{"USD":120,"EUR":79}"#), "\(api)")
            }
            // Filters: conversions of the filtered visits only.
            let organic = try await client.page("/sites/\(id)?range=today&f.source_type=organic", owner).1
            #expect(organic.contains("<span>Conversions</span><strong>2</strong>") && organic.contains("<span>Revenue</span><strong>€79.00</strong>"))
            let email = try await client.page("/sites/\(id)?range=today&f.source_type=email", owner).1
            #expect(email.contains("<span>Conversions</span><strong>1</strong>") && email.contains("<span>Revenue</span><strong>US$100.00</strong>"))
            // An event filter keeps the visits that sent it: B's visit, its pageview and its lead.
            let signups = try await client.page("/sites/\(id)?range=today&f.name=signup", owner).1
            #expect(signups.contains("<span>Visitors</span><strong>1</strong>") && signups.contains("<span>Pageviews</span><strong>1</strong>"))
            #expect(signups.contains("<span>Conversions</span><strong>1</strong>") && signups.contains("<span>Revenue</span><strong>0.00</strong>"))
            let sources = try await client.page("/sites/\(id)/export?range=today&f.name=signup&dimension=source_type", owner).1
            #expect(sources == "source_type,visitors,pageviews\r\ndirect,1,1\r\n")
            let overview = try await client.page("/export/overview?range=today", owner).1
            #expect(overview.contains(",3,3,5,120.00 USD · 79.00 EUR,"), "\(overview)")
        }
        // Commission rests on the providers' signed reports: the two webhook sales, not the pixel's lead or sales.
        let site = try #require(try f.t.database.site(id: id))
        let commission = try #require(try Commission.report(database: f.t.database, site: site, month: Commission.month(of: f.t.clock.now)))
        #expect(commission.sales == 2 && commission.leads == 0 && commission.totalRevenue == 120 && commission.otherCurrency == 0)
    }

    /// The chart draws any metric of the scenario (all of it in today's 12:00 hour): 3 visitors,
    /// 3 visits, 3 pageviews, 5 conversions, revenue 120 USD and 79 EUR, charted one currency at
    /// a time; by the hour (today) and by the day (30 days), from the raw events, the rollups
    /// and the engine. A viewer (k = 5) of the organic visit sees no small figure.
    @Test func theChartDrawsEveryMetricOneCurrencyAtATime() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        let id = f.t.site.id
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for pass in ["raw events", "rollups", "engine"] {
                if pass == "rollups" { try f.rollUp(); f.t.database.facts.unload(site: id) }
                if pass == "engine" { try f.t.database.facts.reconcile() }
                for (range, when) in [("today", "10 Mar 2026 12:00 (UTC+00:00) (so far)"), ("30d", "10 Mar 2026 (so far)")] {
                    let context = "\(range) \(pass)"
                    let page = try await client.page("/sites/\(id)?range=\(range)", owner).1
                    #expect(page.contains("<title>\(when): 3 visitors, 3 visits, 3 pageviews, 5 conversions, revenue US$120.00 · €79.00</title>"),
                            "\(context)")
                    #expect(page.contains("<tr><td>\(when)</td><td>3</td><td>3</td><td>3</td><td>5</td><td>US$120.00 · €79.00</td></tr>"), "\(context)")
                    // The switch: revenue per currency, the larger first.
                    #expect(page.contains(#"<a href="?metric=conversions&amp;range=\#(range)">Conversions</a>"#), "\(context)")
                    #expect(page.contains(#"<a href="?currency=USD&amp;metric=revenue&amp;range=\#(range)">Revenue in USD</a> <a href="?currency=EUR&amp;metric=revenue&amp;range=\#(range)">Revenue in EUR</a>"#),
                            "\(context)")
                    // 5 conversions on a scale of 6 (steps of 2); 79 EUR on a scale of 80 (steps of 20); 3 visits on 3.
                    let conversions = try await client.page("/sites/\(id)?range=\(range)&metric=conversions", owner).1
                    #expect(conversions.contains(#"aria-label="Conversions over time, scale up to 6""#) && conversions.contains(#"height="100.0""#),
                            "\(context)")
                    let euros = try await client.page("/sites/\(id)?range=\(range)&metric=revenue&currency=EUR", owner).1
                    #expect(euros.contains(#"aria-label="Revenue in EUR over time, scale up to 80""#) && euros.contains(#"height="118.5""#), "\(context)")
                    #expect(euros.contains(#"aria-current="true">Revenue in EUR</a>"#) && euros.contains("<figcaption>Revenue in EUR, "), "\(context)")
                    let visits = try await client.page("/sites/\(id)?range=\(range)&metric=visits", owner).1
                    #expect(visits.contains(#"aria-label="Visits over time, scale up to 3""#) && visits.contains(#"height="120.0""#), "\(context)")
                    // Filtered to the organic visit: A's two sales, 79 EUR, the only currency.
                    let organic = try await client.page("/sites/\(id)?range=\(range)&f.source_type=organic&metric=revenue", owner).1
                    #expect(organic.contains("<tr><td>\(when)</td><td>1</td><td>1</td><td>1</td><td>2</td><td>€79.00</td></tr>"), "\(context)")
                    #expect(organic.contains(#"aria-current="true">Revenue in EUR</a>"#) && organic.contains(#"scale up to 80""#), "\(context)")
                }
            }
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let organic = try await client.page("/sites/\(id)?range=today&f.source_type=organic&metric=conversions", viewer).1
            #expect(organic.contains("<tr><td>10 Mar 2026 12:00 (UTC+00:00) (so far)</td><td>&lt; 5</td><td>–</td><td>–</td><td>&lt; 5</td><td>–</td></tr>"),
                    "\(organic)")
            #expect(!organic.contains("€79.00"))
            // The view's revenue is withheld from the viewer: no revenue chart, not even the currencies.
            #expect(!organic.contains("metric=revenue") && !organic.contains("EUR"), "\(organic)")
            let asked = try await client.page("/sites/\(id)?range=today&f.source_type=organic&metric=revenue&currency=EUR", viewer).1
            // (the links keep the reader's own query, currency=EUR included)
            #expect(asked.contains(#"aria-label="Visitors over time"#) && !asked.contains("Revenue in") && !asked.contains("€"), "\(asked)")
            // A sale of 10 sent without a currency is charted on its own.
            let now = Int64(f.t.clock.now.timeIntervalSince1970 * 1000)
            #expect(try f.t.database.insertConversion(ConversionRow(siteID: id, provider: "stripe", externalID: "pi_bare", kind: .sale,
                                                                    timestamp: now - 1000, value: 10, currency: nil)))
            let page = try await client.page("/sites/\(id)?range=today", owner).1
            #expect(page.contains(#"<a href="?currency=none&amp;metric=revenue&amp;range=today">Revenue without a currency</a>"#), "\(page)")
            let bare = try await client.page("/sites/\(id)?range=today&metric=revenue&currency=none", owner).1
            #expect(bare.contains(#"aria-label="Revenue over time, scale up to 10""#) && bare.contains("<td>US$120.00 · €79.00 · 10.00</td>"), "\(bare)")
            // A refund alone in the 10:00 hour: the owner reads it, a viewer does not (it is one person's).
            #expect(try f.t.database.insertConversion(ConversionRow(siteID: id, provider: "stripe", externalID: "re_lone", kind: .refund,
                                                                    timestamp: now - 100 * 60_000, value: -20, currency: "USD", refersTo: "pi_lone")))
            let hour = "<tr><td>10 Mar 2026 10:00 (UTC+00:00)</td><td>0</td><td>0</td><td>0</td><td>0</td>"
            let owned = try await client.page("/sites/\(id)?range=today", owner).1
            #expect(owned.contains(hour + "<td>-US$20.00</td></tr>"), "\(owned)")
            let viewed = try await client.page("/sites/\(id)?range=today", viewer).1
            #expect(viewed.contains(hour + "<td>–</td></tr>") && !viewed.contains("-US$20.00"), "\(viewed)")
        }
    }

    /// A sale today from yesterday's organic visit counts under the source filter, though the
    /// visit lies before the range.
    @Test func aFilteredViewCountsAConversionWhoseVisitCameBefore() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        let id = f.t.site.id
        let visit = try #require(try f.t.database.conversions(site: id).first { $0.provider == "pixel" }?.visit)
        var later = ConversionRow(siteID: id, provider: "stripe", externalID: "pi_later", kind: .sale,
                                  timestamp: Int64(f.t.clock.now.timeIntervalSince1970 * 1000) + 86_400_000 - 60_000, value: 5, currency: "EUR")
        later.visit = visit
        later.attributedVia = "subject"
        #expect(try f.t.database.insertConversion(later))
        f.t.clock.advance(day)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let organic = try await client.page("/sites/\(id)?range=today&f.source_type=organic", owner).1
            #expect(organic.contains("<span>Conversions</span><strong>1</strong>") && organic.contains("<span>Revenue</span><strong>€5.00</strong>"))
            let direct = try await client.page("/sites/\(id)?range=today&f.source_type=direct", owner).1
            #expect(direct.contains("<span>Conversions</span><strong>0</strong>"))
        }
    }

    /// The upgrade stores the conversions the pixel tracked before it, attributed to their visits.
    @Test func theUpgradeCountsConversionsThePixelTrackedBefore() async throws {
        let (dir, path) = try databaseBefore(upgrade: "v11-visit-acquisition")
        defer { _ = dir }
        let ts = Int64(noon.timeIntervalSince1970 * 1000)
        #expect(try sqlite3(path, """
            INSERT INTO sessions (id, site_id, visitor, decision, started_at, last_seen, pageviews, source_type, referrer_host)
              VALUES (1, 'oldsite', 7, 'anonymous', \(ts), \(ts + 60000), 1, 'organic', 'google.com');
            INSERT INTO sessions (id, site_id, visitor, subject, decision, started_at, last_seen, pageviews, source_type)
              VALUES (2, 'oldsite', 8, 4242, 'identified', \(ts), \(ts), 1, 'paid');
            INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, subject, attributed_via, last_source_type, last_ts)
              VALUES ('oldsite', 'stripe', 'pi_1', 'sale', \(ts + 5000), 100, 'USD', 4242, 'subject', 'paid', \(ts));
            INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, refers_to, attributed_via, last_source_type, last_ts)
              VALUES ('oldsite', 'stripe', 're_1', 'refund', \(ts + 9000), -40, 'USD', 'pi_1', 'subject', 'paid', \(ts));
            INSERT INTO events (site_id, client_id, ts, name, path, decision, visitor, session_id, source_type, referrer_host, value, currency)
              VALUES ('oldsite', 'e1', \(ts), 'pageview', '/', 'anonymous', 7, 1, 'organic', 'google.com', NULL, NULL),
                     ('oldsite', 'e2', \(ts + 1000), 'conversion', '/', 'anonymous', 7, 1, 'organic', 'google.com', 49, 'EUR'),
                     ('oldsite', 'e3', \(ts + 2000), 'conversion', '/', 'anonymous', 7, 1, 'organic', 'google.com', NULL, NULL);
            """).status == 0)
        let upgraded = try AppDatabase(path: path)
        let c = try upgraded.conversions(site: "oldsite").filter { $0.provider == "pixel" }
        #expect(c.map(\.kind) == [.sale, .lead] && c.map(\.value) == [49, 0] && c.allSatisfy { $0.visit == 1 && $0.lastTouch?.sourceType == "organic" })
        // A subject-linked sale gets the visit of its last touch, its refund the sale's.
        let stripe = try upgraded.conversions(site: "oldsite").filter { $0.provider == "stripe" }
        #expect(stripe.map(\.visit) == [2, 2])
    }
}
