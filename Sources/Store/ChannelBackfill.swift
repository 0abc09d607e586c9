import Foundation
import GRDB
import Synchronization

/// The stored acquisition fields the channel of a visit is decided from.
public struct StoredAcquisition: Hashable, Sendable {
    public var referrerHost: String?
    public var referrerPath: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var clickIDKind: String?
}

extension AppDatabase {
    /// Gives up to `limit` visits and `limit` events stored before channels existed (migration
    /// v16) their channel and source name, as `classify` decides from their stored acquisition;
    /// the days of the events filled are marked stale, so their rollups and the engine's copies
    /// are rebuilt. Returns how many rows were filled (0: nothing left).
    public func fillUnsetChannels(limit: Int,
                                  classify: @escaping @Sendable (StoredAcquisition) -> (channel: String, sourceName: String?)) throws -> Int {
        let memo = Mutex<[StoredAcquisition: (channel: String, sourceName: String?)]>([:])
        @Sendable func decide(_ values: [DatabaseValue]) -> (channel: String, sourceName: String?) {
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
        let fields = "referrer_host, referrer_path, utm_source, utm_medium, click_id_kind"
        return try writer.write { db in
            db.add(function: channel)
            db.add(function: name)
            defer { db.remove(function: channel); db.remove(function: name) }
            try db.execute(sql: """
                UPDATE sessions SET channel = candor_fill_channel(\(fields)), source_name = candor_fill_source_name(\(fields))
                WHERE id IN (SELECT id FROM sessions WHERE channel IS NULL ORDER BY id LIMIT ?)
                """, arguments: [limit])
            let sessions = db.changesCount
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM events WHERE channel IS NULL ORDER BY id LIMIT ?", arguments: [limit])
            guard let low = ids.first, let high = ids.last else { return sessions }
            // Their days' figures change: mark them as late events do.
            var calendars: [String: SiteCalendar] = [:]
            var days: Set<[String]> = []
            for row in try Row.fetchAll(db, sql: """
                SELECT site_id, ts FROM events WHERE id BETWEEN ? AND ? AND channel IS NULL
                """, arguments: [low, high]) {
                let site: String = row["site_id"]
                if calendars[site] == nil { calendars[site] = try Self.calendar(db, site: site) }
                days.insert([site, String(calendars[site]!.day(of: row["ts"]))])
            }
            for day in days {
                try db.execute(sql: "INSERT INTO rollup_stale (site_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING",
                               arguments: [day[0], Int64(day[1])!])
            }
            try db.execute(sql: """
                UPDATE events SET channel = candor_fill_channel(\(fields)), source_name = candor_fill_source_name(\(fields))
                WHERE id BETWEEN ? AND ? AND channel IS NULL
                """, arguments: [low, high])
            return sessions + db.changesCount
        }
    }
}
