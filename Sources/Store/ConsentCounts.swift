import Foundation
import GRDB
public import Storage

extension WriteTransaction {
    public func add(_ tally: ConsentTally) throws {
        try AppDatabase.add(tally, db)
    }
}

extension AppDatabase {
    static func add(_ tally: ConsentTally, _ db: Database) throws {
        if !tally.withdrawn.isEmpty {
            let withdraw = try db.cachedStatement(sql: "UPDATE sessions SET forwardable = 0 WHERE site_id = ? AND visitor = ? AND forwardable = 1")
            for visitor in tally.withdrawn { try withdraw.execute(arguments: [tally.site, visitor]) }
        }
        for (day, metrics) in tally.counts {
            for (metric, n) in metrics {
                try db.cachedStatement(sql: """
                    INSERT INTO consent_counts (site_id, day, metric, n) VALUES (?, ?, ?, ?)
                    ON CONFLICT (site_id, day, metric) DO UPDATE SET n = n + excluded.n
                    """).execute(arguments: [tally.site, day, metric.rawValue, n])
            }
        }
    }

    /// Adds counts that come with no event (banners shown).
    public func add(_ tally: ConsentTally) throws {
        guard !tally.isEmpty else { return }
        try writer.write { db in try Self.add(tally, db) }
    }

    /// A site's consent counts for the days `from...to`, oldest first (days without any omitted).
    public func consentDays(site: String, from: Int64, to: Int64) throws -> [ConsentDay] {
        try writer.read { db in
            var days: [Int64: [ConsentMetric: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT day, metric, n FROM consent_counts WHERE site_id = ? AND day BETWEEN ? AND ?",
                                        arguments: [site, from, to]) {
                guard let metric = ConsentMetric(rawValue: row["metric"]) else { continue }
                days[row["day"], default: [:]][metric] = row["n"]
            }
            return days.keys.sorted().map { ConsentDay(day: $0, counts: days[$0]!) }
        }
    }

    /// The choices recorded for a site between two times (ms), per site day: all accepted, all
    /// rejected, customised (one category of two), with the source they were read from.
    public func consentChoices(site: String, from: Int64, to: Int64, calendar: SiteCalendar) throws -> [(day: Int64, analytics: Bool, marketing: Bool, source: String)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT ts, analytics, marketing, source FROM consent_records WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
                             arguments: [site, from, to]).map {
                (calendar.day(of: $0["ts"]), $0["analytics"], $0["marketing"], $0["source"])
            }
        }
    }
}
