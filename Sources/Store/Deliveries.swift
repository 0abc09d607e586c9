public import Foundation
import GRDB
public import Storage

/// A destination a site forwards consented conversions to (issue 17). `settings` holds what is
/// not secret (pixel id, base URL, delay); `credential` a libsodium secretbox of the token,
/// opened only by the delivery service.
public struct DestinationRow: Sendable, Equatable {
    public var id: Int64
    public var siteID: String
    public var kind: String
    public var label: String
    public var enabled: Bool
    public var settings: [String: String]
    public var credential: Data?
    /// A CRM: its deliveries carry the sealed contact (e-mail, name) to find the person by.
    public var wantsContact: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    init(row: Row) {
        id = row["id"]; siteID = row["site_id"]; kind = row["kind"]; label = row["label"]; enabled = row["enabled"]
        settings = Self.settings(row["settings"])
        credential = row["credential"]; wantsContact = row["wants_contact"]; createdAt = row["created_at"]; updatedAt = row["updated_at"]
    }

    /// The settings column's JSON object (an unreadable one: none).
    static func settings(_ text: String) -> [String: String] { Outbox.settings(text) }
}

/// A delivery that is due, with its destination.
public struct DueDelivery: Sendable {
    public var id: Int64
    public var eventID: String
    public var attempts: Int
    public var facts: DeliveryFacts?
    /// Sealed contact JSON (CRMs only).
    public var contact: Data?
    public var destination: DestinationRow
    /// The site's first domain, for event_source_url.
    public var siteDomain: String?
    /// The site's policy now (a move to cnil-exempt stops what is queued).
    public var sitePolicy: String
    /// Whether the conversion's visit is still forwardable now (consent withdrawn, or an
    /// objection sent, since it was queued: false; the visit erased or expired: false).
    public var visitForwardable: Bool
}

/// How one attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case sent(status: Int, durationMs: Int64)
    /// Try again at `at` (ms).
    case retry(at: Int64, status: Int?, error: String)
    /// Given up: dead-lettered, kept for replay.
    case dead(status: Int?, error: String)
    /// Not sent: the destination cannot use it (no match key, …).
    case skipped(String)
    /// The CRM had no matching person (never created).
    case notFound(status: Int, durationMs: Int64)
}

/// A destination's delivery figures for the dashboard.
public struct DeliveryStats: Sendable, Equatable {
    public var destination: Int64
    public var sentToday: Int
    public var failedToday: Int
    public var skippedToday: Int
    public var pending: Int
    public var dead: Int
    public var averageMs: Double?
    public var lastSuccess: Int64?
}

/// A delivery that failed at least once.
public struct DeliveryError: Sendable, Equatable {
    public var id: Int64
    public var destination: Int64
    public var eventID: String
    public var status: String
    public var attempts: Int
    public var httpStatus: Int?
    public var error: String
    public var dueAt: Int64
    public var createdAt: Int64
}

/// Delivery statuses.
public enum DeliveryStatus {
    public static let pending = "pending", sent = "sent", skipped = "skipped", notFound = "not_found", dead = "dead"
}

extension AppDatabase {
    // MARK: Destinations

    public func destinations(site: String) throws -> [DestinationRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM destinations WHERE site_id = ? ORDER BY id", arguments: [site]).map(DestinationRow.init(row:))
        }
    }

    public func destination(id: Int64) throws -> DestinationRow? {
        try writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM destinations WHERE id = ?", arguments: [id]).map(DestinationRow.init(row:)) }
    }

    // MARK: Delivery service

    /// Pending deliveries due at `now`, oldest first: at most `perDestination` of each enabled destination (the oldest), so that one
    /// destination's backlog never holds up the others; `excluding` destinations (worked now, or
    /// left alone by their circuit breaker) are left out.
    public func dueDeliveries(now: Int64, perDestination: Int, excluding: Set<Int64> = []) throws -> [DueDelivery] {
        let notIn = excluding.isEmpty ? "" : " AND d.destination_id NOT IN (\(excluding.map(String.init).joined(separator: ",")))"
        return try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT q.id AS delivery_id, q.event_id, q.attempts, q.facts, q.contact, s.domains, s.policy AS site_policy,
                  se.forwardable AS visit_forwardable, t.*
                FROM (SELECT d.*, row_number() OVER (PARTITION BY d.destination_id ORDER BY d.due_at, d.id) AS rank
                      FROM deliveries d JOIN destinations e ON e.id = d.destination_id AND e.enabled = 1
                      WHERE d.status = 'pending' AND d.due_at <= ?\(notIn)) q
                JOIN destinations t ON t.id = q.destination_id JOIN sites s ON s.id = q.site_id
                LEFT JOIN conversions c ON c.id = q.conversion_id LEFT JOIN sessions se ON se.id = c.session_id
                WHERE q.rank <= ?
                ORDER BY q.due_at, q.id
                """, arguments: [now, perDestination]).map { row in
                let facts = (row["facts"] as String?).flatMap { try? JSONDecoder().decode(DeliveryFacts.self, from: Data($0.utf8)) }
                let domain = (row["domains"] as String?)?.split(separator: " ").first.map(String.init)
                return DueDelivery(id: row["delivery_id"], eventID: row["event_id"], attempts: row["attempts"], facts: facts, contact: row["contact"],
                                   destination: DestinationRow(row: row), siteDomain: domain, sitePolicy: row["site_policy"],
                                   visitForwardable: (row["visit_forwardable"] as Bool?) ?? false)
            }
        }
    }

    /// Records an attempt. A delivered (or skipped, or not found) delivery keeps no facts.
    public func recordDelivery(id: Int64, _ outcome: DeliveryOutcome, at now: Int64) throws {
        try writer.write { db in
            // SQLite's length() counts code points: cut by them, never by grapheme clusters.
            let error = { (s: String) in s.prefix(codePoints: 500) }
            switch outcome {
            case .sent(let status, let ms), .notFound(let status, let ms):
                let state = if case .sent = outcome { DeliveryStatus.sent } else { DeliveryStatus.notFound }
                try db.execute(sql: """
                    UPDATE deliveries SET status = ?, attempts = attempts + 1, sent_at = ?, duration_ms = ?, last_status = ?, facts = NULL, contact = NULL,
                      last_error = NULL
                    WHERE id = ?
                    """, arguments: [state, now, ms, status, id])
            case .retry(let at, let status, let message):
                try db.execute(sql: "UPDATE deliveries SET attempts = attempts + 1, due_at = ?, last_status = ?, last_error = ? WHERE id = ?",
                               arguments: [at, status, error(message), id])
            case .dead(let status, let message):
                try db.execute(sql: """
                    UPDATE deliveries SET status = 'dead', attempts = attempts + 1, sent_at = ?, last_status = ?, last_error = ? WHERE id = ?
                    """, arguments: [now, status, error(message), id])
            case .skipped(let reason):
                try db.execute(sql: "UPDATE deliveries SET status = 'skipped', sent_at = ?, last_error = ?, facts = NULL, contact = NULL WHERE id = ?",
                               arguments: [now, error(reason), id])
            }
        }
    }

    /// Conversions given up on (dead-lettered) since `since` (ms), per site.
    public func deadDeliveries(since: Int64) throws -> [(site: String, count: Int)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT site_id, count(*) AS n FROM deliveries WHERE status = 'dead' AND sent_at >= ? GROUP BY site_id ORDER BY site_id",
                             arguments: [since]).map { ($0["site_id"], $0["n"]) }
        }
    }

    /// Figures per destination of a site: today's (from `dayStart`, ms) sent, failed (dead) and
    /// skipped deliveries, what is pending and dead-lettered, the average delivery time of
    /// today's sent ones and the last success.
    public func deliveryStats(site: String, dayStart: Int64) throws -> [DeliveryStats] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT t.id,
                  count(CASE WHEN d.status IN ('sent','not_found') AND d.sent_at >= :day THEN 1 END) AS sent_today,
                  count(CASE WHEN d.status = 'dead' AND d.sent_at >= :day THEN 1 END) AS failed_today,
                  count(CASE WHEN d.status = 'skipped' AND d.sent_at >= :day THEN 1 END) AS skipped_today,
                  count(CASE WHEN d.status = 'pending' THEN 1 END) AS pending,
                  count(CASE WHEN d.status = 'dead' THEN 1 END) AS dead,
                  avg(CASE WHEN d.status IN ('sent','not_found') AND d.sent_at >= :day THEN d.duration_ms END) AS average_ms,
                  max(CASE WHEN d.status IN ('sent','not_found') THEN d.sent_at END) AS last_success
                FROM destinations t LEFT JOIN deliveries d ON d.destination_id = t.id
                WHERE t.site_id = :site GROUP BY t.id ORDER BY t.id
                """, arguments: ["site": site, "day": dayStart]).map {
                DeliveryStats(destination: $0["id"], sentToday: $0["sent_today"], failedToday: $0["failed_today"],
                              skippedToday: $0["skipped_today"], pending: $0["pending"], dead: $0["dead"],
                              averageMs: $0["average_ms"], lastSuccess: $0["last_success"])
            }
        }
    }

    /// The site's deliveries with an error (retrying, dead-lettered or skipped), newest first.
    public func deliveryErrors(site: String, limit: Int = 50) throws -> [DeliveryError] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, destination_id, event_id, status, attempts, last_status, last_error, due_at, created_at FROM deliveries
                WHERE site_id = ? AND last_error IS NOT NULL AND status IN ('pending','dead','skipped')
                ORDER BY id DESC LIMIT ?
                """, arguments: [site, limit]).map {
                DeliveryError(id: $0["id"], destination: $0["destination_id"], eventID: $0["event_id"], status: $0["status"],
                              attempts: $0["attempts"], httpStatus: $0["last_status"], error: $0["last_error"], dueAt: $0["due_at"],
                              createdAt: $0["created_at"])
            }
        }
    }

    /// Delivery rows kept: done ones (sent, skipped, not found: no facts left) for 90 days of
    /// figures, dead letters (with their facts, for replay) and deliveries still waiting (a paused
    /// destination) for 30 days. Returns rows deleted.
    public func purgeDeliveries(now: Int64) throws -> Int {
        try writer.write { db in
            try db.execute(sql: """
                DELETE FROM deliveries WHERE (status IN ('sent','skipped','not_found') AND sent_at < ?) OR (status = 'dead' AND sent_at < ?)
                  OR (status = 'pending' AND created_at < ?)
                """, arguments: [now - 90 * 86_400_000, now - 30 * 86_400_000, now - 30 * 86_400_000])
            return db.changesCount
        }
    }


    /// Deliveries of a site by status (tests, CLI).
    public func deliveryCounts(site: String) throws -> [String: Int] {
        try writer.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT status, count(*) FROM deliveries WHERE site_id = ? GROUP BY status",
                                                              arguments: [site]).map { ($0[0] as String, $0[1] as Int) })
        }
    }
}

extension WriteTransaction {
    public func addDestination(site: String, kind: String, label: String, settings: [String: String], credential: Data?,
                               wantsContact: Bool = false, at: Int64) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO destinations (site_id, kind, label, enabled, settings, credential, wants_contact, created_at, updated_at)
            VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)
            """, arguments: [site, kind, label, try Outbox.json(settings), credential, wantsContact, at, at])
        return db.lastInsertedRowID
    }

    /// Changes a destination; nil leaves a field as it is.
    public func updateDestination(id: Int64, enabled: Bool? = nil, credential: Data? = nil, at: Int64) throws {
        try db.execute(sql: """
            UPDATE destinations SET enabled = coalesce(?, enabled), credential = coalesce(?, credential), updated_at = ? WHERE id = ?
            """, arguments: [enabled, credential, at, id])
    }

    public func removeDestination(id: Int64) throws {
        try db.execute(sql: "DELETE FROM destinations WHERE id = ?", arguments: [id])
    }

    /// Puts a site's dead-lettered deliveries (of one destination, or all) back in the queue, due
    /// now with their attempts reset. Returns how many.
    public func replayDeliveries(site: String, destination: Int64? = nil, at: Int64) throws -> Int {
        try db.execute(sql: """
            UPDATE deliveries SET status = 'pending', attempts = 0, due_at = ?, last_error = NULL
            WHERE site_id = ? AND status = 'dead' AND facts IS NOT NULL AND (? IS NULL OR destination_id = ?)
            """, arguments: [at, site, destination, destination])
        return db.changesCount
    }
}

extension Database {
    /// Writes the outbox rows of a conversion just stored, in the caller's transaction: one per
    /// enabled destination of the site, when the conversion's visit is forwardable (its latest
    /// event passed ``Consent/ForwardingGate``). Refunds are not forwarded. The visit's click id
    /// (kept only under marketing consent) is added to the facts, and its landing page. `contact`
    /// (sealed e-mail and name) is written only for destinations that want it (CRMs). Returns the
    /// rows written.
    @discardableResult
    func enqueueDeliveries(site: String, conversionID: Int64, eventID: String, visit: Int64?, facts: DeliveryFacts,
                           contact: Data? = nil, now: Int64) throws -> Int {
        guard let visit, facts.kind != "refund" else { return 0 }
        // Statements from the connection's cache: this runs inside the event writer's transaction.
        let destinations = try Row.fetchAll(cachedStatement(sql: "SELECT id, settings, wants_contact FROM destinations WHERE site_id = ? AND enabled = 1"),
                                            arguments: [site]).map { OutboxDestination(id: $0[0], settings: $0[1], wantsContact: $0[2]) }
        guard !destinations.isEmpty,
              let session = try Row.fetchOne(cachedStatement(sql: "SELECT forwardable, entry_path FROM sessions WHERE id = ?"), arguments: [visit]),
              session[0] as Bool else { return 0 }
        var click: (kind: String?, id: String, ts: Int64)?
        if facts.clickID == nil, let row = try Row.fetchOne(cachedStatement(sql: """
            SELECT click_id_kind, click_id, ts FROM events WHERE session_id = ? AND click_id IS NOT NULL ORDER BY ts DESC LIMIT 1
            """), arguments: [visit]) {
            click = (row[0], row[1], row[2])
        }
        var written = 0
        for r in try Outbox.rows(facts: facts, eventID: eventID, landing: session[1], click: click, contact: contact,
                                 destinations: destinations, now: now) {
            try execute(sql: """
                INSERT INTO deliveries (destination_id, site_id, conversion_id, event_id, facts, contact, status, due_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT(destination_id, event_id) DO NOTHING
                """, arguments: [r.destinationID, site, conversionID, r.eventID, r.facts, r.contact, r.dueAt, now])
            written += changesCount
        }
        return written
    }
}
