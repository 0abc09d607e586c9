public import Foundation
import GRDB
import Synchronization

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
    /// The channel group (Direct, Organic Search, Email, …) and the known source's name.
    public var channel: String?
    public var sourceName: String?
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
    /// Dated (by the browser) on an earlier day than it arrived: that day's rollup is marked
    /// stale, and its visit's (in the site's days as stored when the batch commits).
    public var late = false

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

    /// The request came with DNT: 1 / Sec-GPC: 1 (counted in consent_counts, not stored on the row).
    public var doNotTrack = false
    public var globalPrivacyControl = false

    /// Whether a conversion tracked by this event becomes an attributed conversion row (not
    /// under the cnil-exempt mode, whose measurement attributes nothing).
    public var attributable = true

    /// The ForwardingGate's answer for this event (kept on its visit, not on the row): its
    /// visit's conversions may be forwarded to the site's destinations.
    public var forwardable = false
    /// The SHA-256 of an e-mail address the visitor entered, sealed (SecretBox, base64), only when
    /// forwardable (for the outbox; not stored on the row).
    public var forwardEmailSHA256: String?
    /// The e-mail address and name entered, sealed (SecretBox), only when forwardable: for CRM
    /// destinations, which find the person by them. Not stored on the row.
    public var forwardContact: Data?
    /// The SHA-256 of a phone number entered in international form, sealed (base64), only when
    /// forwardable (for the outbox; not stored on the row).
    public var forwardPhoneSHA256: String?

    public var isPageview: Bool { name == "pageview" }
    /// A conversion tracked by the pixel: an event named `conversion`, or any event with a value.
    public var isConversion: Bool { name == "conversion" || value != nil }
    /// Events that mean the visitor interacted (so the visit is not a bounce).
    public var isInteraction: Bool { !isPageview && name != "engagement" }
}

/// How a visit arrived: its landing event's source, referrer, campaign and click-id kind. Every
/// event of the visit carries it (``AppDatabase/insertEvents(_:)``), so that sources, referrers and
/// campaigns count visits and visitors, internal navigation is never "direct", and a filter on a
/// source keeps every page of those visits. A campaign or referrer seen later in the visit does
/// not change it (as in Plausible and GA4: the visit belongs to how it began). The click id
/// itself stays on the event that carried it: it identifies, and is kept only under that
/// event's consent.
struct VisitAcquisition: Equatable {
    var sourceType: String
    var channel: String?
    var sourceName: String?
    var referrerHost: String?
    var referrerPath: String?
    var utmSource: String?
    var utmMedium: String?
    var utmCampaign: String?
    var utmTerm: String?
    var utmContent: String?
    var clickIDKind: String?

    init(_ e: EventRow) {
        sourceType = e.sourceType; channel = e.channel; sourceName = e.sourceName
        referrerHost = e.referrerHost; referrerPath = e.referrerPath
        utmSource = e.utmSource; utmMedium = e.utmMedium; utmCampaign = e.utmCampaign; utmTerm = e.utmTerm; utmContent = e.utmContent
        clickIDKind = e.clickIDKind
    }

    /// Read from `column`, `column + 1`, … of a row in the order of ``AppDatabase/acquisitionColumns``.
    init(_ row: borrowing RawStatement, from column: Int32) {
        sourceType = row.text(column) ?? "direct"
        referrerHost = row.text(column + 1); referrerPath = row.text(column + 2)
        utmSource = row.text(column + 3); utmMedium = row.text(column + 4); utmCampaign = row.text(column + 5)
        utmTerm = row.text(column + 6); utmContent = row.text(column + 7); clickIDKind = row.text(column + 8)
        channel = row.text(column + 9); sourceName = row.text(column + 10)
    }

    /// Gives the event the visit's acquisition. An event that carries a click id of its own (an
    /// ad clicked again during the visit) keeps it and its kind, for forwarding that conversion.
    func apply(to e: inout EventRow) {
        e.sourceType = sourceType; e.referrerHost = referrerHost; e.referrerPath = referrerPath
        e.utmSource = utmSource; e.utmMedium = utmMedium; e.utmCampaign = utmCampaign; e.utmTerm = utmTerm; e.utmContent = utmContent
        e.channel = channel; e.sourceName = sourceName
        if e.clickID == nil { e.clickIDKind = clickIDKind }
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

/// Sessions end after this much inactivity. An event belongs to a session of its visitor whose
/// span, widened by this gap on both sides, holds the event's time (events dated by the browser
/// may arrive after later ones).
public let sessionGapMilliseconds: Int64 = 30 * 60 * 1000

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
                var counted: [String: ConsentTally] = [:]
                for t in tallies {
                    for (day, metrics) in t.counts { for (m, n) in metrics { counted[t.site, default: .init(site: t.site)].add(m, day: day, n) } }
                    counted[t.site, default: .init(site: t.site)].withdrawn.formUnion(t.withdrawn)
                }
                for event in batch {
                    let outcome = try insert(event, &statements)
                    outcomes.append(outcome)
                    guard outcome == .stored else { continue }
                    let day = try statements.calendar(site: event.siteID).day(of: event.timestamp)
                    var t = counted[event.siteID] ?? .init(site: event.siteID)
                    t.add(event.decision == .identified ? .identified : .anonymous, day: day)
                    if event.doNotTrack { t.add(.dnt, day: day) }
                    if event.globalPrivacyControl { t.add(.gpc, day: day) }
                    counted[event.siteID] = t
                }
                for t in counted.values { try Self.add(t, db) }
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
            let eventID = st.insert.lastInsertedRowID
            st.conversion.start()
            st.conversion.bind(e.siteID); st.conversion.bind(e.clientID ?? "event-\(eventID)-\(e.timestamp)")
            st.conversion.bind(e.value == nil ? "lead" : "sale"); st.conversion.bind(e.timestamp); st.conversion.bind(e.value ?? 0)
            st.conversion.bind(e.currency); st.conversion.bind(e.subject)
            for _ in 0..<2 {
                st.conversion.bind(e.sourceType); st.conversion.bind(e.referrerHost); st.conversion.bind(e.utmSource)
                st.conversion.bind(e.utmMedium); st.conversion.bind(e.utmCampaign); st.conversion.bind(startedAt)
            }
            st.conversion.bind(sessionID)
            if try st.conversion.runCountingChanges() == 1 {
                var facts = DeliveryFacts(kind: e.value == nil ? "lead" : "sale", name: e.name, ts: e.timestamp)
                facts.value = e.value; facts.currency = e.currency; facts.path = e.path
                if let id = e.clickID { facts.clickKind = e.clickIDKind; facts.clickID = id; facts.clickTS = e.timestamp }
                facts.sealedEmailSHA256 = e.forwardEmailSHA256
                facts.sealedPhoneSHA256 = e.forwardPhoneSHA256
                facts.sourceType = e.sourceType; facts.utmSource = e.utmSource; facts.utmMedium = e.utmMedium; facts.utmCampaign = e.utmCampaign
                try st.db.enqueueDeliveries(site: e.siteID, conversionID: st.conversion.lastInsertedRowID,
                                            eventID: "\(ConversionRow.pixelProvider):\(e.clientID ?? "event-\(eventID)-\(e.timestamp)")",
                                            visit: sessionID, facts: facts, contact: e.forwardContact,
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
            VALUES (?, '\(ConversionRow.pixelProvider)', ?, ?, ?, ?, ?, ?, 'visit', ?,?,?,?,?,?, ?,?,?,?,?,?, ?)
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
