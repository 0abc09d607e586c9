@testable import Admin
import Collector
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Retention
@testable import Store
import Storage
import Testing

/// Issue 13: events keep the time the browser gave them (`ts`) when the pixel held them back,
/// within 72 hours behind and 5 minutes ahead of the server's clock; a past day that receives
/// one keeps its loaded figures, with a note, until the rollup job rebuilds it.
@Suite struct ClientTimeTests {
    static let headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA]

    @Test(arguments: CollectorHTTPTests.Transport.allCases)
    func eventsKeepTheirOwnTimeWithinTheWindowAndOtherwiseGetAReason(_ transport: CollectorHTTPTests.Transport) async throws {
        let t = try TestCollector()
        let now = Int64(t.clock.now.timeIntervalSince1970 * 1000)
        try await CollectorHTTPTests().app(t, transport).test(CollectorHTTPTests().setup(transport)) { client in
            func post(_ ts: String, id: String) async throws -> (HTTPResponse.Status, String) {
                let r = try await client.execute(uri: "/api/event", method: .post, headers: Self.headers, body: ByteBuffer(string:
                    #"{"site":"\#(t.site.id)","url":"https://example.com/\#(id)","id":"\#(id)","ts":\#(ts)}"#))
                return (r.status, String(buffer: r.body))
            }
            #expect(try await post("\(now - 2 * 3_600_000)", id: "two-hours-ago").0 == .accepted)
            #expect(try await post("\(now - 71 * 3_600_000)", id: "three-days-ago").0 == .accepted)
            #expect(try await post("\(now + 4 * 60_000)", id: "clock-ahead").0 == .accepted)
            for (ts, id) in [("\(now - 73 * 3_600_000)", "too-old"), ("\(now + 6 * 60_000)", "too-far-ahead")] {
                let (status, body) = try await post(ts, id: id)
                #expect(status == .badRequest && body.contains("ts must lie within the last 72 hours"), "\(body)")
            }
            for (ts, reason) in [(#""yesterday""#, "ts must be a number"), ("1.5", "whole milliseconds"), ("1e300", "whole milliseconds")] {
                let (status, body) = try await post(ts, id: "bad")
                #expect(status == .badRequest && body.contains(reason), "\(body)")
            }
        }
        let stored = Dictionary(uniqueKeysWithValues: try t.database.events(site: t.site.id).map { ($0.clientID!, $0.timestamp) })
        #expect(stored == ["two-hours-ago": now - 2 * 3_600_000, "three-days-ago": now - 71 * 3_600_000, "clock-ahead": now + 4 * 60_000])
        // Three visits: an event two hours old does not join the visit of one three days old, nor the other way round.
        #expect(Set(try t.database.events(site: t.site.id).compactMap(\.sessionID)).count == 3)
    }

    @Test func aLateEventWaitsForItsDaysRebuildAndThePageSaysSo() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        for i in 0..<3 {
            try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/yesterday")], ip: "81.2.69.\(80 + i)")
        }
        f.t.clock.advance(day)
        try f.rollUp()
        #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10).isEmpty)
        // A phone that was offline since yesterday noon sends its queued pageview.
        let yesterday = Int64(f.t.clock.now.timeIntervalSince1970 * 1000) - 86_400_000
        var queued = IncomingEvent(site: id, url: "https://example.com/offline")
        queued.clientTime = yesterday + 60_000
        try await f.t.ingest([queued], ip: "81.2.69.99")
        let yesterdayDay = yesterday / 86_400_000
        #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10) == [yesterdayDay])
        // Where the engine holds nothing (the CLI, a server still loading), the raw events answer
        // at once.
        let raw = try f.t.database.summary(site: id, from: (yesterdayDay - 6) * 86_400_000, to: (yesterdayDay + 2) * 86_400_000, filters: Filters())
        #expect(raw.visitors == 4)
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            // The engine keeps answering from yesterday's loaded copy (no scan of the raw events
            // at every view while late events trickle in) and the page says one day waits for them.
            let page = try await client.page("/sites/\(id)?range=7d", owner).1
            #expect(page.contains("<span>Visitors</span><strong>3</strong>") && page.contains("arrived for one day of this period")
                    && !page.contains("still being built"), "\(page.components(separatedBy: "<span>Visitors</span>").dropFirst().first?.prefix(40) ?? "")")
            #expect(try await client.page("/sites/\(id)/export?range=7d&dimension=path", owner).1 == "path,visitors,pageviews\r\n/yesterday,3,3\r\n")
            // The rollup job's next run (within a minute) rebuilds the day: the late event is counted.
            try f.rollUp()
            #expect(try f.t.database.daysWithoutRollup(site: id, limit: 10).isEmpty)
            let rebuilt = try await client.page("/sites/\(id)?range=7d", owner).1
            #expect(rebuilt.contains("<span>Visitors</span><strong>4</strong>") && !rebuilt.contains("arrived for")
                    && !rebuilt.contains("still being built"),
                    "\(rebuilt.components(separatedBy: "<span>Visitors</span>").dropFirst().first?.prefix(40) ?? "")")
            #expect(try await client.page("/sites/\(id)/export?range=7d&dimension=path", owner).1
                    == "path,visitors,pageviews\r\n/yesterday,3,3\r\n/offline,1,1\r\n")
        }
    }

    /// After a start, until the engine has loaded, a view it does not hold answers 503 "still
    /// loading" with Retry-After (pages reload by themselves) instead of being counted from the
    /// raw events, which takes minutes on a large site; once loaded, the figures are there.
    @Test func viewsWaitForTheEngineAfterAStartInsteadOfScanningTheRawEvents() async throws {
        let f = try await DashboardFixture()
        let id = f.t.site.id
        for i in 0..<3 { try await f.t.ingest([IncomingEvent(site: id, url: "https://example.com/a")], ip: "81.2.69.\(40 + i)") }
        try f.rollUp()
        let key = try f.t.issueKey()
        // A restart: nothing in memory, the first rollup run not done yet.
        f.t.database.facts.unload(site: id)
        f.t.database.facts.expectLoad()
        try await f.app.test(.router) { client in
            let owner = try #require(try await client.login("owner@example.org", f.ownerPassword).1)
            for path in ["/sites/\(id)?range=7d&f.path=%2Fa", "/sites/\(id)?range=7d", "/sites/\(id)/export?range=7d&dimension=path"] {
                let (status, body, headers) = try await client.page(path, owner)
                #expect(status == .serviceUnavailable && headers[.retryAfter] == "5", "\(path): \(status)")
                #expect(body.contains("Still loading") && body.contains(#"<meta http-equiv="refresh" content="5">"#), "\(path)")
            }
            let api = try await client.execute(uri: "/api/v1/sites/\(id)/stats?range=7d", method: .get, headers: [.authorization: "Bearer \(key)"])
            #expect(api.status == .serviceUnavailable && api.headers[.retryAfter] == "5" && String(buffer: api.body).contains("loading"))
            // The overview reads the rollups and answers meanwhile.
            #expect(try await client.page("/", owner).0 == .ok)
            // The first rollup run loads every day: the views answer.
            try f.rollUp()
            #expect(!f.t.database.facts.isLoading)
            let page = try await client.page("/sites/\(id)?range=7d&f.path=%2Fa", owner)
            #expect(page.0 == .ok && page.1.contains("<span>Visitors</span><strong>3</strong>"))
            #expect(try await client.page("/sites/\(id)/export?range=7d&dimension=path", owner).1 == "path,visitors,pageviews\r\n/a,3,3\r\n")
        }
    }
}
