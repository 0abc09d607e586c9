import Foundation
import GRDB
import Storage

/// Daily rollups: per site and local day (the site's time zone, see ``SiteCalendar``), the totals and, per dimension value, the distinct visitors
/// and pageviews. Visitor hashes change every day, so a day's distinct count is exact and sums over
/// days mean the same as the raw queries. Recomputed for today (and yesterday) every minute, for
/// older days when their events change (erasure) or when missing.
public enum RollupKey {
    public static let entry = "entry_path"
    public static let exit = "exit_path"
    /// value = path; visitors = engagement events, pageviews = their summed engaged milliseconds.
    public static let engagedMs = "engaged_ms"
    /// value = path; visitors = engagement events with a scroll depth, pageviews = summed depth.
    public static let scroll = "scroll"
}

extension AppDatabase {
    static let dayMs: Int64 = 86_400_000

    /// Recomputes one day of a site's rollups from the day as the engine reads it (one read of
    /// its events and visits; its totals are the rollup), then keeps that day in the engine at the
    /// generation the rollup is written with. Reads outside the write lock; writes in one short
    /// transaction. The day's stale mark is cleared first, so late events committed during the
    /// read mark it again.
    public func refreshRollup(site: String, day: Int64, now: Int64) throws {
        let stale = try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT 1 FROM rollup_stale WHERE site_id = ? AND day = ?", arguments: [site, day]) != nil
        }
        if stale {
            try writer.write { db in try db.execute(sql: "DELETE FROM rollup_stale WHERE site_id = ? AND day = ?", arguments: [site, day]) }
        }
        let (block, codes) = try facts.read(site: site, day: day)
        let t = block.totals
        // Rows by (key, value); no value (NULL) is stored as '', so a NULL and a real empty string
        // (a crafted referrer) share one row.
        struct Row: Hashable { let key: String, value: String }
        var rows: [Row: (Int32, Int64)] = [:]
        func put(_ key: String, _ value: String, _ visitors: Int32, _ count: Int64) {
            let old = rows[Row(key: key, value: value)] ?? (0, 0)
            rows[Row(key: key, value: value)] = (old.0 + visitors, old.1 + count)
        }
        func add(_ key: String, _ tally: DayTally, _ values: [String]) {
            for i in tally.codes.indices { put(key, values[Int(tally.codes[i])], tally.visitors[i], tally.counts[i]) }
        }
        let paths = codes.path.values
        add(Dimension.page.rawValue, t.pages, paths)
        add(Dimension.event.rawValue, t.named, codes.name.values)
        for (f, d) in FactStore.profileDimensions.enumerated() { add(d.rawValue, t.fields[f], codes.fields[f].values) }
        add(RollupKey.entry, t.entry, paths)
        add(RollupKey.exit, t.exit, paths)
        for e in t.engaged {
            put(RollupKey.engagedMs, paths[Int(e.path)], Int32(clamping: e.count), e.sum)
            put(RollupKey.scroll, paths[Int(e.path)], Int32(clamping: e.scrolls), e.depth)
        }
        let (generation, unchanged) = try writer.write { db -> (Int64, Bool) in
            // The engine keeps this copy of the day unless the day changed since it was read (an
            // erasure or a purge committed meanwhile): then it reloads the day (see FactStore).
            let before = try Int64.fetchOne(db, sql: "SELECT generation FROM fact_changes WHERE site_id = ? AND day = ?",
                                            arguments: [site, day]) ?? 0
            try WriteTransaction(db: db).factsChanged(site: site, days: [day])
            try db.execute(sql: "DELETE FROM rollup_values WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: "DELETE FROM rollup_days WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: """
                INSERT INTO rollup_days (site_id, day, visitors, pageviews, visits, bounces, duration_ms, refreshed_at, zone) VALUES (?,?,?,?,?,?,?,?,?)
                """, arguments: [site, day, t.visitors, t.pageviews, t.visits, t.bounces, t.durationMs, now, block.zone])
            let insert = try db.cachedStatement(sql: """
                INSERT INTO rollup_values (site_id, day, dimension, value, visitors, pageviews) VALUES (?,?,?,?,?,?)
                """)
            for (r, n) in rows { try insert.execute(arguments: [site, day, r.key, r.value, n.0, n.1]) }
            return (try Int64.fetchOne(db, sql: "SELECT generation FROM fact_changes WHERE site_id = ? AND day = ?", arguments: [site, day]) ?? 0,
                    before == block.generation)
        }
        if unchanged { facts.keep(block, site: site, generation: generation) }
    }

    /// Times (ms) of the site's oldest and newest stored events, nil when it has none. Two queries:
    /// SQLite answers a lone min() or max() from the index, but not both in one.
    static func eventSpan(_ db: Database, site: String) throws -> (first: Int64, last: Int64)? {
        guard let first = try Int64.fetchOne(db, sql: "SELECT min(ts) FROM events WHERE site_id = ?", arguments: [site]),
              let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) else { return nil }
        return (first, last)
    }

    /// Days of a site (within `fromDay...toDay` when given) that have events but no rollup yet,
    /// or a stale one (late events arrived since), oldest first, at most `limit`.
    public func daysWithoutRollup(site: String, fromDay: Int64? = nil, toDay: Int64? = nil, limit: Int) throws -> [Int64] {
        try writer.read { db in
            guard let (first, last) = try Self.eventSpan(db, site: site) else { return [] }
            let calendar = try Self.calendar(db, site: site)
            let lower = max(calendar.day(of: first), fromDay ?? .min), upper = min(calendar.day(of: last), toDay ?? .max)
            guard lower <= upper else { return [] }
            // A day that received late events since its rollup was built counts as not rolled up.
            // A rollup counted in another zone is a day kept from before the site moved (the move
            // dropped every later one): part of its events are purged, so it is never rebuilt.
            let done = Set(try Int64.fetchAll(db, sql: """
                SELECT day FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?
                  AND day NOT IN (SELECT day FROM rollup_stale WHERE site_id = ?)
                """, arguments: [site, lower, upper, site]))
            var days: [Int64] = []
            var d = lower
            while d <= upper && days.count < limit {
                if !done.contains(d),
                   try Int.fetchOne(db, sql: "SELECT 1 FROM events WHERE site_id = ? AND ts >= ? AND ts < ? LIMIT 1",
                                    arguments: [site, calendar.start(of: d), calendar.end(of: d)]) != nil {
                    days.append(d)
                }
                d += 1
            }
            return days
        }
    }

    /// Totals over whole days `fromDay...toDay` from the rollups.
    public func rollupSummary(site: String, fromDay: Int64, toDay: Int64) throws -> (visitors: Int, pageviews: Int, visits: Int, bounces: Int, durationMs: Int64) {
        try writer.read { db in
            let r = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0), coalesce(sum(visits), 0), coalesce(sum(bounces), 0),
                  coalesce(sum(duration_ms), 0) FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?
                """, arguments: [site, fromDay, toDay])
            return (r?[0] ?? 0, r?[1] ?? 0, r?[2] ?? 0, r?[3] ?? 0, r?[4] ?? 0)
        }
    }

    /// A breakdown over whole days from the rollups (`key` is a ``Dimension`` raw value or a ``RollupKey``).
    public func rollupBreakdown(site: String, fromDay: Int64, toDay: Int64, key: String, limit: Int = AppDatabase.tableRowLimit) throws -> [BreakdownRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT value, sum(visitors), sum(pageviews) FROM rollup_values
                WHERE site_id = ? AND dimension = ? AND day BETWEEN ? AND ?
                GROUP BY value ORDER BY 2 DESC, 3 DESC, value LIMIT ?
                """, arguments: [site, key, fromDay, toDay, limit]).map {
                let value: String = $0[0]
                return BreakdownRow(value: value.isEmpty ? nil : value, visitors: $0[1], pageviews: $0[2])
            }
        }
    }

    /// Visitors, pageviews and visits per day from the rollups, every day of the range included
    /// (conversions are not rolled up: ``withConversions(_:site:)`` adds them).
    public func rollupSeries(site: String, fromDay: Int64, toDay: Int64) throws -> [SeriesPoint] {
        let (byDay, calendar) = try writer.read { db in
            (try Row.fetchAll(db, sql: "SELECT day, visitors, pageviews, visits FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?",
                              arguments: [site, fromDay, toDay]).reduce(into: [Int64: (Int, Int, Int)]()) { $0[$1[0]] = ($1[1], $1[2], $1[3]) },
             try Self.calendar(db, site: site))
        }
        return (fromDay...max(fromDay, toDay)).map { d in
            let (visitors, pageviews, visits) = byDay[d] ?? (0, 0, 0)
            return SeriesPoint(start: calendar.start(of: d), visitors: visitors, pageviews: pageviews, visits: visits)
        }
    }

    /// Daily points with their conversions and revenue (no filters), read directly as the cards
    /// read them.
    public func withConversions(_ points: [SeriesPoint], site: String) throws -> [SeriesPoint] {
        guard let first = points.first, let last = points.last else { return points }
        return try writer.read { db in
            let calendar = try Self.calendar(db, site: site)
            let sales = try Self.conversionCounts(db, site: site, from: first.start, to: calendar.end(of: calendar.day(of: last.start)),
                                                  filters: Filters(), bucket: calendar.sqlDay("c.ts"))
            return points.map { p in
                var p = p
                let d = calendar.day(of: p.start)
                p.conversions = sales[d]?.count ?? 0
                p.revenue = sales[d]?.revenue ?? Revenue()
                return p
            }
        }
    }

    /// The zones other than the site's own that rolled-up days of `fromDay...toDay` were counted
    /// in (days kept from before the site moved), with the last such day.
    public func rollupZones(site: String, fromDay: Int64, toDay: Int64) throws -> [(zone: String, lastDay: Int64)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT zone, max(day) FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?
                  AND zone != ? GROUP BY zone ORDER BY 2
                """, arguments: [site, fromDay, toDay, try Self.calendar(db, site: site).identifier]).map { ($0[0], $0[1]) }
        }
    }

    /// Rolled-up and imported days of a site that ended before `cutoff` (ms).
    public func countRollupDaysOlder(site: String, cutoff: Int64) throws -> Int {
        try writer.read { db in
            let day = try Self.calendar(db, site: site).day(of: cutoff)
            return try Int.fetchOne(db, sql: """
                SELECT count(*) FROM (SELECT day FROM rollup_days WHERE site_id = ? AND day < ? UNION SELECT day FROM imported_days WHERE site_id = ? AND day < ?)
                """, arguments: [site, day, site, day]) ?? 0
        }
    }

}

extension WriteTransaction {
    /// Deletes the oldest rolled-up or imported day that ended before `cutoff` (the rollup and
    /// import tables; imported aggregates are kept as long as the rollups); returns false when
    /// none is left. The site's consent counts of those days go with them, and an import left
    /// without days.
    public func deleteOldestRollupDay(site: String, cutoff: Int64) throws -> Bool {
        let cutoffDay = try AppDatabase.calendar(db, site: site).day(of: cutoff)
        try db.execute(sql: "DELETE FROM consent_counts WHERE site_id = ? AND day < ?", arguments: [site, cutoffDay])
        guard let day = try Int64.fetchOne(db, sql: """
            SELECT min(day) FROM (SELECT min(day) AS day FROM rollup_days WHERE site_id = ? AND day < ?
                                  UNION ALL SELECT min(day) FROM imported_days WHERE site_id = ? AND day < ?)
            """, arguments: [site, cutoffDay, site, cutoffDay]) else { return false }
        for table in ["rollup_values", "rollup_days", "imported_values", "imported_days"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE site_id = ? AND day = ?", arguments: [site, day])
        }
        try db.execute(sql: """
            DELETE FROM imports WHERE site_id = ? AND NOT EXISTS (SELECT 1 FROM imported_days WHERE import_id = imports.id)
            """, arguments: [site])
        return true
    }
}
