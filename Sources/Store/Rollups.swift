import Foundation
import GRDB

/// Daily rollups: per site and UTC day, the totals and, per dimension value, the distinct visitors
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

    /// Recomputes one day of a site's rollups. Reads outside the write lock; writes in one short transaction.
    public func refreshRollup(site: String, day: Int64, now: Int64) throws {
        let from = day * Self.dayMs, to = from + Self.dayMs
        let (totals, rows) = try writer.read { db -> ((Int, Int, Int, Int, Int64), [(String, String, Int, Int64)]) in
            let e = try Row.fetchOne(db, sql: """
                SELECT count(DISTINCT visitor), coalesce(sum(name = 'pageview'), 0) FROM events WHERE site_id = ? AND ts >= ? AND ts < ?
                """, arguments: [site, from, to])
            let s = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(bounce), 0), coalesce(sum(duration_ms), 0) FROM sessions
                WHERE site_id = ? AND started_at >= ? AND started_at < ?
                """, arguments: [site, from, to])
            var rows: [(String, String, Int, Int64)] = []
            for d in Dimension.allCases {
                for r in try Row.fetchAll(db, sql: """
                    SELECT coalesce(\(d.rawValue), ''), count(DISTINCT visitor), sum(name = 'pageview') FROM events
                    WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY 1
                    """, arguments: [site, from, to]) {
                    rows.append((d.rawValue, r[0], r[1], r[2]))
                }
            }
            for (key, column) in [(RollupKey.entry, "entry_path"), (RollupKey.exit, "exit_path")] {
                for r in try Row.fetchAll(db, sql: """
                    SELECT coalesce(\(column), ''), count(DISTINCT visitor), count(*) FROM sessions
                    WHERE site_id = ? AND started_at >= ? AND started_at < ? GROUP BY 1
                    """, arguments: [site, from, to]) {
                    rows.append((key, r[0], r[1], r[2]))
                }
            }
            for r in try Row.fetchAll(db, sql: """
                SELECT path, count(engaged_ms), coalesce(sum(engaged_ms), 0), count(scroll), coalesce(sum(scroll), 0) FROM events
                WHERE site_id = ? AND ts >= ? AND ts < ? AND name = 'engagement' GROUP BY 1
                """, arguments: [site, from, to]) {
                rows.append((RollupKey.engagedMs, r[0], r[1], r[2]))
                rows.append((RollupKey.scroll, r[0], r[3], r[4]))
            }
            return ((e?[0] ?? 0, e?[1] ?? 0, s?[0] ?? 0, s?[1] ?? 0, s?[2] ?? 0), rows)
        }
        try writer.write { db in
            try db.execute(sql: "DELETE FROM rollup_values WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: "DELETE FROM rollup_days WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: """
                INSERT INTO rollup_days (site_id, day, visitors, pageviews, visits, bounces, duration_ms, refreshed_at) VALUES (?,?,?,?,?,?,?,?)
                """, arguments: [site, day, totals.0, totals.1, totals.2, totals.3, totals.4, now])
            let insert = try db.cachedStatement(sql: """
                INSERT INTO rollup_values (site_id, day, dimension, value, visitors, pageviews) VALUES (?,?,?,?,?,?)
                """)
            for r in rows { try insert.execute(arguments: [site, day, r.0, r.1, r.2, r.3]) }
        }
    }

    /// Days of a site that have events but no rollup yet, oldest first.
    public func daysWithoutRollup(site: String, limit: Int) throws -> [Int64] {
        try writer.read { db in
            guard let first = try Int64.fetchOne(db, sql: "SELECT min(ts) FROM events WHERE site_id = ?", arguments: [site]),
                  let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) else { return [] }
            let done = Set(try Int64.fetchAll(db, sql: "SELECT day FROM rollup_days WHERE site_id = ?", arguments: [site]))
            var days: [Int64] = []
            var d = first / Self.dayMs
            while d <= last / Self.dayMs && days.count < limit {
                if !done.contains(d),
                   try Int.fetchOne(db, sql: "SELECT 1 FROM events WHERE site_id = ? AND ts >= ? AND ts < ? LIMIT 1",
                                    arguments: [site, d * Self.dayMs, (d + 1) * Self.dayMs]) != nil {
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
    public func rollupBreakdown(site: String, fromDay: Int64, toDay: Int64, key: String, limit: Int = 1000) throws -> [BreakdownRow] {
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

    /// Visitors and pageviews per day from the rollups, every day of the range included.
    public func rollupSeries(site: String, fromDay: Int64, toDay: Int64) throws -> [SeriesPoint] {
        let byDay = try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT day, visitors, pageviews FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?",
                             arguments: [site, fromDay, toDay]).reduce(into: [Int64: (Int, Int)]()) { $0[$1[0]] = ($1[1], $1[2]) }
        }
        return (fromDay...max(fromDay, toDay)).map { d in
            SeriesPoint(start: d * Self.dayMs, visitors: byDay[d]?.0 ?? 0, pageviews: byDay[d]?.1 ?? 0)
        }
    }
}
