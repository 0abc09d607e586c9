import Foundation
import GRDB
public import Storage
import Synchronization

extension VisitAcquisition {
    /// Read from `column`, `column + 1`, … of a row in the order of ``AppDatabase/acquisitionColumns``.
    init(_ row: borrowing RawStatement, from column: Int32) {
        self.init(sourceType: row.text(column) ?? "direct", referrerHost: row.text(column + 1), referrerPath: row.text(column + 2),
                  utmSource: row.text(column + 3), utmMedium: row.text(column + 4), utmCampaign: row.text(column + 5),
                  utmTerm: row.text(column + 6), utmContent: row.text(column + 7), clickIDKind: row.text(column + 8),
                  channel: row.text(column + 9), sourceName: row.text(column + 10))
    }

    func bind(to statement: inout RawStatement) {
        statement.bind(sourceType); statement.bind(referrerHost); statement.bind(referrerPath); statement.bind(utmSource)
        statement.bind(utmMedium); statement.bind(utmCampaign); statement.bind(utmTerm); statement.bind(utmContent); statement.bind(clickIDKind)
        statement.bind(channel); statement.bind(sourceName)
    }
}

extension AppDatabase {
    /// The columns of a session (and of each of its events) that hold its ``VisitAcquisition``.
    static let acquisitionColumns = "source_type, referrer_host, referrer_path, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id_kind, channel, source_name"
}

extension AppDatabase {
    /// Stores a batch in one transaction and keeps sessions current. Either the whole batch
    /// commits or nothing does.
    /// Stores events and, in the same transaction, the consent counts of the events stored
    /// (by decision and signal, on the event's day) and the `tallies` that come without a row
    /// (events dropped for consent).
    public func insertEvents(_ batch: [EventRow], tallies: [ConsentTally] = []) throws -> [InsertOutcome] {
        do {
            return try writer.write { db in
                var statements = try IngestStatements(db)
                var outcomes: [InsertOutcome] = []
                outcomes.reserveCapacity(batch.count)
                var stored: [EventRow] = []
                stored.reserveCapacity(batch.count)
                for event in batch {
                    let outcome = try insert(event, &statements)
                    outcomes.append(outcome)
                    if outcome == .stored { stored.append(event) }
                }
                for t in try ConsentTally.merging(tallies, stored: stored, day: { try statements.calendar(site: $0.siteID).day(of: $0.timestamp) }) {
                    try Self.add(t, db)
                }
                return outcomes
            }
        } catch {
            // Sessions opened in the rolled-back transaction do not exist.
            sessionHints.withLock { $0.removeAll() }
            throw error
        }
    }

    private func insert(_ event: EventRow, _ st: inout IngestStatements) throws -> InsertOutcome {
        if let clientID = event.clientID {
            st.duplicate.start()
            st.duplicate.bind(event.siteID); st.duplicate.bind(clientID)
            if try st.duplicate.fetchOne({ _ in true }) != nil { return .duplicate }
        }
        let (sessionID, acquisition, startedAt) = try session(for: event, &st)
        if event.late {
            // Its day's figures changed, and its visit's (counted on the day the visit began).
            let calendar = try st.calendar(site: event.siteID)
            for day in Set([calendar.day(of: event.timestamp), calendar.day(of: startedAt)]) {
                st.staleDay.start()
                st.staleDay.bind(event.siteID); st.staleDay.bind(day)
                try st.staleDay.run()
            }
        }
        var e = event
        acquisition.apply(to: &e)
        st.insert.start()
        st.insert.bind(e.siteID); st.insert.bind(e.clientID); st.insert.bind(e.timestamp); st.insert.bind(e.name); st.insert.bind(e.path)
        st.insert.bind(e.decision.rawValue); st.insert.bind(e.visitor); st.insert.bind(sessionID); st.insert.bind(e.subject)
        st.insert.bind(e.country); st.insert.bind(e.region); st.insert.bind(e.city); st.insert.bind(e.asn); st.insert.bind(e.asnOrg)
        st.insert.bind(e.browser); st.insert.bind(e.browserVersion); st.insert.bind(e.os); st.insert.bind(e.device); st.insert.bind(e.screen)
        st.insert.bind(e.sourceType); st.insert.bind(e.referrerHost); st.insert.bind(e.referrerPath); st.insert.bind(e.utmSource)
        st.insert.bind(e.utmMedium); st.insert.bind(e.utmCampaign); st.insert.bind(e.utmTerm); st.insert.bind(e.utmContent)
        st.insert.bind(e.clickIDKind); st.insert.bind(e.clickID); st.insert.bind(e.props); st.insert.bind(e.value); st.insert.bind(e.currency)
        st.insert.bind(e.engagedMs); st.insert.bind(e.scroll); st.insert.bind(e.emailHash)
        st.insert.bind(e.channel); st.insert.bind(e.sourceName)
        try st.insert.run()
        if e.isConversion && e.attributable {
            // The same conversion model as webhooks: a sale (with a value) or a lead, attributed to its visit.
            let externalID = e.conversionExternalID(storedID: st.insert.lastInsertedRowID)
            st.conversion.start()
            st.conversion.bind(e.siteID); st.conversion.bind(externalID)
            st.conversion.bind(e.value == nil ? "lead" : "sale"); st.conversion.bind(e.timestamp); st.conversion.bind(e.value ?? 0)
            st.conversion.bind(e.currency); st.conversion.bind(e.subject)
            for _ in 0..<2 {
                st.conversion.bind(e.sourceType); st.conversion.bind(e.referrerHost); st.conversion.bind(e.utmSource)
                st.conversion.bind(e.utmMedium); st.conversion.bind(e.utmCampaign); st.conversion.bind(startedAt)
            }
            st.conversion.bind(sessionID)
            if try st.conversion.runCountingChanges() == 1 {
                try st.db.enqueueDeliveries(site: e.siteID, conversionID: st.conversion.lastInsertedRowID,
                                            eventID: "\(EventRow.conversionProvider):\(externalID)",
                                            visit: sessionID, facts: DeliveryFacts(pixel: e), contact: e.forwardContact,
                                            now: Int64(Date().timeIntervalSince1970 * 1000))
            }
        }
        return .stored
    }

    /// Continues the visitor's open session (one started under yesterday's salt during the
    /// overlap window included) or opens a new one; returns the session id and how the visit
    /// arrived (the event's own acquisition when it opens the session).
    ///
    /// The session last seen for the visitor is remembered (``sessionHints``, with its
    /// acquisition, which never changes) and updated directly. A hint is only a guess: the update
    /// also requires the same site, the same visitor and a session still open, so a stale hint
    /// (session erased, purged, rolled back or its id reused) changes nothing and the lookup runs
    /// as without one.
    private func session(for e: EventRow, _ st: inout IngestStatements) throws -> (Int64, VisitAcquisition, startedAt: Int64) {
        let since = e.timestamp - sessionGapMilliseconds
        let key = SessionKey(site: e.siteID, visitor: e.visitor)
        if let hint = sessionHints.withLock({ $0[key] }), try update(hint.id, with: e, since: since, &st) {
            return (hint.id, hint.acquisition, hint.startedAt)
        }
        func findOpen(_ visitor: Int64) throws -> SessionHint? {
            st.find.start()
            st.find.bind(e.siteID); st.find.bind(visitor); st.find.bind(since); st.find.bind(e.timestamp + sessionGapMilliseconds)
            return try st.find.fetchOne { SessionHint(id: $0.int64(0), startedAt: $0.int64(1), acquisition: VisitAcquisition($0, from: 2)) }
        }
        var found = try findOpen(e.visitor)
        if found == nil, let previous = e.previousVisitor { found = try findOpen(previous) }
        if let found, try update(found.id, with: e, since: since, &st) {
            remember(key, found)
            return (found.id, found.acquisition, found.startedAt)
        }
        let acquisition = VisitAcquisition(e)
        let pageview: Int64 = e.isPageview ? 1 : 0
        let interaction: Int64 = e.isInteraction ? 1 : 0
        st.create.start()
        st.create.bind(e.siteID); st.create.bind(e.visitor); st.create.bind(e.subject); st.create.bind(e.decision.rawValue)
        st.create.bind(e.timestamp); st.create.bind(e.timestamp); st.create.bind(e.path); st.create.bind(e.path)
        st.create.bind(pageview); st.create.bind(interaction); st.create.bind(max(0, e.engagedMs ?? 0)); st.create.bind(Int64(interaction == 0 ? 1 : 0))
        acquisition.bind(to: &st.create)
        st.create.bind(e.country); st.create.bind(e.browser); st.create.bind(e.os); st.create.bind(e.device)
        st.create.bind(Int64(e.forwardable ? 1 : 0))
        try st.create.run()
        let created = st.create.lastInsertedRowID
        remember(key, SessionHint(id: created, startedAt: e.timestamp, acquisition: acquisition))
        return (created, acquisition, e.timestamp)
    }

    /// Adds the event to session `id` if it is this visitor's and still open; false otherwise.
    private func update(_ id: Int64, with e: EventRow, since: Int64, _ st: inout IngestStatements) throws -> Bool {
        let pageview: Int64 = e.isPageview ? 1 : 0
        let interaction: Int64 = e.isInteraction ? 1 : 0
        // Without a subject the statement leaves subject (an indexed column) out of its SET.
        var update = e.subject != nil ? st.updateWithSubject : st.update
        update.start()
        update.bind(e.timestamp); update.bind(e.timestamp); update.bind(pageview); update.bind(e.timestamp); update.bind(e.path)
        update.bind(pageview); update.bind(interaction); update.bind(max(0, e.engagedMs ?? 0)); update.bind(pageview); update.bind(interaction)
        update.bind(e.timestamp); update.bind(Int64(e.forwardable ? 1 : 0))
        if let subject = e.subject { update.bind(subject) }
        update.bind(id); update.bind(e.siteID); update.bind(since); update.bind(e.timestamp + sessionGapMilliseconds)
        update.bind(e.visitor); update.bind(e.previousVisitor ?? e.visitor)
        return try update.runCountingChanges() == 1
    }

    private func remember(_ key: SessionKey, _ hint: SessionHint) {
        sessionHints.withLock { hints in
            if hints.count >= sessionHintCapacity { hints.removeAll(keepingCapacity: true) }
            hints[key] = hint
        }
    }
}

/// A visitor of a site, for ``AppDatabase/sessionHints``.
struct SessionKey: Hashable {
    let site: String
    let visitor: Int64
}

/// The session last seen for a visitor, for ``AppDatabase/sessionHints``.
struct SessionHint {
    let id: Int64
    let startedAt: Int64
    let acquisition: VisitAcquisition
}

/// Visitors whose session id is remembered at most (then the hints start over).
let sessionHintCapacity = 50_000

/// The writer's statements, taken from the statement cache once per transaction.
struct IngestStatements {
    var duplicate: RawStatement
    var find: RawStatement
    var update: RawStatement
    var updateWithSubject: RawStatement
    var create: RawStatement
    var insert: RawStatement
    var conversion: RawStatement
    var staleDay: RawStatement
    var zone: RawStatement
    var calendars: [String: SiteCalendar] = [:]
    let db: Database

    /// The site's calendar as this transaction sees it.
    mutating func calendar(site: String) throws -> SiteCalendar {
        if let c = calendars[site] { return c }
        zone.start(); zone.bind(site)
        let c = try zone.fetchOne { $0.text(0) }.flatMap { $0.flatMap(SiteCalendar.init(identifier:)) } ?? .utc
        calendars[site] = c
        return c
    }

    init(_ db: Database) throws {
        self.db = db
        duplicate = try RawStatement(db, "SELECT 1 FROM events WHERE site_id = ? AND client_id = ?")
        find = try RawStatement(db, """
            SELECT id, started_at, \(AppDatabase.acquisitionColumns) FROM sessions WHERE site_id = ? AND visitor = ? AND last_seen >= ?
              AND started_at <= ?
            ORDER BY last_seen DESC LIMIT 1
            """)
        // Storage.VisitState.add, as one statement (every SET reads the row as it was).
        let update = { (subject: String) in """
            UPDATE sessions SET last_seen = max(last_seen, ?), duration_ms = max(duration_ms, ? - started_at),
              exit_path = CASE WHEN ? AND ? >= last_seen THEN ? ELSE exit_path END,
              pageviews = pageviews + ?, interactions = interactions + ?, engaged_ms = engaged_ms + ?,
              bounce = (pageviews + ? <= 1 AND interactions + ? = 0),
              forwardable = CASE WHEN ? >= last_seen THEN ? ELSE forwardable END\(subject)
            WHERE id = ? AND site_id = ? AND last_seen >= ? AND started_at <= ? AND visitor IN (?, ?)
            """ }
        self.update = try RawStatement(db, update(""))
        updateWithSubject = try RawStatement(db, update(", subject = coalesce(subject, ?), decision = 'identified'"))
        create = try RawStatement(db, """
            INSERT INTO sessions (site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path,
              pageviews, interactions, engaged_ms, duration_ms, bounce, \(AppDatabase.acquisitionColumns),
              country, browser, os, device, forwardable)
            VALUES (?,?,?,?,?,?,?,?, ?,?,?,0,?, ?,?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?)
            """)
        insert = try RawStatement(db, """
            INSERT INTO events (site_id, client_id, ts, name, path, decision, visitor, session_id, subject,
              country, region, city, asn, asn_org, browser, browser_version, os, device, screen,
              source_type, referrer_host, referrer_path, utm_source, utm_medium, utm_campaign, utm_term,
              utm_content, click_id_kind, click_id, props, value, currency, engaged_ms, scroll, email_hash, channel, source_name)
            VALUES (?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?, ?,?)
            """)
        staleDay = try RawStatement(db, "INSERT INTO rollup_stale (site_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING")
        zone = try RawStatement(db, "SELECT timezone FROM sites WHERE id = ?")
        conversion = try RawStatement(db, """
            INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, subject, attributed_via,
              first_source_type, first_referrer_host, first_utm_source, first_utm_medium, first_utm_campaign, first_ts,
              last_source_type, last_referrer_host, last_utm_source, last_utm_medium, last_utm_campaign, last_ts, session_id)
            VALUES (?, '\(EventRow.conversionProvider)', ?, ?, ?, ?, ?, ?, 'visit', ?,?,?,?,?,?, ?,?,?,?,?,?, ?)
            ON CONFLICT(site_id, provider, external_id) DO NOTHING
            """)
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
                e.channel = r["channel"]; e.sourceName = r["source_name"]
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

extension AppDatabase: EventSink, EventReader {}
