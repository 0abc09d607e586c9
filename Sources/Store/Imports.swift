import Foundation
import GRDB
import Storage

/// Where imported aggregates come from.
public enum ImportSource: String, Sendable, CaseIterable {
    case plausible, umami

    public var label: String { self == .plausible ? "Plausible" : "Umami" }
}

/// Daily aggregates of one site as another tool counted them, in the site's days: per day the
/// totals, and per day and breakdown the visitors and count of each value (the meaning of
/// `rollup_values`: visitors of the day with that value; pageviews for pages and event fields,
/// visits for entry and exit pages, events for event names).
public struct ImportedAggregates: Sendable, Equatable {
    public struct Totals: Sendable, Equatable {
        public var visitors = 0, pageviews = 0, visits = 0, bounces = 0
        public var durationMs: Int64 = 0
        public init(visitors: Int = 0, pageviews: Int = 0, visits: Int = 0, bounces: Int = 0, durationMs: Int64 = 0) {
            self.visitors = visitors; self.pageviews = pageviews; self.visits = visits; self.bounces = bounces; self.durationMs = durationMs
        }
    }

    public struct Key: Hashable, Sendable, Comparable {
        public let dimension: String, value: String
        public init(dimension: String, value: String) { self.dimension = dimension; self.value = value }
        public static func < (a: Key, b: Key) -> Bool { (a.dimension, a.value) < (b.dimension, b.value) }
    }

    public private(set) var days: [Int64: Totals] = [:]
    public private(set) var values: [Int64: [Key: (visitors: Int, count: Int)]] = [:]
    /// Set when a day's figure went past ``maxFigure`` (or its duration past ``maxDurationMs``):
    /// such data is refused, and sums of stored days cannot overflow.
    public private(set) var implausible = false

    /// Most a day's count may reach (visitors, visits, pageviews, a value's count).
    public static let maxFigure = 1_000_000_000_000
    /// Most a day's summed visit duration may reach (ms).
    public static let maxDurationMs: Int64 = 10_000_000_000_000

    public init() {}

    /// A sum held at the cap plus one (each term is at most the cap plus one, so it cannot overflow).
    private mutating func sum<T: FixedWidthInteger>(_ a: T, _ b: T, cap: T) -> T {
        guard b >= 0, b <= cap else { implausible = true; return cap + 1 }
        let s = a + b
        if s > cap { implausible = true; return cap + 1 }
        return s
    }

    /// Adds to a day's totals.
    public mutating func add(day: Int64, _ t: Totals) {
        var d = days[day] ?? Totals()
        let cap = Self.maxFigure
        d.visitors = sum(d.visitors, t.visitors, cap: cap); d.pageviews = sum(d.pageviews, t.pageviews, cap: cap)
        d.visits = sum(d.visits, t.visits, cap: cap); d.bounces = sum(d.bounces, t.bounces, cap: cap)
        d.durationMs = sum(d.durationMs, t.durationMs, cap: Self.maxDurationMs)
        days[day] = d
    }

    /// Adds to one value of a breakdown on a day (`dimension`: a ``Dimension`` raw value or a
    /// ``RollupKey``); a missing value (nil) is stored as '' like the rollups'.
    public mutating func add(day: Int64, _ dimension: String, _ value: String?, visitors: Int, count: Int) {
        let key = Key(dimension: dimension, value: value ?? "")
        let old = values[day]?[key] ?? (0, 0)
        values[day, default: [:]][key] = (sum(old.visitors, visitors, cap: Self.maxFigure), sum(old.count, count, cap: Self.maxFigure))
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.days == b.days && a.values.keys == b.values.keys && a.values.allSatisfy { day, v in
            guard let o = b.values[day], o.count == v.count else { return false }
            return v.allSatisfy { k, n in o[k].map { $0 == n } ?? false }
        }
    }
}

/// One import of a site, with the days it still holds (a later import of the same days takes them).
public struct ImportRecord: Sendable, Equatable {
    public let id: Int64
    public let site: String
    public let source: ImportSource
    public let files: [String]
    public let firstDay: Int64, lastDay: Int64
    /// Days the import brought in, and days of the files it left out (collected data, today, the future).
    public let days: Int, skippedDays: Int
    /// Days it still holds.
    public let heldDays: Int
    public let createdAt: Int64
    public let createdBy: String
}

/// Imported totals over a range of days.
public struct ImportedTotals: Sendable, Equatable {
    public var visitors = 0, pageviews = 0, visits = 0, bounces = 0
    public var durationMs: Int64 = 0
    /// Days of the range holding imported data.
    public var days = 0
    /// Sources of those days.
    public var sources: [ImportSource] = []

    public init(visitors: Int = 0, pageviews: Int = 0, visits: Int = 0, bounces: Int = 0, durationMs: Int64 = 0, days: Int = 0) {
        self.visitors = visitors; self.pageviews = pageviews; self.visits = visits; self.bounces = bounces; self.durationMs = durationMs
        self.days = days
    }
}

extension WriteTransaction {
    /// Stores an import of `data` for a site: only days from `oldest` on (the retention of daily
    /// aggregates), before the site's first collected day and before `today` are taken (the
    /// figures add imported and collected days, so no day may have both); each taken day replaces
    /// what an earlier import held for it, so importing the same files again changes nothing.
    /// Returns the import, or nil when no day could be taken.
    public func storeImport(site: String, source: ImportSource, files: [String], data: ImportedAggregates, today: Int64,
                            oldest: Int64 = .min, now: Int64, by actor: String) throws -> ImportRecord? {
        let calendar = try AppDatabase.calendar(db, site: site)
        var collectedFrom = today
        if let (first, _) = try AppDatabase.eventSpan(db, site: site) { collectedFrom = min(collectedFrom, calendar.day(of: first)) }
        if let rolled = try Int64.fetchOne(db, sql: "SELECT min(day) FROM rollup_days WHERE site_id = ?", arguments: [site]) {
            collectedFrom = min(collectedFrom, rolled)
        }
        let taken = data.days.keys.filter { $0 < collectedFrom && $0 >= oldest }.sorted()
        guard let first = taken.first, let last = taken.last else { return nil }
        try db.execute(sql: """
            INSERT INTO imports (site_id, source, files, first_day, last_day, days, skipped_days, created_at, created_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [site, source.rawValue, files.map { String($0.filter { !$0.isNewline }.prefix(200)) }.joined(separator: "\n"), first, last, taken.count, data.days.count - taken.count,
                             now, actor])
        let id = db.lastInsertedRowID
        let clearDay = try db.cachedStatement(sql: "DELETE FROM imported_days WHERE site_id = ? AND day = ?")
        let clearValues = try db.cachedStatement(sql: "DELETE FROM imported_values WHERE site_id = ? AND day = ?")
        let day = try db.cachedStatement(sql: """
            INSERT INTO imported_days (site_id, day, import_id, visitors, pageviews, visits, bounces, duration_ms) VALUES (?,?,?,?,?,?,?,?)
            """)
        let value = try db.cachedStatement(sql: """
            INSERT INTO imported_values (site_id, day, dimension, value, import_id, visitors, count) VALUES (?,?,?,?,?,?,?)
            """)
        for d in taken {
            try clearDay.execute(arguments: [site, d])
            try clearValues.execute(arguments: [site, d])
            let t = data.days[d]!
            try day.execute(arguments: [site, d, id, t.visitors, t.pageviews, t.visits, t.bounces, t.durationMs])
            for (k, n) in (data.values[d] ?? [:]).sorted(by: { $0.key < $1.key }) {
                try value.execute(arguments: [site, d, k.dimension, k.value, id, n.visitors, n.count])
            }
        }
        // Imports left without a day are gone.
        try db.execute(sql: """
            DELETE FROM imports WHERE site_id = ? AND id != ? AND NOT EXISTS (SELECT 1 FROM imported_days WHERE import_id = imports.id)
            """, arguments: [site, id])
        return try AppDatabase.imports(db, site: site).first { $0.id == id }
    }

    /// Removes an import and every day it holds; false when the site has no such import.
    public func deleteImport(site: String, id: Int64) throws -> Bool {
        try db.execute(sql: "DELETE FROM imports WHERE site_id = ? AND id = ?", arguments: [site, id])
        return db.changesCount == 1
    }

    public func imports(site: String) throws -> [ImportRecord] { try AppDatabase.imports(db, site: site) }
}

/// The imported days of one site that count within a range of days, looked up once per view
/// (``AppDatabase/importedSpan(site:fromDay:toDay:)``) and read by every imported query of it.
public struct ImportedSpan: Sendable, Equatable {
    public let site: String
    public let fromDay: Int64, toDay: Int64
    /// Imported days of the range that hold collected events: they count the events only.
    let collected: [Int64]

    /// The condition on a table of imported days aliased `i`: within the range, none of
    /// ``collected``, none with a rollup.
    var condition: (sql: String, arguments: StatementArguments) {
        let without = collected.isEmpty ? "" : " AND i.day NOT IN (\(collected.map(String.init).joined(separator: ",")))"
        return ("i.site_id = ? AND i.day BETWEEN ? AND ?\(without) AND NOT EXISTS (SELECT 1 FROM rollup_days r WHERE r.site_id = i.site_id AND r.day = i.day)",
                [site, fromDay, toDay])
    }
}

extension AppDatabase {
    static func imports(_ db: Database, site: String) throws -> [ImportRecord] {
        try Row.fetchAll(db, sql: """
            SELECT i.id, i.site_id, i.source, i.files, i.first_day, i.last_day, i.days, i.skipped_days, i.created_at, i.created_by,
              (SELECT count(*) FROM imported_days d WHERE d.import_id = i.id)
            FROM imports i WHERE i.site_id = ? ORDER BY i.id
            """, arguments: [site]).map { r in
            let files: String = r[3]
            return ImportRecord(id: r[0], site: r[1], source: ImportSource(rawValue: r[2]) ?? .plausible,
                                files: files.split(separator: "\n").map(String.init), firstDay: r[4], lastDay: r[5], days: r[6],
                                skippedDays: r[7], heldDays: r[10], createdAt: r[8], createdBy: r[9])
        }
    }

    /// A site's imports, oldest first.
    public func imports(site: String) throws -> [ImportRecord] {
        try writer.read { db in try Self.imports(db, site: site) }
    }

    /// The imported days of `fromDay...toDay` that count, nil when none does: none on a day that
    /// holds collected events (in the site's current zone), none with a rollup. The import takes
    /// no such day, but a move to another time zone, or events a browser held back, can give
    /// collected data to an imported day afterwards: the collected data wins.
    public func importedSpan(site: String, fromDay: Int64, toDay: Int64) throws -> ImportedSpan? {
        guard fromDay <= toDay else { return nil }
        return try writer.read { db in
            // Imported days from the first event's day on (none, unless the site moved or events
            // came late) that hold events.
            var collected: [Int64] = []
            if let (first, _) = try Self.eventSpan(db, site: site) {
                let calendar = try Self.calendar(db, site: site)
                let firstDay = calendar.day(of: first)
                if firstDay <= toDay {
                    for day in try Int64.fetchAll(db, sql: "SELECT day FROM imported_days WHERE site_id = ? AND day BETWEEN ? AND ?",
                                                  arguments: [site, max(fromDay, firstDay), toDay])
                    where try Int.fetchOne(db, sql: "SELECT 1 FROM events WHERE site_id = ? AND ts >= ? AND ts < ? LIMIT 1",
                                           arguments: [site, calendar.start(of: day), calendar.end(of: day)]) != nil {
                        collected.append(day)
                    }
                }
            }
            let span = ImportedSpan(site: site, fromDay: fromDay, toDay: toDay, collected: collected)
            let condition = span.condition
            return try Int.fetchOne(db, sql: "SELECT 1 FROM imported_days i WHERE \(condition.sql) LIMIT 1", arguments: condition.arguments) != nil
                ? span : nil
        }
    }

    /// Imported totals of a span.
    public func importedTotals(_ span: ImportedSpan) throws -> ImportedTotals {
        try writer.read { db in
            let counted = span.condition
            guard let r = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0), coalesce(sum(visits), 0), coalesce(sum(bounces), 0),
                  coalesce(sum(duration_ms), 0), count(*) FROM imported_days i WHERE \(counted.sql)
                """, arguments: counted.arguments) else { return ImportedTotals() }
            var t = ImportedTotals(visitors: r[0], pageviews: r[1], visits: r[2], bounces: r[3], durationMs: r[4], days: r[5])
            if t.days > 0 {
                t.sources = try String.fetchAll(db, sql: """
                    SELECT DISTINCT s.source FROM imported_days i JOIN imports s ON s.id = i.import_id WHERE \(counted.sql) ORDER BY 1
                    """, arguments: counted.arguments).compactMap(ImportSource.init(rawValue:))
            }
            return t
        }
    }

    /// An imported breakdown of a span (`key`: a ``Dimension`` raw value or a ``RollupKey``),
    /// most visitors first, like ``rollupBreakdown(site:fromDay:toDay:key:limit:)``.
    public func importedBreakdown(_ span: ImportedSpan, key: String, limit: Int = AppDatabase.tableRowLimit) throws -> [BreakdownRow] {
        try writer.read { db in
            let counted = span.condition
            return try Row.fetchAll(db, sql: """
                SELECT value, sum(visitors), sum(count) FROM imported_values i
                WHERE i.dimension = ? AND \(counted.sql)
                GROUP BY value ORDER BY 2 DESC, 3 DESC, value LIMIT ?
                """, arguments: [key] + counted.arguments + [limit]).map {
                let value: String = $0[0]
                return BreakdownRow(value: value.isEmpty ? nil : value, visitors: $0[1], pageviews: $0[2])
            }
        }
    }

    /// Imported visitors, pageviews and visits by day of a span (days without imported data left out).
    public func importedDaily(_ span: ImportedSpan) throws -> [Int64: (visitors: Int, pageviews: Int, visits: Int)] {
        try writer.read { db in
            let counted = span.condition
            return try Row.fetchAll(db, sql: "SELECT day, visitors, pageviews, visits FROM imported_days i WHERE \(counted.sql)",
                                    arguments: counted.arguments).reduce(into: [:]) { $0[$1[0]] = ($1[1], $1[2], $1[3]) }
        }
    }
}
