@testable import Admin
import Collector
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Store
import Storage
import Testing
import Traffic

/// Issue 14: channels and source names decided from the datasets, stored per visit, shown as
/// breakdowns and filters; rows stored before are filled in by the backfill.
@Suite struct ChannelTests {
    /// Six visits, each copied from five addresses (k-anonymity shows every row), on one day:
    /// - GMX webmail (its dereferrer) to /a, then internal /b: Email, GMX, 2 pageviews;
    /// - chatgpt.com to /a: AI Assistants, ChatGPT, 1;
    /// - Google with a gclid to /a: Paid Search, Google, 1;
    /// - l.facebook.com with an fbclid to /a: Organic Social, Facebook, 1;
    /// - typed /a: Direct, 1;
    /// - utm_medium=affiliate from partner.example.net to /a: Affiliates, 1.
    func scenario(_ f: DashboardFixture) async throws {
        let site = f.t.site.id
        func page(_ path: String, referrer: String? = nil) -> IncomingEvent {
            IncomingEvent(site: site, url: "https://example.com\(path)", referrer: referrer)
        }
        for n in 0..<5 {
            f.t.clock.set(noon)
            try await f.t.ingest([page("/a", referrer: "https://deref-gmx.net/mail/client/abc/dereferrer/")], ip: "81.2.\(n).10")
            f.t.clock.advance(20)
            try await f.t.ingest([page("/b", referrer: "https://example.com/a")], ip: "81.2.\(n).10")
            try await f.t.ingest([page("/a", referrer: "https://chatgpt.com/")], ip: "81.2.\(n).11")
            try await f.t.ingest([page("/a?gclid=xyz", referrer: "https://www.google.com/")], ip: "81.2.\(n).12")
            try await f.t.ingest([page("/a?fbclid=abc", referrer: "https://l.facebook.com/")], ip: "81.2.\(n).13")
            try await f.t.ingest([page("/a")], ip: "81.2.\(n).14")
            try await f.t.ingest([page("/a?utm_source=partner&utm_medium=affiliate", referrer: "https://partner.example.net/")],
                                 ip: "81.2.\(n).15")
        }
    }

    static let channels = "channel,visitors,pageviews\r\nEmail,5,10\r\nAI Assistants,5,5\r\nAffiliates,5,5\r\nDirect,5,5\r\n"
        + "Organic Social,5,5\r\nPaid Search,5,5\r\n"
    static let names = "source_name,visitors,pageviews\r\n,10,10\r\nGMX,5,10\r\nChatGPT,5,5\r\nFacebook,5,5\r\nGoogle,5,5\r\n"

    func checkFigures(_ f: DashboardFixture, ranges: [String]) async throws {
        let id = f.t.site.id
        let key = try f.t.issueKey()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for range in ranges {
                #expect(try await client.page("/sites/\(id)/export?range=\(range)&dimension=channel", owner).1 == Self.channels, "\(range)")
                let names = try await client.page("/sites/\(id)/export?range=\(range)&dimension=source_name", owner).1
                #expect(names == Self.names, "\(range): \(names)")
                let json = try await client.page("/sites/\(id)/export?range=\(range)&dimension=channel&format=json", owner).1
                #expect(json.contains(#"{"value":"Email","visitors":5,"pageviews":10},{"value":"AI Assistants","visitors":5,"pageviews":5}"#))
                let html = try await client.page("/sites/\(id)?range=\(range)", owner).1
                #expect(html.contains("<h2>Channels</h2>") && html.contains(#"class="filter">Paid Search</a></td><td>5</td><td>5</td>"#), "\(range)")
                // A filter on a channel keeps every page of those visits.
                let email = try await client.page("/sites/\(id)/export?range=\(range)&f.channel=Email&dimension=path", owner).1
                #expect(email == "path,visitors,pageviews\r\n/a,5,5\r\n/b,5,5\r\n", "\(range)")
                let api = try await client.execute(uri: "/api/v1/sites/\(id)/stats?range=\(range)&dimension=source_name&filters=channel%3D%3DEmail",
                                                   method: .get, headers: [.authorization: "Bearer \(key)"])
                let body = String(buffer: api.body)
                #expect(body.contains(#""results":[{"value":"GMX","visitors":5,"pageviews":10}]"#), "\(range): \(body)")
            }
        }
    }

    @Test func channelsAndSourceNamesCountVisits() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        let sessions = try f.t.database.events(site: f.t.site.id)
        #expect(sessions.filter { $0.path == "/b" }.map(\.channel) == Array(repeating: "Email", count: 5))
        try await checkFigures(f, ranges: ["today"])
        try f.rollUp()
        try await checkFigures(f, ranges: ["today", "30d"])
    }

    /// Rows stored before channels existed: the backfill gives them theirs, marks their days
    /// stale, and the figures (from the rollups and the engine) are the same as for new rows.
    @Test func theBackfillFillsRowsStoredBeforeChannels() async throws {
        let f = try await DashboardFixture()
        try await scenario(f)
        try f.rollUp()
        let path = f.t.database.path!
        #expect(try sqlite3(path, "UPDATE events SET channel = NULL, source_name = NULL; UPDATE sessions SET channel = NULL, source_name = NULL;")
            .status == 0)
        #expect(try backfillChannels(database: f.t.database, referrers: TrafficClassifier.installed.referrers) == "65 row(s) given their channel")  // 35 events, 30 visits
        #expect(try backfillChannels(database: f.t.database, referrers: TrafficClassifier.installed.referrers) == "nothing to fill")
        let day = Int64(noon.timeIntervalSince1970) / 86_400
        #expect(try sqlite3(path, "SELECT day FROM rollup_stale").output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(day)")
        #expect(try sqlite3(path, "SELECT count(*) FROM events WHERE channel IS NULL").output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        try f.rollUp()
        try await checkFigures(f, ranges: ["today", "30d"])
    }
}
