import Foundation
import GRDB

/// A minimized event, ready to store. Every field here has already passed the pipeline's
/// consent decision and minimization: nothing in it identifies a device or a person except
/// `subject`, a keyed hash present only under the `identified` decision.
public struct EventRow: Sendable, Equatable {
    public enum Decision: String, Sendable { case anonymous, identified }

    public var siteID: String
    public var clientID: String?
    /// Server receive time, milliseconds since 1970 (UTC).
    public var timestamp: Int64
    public var name: String
    public var path: String
    public var decision: Decision
    /// Daily visitor hash under today's salt.
    public var visitor: Int64
    /// The same visitor under yesterday's salt, during the overlap window after midnight,
    /// so a session that spans midnight continues.
    public var previousVisitor: Int64?
    public var subject: Int64?
    /// Keyed hash of an e-mail address a visitor entered in an allowlisted form field under
    /// marketing consent (the address itself is not stored).
    public var emailHash: Int64?
    public var country: String?
    public var region: String?
    public var city: String?
    public var asn: Int64?
    public var asnOrg: String?
    public var browser: String?
    public var browserVersion: String?
    public var os: String?
    public var device: String?
    public var screen: String?
    public var sourceType: String
    public var referrerHost: String?
    public var referrerPath: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?
    public var utmTerm: String?
    public var utmContent: String?
    public var clickIDKind: String?
    public var clickID: String?
    /// Flat JSON object text.
    public var props: String?
    public var value: Double?
    public var currency: String?
    public var engagedMs: Int64?
    public var scroll: Int64?
    /// Set when read back.
    public var sessionID: Int64?

    public init(siteID: String, clientID: String?, timestamp: Int64, name: String, path: String,
                decision: Decision, visitor: Int64, sourceType: String) {
        self.siteID = siteID
        self.clientID = clientID
        self.timestamp = timestamp
        self.name = name
        self.path = path
        self.decision = decision
        self.visitor = visitor
        self.sourceType = sourceType
    }

    public var isPageview: Bool { name == "pageview" }
    /// Events that mean the visitor interacted (so the visit is not a bounce).
    public var isInteraction: Bool { !isPageview && name != "engagement" }
}

/// What happened to each event of a batch.
public enum InsertOutcome: Sendable, Equatable {
    case stored
    /// An event with the same client id was stored before.
    case duplicate
}

/// A session as stored.
public struct SessionRow: Sendable, Equatable {
    public var id: Int64
    public var siteID: String
    public var visitor: Int64
    public var subject: Int64?
    public var decision: String
    public var startedAt: Int64
    public var lastSeen: Int64
    public var entryPath: String?
    public var exitPath: String?
    public var pageviews: Int64
    public var interactions: Int64
    public var engagedMs: Int64
    public var durationMs: Int64
    public var bounce: Bool
}

/// Sessions end after this much inactivity.
public let sessionGapMilliseconds: Int64 = 30 * 60 * 1000

extension AppDatabase {
    /// Stores a batch in one transaction and keeps sessions current. Either the whole batch
    /// commits or nothing does.
    public func insertEvents(_ batch: [EventRow]) throws -> [InsertOutcome] {
        try writer.write { db in
            var outcomes: [InsertOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for event in batch {
                outcomes.append(try Self.insert(event, db))
            }
            return outcomes
        }
    }

    private static func insert(_ e: EventRow, _ db: Database) throws -> InsertOutcome {
        if let clientID = e.clientID {
            var dup = try RawStatement(db, "SELECT 1 FROM events WHERE site_id = ? AND client_id = ?")
            dup.bind(e.siteID); dup.bind(clientID)
            if try dup.fetchOne({ _ in true }) != nil { return .duplicate }
        }
        let sessionID = try session(for: e, db)
        var insert = try RawStatement(db, """
            INSERT INTO events (site_id, client_id, ts, name, path, decision, visitor, session_id, subject,
              country, region, city, asn, asn_org, browser, browser_version, os, device, screen,
              source_type, referrer_host, referrer_path, utm_source, utm_medium, utm_campaign, utm_term,
              utm_content, click_id_kind, click_id, props, value, currency, engaged_ms, scroll, email_hash)
            VALUES (?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?)
            """)
        insert.bind(e.siteID); insert.bind(e.clientID); insert.bind(e.timestamp); insert.bind(e.name); insert.bind(e.path)
        insert.bind(e.decision.rawValue); insert.bind(e.visitor); insert.bind(sessionID); insert.bind(e.subject)
        insert.bind(e.country); insert.bind(e.region); insert.bind(e.city); insert.bind(e.asn); insert.bind(e.asnOrg)
        insert.bind(e.browser); insert.bind(e.browserVersion); insert.bind(e.os); insert.bind(e.device); insert.bind(e.screen)
        insert.bind(e.sourceType); insert.bind(e.referrerHost); insert.bind(e.referrerPath); insert.bind(e.utmSource)
        insert.bind(e.utmMedium); insert.bind(e.utmCampaign); insert.bind(e.utmTerm); insert.bind(e.utmContent)
        insert.bind(e.clickIDKind); insert.bind(e.clickID); insert.bind(e.props); insert.bind(e.value); insert.bind(e.currency)
        insert.bind(e.engagedMs); insert.bind(e.scroll); insert.bind(e.emailHash)
        try insert.run()
        return .stored
    }

    /// Finds the visitor's open session (continuing one started under yesterday's salt during
    /// the overlap window) and updates it, or opens a new one. Returns the session id.
    private static func session(for e: EventRow, _ db: Database) throws -> Int64 {
        let since = e.timestamp - sessionGapMilliseconds
        func findOpen(_ visitor: Int64) throws -> (id: Int64, pageviews: Int64, interactions: Int64)? {
            var find = try RawStatement(db, """
                SELECT id, pageviews, interactions FROM sessions
                WHERE site_id = ? AND visitor = ? AND last_seen >= ?
                ORDER BY last_seen DESC LIMIT 1
                """)
            find.bind(e.siteID); find.bind(visitor); find.bind(since)
            return try find.fetchOne { ($0.int64(0), $0.int64(1), $0.int64(2)) }
        }
        var open = try findOpen(e.visitor)
        if open == nil, let previous = e.previousVisitor { open = try findOpen(previous) }
        let pageview: Int64 = e.isPageview ? 1 : 0
        let interaction: Int64 = e.isInteraction ? 1 : 0
        let engaged = max(0, e.engagedMs ?? 0)
        if let open {
            let pageviews = open.pageviews + pageview
            let interactions = open.interactions + interaction
            let bounce = pageviews <= 1 && interactions == 0
            var update = try RawStatement(db, """
                UPDATE sessions SET last_seen = max(last_seen, ?), duration_ms = max(duration_ms, ? - started_at),
                  exit_path = CASE WHEN ? THEN ? ELSE exit_path END,
                  pageviews = ?, interactions = ?, engaged_ms = engaged_ms + ?, bounce = ?,
                  subject = coalesce(subject, ?),
                  decision = CASE WHEN ? IS NOT NULL THEN 'identified' ELSE decision END
                WHERE id = ?
                """)
            update.bind(e.timestamp); update.bind(e.timestamp); update.bind(pageview); update.bind(e.path)
            update.bind(pageviews); update.bind(interactions); update.bind(engaged); update.bind(Int64(bounce ? 1 : 0))
            update.bind(e.subject); update.bind(e.subject); update.bind(open.id)
            try update.run()
            return open.id
        }
        var create = try RawStatement(db, """
            INSERT INTO sessions (site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path,
              pageviews, interactions, engaged_ms, duration_ms, bounce, source_type, referrer_host,
              utm_source, utm_medium, utm_campaign, country, browser, os, device)
            VALUES (?,?,?,?,?,?,?,?, ?,?,?,0,?,?,?, ?,?,?,?,?,?,?)
            """)
        create.bind(e.siteID); create.bind(e.visitor); create.bind(e.subject); create.bind(e.decision.rawValue)
        create.bind(e.timestamp); create.bind(e.timestamp); create.bind(e.path); create.bind(e.path)
        create.bind(pageview); create.bind(interaction); create.bind(engaged); create.bind(Int64(interaction == 0 ? 1 : 0))
        create.bind(e.sourceType); create.bind(e.referrerHost); create.bind(e.utmSource); create.bind(e.utmMedium)
        create.bind(e.utmCampaign); create.bind(e.country); create.bind(e.browser); create.bind(e.os); create.bind(e.device)
        try create.run()
        return db.lastInsertedRowID
    }
}

// MARK: Reading back (tests, CLI, later the dashboard)

extension AppDatabase {
    public func eventCount(site: String? = nil) throws -> Int {
        try writer.read { db in
            if let site {
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE site_id = ?", arguments: [site]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
        }
    }

    /// Client ids of the stored events of a site (tests use it to check acknowledged events).
    public func clientIDs(site: String) throws -> Set<String> {
        try writer.read { db in
            Set(try String.fetchAll(db, sql: "SELECT client_id FROM events WHERE site_id = ? AND client_id IS NOT NULL",
                                    arguments: [site]))
        }
    }

    public func events(site: String) throws -> [EventRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE site_id = ? ORDER BY id", arguments: [site]).map { r in
                var e = EventRow(siteID: r["site_id"], clientID: r["client_id"], timestamp: r["ts"], name: r["name"],
                                 path: r["path"], decision: EventRow.Decision(rawValue: r["decision"]) ?? .anonymous,
                                 visitor: r["visitor"], sourceType: r["source_type"])
                e.subject = r["subject"]; e.country = r["country"]; e.region = r["region"]; e.city = r["city"]
                e.asn = r["asn"]; e.asnOrg = r["asn_org"]; e.browser = r["browser"]
                e.browserVersion = r["browser_version"]; e.os = r["os"]; e.device = r["device"]; e.screen = r["screen"]
                e.referrerHost = r["referrer_host"]; e.referrerPath = r["referrer_path"]
                e.utmSource = r["utm_source"]; e.utmMedium = r["utm_medium"]; e.utmCampaign = r["utm_campaign"]
                e.utmTerm = r["utm_term"]; e.utmContent = r["utm_content"]
                e.clickIDKind = r["click_id_kind"]; e.clickID = r["click_id"]; e.props = r["props"]
                e.value = r["value"]; e.currency = r["currency"]; e.engagedMs = r["engaged_ms"]; e.scroll = r["scroll"]
                e.sessionID = r["session_id"]
                return e
            }
        }
    }

    public func sessions(site: String) throws -> [SessionRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE site_id = ? ORDER BY id", arguments: [site]).map { r in
                SessionRow(id: r["id"], siteID: r["site_id"], visitor: r["visitor"], subject: r["subject"],
                           decision: r["decision"], startedAt: r["started_at"], lastSeen: r["last_seen"],
                           entryPath: r["entry_path"], exitPath: r["exit_path"], pageviews: r["pageviews"],
                           interactions: r["interactions"], engagedMs: r["engaged_ms"], durationMs: r["duration_ms"],
                           bounce: r["bounce"])
            }
        }
    }
}
