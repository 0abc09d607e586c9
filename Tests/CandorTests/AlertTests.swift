import Actions
import Consent
import Collector
import Foundation
import Logging
@testable import Notify
import Privacy
import GRDB
@testable import Store
import Synchronization
import Testing

/// Alert rules on an injected clock: a rule fires once while its condition holds, resolves when it
/// stops, keeps quiet for its cooldown, and a spike is measured against the same hour of the same
/// weekday in the weeks before (hand-counted).
@Suite struct AlertTests {
    func engine(_ t: TestCollector) -> AlertEngine {
        AlertEngine(database: t.database, dataDirectory: t.dir.path,
                    notifier: Notifier(database: t.database, mailer: nil, box: nil, logger: Logger(label: "test"),
                                       readsExactFigures: { user, _ in user.role == .owner || user.role == .admin }), now: t.clock.closure)
    }

    /// What the process counts (bad webhook signatures, write errors) fires when it grew by the
    /// threshold within the last hour and resolves when an hour passes without; a GeoIP database
    /// fires past its age; dead-lettered deliveries and failed job runs from the database.
    @Test func processCountersDatabasesAndJobsFireAndResolve() async throws {
        let t = try TestCollector()
        let state = Mutex(AlertSignals(badSignatures: 0, writeErrors: 0,
                                       geoDatabases: [(name: "City", built: t.clock.now.addingTimeInterval(-20 * 86_400))]))
        let alerts = AlertEngine(database: t.database, dataDirectory: t.dir.path,
                                 notifier: Notifier(database: t.database, mailer: nil, box: nil, logger: Logger(label: "test"),
                                                    readsExactFigures: { _, _ in true }),
                                 now: t.clock.closure, signals: { state.withLock { $0 } })
        func rule(_ kind: String, _ threshold: Double) throws -> String {
            try t.administration.addAlertRule(site: nil, kind: kind, siteScoped: false, threshold: threshold, cooldownMinutes: 0, by: .cli).id
        }
        let webhooks = try rule("webhooks", 3), writes = try rule("writes", 1), geoip = try rule("geoip", 30)
        let destinations = try rule("destinations", 2), jobs = try rule("jobs", 1)
        // The counters start at 0 with the process (and the engine).
        #expect(try await alerts.tick() == ([], []))
        t.clock.advance(600)
        state.withLock { $0.badSignatures = 2; $0.writeErrors = 1 }
        #expect(try await alerts.tick().fired == [writes])
        t.clock.advance(600)
        state.withLock { $0.badSignatures = 3 }                           // 3 within the hour
        #expect(try await alerts.tick().fired == [webhooks])
        // An hour without more: both resolve.
        t.clock.advance(3601)
        #expect(Set(try await alerts.tick().resolved) == [webhooks, writes])
        // The GeoIP database turns 30 days old.
        t.clock.advance(10 * 86_400)
        #expect(try await alerts.tick().fired == [geoip])
        // Two conversions given up on by a destination within the hour; a job whose last run failed.
        try t.database.recordRun(job: "purge", at: Int64(t.clock.now.timeIntervalSince1970 * 1000), detail: "failed: disk I/O error")
        try t.database.insertDeadDeliveriesForTest(site: t.site.id, count: 2, at: Int64(t.clock.now.timeIntervalSince1970 * 1000))
        #expect(Set(try await alerts.tick().fired) == [destinations, jobs])
        let messages = try t.database.alertHistory(limit: 10).map(\.message)
        #expect(messages.contains { $0.contains("3 webhook request(s) refused for a bad signature since 2026-") }, "\(messages)")
        #expect(messages.contains { $0.contains("1 event(s) could not be written") })
        #expect(messages.contains { $0.contains("GeoIP database(s) older than 30 days: City built") })
        #expect(messages.contains { $0.contains("2 conversion(s) given up on by destinations within the last hour (Test: 2)") })
        #expect(messages.contains { $0.contains("purge (failed: disk I/O error)") })
        // The job succeeds again, the dead deliveries age past the hour: both resolve.
        try t.database.recordRun(job: "purge", at: Int64(t.clock.now.timeIntervalSince1970 * 1000), detail: "0 row(s) deleted or cleared")
        t.clock.advance(3601)
        #expect(Set(try await alerts.tick().resolved) == [destinations, jobs])
    }

    /// Evaluations every 30 s for two hours: the growth is over the last hour, not since the start.
    @Test func aCounterWindowLooksBackOneHourWhateverTheEvaluationInterval() {
        let window = CounterWindow(started: 0)
        var last = (count: 0, since: Int64(0))
        for i in 1...240 { last = window.growth(i, at: Int64(i) * 30_000) }   // one more every 30 s
        // At 7,200 s the baseline is the latest sample at least an hour old: at 3,600 s (value 120).
        #expect(last.count == 120 && last.since == 3_600_000, "\(last)")
    }

    @Test func aSilentSiteFiresOnceResolvesAndWaitsItsCooldown() async throws {
        let t = try TestCollector()
        let alerts = engine(t)
        let rule = try t.administration.addAlertRule(site: t.site.id, kind: "silent", siteScoped: true, threshold: 2, cooldownMinutes: 180, by: .cli)
        // No event yet: a site that never sent one is not "silent" (not installed yet).
        #expect(try await alerts.tick().fired.isEmpty)
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/a")])
        t.clock.advance(3600)
        #expect(try await alerts.tick().fired.isEmpty)
        t.clock.advance(3601)   // 2 h 0 min 1 s after the event
        #expect(try await alerts.tick().fired == [rule.id])
        for _ in 0..<3 { t.clock.advance(600); #expect(try await alerts.tick() == ([], [])) }   // once, not every minute
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/b")])
        #expect(try await alerts.tick().resolved == [rule.id])
        let resolvedAt = t.clock.now
        // Silent again after 2 h, but within the 3 h cooldown after resolving: quiet until it ends.
        t.clock.advance(2 * 3600 + 60)
        #expect(try await alerts.tick().fired.isEmpty)
        t.clock.set(resolvedAt.addingTimeInterval(3 * 3600))
        #expect(try await alerts.tick().fired == [rule.id])
        let history = try t.database.alertHistory(limit: 10)
        #expect(history.map(\.state) == ["fired", "resolved", "fired"])
        #expect(history.last?.message.contains("Test: no event for 2 hours") == true, "\(history.last?.message ?? "")")
        #expect(history[1].message.hasPrefix("Resolved: silent on Test"))
        #expect(try t.database.alertRules().first?.firingSince != nil)
    }

    /// Pageviews in the hour 11:00–12:00 of four Wednesdays: 3, 5, 4, 4 (baseline 4); this
    /// Wednesday 20 from /launch (14) and /pricing (6), 14 of them from one newsletter. A spike
    /// rule of 3× fires (20 ≥ 12, and 16 more than usual); one of 6× does not (20 < 24); nor a drop.
    @Test func aSpikeIsMeasuredAgainstTheSameHourOfTheSameWeekday() async throws {
        let now = Date(timeIntervalSince1970: 1_773_835_200)   // Wednesday 18 March 2026, 12:00 UTC
        let t = try TestCollector(start: now.addingTimeInterval(-40 * 86_400))
        for (week, count) in [(1, 3), (2, 5), (3, 4), (4, 4)] {
            t.clock.set(now.addingTimeInterval(-Double(week) * 7 * 86_400 - 1800))   // 11:30 that Wednesday
            for i in 0..<count { try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/w\(week)")], ip: "81.2.69.\(i + 1)") }
        }
        t.clock.set(now.addingTimeInterval(-1800))
        for i in 0..<20 {
            let url = i < 14 ? "https://example.com/launch?utm_source=newsletter" : "https://example.com/pricing"
            try await t.ingest([IncomingEvent(site: t.site.id, url: url)], ip: "81.2.70.\(i + 1)")
        }
        t.clock.set(now.addingTimeInterval(60))
        let alerts = engine(t)
        let three = try t.administration.addAlertRule(site: t.site.id, kind: "spike", siteScoped: true, threshold: 3, cooldownMinutes: 60, by: .cli)
        let six = try t.administration.addAlertRule(site: t.site.id, kind: "spike", siteScoped: true, threshold: 6, cooldownMinutes: 60, by: .cli)
        let drop = try t.administration.addAlertRule(site: t.site.id, kind: "drop", siteScoped: true, threshold: 2, cooldownMinutes: 60, by: .cli)
        let changed = try await alerts.tick()
        #expect(changed.fired == [three.id])
        _ = (six, drop)
        let message = try #require(try t.database.alertHistory(limit: 1).first?.message)
        #expect(message.contains("20 pageviews from 2026-03-18T11:00:00.000+00:00 to 2026-03-18T12:00:00.000+00:00, against 4.0"), "\(message)")
        #expect(message.contains("Top pages: /launch (14), /pricing (6)") && message.contains("Top sources: newsletter (14), direct (6)"), "\(message)")
        // A rule watching the install needs no site, a site rule needs one.
        #expect(throws: ActionError.self) { try t.administration.addAlertRule(site: nil, kind: "spike", siteScoped: true, threshold: 3, cooldownMinutes: 0, by: .cli) }
        #expect(throws: ActionError.self) { try t.administration.addAlertRule(site: t.site.id, kind: "disk", siteScoped: false, threshold: 3, cooldownMinutes: 0, by: .cli) }
    }

    /// Alert messages hold exact counts: e-mail goes only to accounts that read the site's exact
    /// figures (a viewer and a restricted manager who asked for alerts get none); values sent by
    /// visitors cannot add a mention, a link or markup in Slack and Teams.
    @Test func alertsReachOnlyReadersOfExactFiguresAndEscapeVisitorValues() throws {
        let t = try TestCollector()
        for (email, role) in [("owner@example.org", Role.owner), ("viewer@example.org", .viewer), ("manager@example.org", .manager)] {
            let u = try t.database.addUser(User(email: email, passwordHash: "x", role: role, createdAt: noon))
            try t.database.setUserSites(user: u.id!, sites: [t.site.id])
            try t.administration.setAlertEmails(email: email, true, by: .cli)
        }
        let notifier = Notifier(database: t.database, mailer: nil, box: nil, logger: Logger(label: "test"),
                                readsExactFigures: { user, _ in readsExactFigures(user.role, policy: .default) })
        #expect(try notifier.recipients(site: t.site.id) == ["owner@example.org"])
        #expect(try notifier.recipients(site: nil) == ["owner@example.org"])
        let hostile = "Top sources: <!channel> <https://evil.example|sign in> [x](https://evil.example) & more"
        #expect(Notifier.slackEscaped(hostile) == "Top sources: &lt;!channel&gt; &lt;https://evil.example|sign in&gt; [x](https://evil.example) &amp; more")
        let teams = Notifier.teamsEscaped(hostile + "\nnext")
        #expect(!teams.contains("<!") && !teams.contains("](") && teams.contains("\\[x\\]\\(https://evil.example\\)") && teams.hasSuffix("<br>next"))
    }
}

extension AppDatabase {
    /// `count` deliveries of a new destination of `site` that were given up on at `at`.
    func insertDeadDeliveriesForTest(site: String, count: Int, at: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO destinations (site_id, kind, label, created_at, updated_at) VALUES (?, 'webhook', 'Test', ?, ?)",
                           arguments: [site, at, at])
            let destination = db.lastInsertedRowID
            for i in 0..<count {
                try db.execute(sql: """
                    INSERT INTO deliveries (destination_id, site_id, event_id, status, due_at, created_at, sent_at) VALUES (?, ?, ?, 'dead', ?, ?, ?)
                    """, arguments: [destination, site, "dead-\(i)", at, at, at])
            }
        }
    }
}
