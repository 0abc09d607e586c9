@testable import Admin
import Actions
import Collector
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Imports
import NIOCore
import Privacy
import Store
import Storage
import Testing
import Traffic

/// Imports of Plausible's and Umami's exports: the files written here follow each tool's documented
/// columns, their figures are counted by hand, and the site's page, its CSV and JSON exports and
/// the stats API show them added to collected data, marked, and only where they may be.
@Suite struct ImportTests {
    static let today = SiteCalendar.utc.day(of: Int64(noon.timeIntervalSince1970 * 1000))
    static func date(_ back: Int64) -> String { SiteCalendar.dateText(today - back) }
    static func compact(_ back: Int64) -> String { date(back).replacingOccurrences(of: "-", with: "") }

    /// Plausible's export of three days (D-6, D-5, D-4), as its files are named and laid out.
    static func plausibleFiles() -> [ImportFile] {
        let (a, b, c) = (date(6), date(5), date(4))
        let span = "_\(compact(6))_\(compact(4)).csv"
        func file(_ table: String, _ lines: [String]) -> ImportFile {
            ImportFile(name: "imported_\(table)\(span)", data: Data(lines.joined(separator: "\n").utf8 + [10]))
        }
        return [
            file("visitors", ["date,visitors,pageviews,bounces,visits,visit_duration",
                              "\(a),10,25,4,12,600", "\(b),8,16,2,9,450", "\(c),5,7,1,5,100"]),
            file("pages", ["date,hostname,page,visits,visitors,pageviews,total_scroll_depth,total_scroll_depth_visits",
                           "\(a),example.com,/,8,7,12,,", "\(a),example.com,/pricing,5,4,13,,", "\(b),example.com,/,6,6,10,,",
                           "\(b),example.com,/blog/hello,4,3,6,,", "\(c),example.com,/,5,5,7,,"]),
            file("entry_pages", ["date,entry_page,visitors,entrances,visit_duration,bounces,pageviews",
                                 "\(a),/,7,8,500,3,12", "\(a),/pricing,4,4,100,1,13", "\(b),/,8,9,450,2,16", "\(c),/,5,5,100,1,7"]),
            file("sources", ["date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces",
                             "\(a),Google,www.google.com,,,,,,10,4,4,100,1", "\(a),,,,,,,,15,6,8,500,3",
                             "\(b),,,newsletter,email,october,,,16,8,9,450,2", "\(c),Google,google.com/search,,,,,,7,5,5,100,1"]),
            file("locations", ["date,country,region,city,visitors,visits,visit_duration,bounces,pageviews",
                               "\(a),DE,DE-BE,2950159,6,7,300,2,15", "\(a),FR,FR-IDF,2988507,4,5,300,2,10",
                               "\(b),DE,DE-BE,2950159,8,9,450,2,16", "\(c),,,0,5,5,100,1,7"]),
            file("devices", ["date,device,visitors,visits,visit_duration,bounces,pageviews",
                             "\(a),Desktop,7,8,400,3,18", "\(a),Mobile,3,4,200,1,7", "\(b),Laptop,8,9,450,2,16", "\(c),Tablet,5,5,100,1,7"]),
            file("browsers", ["date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews",
                              "\(a),Microsoft Edge,120,10,12,600,4,25", "\(b),Firefox,119,8,9,450,2,16", "\(c),Safari,17,5,5,100,1,7"]),
            file("custom_events", ["date,name,link_url,path,visitors,events",
                                   "\(a),Signup,,,2,2", "\(b),Outbound Link: Click,https://x.org,,1,1", "\(b),pageview,,,1,1"]),
        ]
    }

    static var referrers: ReferrerList { TrafficClassifier.installed.referrers }

    @Test func plausibleFilesBecomeDailyAggregates() throws {
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles())
        let d = Self.today - 6
        #expect(data.days[d] == .init(visitors: 10, pageviews: 25, visits: 12, bounces: 4, durationMs: 600_000))
        #expect(data.days.count == 3)
        func value(_ day: Int64, _ key: String, _ v: String) -> (Int, Int)? { data.values[day]?[.init(dimension: key, value: v)] }
        #expect(value(d, "path", "/pricing")! == (4, 13))
        #expect(value(d, "channel", "Organic Search")! == (4, 10) && value(d, "channel", "Direct")! == (6, 15))
        #expect(value(d, "source_name", "Google")! == (4, 10) && value(d, "referrer_host", "google.com")! == (4, 10))
        #expect(value(d + 1, "channel", "Email")! == (8, 16) && value(d + 1, "utm_campaign", "october")! == (8, 16))
        #expect(value(d, "country", "DE")! == (6, 15) && value(d, "region", "DE-BE")! == (6, 15) && value(d, "city", "")! == (10, 25))
        #expect(value(d, "device", "desktop")! == (7, 18) && value(d + 1, "device", "desktop")! == (8, 16) && value(d + 2, "device", "tablet")! == (5, 7))
        #expect(value(d, "browser", "Edge")! == (10, 25) && value(d, "entry_path", "/")! == (7, 8))
        #expect(value(d + 1, "name", "Outbound Link: Click")! == (1, 1) && value(d + 1, "name", "pageview") == nil)
        // The same files read twice give the same aggregates.
        #expect(try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles()) == data)
    }

    @Test func badFilesAreRefusedWithTheReason() throws {
        let importer = Importer(referrers: Self.referrers, calendar: .utc)
        func refusal(_ files: [ImportFile]) -> String {
            do { _ = try importer.read(.plausible, files); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal([ImportFile(name: "imported_pages_20260101_20260102.csv", data: Data("date,page,visitors,pageviews\n".utf8))])
                    .contains("imported_visitors file is required"))
        #expect(refusal([ImportFile(name: "notes.csv", data: Data())]).contains("not a file of Plausible's export"))
        let badCount = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors,pageviews,bounces,visits,visit_duration\n2026-01-01,ten,1,0,1,0\n".utf8))
        #expect(refusal([badCount]) == "imported_visitors.csv, line 2: visitors is not a count (0 to 1,000,000,000): ten")
        let badDate = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors,pageviews,bounces,visits,visit_duration\n01/02/2026,1,1,0,1,0\n".utf8))
        #expect(refusal([badDate]).hasPrefix("imported_visitors.csv, line 2: date is not a date YYYY-MM-DD"))
        let missing = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors\n2026-01-01,1\n".utf8))
        #expect(refusal([missing]).contains("missing column(s) pageviews, bounces, visits, visit_duration"))
        let bounces = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors,pageviews,bounces,visits,visit_duration\n2026-01-01,1,1,3,1,0\n".utf8))
        #expect(refusal([bounces]).contains("more bounces (3) than visits (1)"))
        let unclosed = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors,pageviews,bounces,visits,visit_duration\n\"2026-01-01,1,1,0,1,0\n".utf8))
        #expect(refusal([unclosed]).hasPrefix("imported_visitors.csv, line "), "\(refusal([unclosed]))")
        // Rows of one day whose sums would overflow are refused, not summed (each count is at most 10^9).
        let huge = (0..<1_100).map { _ in "2026-01-01,1000000000,1000000000,0,1000000000,1000000000" }.joined(separator: "\n")
        let many = ImportFile(name: "imported_visitors.csv", data: Data(("date,visitors,pageviews,bounces,visits,visit_duration\n" + huge + "\n").utf8))
        #expect(refusal([many]).contains("a day's figures go past 1000000000000"), "\(refusal([many]))")
        let tooBig = ImportFile(name: "imported_visitors.csv", data: Data("date,visitors,pageviews,bounces,visits,visit_duration\n2026-01-01,1000000001,1,0,1,0\n".utf8))
        #expect(refusal([tooBig]).contains("visitors is not a count (0 to 1,000,000,000)"))
    }

    /// Hand-counted: the import brings D-6 and D-5 (D-4 has a collected visit, so it is skipped):
    /// 18 visitors, 41 pageviews, 21 visits. With the collected visit of D-4 (one pageview of
    /// /pricing, direct): 19 visitors, 42 pageviews, 22 visits. Pages: / 13 visitors 22 pageviews,
    /// /pricing 4+1 = 5 and 13+1 = 14, /blog/hello 3 and 6. Channels: Direct 6+1 = 7 (16),
    /// Email 8 (16), Organic Search 4 (10). The goal "/pricing" counts collected data only: 1
    /// visitor of 1, 100 %.
    @Test func importedDaysAddToTheViewsAndAreMarked() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        f.t.clock.set(noon.addingTimeInterval(-4 * 86_400))
        _ = try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/pricing")], ip: "81.2.69.50")
        f.t.clock.set(noon)
        try f.rollUp()
        let admin = Administration(database: f.t.database, policies: f.t.collector.policies, now: f.t.clock.closure)
        try admin.addGoal(site: id, name: "Pricing", kind: .page, match: "/pricing", by: .cli)
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles())
        // Managers may not import: imported days become every reader's figures.
        let manager = Actor(label: "user:99", standing: .user(id: 99, role: .manager, sites: [id]))
        #expect(throws: ActionError.self) { try admin.importAggregates(site: id, source: .plausible, files: ["x"], data: data, by: manager) }
        let first = try admin.importAggregates(site: id, source: .plausible, files: ["a.csv"], data: data, by: .cli)
        #expect(first.days == 2 && first.skippedDays == 1 && first.firstDay == Self.today - 6 && first.lastDay == Self.today - 5)
        // Importing the same files again replaces the first import's days: the figures do not change.
        let again = try admin.importAggregates(site: id, source: .plausible, files: ["a.csv"], data: data, by: .cli)
        #expect(try f.t.database.imports(site: id).map(\.id) == [again.id] && again.heldDays == 2)
        let key = try f.t.issueKey()
        let range = "range=custom&from=\(Self.date(6))&to=\(Self.date(4))"
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let page = try await client.page("/sites/\(id)?\(range)", owner).1
            #expect(page.contains(#"<div class="card"><span>Visitors</span><strong>19</strong>"#), "\(page)")
            #expect(page.contains(#"<div class="card"><span>Pageviews</span><strong>42</strong>"#))
            #expect(page.contains("2 days of this period are imported from Plausible"))
            #expect(page.contains(#" class="imported"><title>"#) && page.contains("(imported): 10 visitors"))
            #expect(page.contains(#"<td>Pricing <small>page /pricing</small></td><td>1</td><td>1</td><td>100.0"#), "\(page.firstMatch(of: /<td>Pricing.*/)?.output ?? "none")")
            // Filtered views count collected data only.
            let filtered = try await client.page("/sites/\(id)?\(range)&f.path=%2Fpricing", owner).1
            #expect(filtered.contains(#"<div class="card"><span>Visitors</span><strong>1</strong>"#) && !filtered.contains("imported from Plausible"))

            let csv = try await client.page("/sites/\(id)/export?\(range)&dimension=path", owner).1
            #expect(csv == "path,visitors,pageviews\r\n/,13,22\r\n/pricing,5,14\r\n/blog/hello,3,6\r\n", "\(csv)")
            let channels = try await client.page("/sites/\(id)/export?\(range)&dimension=channel&format=json", owner).1
            #expect(channels.contains(#""imported":{"days":2,"sources":["plausible"]}"#))
            #expect(channels.contains(#"{"value":"Email","visitors":8,"pageviews":16},{"value":"Direct","visitors":7,"pageviews":16},{"value":"Organic Search","visitors":4,"pageviews":10}"#),
                    "\(channels)")

            var h: HTTPFields = [.authorization: "Bearer \(key)"]
            h[.accept] = "application/json"
            let api = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=\(Self.date(6))&to=\(Self.date(4))", method: .get, headers: h).body)
            #expect(api.contains(#""visitors":19,"visits":22,"pageviews":42"#) && api.contains(#""imported":{"days":2,"sources":["plausible"]}"#), "\(api)")
            // API keys read as viewers do (k = 5): Organic Search's 4 visitors are withheld.
            let apiChannels = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=\(Self.date(6))&to=\(Self.date(4))&dimension=channel",
                                                                      method: .get, headers: h).body)
            #expect(apiChannels.contains(#""value":"Email","visitors":8"#) && !apiChannels.contains("Organic Search"), "\(apiChannels)")

            // Removed, the import leaves collected data only.
            try admin.removeImport(site: id, id: again.id, by: .cli)
            let after = try await client.page("/sites/\(id)?\(range)", owner).1
            #expect(after.contains(#"<div class="card"><span>Visitors</span><strong>1</strong>"#) && !after.contains("imported from"))
        }
        let audit = try f.t.database.auditEntries().map(\.action)
        #expect(audit.filter { $0 == "data_imported" }.count == 2 && audit.contains("import_removed"))
    }

    /// Goals count collected data only, so beside imported rows a restricted reader could read a
    /// small group of imported visitors by difference: /pricing has 4 imported visitors (D-6) and
    /// 10 collected ones (D-3); the page row shows 14, so the goal's 10 is withheld ("–") from a
    /// viewer under k = 5, and shown to the owner (with the same data and no import, the viewer reads 10).
    @Test func goalsBesideImportedRowsKeepTheKRule() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        f.t.clock.set(noon.addingTimeInterval(-3 * 86_400))
        for i in 0..<10 { _ = try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/pricing")], ip: "81.2.69.\(60 + i)") }
        // /blog/hello gets 3 + 5 visitors, so no page row is folded and /pricing's 14 shows.
        for i in 0..<5 { _ = try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/blog/hello")], ip: "81.2.69.\(80 + i)") }
        f.t.clock.set(noon)
        try f.rollUp()
        let admin = Administration(database: f.t.database, policies: f.t.collector.policies, now: f.t.clock.closure)
        try admin.addGoal(site: id, name: "Pricing", kind: .page, match: "/pricing", by: .cli)
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles())
        _ = try admin.importAggregates(site: id, source: .plausible, files: ["a.csv"], data: data, by: .cli)
        let range = "range=custom&from=\(Self.date(6))&to=\(Self.date(3))"
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let exact = try await client.page("/sites/\(id)?\(range)", owner).1
            #expect(exact.contains(#"<td>Pricing <small>page /pricing</small></td><td>10</td><td>10</td>"#))
            let viewer = try #require(try await client.login("viewer@example.org", f.viewerPassword).1)
            let seen = try await client.page("/sites/\(id)?\(range)", viewer).1
            #expect(seen.contains(#"<td>Pricing <small>page /pricing</small></td><td>–</td><td>–</td><td>–</td>"#),
                    "\(seen.firstMatch(of: /<td>Pricing.*/)?.output ?? "no goal row")")
        }
    }

    /// A day that gets collected data after it was imported counts the collected data only: the
    /// site moves from UTC to New York, and its first event (D-3 00:30 UTC) falls on D-4, an
    /// imported day. D-6..D-3: 10 + 8 imported and 1 collected visitor, not 10 + 8 + 5 + 1.
    @Test func collectedDataWinsADayItReachesAfterTheImport() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        f.t.clock.set(noon.addingTimeInterval(-3 * 86_400 - 11.5 * 3600))
        _ = try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/")], ip: "81.2.69.70")
        f.t.clock.set(noon)
        let admin = Administration(database: f.t.database, policies: f.t.collector.policies, now: f.t.clock.closure)
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles())
        #expect(try admin.importAggregates(site: id, source: .plausible, files: ["a.csv"], data: data, by: .cli).days == 3)
        try f.t.database.transaction { tx in try tx.setTimeZone(site: id, to: SiteCalendar(identifier: "America/New_York")!) }
        try f.rollUp()
        let key = try f.t.issueKey()
        try await f.app.test(.router) { client in
            let api = String(buffer: try await client.execute(uri: "/api/v1/sites/\(id)/stats?from=\(Self.date(6))&to=\(Self.date(3))", method: .get,
                                                              headers: [.authorization: "Bearer \(key)"]).body)
            #expect(api.contains(#""visitors":19,"#) && api.contains(#""imported":{"days":2,"sources":["plausible"]}"#), "\(api)")
        }
    }

    /// The settings page's upload: owners and admins only, the CSRF token inside the multipart
    /// body, a bad file answered 400 with its reason, the list and its removal.
    @Test func uploadThroughTheSettingsPage() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        try f.t.database.addUser(User(email: "manager@example.org", passwordHash: PasswordHasher.hash("manager-password-123"), role: .manager, createdAt: noon))
        let managerID = try #require(try f.t.database.users().first { $0.email == "manager@example.org" }?.id)
        try f.t.database.setUserSites(user: managerID, sites: [id])
        let b = "candorboundary7"
        @Sendable func body(csrf: String, source: String = "plausible", files: [ImportFile]) -> ByteBuffer {
            var text = "--\(b)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n"
            text += "--\(b)\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\n\(source)\r\n"
            for file in files {
                guard case .data(let d) = file.content else { continue }
                text += "--\(b)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\(file.name)\"\r\nContent-Type: text/csv\r\n\r\n"
                text += String(decoding: d, as: UTF8.self) + "\r\n"
            }
            return ByteBuffer(string: text + "--\(b)--\r\n")
        }
        try await f.app.test(.router) { client in
            func upload(_ cookie: String, _ payload: ByteBuffer) async throws -> (HTTPResponse.Status, String, HTTPFields) {
                let r = try await client.execute(uri: "/sites/\(id)/imports", method: .post,
                                                 headers: [.cookie: cookie, .contentType: "multipart/form-data; boundary=\(b)"], body: payload)
                return (r.status, String(buffer: r.body), r.headers)
            }
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            let csrf = try await client.csrf(owner)
            let manager = try #require(try await client.login("manager@example.org", "manager-password-123").1)
            let managerCSRF = try await client.csrf(manager)
            let byManager = try await upload(manager, body(csrf: managerCSRF, files: Self.plausibleFiles()))
            #expect(byManager.0 == .forbidden)
            let managerSettings = try await client.page("/sites/\(id)/settings", manager).1
            #expect(!managerSettings.contains("Imported data"))
            let forged = try await upload(owner, body(csrf: "wrong", files: Self.plausibleFiles()))
            #expect(forged.0 == .forbidden)
            let bad = try await upload(owner, body(csrf: csrf, files: [ImportFile(name: "imported_visitors_20260101_20260102.csv",
                                                                                   data: Data("date,visitors\n2026-01-01,1\n".utf8))]))
            #expect(bad.0 == .badRequest && bad.1.contains("missing column(s) pageviews, bounces, visits, visit_duration"), "\(bad.1)")
            let done = try await upload(owner, body(csrf: csrf, files: Self.plausibleFiles()))
            #expect(done.0 == .seeOther && done.2[.location] == "/sites/\(id)/settings?done=imported#imports")
            let settings = try await client.page("/sites/\(id)/settings?done=imported", owner).1
            #expect(settings.contains("<td>Plausible</td><td>\(Self.date(6)) – \(Self.date(4))</td><td>3</td>"), "\(settings)")
            let importID = try #require(try f.t.database.imports(site: id).first?.id)
            let page = try await client.page("/sites/\(id)?range=custom&from=\(Self.date(6))&to=\(Self.date(4))", owner).1
            #expect(page.contains(#"<div class="card"><span>Visitors</span><strong>23</strong>"#) && page.contains("3 days of this period are imported"))
            let removed = try await client.execute(uri: "/sites/\(id)/settings/remove-import", method: .post,
                                                   headers: [.cookie: owner, .contentType: "application/x-www-form-urlencoded"],
                                                   body: ByteBuffer(string: "csrf=\(csrf)&import=\(importID)"))
            let left = try f.t.database.imports(site: id)
            #expect(removed.status == .seeOther && left.isEmpty)
        }
    }

    /// Umami's events, hand-counted. D-6: session s1 visit v1 views / and /a and sends "cta"
    /// (from google.com, Germany, Chrome on a Mac laptop; 2 minutes), s2 visit v2 views / once
    /// from a newsletter (France, Firefox on Windows, mobile): 2 visitors, 3 pageviews, 2 visits,
    /// 1 bounce, 120 s. D-5: s1 visit v3 views /a then /b 30 s later, direct: 1 visitor, 2
    /// pageviews, 1 visit, no bounce, 30 s.
    @Test func umamiEventsAreCountedIntoDays() throws {
        let (a, b) = (Self.date(6), Self.date(5))
        let csv = """
            website_id,session_id,visit_id,event_id,hostname,browser,os,device,screen,language,country,subdivision1,subdivision2,city,url_path,url_query,referrer_path,referrer_query,referrer_domain,page_title,event_type,event_name,created_at
            w,s1,v1,e1,example.com,chrome,Mac OS,laptop,1440x900,de-DE,DE,DE-BE,,Berlin,/,,/search,,www.google.com,Home,1,,\(a) 10:00:00
            w,s1,v1,e2,example.com,chrome,Mac OS,laptop,1440x900,de-DE,DE,DE-BE,,Berlin,/a,,,,,A,1,,\(a) 10:01:00
            w,s1,v1,e3,example.com,chrome,Mac OS,laptop,1440x900,de-DE,DE,DE-BE,,Berlin,/a,,,,,A,2,cta,\(a) 10:02:00.500
            w,s2,v2,e4,example.com,firefox,Windows 10,mobile,390x844,fr-FR,FR,FR-IDF,,Paris,/,utm_source=newsletter&utm_medium=email,,,,Home,1,,\(a)T11:00:00Z
            w,s1,v3,e6,example.com,chrome,Mac OS,laptop,1440x900,de-DE,DE,DE-BE,,Berlin,/b,,,,,B,1,,\(b) 09:00:30
            w,s1,v3,e5,example.com,chrome,Mac OS,laptop,1440x900,de-DE,DE,DE-BE,,Berlin,/a,,,,,A,1,,\(b) 09:00:00
            """
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.umami, [ImportFile(name: "events.csv", data: Data(csv.utf8))])
        let d = Self.today - 6
        #expect(data.days[d] == .init(visitors: 2, pageviews: 3, visits: 2, bounces: 1, durationMs: 120_500))
        #expect(data.days[d + 1] == .init(visitors: 1, pageviews: 2, visits: 1, bounces: 0, durationMs: 30_000))
        func value(_ day: Int64, _ key: String, _ v: String) -> (Int, Int)? { data.values[day]?[.init(dimension: key, value: v)] }
        #expect(value(d, "path", "/")! == (2, 2) && value(d, "path", "/a")! == (1, 1) && value(d + 1, "path", "/a")! == (1, 1))
        #expect(value(d, "entry_path", "/")! == (2, 2) && value(d, "exit_path", "/a")! == (1, 1) && value(d + 1, "exit_path", "/b")! == (1, 1))
        #expect(value(d + 1, "entry_path", "/a")! == (1, 1))
        #expect(value(d, "channel", "Organic Search")! == (1, 2) && value(d, "channel", "Email")! == (1, 1) && value(d + 1, "channel", "Direct")! == (1, 2))
        #expect(value(d, "utm_source", "newsletter")! == (1, 1) && value(d, "referrer_host", "google.com")! == (1, 2))
        #expect(value(d, "name", "cta")! == (1, 1))
        #expect(value(d, "browser", "Chrome")! == (1, 2) && value(d, "os", "Mac OS X")! == (1, 2) && value(d, "os", "Windows")! == (1, 1))
        #expect(value(d, "device", "desktop")! == (1, 2) && value(d, "device", "mobile")! == (1, 1) && value(d, "city", "Paris")! == (1, 1))
        #expect(value(d, "country", "DE")! == (1, 2) && value(d + 1, "country", "DE")! == (1, 2))
        // An upload counts at most so many (day, value, session) triples; a visit may not last days.
        #expect(throws: ImportError.self) {
            try Importer(referrers: Self.referrers, calendar: .utc, maxCells: 10).read(.umami, [ImportFile(name: "events.csv", data: Data(csv.utf8))])
        }
        let long = "session_id,visit_id,created_at,url_path,event_type\ns1,v1,1970-01-02 00:00:00,/,1\ns1,v1,2026-01-01 00:00:00,/,1\n"
        #expect(throws: ImportError("events.csv, line 3: visit v1 lasts more than a day")) {
            try Importer(referrers: Self.referrers, calendar: .utc).read(.umami, [ImportFile(name: "events.csv", data: Data(long.utf8))])
        }
        let bad = "session_id,created_at,url_path,event_type\ns1,yesterday,/,1\n"
        #expect(throws: ImportError("events.csv, line 2: created_at is not a time YYYY-MM-DD HH:MM:SS: yesterday")) {
            try Importer(referrers: Self.referrers, calendar: .utc).read(.umami, [ImportFile(name: "events.csv", data: Data(bad.utf8))])
        }
    }

    /// Imported days follow the rollups' retention, and go with the site.
    @Test func retentionAndSiteDeletionTakeImportedDays() throws {
        let t = try TestCollector()
        let data = try Importer(referrers: Self.referrers, calendar: .utc).read(.plausible, Self.plausibleFiles())
        let admin = Administration(database: t.database, policies: t.collector.policies, now: t.clock.closure)
        _ = try admin.importAggregates(site: t.site.id, source: .plausible, files: ["a.csv"], data: data, by: .cli)
        let cutoff = SiteCalendar.utc.start(of: Self.today - 5)
        #expect(try t.database.countRollupDaysOlder(site: t.site.id, cutoff: cutoff) == 1)
        #expect(try t.database.transaction { tx in try tx.deleteOldestRollupDay(site: t.site.id, cutoff: cutoff) })
        #expect(try !t.database.transaction { tx in try tx.deleteOldestRollupDay(site: t.site.id, cutoff: cutoff) })
        #expect((try t.database.importedSpan(site: t.site.id, fromDay: Self.today - 10, toDay: Self.today).map(t.database.importedTotals)?.days ?? 0) == 2)
        // Past every day: the import goes with its last day.
        let all = SiteCalendar.utc.start(of: Self.today)
        while try t.database.transaction({ tx in try tx.deleteOldestRollupDay(site: t.site.id, cutoff: all) }) {}
        #expect(try t.database.imports(site: t.site.id).isEmpty)
        _ = try admin.importAggregates(site: t.site.id, source: .plausible, files: ["a.csv"], data: data, by: .cli)
        for table in AppDatabase.siteDataTables {
            while try t.database.transaction({ tx in try tx.deleteSiteRows(table, site: t.site.id, limit: 100) }) > 0 {}
        }
        #expect((try t.database.importedSpan(site: t.site.id, fromDay: Self.today - 10, toDay: Self.today).map(t.database.importedTotals)?.days ?? 0) == 0)
    }
}
