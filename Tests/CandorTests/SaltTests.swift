import Collector
import Consent
import Foundation
import Logging
import Privacy
import Retention
import Store
import Storage
import Testing

@Suite struct SaltTests {
    @Test func oldSaltIsDestroyedAfterOverlapAndHashesChangeByDay() async throws {
        let t = try TestCollector()
        let service = SaltRotationService(keeper: t.salts, logger: Logger(label: "test"),
                                          scrubber: Scrubber(database: t.database, policies: t.collector.policies, now: t.clock.closure),
                                          now: t.clock.closure)
        try await service.tick()
        let day1 = utcDay(t.clock.now)
        var day1Salt: [UInt8] = []
        try t.database.withSalts { day, bytes in if day == day1 { day1Salt = Array(bytes) } }
        #expect(day1Salt.count == 32)
        let h1 = try t.salts.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now).current
        #expect(try t.salts.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now).current == h1)

        // Midnight + 10 min: a new salt, yesterday's kept for the overlap.
        t.clock.set(startOfUTCDay(day1 + 1).addingTimeInterval(600))
        #expect(try await service.tick().destroyed.isEmpty)
        let during = try t.salts.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)
        #expect(during.current != h1)
        #expect(during.previous == h1)
        #expect(try t.database.saltDays() == [day1, day1 + 1])

        // After the overlap: destroyed in the database, the WAL and memory.
        t.clock.set(startOfUTCDay(day1 + 1).addingTimeInterval(SaltKeeper.defaultOverlap + 1))
        #expect(try await service.tick().destroyed == [day1])
        #expect(try t.database.saltDays() == [day1 + 1])
        #expect(t.salts.daysInMemory == [day1 + 1])
        let after = try t.salts.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)
        #expect(after.previous == nil)
        #expect(after.current == during.current)
        for suffix in ["", "-wal", "-shm"] {
            #expect(occurrences(of: day1Salt, inFile: t.dir.file("candor.sqlite" + suffix)) == 0, "salt bytes in candor.sqlite\(suffix)")
        }
        // A restart loads only what is left.
        let reopened = try SaltKeeper(database: t.database)
        #expect(reopened.daysInMemory == [day1 + 1])
    }

    /// `candor rotate-salt` and the server may both create today's salt: the second uses the first's.
    @Test func aSaltStoredByAnotherProcessIsUsed() async throws {
        let t = try TestCollector()
        let today = utcDay(t.clock.now)
        #expect(try sqlite3(t.dir.file("candor.sqlite"), "INSERT INTO salts (day, salt) VALUES (\(today), X'\(String(repeating: "ab", count: 32))');").status == 0)
        let hashes = try t.salts.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)
        let reopened = try SaltKeeper(database: t.database)
        #expect(try reopened.visitorHashes(site: t.site.id, ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now).current == hashes.current)
    }

    @Test func serviceSleepsUntilTheNextDeadline() async throws {
        let t = try TestCollector()
        let day = utcDay(t.clock.now)
        #expect(t.salts.nextDeadline(after: t.clock.now) == startOfUTCDay(day + 1))
        #expect(t.salts.nextDeadline(after: startOfUTCDay(day).addingTimeInterval(60)) == startOfUTCDay(day).addingTimeInterval(3600))
    }

    @Test func sessionsSpanMidnightDuringTheOverlap() async throws {
        let day = utcDay(noon)
        let t = try TestCollector(start: startOfUTCDay(day + 1).addingTimeInterval(-300))
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/a", id: "a")])
        t.clock.advance(600) // 00:05 next day
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/b", id: "b")])
        let sessions = try t.database.sessions(site: t.site.id)
        #expect(sessions.count == 1)
        #expect(sessions.first?.pageviews == 2)
        #expect(sessions.first?.entryPath == "/a")
        #expect(sessions.first?.exitPath == "/b")
        #expect(sessions.first?.durationMs == 600_000)
        #expect(sessions.first?.bounce == false)
    }
}

@Suite struct SessionTests {
    @Test func gapsOfThirtyMinutesStartANewSession() async throws {
        let t = try TestCollector()
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/", id: "1")])
        t.clock.advance(29 * 60)
        try await t.ingest([IncomingEvent(site: t.site.id, name: "engagement", url: "https://example.com/", id: "2", engagedMs: 4000, scroll: 80)])
        t.clock.advance(31 * 60)
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/x", id: "3")])
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/x", id: "4")], ip: "2001:218::1")
        let sessions = try t.database.sessions(site: t.site.id)
        #expect(sessions.count == 3)
        #expect(sessions[0].pageviews == 1)
        #expect(sessions[0].bounce == true)
        #expect(sessions[0].engagedMs == 4000)
        #expect(sessions[0].durationMs == 29 * 60 * 1000)
        let events = try t.database.events(site: t.site.id)
        #expect(events.map(\.sessionID) == [sessions[0].id, sessions[0].id, sessions[1].id, sessions[2].id])
        #expect(events[1].scroll == 80)
    }

    @Test func interactionsMeanNoBounce() async throws {
        let t = try TestCollector()
        try await t.ingest([IncomingEvent(site: t.site.id, url: "https://example.com/", id: "1"),
                            IncomingEvent(site: t.site.id, name: "signup", url: "https://example.com/", id: "2", value: 10, currency: "USD")])
        let s = try t.database.sessions(site: t.site.id)
        #expect(s.count == 1)
        #expect(s[0].bounce == false)
        #expect(s[0].interactions == 1)
        let e = try t.database.events(site: t.site.id)
        #expect(e[1].value == 10)
        #expect(e[1].currency == "USD")
    }

    @Test func repeatedClientIDsAreStoredOnce() async throws {
        let t = try TestCollector()
        let e = IncomingEvent(site: t.site.id, url: "https://example.com/", id: "same")
        let r1 = try await t.collector.writer.write(t.collector.pipeline.run([e], site: t.site, policy: .default,
            facts: .init(ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)).rows)
        let r2 = try await t.collector.writer.write(t.collector.pipeline.run([e, e], site: t.site, policy: .default,
            facts: .init(ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)).rows)
        #expect(r1 == [.stored])
        #expect(r2 == [.duplicate, .duplicate])
        #expect(try t.database.eventCount(site: t.site.id) == 1)
        #expect(try t.database.sessions(site: t.site.id).first?.pageviews == 1)
    }

    /// A site's visitors are hashed with the salt of the site's own day; a day's salt is kept
    /// until the overlap after its end has passed in the zone of every site, then destroyed.
    @Test func saltsFollowEachSitesDayAndLiveUntilTheLastZoneLeavesTheDay() async throws {
        let t = try TestCollector(start: try Date("2026-11-30T02:00:00Z", strategy: .iso8601))
        let la = try #require(SiteCalendar(identifier: "America/Los_Angeles"))
        try t.database.addSite(Site(id: "lasite01", name: "LA", domains: ["la.example"], policy: "default", createdAt: t.clock.now, calendar: la))
        let nov29 = SiteCalendar.dayNumber(year: 2026, month: 11, day: 29), nov30 = nov29 + 1
        // 02:00 UTC: Nov 30 for the UTC site, 18:00 on Nov 29 in Los Angeles.
        try t.salts.rotate(now: t.clock.now)
        #expect(try t.database.saltDays() == [nov29, nov30])
        let utcHash = try t.salts.visitorHashes(site: "x", ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)
        let laHash = try t.salts.visitorHashes(site: "x", ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now, calendar: la)
        #expect(utcHash.current != laHash.current && utcHash.previous == nil && laHash.previous == nil)
        // Los Angeles' next midnight (08:00 UTC) comes before UTC's.
        #expect(t.salts.nextDeadline(after: t.clock.now) == (try Date("2026-11-30T08:00:00Z", strategy: .iso8601)))
        #expect(try t.salts.deleteExpired(now: t.clock.now).isEmpty)
        // 08:30 UTC: 00:30 on Nov 30 in Los Angeles; Nov 29's salt serves its overlap.
        t.clock.set(try Date("2026-11-30T08:30:00Z", strategy: .iso8601))
        let overlap = try t.salts.visitorHashes(site: "x", ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now, calendar: la)
        #expect(overlap.previous == laHash.current && overlap.current == utcHash.current)
        #expect(try t.salts.deleteExpired(now: t.clock.now).isEmpty)
        // 09:00 UTC: the overlap has passed everywhere: Nov 29's salt goes.
        t.clock.set(try Date("2026-11-30T09:00:01Z", strategy: .iso8601))
        #expect(try t.salts.deleteExpired(now: t.clock.now) == [nov29])
        #expect(t.salts.daysInMemory == [nov30])
    }

    /// A site moved to (or added in) a zone still on a day whose salt is already destroyed takes
    /// the next day's salt: a destroyed salt is never made again.
    @Test func aDestroyedSaltIsNeverMadeAgain() async throws {
        let t = try TestCollector(start: try Date("2026-11-30T02:00:00Z", strategy: .iso8601))
        let nov29 = SiteCalendar.dayNumber(year: 2026, month: 11, day: 29), nov30 = nov29 + 1
        t.clock.set(try Date("2026-11-29T12:00:00Z", strategy: .iso8601))
        try t.salts.rotate(now: t.clock.now)
        t.clock.set(try Date("2026-11-30T02:00:00Z", strategy: .iso8601))
        try t.salts.rotate(now: t.clock.now)
        #expect(try t.salts.deleteExpired(now: t.clock.now) == [nov29])
        let la = try #require(SiteCalendar(identifier: "America/Los_Angeles"))
        try t.database.addSite(Site(id: "lasite02", name: "LA", domains: ["la.example"], policy: "default", createdAt: t.clock.now, calendar: la))
        // A keeper that has not made the next day's salt yet (a restart) makes it then.
        #expect(try sqlite3(t.dir.file("candor.sqlite"), "DELETE FROM salts WHERE day = \(nov30)").status == 0)
        let fresh = try SaltKeeper(database: t.database)
        let west = try fresh.visitorHashes(site: "x", ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now, calendar: la)
        let utc = try fresh.visitorHashes(site: "x", ip: "81.2.69.142", userAgent: chromeUA, now: t.clock.now)
        #expect(west.current == utc.current && west.previous == nil)
        try fresh.rotate(now: t.clock.now)
        #expect(try t.database.saltDays() == [nov30])
        #expect(try t.database.auditEntries().filter { $0.action == "salt_rotated" }.count == 3)
    }
}
