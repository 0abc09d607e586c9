public import Foundation
import GRDB
public import Storage

/// A client site that may send events.
public struct Site: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Registrable domains the site's pages are served from; subdomains are included.
    public var domains: [String]
    /// Name of the policy file (without extension) in force for the site.
    public var policy: String
    public var createdAt: Date
    /// The site's time zone: where its days, months and hours start.
    public var calendar: SiteCalendar
    /// The consent banner's texts the site set in place of the built-in ones: language → key → text.
    public var bannerTexts: [String: [String: String]] = [:]
    /// When the site was archived (ms), nil while it collects. An archived site collects nothing;
    /// what it stored stays until its policy's retention removes it, or the site is deleted.
    public var archivedAt: Int64?
    /// When a deletion of the site started (ms), nil when none is under way.
    public var deletingAt: Int64?

    /// How long the collector may go on using a site as it read it (its cache of sites): an
    /// archived site may still receive events for this long, so it can be deleted only after it.
    public static let collectorRefresh: TimeInterval = 30

    public init(id: String, name: String, domains: [String], policy: String, createdAt: Date, calendar: SiteCalendar = .utc) {
        self.id = id
        self.name = name
        self.domains = domains
        self.policy = policy
        self.createdAt = createdAt
        self.calendar = calendar
    }
}

extension Site {
    /// Every site, oldest first.
    static func all(_ db: Database) throws -> [Site] {
        try Row.fetchAll(db, sql: "SELECT * FROM sites ORDER BY created_at, id").map(Site.init(row:))
    }

    init(row: Row) {
        id = row["id"]
        name = row["name"]
        domains = (row["domains"] as String).split(separator: " ").map(String.init)
        policy = row["policy"]
        createdAt = Date(timeIntervalSince1970: Double(row["created_at"] as Int64) / 1000)
        // A zone the system's tz database no longer knows reads as UTC (settings show it).
        calendar = SiteCalendar(identifier: row["timezone"]) ?? .utc
        let texts: String = row["banner_texts"] ?? "{}"
        bannerTexts = (try? JSONDecoder().decode([String: [String: String]].self, from: Data(texts.utf8))) ?? [:]
        archivedAt = row["archived_at"]
        deletingAt = row["deleting_at"]
    }
}

extension WriteTransaction {
    public func addSite(_ site: Site) throws {
        try db.execute(sql: "INSERT INTO sites (id, name, domains, policy, created_at, timezone) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [site.id, site.name, site.domains.joined(separator: " "), site.policy,
                                   Int64(site.createdAt.timeIntervalSince1970 * 1000), site.calendar.identifier])
    }

    /// Moves a site to another time zone. Its days are counted anew: the rollups of every day
    /// from the first stored event on are dropped (the rollup job rebuilds them, the engine
    /// reloads them; until then views read the raw events). Days before the first stored event
    /// keep the rollups they have, in the zone they were counted in (`rollup_days.zone`).
    public func setTimeZone(site id: String, to calendar: SiteCalendar) throws {
        guard let before = try site(id: id), before.calendar != calendar else { return }
        try db.execute(sql: "UPDATE sites SET timezone = ? WHERE id = ?", arguments: [calendar.identifier, id])
        // The engine's copies of old days no longer match the new days' bounds (see FactStore.view).
        if let (first, _) = try AppDatabase.eventSpan(db, site: id) {
            for table in ["rollup_values", "rollup_days", "rollup_stale"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE site_id = ? AND day >= ?", arguments: [id, before.calendar.day(of: first)])
            }
        }
    }

    /// Archives a site at `at`, or brings it back (nil).
    public func setArchived(site id: String, at: Int64?) throws {
        try db.execute(sql: "UPDATE sites SET archived_at = ? WHERE id = ?", arguments: [at, id])
    }

    /// Deletes at most `limit` of a site's rows from one of ``AppDatabase/siteDataTables`` and
    /// returns how many went: 0 once none is left.
    /// Callers loop, a short transaction per chunk, so ingestion's writer gets the write lock
    /// between chunks.
    public func deleteSiteRows(_ table: String, site: String, limit: Int) throws -> Int {
        precondition(AppDatabase.siteDataTables.contains(table), "not a table of site data")
        // WITHOUT ROWID tables, by their primary key.
        if let key = ["rollup_values": "site_id, dimension, day, value", "rollup_days": "site_id, day"][table] {
            try db.execute(sql: "DELETE FROM \(table) WHERE (\(key)) IN (SELECT \(key) FROM \(table) WHERE site_id = ? LIMIT ?)",
                           arguments: [site, limit])
            return db.changesCount
        }
        try db.execute(sql: "DELETE FROM \(table) WHERE rowid IN (SELECT rowid FROM \(table) WHERE site_id = ? LIMIT ?)",
                       arguments: [site, limit])
        return db.changesCount
    }

    /// Marks an archived site as being deleted (stamp `at`): false when it is not archived, or
    /// another deletion started less than `stale` ms ago (one that stopped mid-way may be resumed).
    public func startDeletingSite(_ id: String, at: Int64, stale: Int64) throws -> Bool {
        try db.execute(sql: """
            UPDATE sites SET deleting_at = ? WHERE id = ? AND archived_at IS NOT NULL AND (deleting_at IS NULL OR deleting_at < ?)
            """, arguments: [at, id, at - stale])
        return db.changesCount == 1
    }

    /// Ends a deletion stamped `stamp` that did not finish (it may be started again at once).
    public func stopDeletingSite(_ id: String, stamp: Int64) throws {
        try db.execute(sql: "UPDATE sites SET deleting_at = NULL WHERE id = ? AND deleting_at = ?", arguments: [id, stamp])
    }

    /// Deletes the site's row, if the deletion stamped `stamp` is still the one under way (false
    /// otherwise): what is left of its data (settings, goals, keys, requests and their receipts)
    /// goes with it (ON DELETE CASCADE). The audit log keeps its entries.
    public func deleteSite(_ id: String, stamp: Int64) throws -> Bool {
        try db.execute(sql: "DELETE FROM sites WHERE id = ? AND deleting_at = ?", arguments: [id, stamp])
        return db.changesCount == 1
    }

    public func setBannerTexts(site id: String, _ texts: [String: [String: String]]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(texts), as: UTF8.self)
        try db.execute(sql: "UPDATE sites SET banner_texts = ? WHERE id = ?", arguments: [json, id])
    }

    public func updateSite(id: String, name: String, domains: [String], policy: String) throws {
        try db.execute(sql: "UPDATE sites SET name = ?, domains = ?, policy = ? WHERE id = ?",
                       arguments: [name, domains.joined(separator: " "), policy, id])
    }

    public func site(id: String) throws -> Site? {
        try Row.fetchOne(db, sql: "SELECT * FROM sites WHERE id = ?", arguments: [id]).map(Site.init(row:))
    }

    public func sites() throws -> [Site] { try Site.all(db) }
}

extension AppDatabase {
    /// The tables holding a site's collected data, largest first, which deleting a site empties
    /// chunk by chunk before the site's row goes (``WriteTransaction/deleteSiteRows(_:site:limit:)``).
    /// (Conversions go before sessions: a session's deletion would first clear their link to it.)
    public static let siteDataTables = ["events", "conversions", "sessions", "rollup_values", "consent_records",
                                        "deliveries", "consent_counts", "fact_changes", "rollup_days", "rollup_stale",
                                        "imported_values", "imported_days"]

    public func addSite(_ site: Site) throws {
        try transaction { tx in try tx.addSite(site) }
    }

    public func sites() throws -> [Site] {
        try writer.read { db in try Site.all(db) }
    }

    public func site(id: String) throws -> Site? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sites WHERE id = ?", arguments: [id]).map(Site.init(row:))
        }
    }

    /// The calendar of a site (UTC for an unknown site).
    static func calendar(_ db: Database, site: String) throws -> SiteCalendar {
        try String.fetchOne(db, sql: "SELECT timezone FROM sites WHERE id = ?", arguments: [site]).flatMap(SiteCalendar.init(identifier:)) ?? .utc
    }

    public func calendar(site: String) throws -> SiteCalendar {
        try writer.read { db in try Self.calendar(db, site: site) }
    }
}
