import Foundation
import GRDB
@testable import Store
import Testing

/// Issue 13: the analytics engine (FactStore) gives, for any filters and range, the figures the
/// straightforward SQL over the raw events gives (the reference: `summary`, `breakdown`,
/// `sessionBreakdown`, `series`, `pageEngagement`, `goalResults` in Store).
@Suite struct FactEngineTests {
    let dir = TempDir()
    static let day: Int64 = 86_400_000
    /// Noon, 2026-11-20 UTC: the data covers the six days before.
    static let end: Int64 = 1_795_694_400_000

    /// A seeded synthetic site (skewed pages, sources, places, devices, custom events, pixel
    /// conversions), a second site beside it, a few events whose visit is gone, every day rolled
    /// up and loaded by the engine.
    func dataset(seed: UInt64, events: Int = 4000) throws -> (AppDatabase, String) {
        let db = try AppDatabase(path: dir.file("candor.sqlite"))
        let site = "site-\(seed)"
        for id in [site, "other"] {
            try db.addSite(Site(id: id, name: id, domains: ["\(id).example"], policy: "default", createdAt: Date(timeIntervalSince1970: 0)))
        }
        var load = SyntheticLoad(site: site, events: events, days: 6, end: Self.end, subjectHashes: [11, 12, 13])
        load.seed = seed
        load.pages = 60; load.referrers = 30; load.cities = 80
        try db.load(load, batch: 500)
        var other = SyntheticLoad(site: "other", events: 500, days: 6, end: Self.end, subjectHashes: [])
        other.seed = seed + 100
        try db.load(other)
        // Events whose visit is gone, and crafted empty referrers beside the usual none (NULL):
        // both are stored, grouped apart, and rolled up as one row (the rollup keys NULL as '').
        try db.writer.write { db in
            try db.execute(sql: "UPDATE events SET session_id = NULL WHERE id % 97 = 0")
            try db.execute(sql: "UPDATE events SET referrer_host = '' WHERE id % 89 = 0")
        }
        for s in [site, "other"] {
            for day in try db.daysWithoutRollup(site: s, limit: 100) { try db.refreshRollup(site: s, day: day, now: Self.end) }
        }
        _ = try db.addGoal(Goal(siteID: site, name: "Pricing", kind: .page, match: "/pricing"))
        _ = try db.addGoal(Goal(siteID: site, name: "Blog", kind: .page, match: "/blog*"))
        _ = try db.addGoal(Goal(siteID: site, name: "Signups", kind: .event, match: "signup"))
        _ = try db.addGoal(Goal(siteID: site, name: "Sales", kind: .conversion, match: "sale"))
        var steps: [Int64] = []
        for path in SyntheticLoad.funnelPaths { steps.append(try db.addGoal(Goal(siteID: site, name: path, kind: .page, match: path)).id!) }
        let goals = try db.goals(site: site)
        try db.addFunnel(Funnel(siteID: site, name: "Signup", steps: steps))
        try db.addFunnel(Funnel(siteID: site, name: "Read, then sign up", steps: [goals[1].id!, goals[2].id!, steps[2]]))
        try db.addFunnel(Funnel(siteID: site, name: "Pricing, then buy", steps: [goals[0].id!, goals[3].id!]))
        // Rolling a day up leaves it loaded in the engine.
        #expect(try db.facts.reconcile() == 0)
        return (db, site)
    }

    /// Random filters (0–3 terms) with values taken from stored events, now and then one no event has.
    func randomFilters(_ db: AppDatabase, site: String, rng: inout SplitMix) throws -> Filters {
        let count = Int(rng.next() % 4)
        var terms: [(Store.Dimension, String)] = []
        for _ in 0..<count {
            let d = Store.Dimension.allCases[Int(rng.next() % UInt64(Store.Dimension.allCases.count))]
            if rng.chance(0.1) { terms.append((d, "no such value")); continue }
            let value = try db.writer.read { db in
                try String.fetchOne(db, sql: "SELECT \(d.rawValue) FROM events WHERE site_id = ? AND \(d.rawValue) IS NOT NULL ORDER BY random() LIMIT 1",
                                    arguments: [site])
            }
            if let value { terms.append((d, value)) }
        }
        return Filters(terms)
    }

    func randomRange(rng: inout SplitMix) -> (Int64, Int64) {
        let first = Self.end / Self.day - 6
        if rng.chance(0.5) {
            let from = first + Int64(rng.next() % 7), days = 1 + Int64(rng.next() % 6)
            return (from * Self.day, (from + days) * Self.day)
        }
        let from = first * Self.day + Int64(rng.next() % UInt64(6 * Self.day))
        return (from, from + 1 + Int64(rng.next() % UInt64(3 * Self.day)))
    }

    func expectSame(_ db: AppDatabase, site: String, from: Int64, to: Int64, filters: Filters) throws {
        let context = "\(filters.terms) \(from)..<\(to)"
        let f = try #require(try db.factFigures(site: site, from: from, to: to, filters: filters), "\(context)")
        var reference = try db.summary(site: site, from: from, to: to, filters: filters)
        var engine = f.summary
        #expect(reference.revenue.byCurrency.mapValues { ($0 * 100).rounded() } == engine.revenue.byCurrency.mapValues { ($0 * 100).rounded() },
                "\(context)")
        reference.revenue = Revenue(); engine.revenue = Revenue()
        #expect(engine == reference, "\(context)")
        for d in Store.Dimension.allCases {
            #expect(f.breakdowns[d] == (try db.breakdown(site: site, from: from, to: to, dimension: d, filters: filters)), "\(d) \(context)")
        }
        #expect(f.entry == (try db.sessionBreakdown(site: site, from: from, to: to, dimension: .entry, filters: filters)), "\(context)")
        #expect(f.exit == (try db.sessionBreakdown(site: site, from: from, to: to, dimension: .exit, filters: filters)), "\(context)")
        // Revenue to the cent: sums in another order may differ in the last bits.
        func cents(_ points: [SeriesPoint]?) -> [SeriesPoint]? {
            points?.map { p in var p = p; p.revenue = Revenue(p.revenue.byCurrency.mapValues { ($0 * 100).rounded() }); return p }
        }
        #expect(cents(f.daily) == cents(try db.series(site: site, from: from, to: to, hourly: false, filters: filters)), "\(context)")
        #expect(cents(f.hourly) == cents(try db.series(site: site, from: from, to: to, hourly: true, filters: filters)), "\(context)")
        // The chart's points add up to the cards.
        #expect(f.daily.reduce(0) { $0 + $1.visits } == f.summary.visits && f.daily.reduce(0) { $0 + $1.conversions } == f.summary.conversions,
                "\(context)")
        #expect(try db.factFigures(site: site, from: from, to: to, filters: filters, hourly: false)?.hourly == nil)
        #expect(f.engagement == (try db.pageEngagement(site: site, from: from, to: to, filters: filters)), "\(context)")
        #expect(f.goals == (try db.goalResults(site: site, from: from, to: to, filters: filters)), "\(context)")
        for event in SyntheticLoad.customEvents {
            #expect(db.factProperties(site: site, from: from, to: to, event: event, filters: filters)
                    == (try db.propertyBreakdown(site: site, from: from, to: to, event: event, filters: filters)), "\(event) \(context)")
        }
        // Funnels ignore filters; a conversion step is left to the SQL.
        for funnel in try db.funnels(site: site) {
            let engine = try db.factFunnel(funnel, from: from, to: to)
            if funnel.name == "Pricing, then buy" { #expect(engine == nil); continue }
            #expect(engine == (try db.funnelResult(funnel, from: from, to: to)), "\(funnel.name) \(context)")
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func engineEqualsTheReferenceQueriesForRandomFiltersAndRanges(seed: UInt64) throws {
        let (db, site) = try dataset(seed: seed)
        var rng = SplitMix(seed: seed * 7919)
        var nonEmpty = 0
        for _ in 0..<60 {
            let filters = try randomFilters(db, site: site, rng: &rng)
            let (from, to) = randomRange(rng: &rng)
            try expectSame(db, site: site, from: from, to: to, filters: filters)
            if try db.summary(site: site, from: from, to: to, filters: filters).visitors > 0 && !filters.isEmpty { nonEmpty += 1 }
        }
        // The random cases are not all trivially empty.
        #expect(nonEmpty >= 10)
    }

    /// Hand-picked cases the random ones may miss: an event filter with a field filter, two values of
    /// one dimension, a page filter with a conversion goal, the whole range.
    @Test func engineEqualsTheReferenceQueriesOnChosenFilters() throws {
        let (db, site) = try dataset(seed: 9)
        let from = (Self.end / Self.day - 6) * Self.day, to = Self.end
        for filters in [Filters(), Filters([(.event, "signup")]), Filters([(.event, "conversion"), (.country, "US")]),
                        Filters([(.country, "US"), (.country, "DE")]), Filters([(.page, "/pricing")]),
                        Filters([(.source, "organic"), (.device, "mobile"), (.page, "/")]), Filters([(.event, "engagement"), (.event, "signup")])] {
            try expectSame(db, site: site, from: from, to: to, filters: filters)
        }
        // The cases are not empty: properties, funnels.
        #expect((db.factProperties(site: site, from: from, to: to, event: "signup", filters: Filters([(.event, "signup")])) ?? []).count >= 6)
        #expect(try db.factFunnel(try db.funnels(site: site)[0], from: from, to: to)?.steps[2].visits ?? 0 > 0)
    }

    /// Days whose events retention removed keep their rollups: a range reaching them is not the engine's.
    @Test func daysBeforeTheFirstEventAreLeftToTheRollups() throws {
        let (db, site) = try dataset(seed: 6)
        let from = (Self.end / Self.day - 6) * Self.day, to = Self.end
        while try db.transaction({ tx in try tx.deleteOlderChunk(.events, site: site, cutoff: from + 2 * Self.day, limit: 1000) }) > 0 {}
        _ = try db.facts.reconcile()
        #expect(db.facts.view(site: site, from: from, to: to) == nil)
        #expect(db.facts.view(site: site, from: from + 2 * Self.day, to: to) != nil)
        let rolled = try db.rollupSummary(site: site, fromDay: from / Self.day, toDay: from / Self.day + 1)
        #expect(rolled.pageviews > 0)
        try expectSame(db, site: site, from: from + 2 * Self.day, to: to, filters: Filters([(.device, "mobile")]))
    }

    /// A quiet day (no event, so no rollup) inside a range does not keep the engine from answering.
    @Test func aDayWithoutEventsNeedsNoRollup() throws {
        let (db, site) = try dataset(seed: 5)
        let from = (Self.end / Self.day - 6) * Self.day, to = Self.end
        let quiet = from / Self.day + 3
        try db.writer.write { db in
            for sql in ["DELETE FROM conversions WHERE site_id = ? AND session_id IN (SELECT id FROM sessions WHERE site_id = ? AND started_at / 86400000 = ?)",
                        "DELETE FROM events WHERE site_id = ? AND (ts / 86400000 = ? OR session_id IN (SELECT id FROM sessions WHERE site_id = ? AND started_at / 86400000 = ?))",
                        "DELETE FROM sessions WHERE site_id = ? AND started_at / 86400000 = ?",
                        "DELETE FROM rollup_days WHERE site_id = ? AND day = ?"] {
                let marks = sql.filter { $0 == "?" }.count
                let args: [any DatabaseValueConvertible] = marks == 3 ? [site, site, quiet] : marks == 4 ? [site, quiet, site, quiet] : [site, quiet]
                try db.execute(sql: sql, arguments: StatementArguments(args))
            }
            try db.execute(sql: "UPDATE fact_changes SET generation = generation + 1 WHERE site_id = ?", arguments: [site])
        }
        for day in try db.daysWithoutRollup(site: site, limit: 100) { try db.refreshRollup(site: site, day: day, now: Self.end) }
        _ = try db.facts.reconcile()
        #expect(db.facts.view(site: site, from: from, to: to) != nil)
        for filters in [Filters(), Filters([(.source, "organic")]), Filters([(.event, "signup")])] {
            try expectSame(db, site: site, from: from, to: to, filters: filters)
        }
    }

    /// A day whose stored events change other than by appending (retention here) is not read from
    /// memory until the engine reloads it; a refreshed rollup makes the day reload too.
    @Test func changedDaysAreReloadedBeforeUse() throws {
        let (db, site) = try dataset(seed: 4)
        let from = (Self.end / Self.day - 6) * Self.day, to = Self.end
        let filters = Filters([(.source, "organic")])
        func loaded() -> Bool { db.facts.view(site: site, from: from, to: to) != nil }
        #expect(loaded())
        let cutoff = from + Self.day + Self.day / 4
        #expect(try db.transaction { tx in try tx.deleteOlderChunk(.events, site: site, cutoff: cutoff, limit: 100) } == 100)
        #expect(!loaded())
        #expect(try db.factFigures(site: site, from: from, to: to, filters: filters) == nil)
        #expect(try db.facts.reconcile() == 1)
        try expectSame(db, site: site, from: from, to: to, filters: filters)
        // A rollup refreshed by another process (today's, every minute) is newer than the loaded day.
        let other = try #require(db.path.map { try AppDatabase(path: $0) })
        try other.refreshRollup(site: site, day: from / Self.day + 2, now: Self.end + 60_000)
        #expect(!loaded())
        #expect(try db.facts.reconcile() == 1)
        #expect(loaded())
        // In this process, refreshing a day's rollup leaves the engine holding the same day.
        try db.refreshRollup(site: site, day: from / Self.day + 3, now: Self.end + 60_000)
        #expect(loaded())
        try expectSame(db, site: site, from: from, to: to, filters: filters)
        // An erasure: the days of the subject's events and visits are not used again until reloaded
        // (the privacy office refreshes their rollups afterwards; this is before that).
        let request = PrivacyRequest(id: "req-engine", siteID: site, subjectKind: .subject, subjectHash: 11, receivedAt: Self.end,
                                     deadlineAt: Self.end + Self.day, status: .received, filedBy: "test")
        try db.transaction { tx in try tx.insertPrivacyRequest(request) }
        let erased = try db.transaction { tx in try tx.eraseSubject(of: request, keepConsentProof: false, at: Self.end) { _ in "{}" } }
        #expect((erased?.counts["events"] ?? 0) > 0)
        #expect(!loaded())
        #expect(try db.factFigures(site: site, from: from, to: to, filters: filters) == nil)
        #expect(try db.facts.reconcile() >= 1)
        try expectSame(db, site: site, from: from, to: to, filters: filters)
    }
}
