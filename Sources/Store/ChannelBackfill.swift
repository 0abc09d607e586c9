import Foundation
import GRDB
import Storage
import Synchronization

/// The stored acquisition fields the channel of a visit is decided from.
/// What the classifier decides for a visit.
public struct Classified: Sendable {
    public var channel: String
    public var sourceName: String?
    public var sourceType: String
    public init(channel: String, sourceName: String?, sourceType: String) {
        self.channel = channel; self.sourceName = sourceName; self.sourceType = sourceType
    }
}

public struct StoredAcquisition: Hashable, Sendable {
    public var referrerHost: String?
    public var referrerPath: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var clickIDKind: String?
}

extension AppDatabase {
    /// Gives up to `limit` visits and `limit` events stored before channels existed (migration
    /// v16) their channel, source name and source type, as `classify` decides from their stored
    /// acquisition (the source type too: the same classifier decides all three, so an old row's
    /// type can change, e.g. a visit with only an fbclid was "paid" and is "social");
    /// the days of the events filled are marked stale, so their rollups and the engine's copies
    /// are rebuilt. Returns how many rows were filled (0: nothing left).
    public func fillUnsetChannels(limit: Int,
                                  classify: @escaping @Sendable (StoredAcquisition) -> Classified) throws -> Int {
        // Nothing to do (the partial indexes are empty): no functions registered, no write.
        let pending = try writer.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM events WHERE channel IS NULL) OR EXISTS (SELECT 1 FROM sessions WHERE channel IS NULL)
                """) ?? false
        }
        guard pending else { return 0 }
        let memo = Mutex<[StoredAcquisition: Classified]>([:])
        @Sendable func decide(_ values: [DatabaseValue]) -> Classified {
            let key = StoredAcquisition(referrerHost: String.fromDatabaseValue(values[0]), referrerPath: String.fromDatabaseValue(values[1]),
                                        utmSource: String.fromDatabaseValue(values[2]), utmMedium: String.fromDatabaseValue(values[3]),
                                        clickIDKind: String.fromDatabaseValue(values[4]))
            if let hit = memo.withLock({ $0[key] }) { return hit }
            let decided = classify(key)
            memo.withLock { $0[key] = decided }
            return decided
        }
        let channel = DatabaseFunction("candor_fill_channel", argumentCount: 5, pure: true) { decide($0).channel }
        let name = DatabaseFunction("candor_fill_source_name", argumentCount: 5, pure: true) { decide($0).sourceName }
        let type = DatabaseFunction("candor_fill_source_type", argumentCount: 5, pure: true) { decide($0).sourceType }
        let fields = "referrer_host, referrer_path, utm_source, utm_medium, click_id_kind"
        return try writer.write { db in
            db.add(function: channel)
            db.add(function: name)
            db.add(function: type)
            defer { db.remove(function: channel); db.remove(function: name); db.remove(function: type) }
            try db.execute(sql: """
                UPDATE sessions SET channel = candor_fill_channel(\(fields)), source_name = candor_fill_source_name(\(fields)),
                  source_type = candor_fill_source_type(\(fields))
                WHERE id IN (SELECT id FROM sessions WHERE channel IS NULL ORDER BY id LIMIT ?)
                """, arguments: [limit])
            let sessions = db.changesCount
            let span = try Row.fetchOne(db, sql: """
                SELECT min(id), max(id) FROM (SELECT id FROM events WHERE channel IS NULL ORDER BY id LIMIT ?)
                """, arguments: [limit])
            guard let low: Int64 = span?[0], let high: Int64 = span?[1] else { return sessions }
            // Their days' figures change: mark them as late events do.
            var calendars: [String: SiteCalendar] = [:]
            var days: [String: Set<Int64>] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT site_id, ts FROM events WHERE id BETWEEN ? AND ? AND channel IS NULL
                """, arguments: [low, high]) {
                let site: String = row["site_id"]
                if calendars[site] == nil { calendars[site] = try Self.calendar(db, site: site) }
                days[site, default: []].insert(calendars[site]!.day(of: row["ts"]))
            }
            for (site, siteDays) in days {
                for day in siteDays {
                    try db.execute(sql: "INSERT INTO rollup_stale (site_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING", arguments: [site, day])
                }
                // The rows change: the engine's loaded copies of these days are no longer current
                // (it reads the events until the rollup job rebuilds them).
                try WriteTransaction(db: db).factsChanged(site: site, days: Array(siteDays))
            }
            try db.execute(sql: """
                UPDATE events SET channel = candor_fill_channel(\(fields)), source_name = candor_fill_source_name(\(fields)),
                  source_type = candor_fill_source_type(\(fields))
                WHERE id BETWEEN ? AND ? AND channel IS NULL
                """, arguments: [low, high])
            return sessions + db.changesCount
        }
    }
}
