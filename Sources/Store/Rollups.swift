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

    /// Filters whose breakdowns are rolled up too (one filter at a time), and the breakdowns kept for them.
    public static let pairFilters: [Dimension] = [.source, .country, .device, .utmCampaign, .page]
    public static let pairBreakdowns: [Dimension] = [.page, .source, .referrer, .utmSource, .utmCampaign, .country, .device, .browser, .event]

    /// Recomputes one day of a site's rollups. Reads outside the write lock; writes in one short transaction.
    /// The day's stale mark is cleared first, so late events committed during the read mark it again.
    public func refreshRollup(site: String, day: Int64, now: Int64) throws {
        let from = day * Self.dayMs, to = from + Self.dayMs
        let stale = try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT 1 FROM rollup_stale WHERE site_id = ? AND day = ?", arguments: [site, day]) != nil
        }
        if stale {
            try writer.write { db in try db.execute(sql: "DELETE FROM rollup_stale WHERE site_id = ? AND day = ?", arguments: [site, day]) }
        }
        let (totals, rows, pairs) = try writer.read { db -> ((Int, Int, Int, Int, Int64), [(String, String, Int, Int64)],
                                                             [(String, String, String, String, Int, Int64)]) in
            // One pass over the day's events; every breakdown and pair is aggregated in memory.
            let dims = Dimension.allCases
            let columns = dims.map(\.rawValue)
            let pairIndexes = Self.pairFilters.map { f in dims.firstIndex(of: f)! }
            let breakdownIndexes = Self.pairBreakdowns.map { d in dims.firstIndex(of: d)! }
            let eventIndex = dims.firstIndex(of: .event)!
            struct Tally { var visitors = Set<Int64>(); var pageviews: Int64 = 0 }
            struct Pair: Hashable { var filter: String; var value: String }
            var single = [[String: Tally]](repeating: [:], count: dims.count)
            var pair: [Int: [Pair: Tally]] = [:]   // key fi * 100 + di
            var engaged: [String: (Int, Int64, Int, Int64)] = [:]
            var everyone = Set<Int64>()
            var pageviews = 0
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT visitor, name, engaged_ms, scroll, \(columns.joined(separator: ", ")) FROM events
                WHERE site_id = ? AND ts >= ? AND ts < ?
                """, arguments: [site, from, to])
            var values = [String](repeating: "", count: dims.count)
            while let row = try cursor.next() {
                let visitor: Int64 = row[0]
                let name: String = row[1]
                let view: Int64 = name == "pageview" ? 1 : 0
                // As in `breakdown`: the events table counts custom events, every other table pageviews.
                let custom = !Self.internalEventNames.contains(name)
                everyone.insert(visitor)
                pageviews += Int(view)
                for i in 0..<dims.count {
                    let v: String = row[4 + i] ?? ""
                    values[i] = v
                    if i == eventIndex && !custom { continue }
                    single[i][v, default: Tally()].visitors.insert(visitor)
                    single[i][v, default: Tally()].pageviews += i == eventIndex ? 1 : view
                }
                for fi in pairIndexes {
                    for di in breakdownIndexes where di != fi && (di != eventIndex || custom) {
                        let key = Pair(filter: values[fi], value: values[di])
                        pair[fi * 100 + di, default: [:]][key, default: Tally()].visitors.insert(visitor)
                        pair[fi * 100 + di, default: [:]][key, default: Tally()].pageviews += di == eventIndex ? 1 : view
                    }
                }
                if name == "engagement" {
                    let path = values[dims.firstIndex(of: .page)!]
                    var e = engaged[path] ?? (0, 0, 0, 0)
                    if let ms: Int64 = row[2] { e.0 += 1; e.1 += ms }
                    if let sc: Int64 = row[3] { e.2 += 1; e.3 += sc }
                    engaged[path] = e
                }
            }
            var rows: [(String, String, Int, Int64)] = []
            for (i, d) in dims.enumerated() {
                for (value, t) in single[i] { rows.append((d.rawValue, value, t.visitors.count, t.pageviews)) }
            }
            for (path, e) in engaged {
                rows.append((RollupKey.engagedMs, path, e.0, e.1))
                rows.append((RollupKey.scroll, path, e.2, e.3))
            }
            let s = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(bounce), 0), coalesce(sum(duration_ms), 0) FROM sessions
                WHERE site_id = ? AND started_at >= ? AND started_at < ?
                """, arguments: [site, from, to])
            for (key, column) in [(RollupKey.entry, "entry_path"), (RollupKey.exit, "exit_path")] {
                for r in try Row.fetchAll(db, sql: """
                    SELECT coalesce(\(column), ''), count(DISTINCT visitor), count(*) FROM sessions
                    WHERE site_id = ? AND started_at >= ? AND started_at < ? GROUP BY 1
                    """, arguments: [site, from, to]) {
                    rows.append((key, r[0], r[1], r[2]))
                }
            }
            var pairs: [(String, String, String, String, Int, Int64)] = []
            for (key, tallies) in pair {
                let f = dims[key / 100].rawValue, d = dims[key % 100].rawValue
                for (k, t) in tallies { pairs.append((f, k.filter, d, k.value, t.visitors.count, t.pageviews)) }
            }
            return ((everyone.count, pageviews, s?[0] ?? 0, s?[1] ?? 0, s?[2] ?? 0), rows, pairs)
        }
        try writer.write { db in
            // The engine reloads the day too (see FactStore).
            try WriteTransaction(db: db).factsChanged(site: site, days: [day])
            try db.execute(sql: "DELETE FROM rollup_values WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: "DELETE FROM rollup_days WHERE site_id = ? AND day = ?", arguments: [site, day])
            try db.execute(sql: """
                INSERT INTO rollup_days (site_id, day, visitors, pageviews, visits, bounces, duration_ms, refreshed_at) VALUES (?,?,?,?,?,?,?,?)
                """, arguments: [site, day, totals.0, totals.1, totals.2, totals.3, totals.4, now])
            let insert = try db.cachedStatement(sql: """
                INSERT INTO rollup_values (site_id, day, dimension, value, visitors, pageviews) VALUES (?,?,?,?,?,?)
                """)
            for r in rows { try insert.execute(arguments: [site, day, r.0, r.1, r.2, r.3]) }
            try db.execute(sql: "DELETE FROM rollup_pairs WHERE site_id = ? AND day = ?", arguments: [site, day])
            let pair = try db.cachedStatement(sql: """
                INSERT INTO rollup_pairs (site_id, day, fdim, fval, dim, value, visitors, pageviews) VALUES (?,?,?,?,?,?,?,?)
                """)
            for p in pairs { try pair.execute(arguments: [site, day, p.0, p.1, p.2, p.3, p.4, p.5]) }
        }
    }

    /// Days of a site (within `fromDay...toDay` when given) that have events but no rollup yet,
    /// or a stale one (late events arrived since), oldest first, at most `limit`.
    public func daysWithoutRollup(site: String, fromDay: Int64? = nil, toDay: Int64? = nil, limit: Int) throws -> [Int64] {
        try writer.read { db in
            guard let first = try Int64.fetchOne(db, sql: "SELECT min(ts) FROM events WHERE site_id = ?", arguments: [site]),
                  let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) else { return [] }
            let lower = max(first / Self.dayMs, fromDay ?? .min), upper = min(last / Self.dayMs, toDay ?? .max)
            guard lower <= upper else { return [] }
            // A day that received late events since its rollup was built counts as not rolled up.
            let done = Set(try Int64.fetchAll(db, sql: """
                SELECT day FROM rollup_days WHERE site_id = ? AND day BETWEEN ? AND ?
                  AND day NOT IN (SELECT day FROM rollup_stale WHERE site_id = ?)
                """, arguments: [site, lower, upper, site]))
            var days: [Int64] = []
            var d = lower
            while d <= upper && days.count < limit {
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

    /// A breakdown under one filter over whole days, from the pair rollups; nil when that pair is not rolled up.
    public func rollupFilteredBreakdown(site: String, fromDay: Int64, toDay: Int64, filter: (Dimension, String), dimension: Dimension,
                                        limit: Int = 1000) throws -> [BreakdownRow]? {
        guard Self.pairFilters.contains(filter.0), Self.pairBreakdowns.contains(dimension), filter.0 != dimension else { return nil }
        return try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT value, sum(visitors), sum(pageviews) FROM rollup_pairs
                WHERE site_id = ? AND fdim = ? AND fval = ? AND dim = ? AND day BETWEEN ? AND ?
                GROUP BY value ORDER BY 2 DESC, 3 DESC, value LIMIT ?
                """, arguments: [site, filter.0.rawValue, filter.1, dimension.rawValue, fromDay, toDay, limit]).map {
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

    /// Rolled-up days of a site before `cutoff` (ms).
    public func countRollupDaysOlder(site: String, cutoff: Int64) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM rollup_days WHERE site_id = ? AND (day + 1) * 86400000 <= ?",
                             arguments: [site, cutoff]) ?? 0
        }
    }

}

extension WriteTransaction {
    /// Deletes the oldest rolled-up day before `cutoff` (all three rollup tables); returns false
    /// when none is left.
    public func deleteOldestRollupDay(site: String, cutoff: Int64) throws -> Bool {
        guard let day = try Int64.fetchOne(db, sql: """
            SELECT min(day) FROM rollup_days WHERE site_id = ? AND (day + 1) * 86400000 <= ?
            """, arguments: [site, cutoff]) else { return false }
        for table in ["rollup_values", "rollup_pairs", "rollup_days"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE site_id = ? AND day = ?", arguments: [site, day])
        }
        return true
    }
}
