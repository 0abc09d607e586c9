public import Foundation

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
/// event of the visit carries it (``EventSink/insertEvents(_:tallies:)``), so that sources,
/// referrers and campaigns count visits and visitors, internal navigation is never "direct", and
/// a filter on a source keeps every page of those visits. A campaign or referrer seen later in
/// the visit does not change it (as in Plausible and GA4: the visit belongs to how it began). The
/// click id itself stays on the event that carried it: it identifies, and is kept only under that
/// event's consent.
public struct VisitAcquisition: Sendable, Equatable {
    public var sourceType: String
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

    /// The acquisition of a visit `e` opens.
    public init(_ e: EventRow) {
        sourceType = e.sourceType; channel = e.channel; sourceName = e.sourceName
        referrerHost = e.referrerHost; referrerPath = e.referrerPath
        utmSource = e.utmSource; utmMedium = e.utmMedium; utmCampaign = e.utmCampaign; utmTerm = e.utmTerm; utmContent = e.utmContent
        clickIDKind = e.clickIDKind
    }

    public init(sourceType: String, referrerHost: String?, referrerPath: String?, utmSource: String?, utmMedium: String?,
                utmCampaign: String?, utmTerm: String?, utmContent: String?, clickIDKind: String?, channel: String?,
                sourceName: String?) {
        self.sourceType = sourceType; self.referrerHost = referrerHost; self.referrerPath = referrerPath
        self.utmSource = utmSource; self.utmMedium = utmMedium; self.utmCampaign = utmCampaign; self.utmTerm = utmTerm
        self.utmContent = utmContent; self.clickIDKind = clickIDKind; self.channel = channel; self.sourceName = sourceName
    }

    /// Gives the event the visit's acquisition. An event that carries a click id of its own (an
    /// ad clicked again during the visit) keeps it and its kind, for forwarding that conversion.
    public func apply(to e: inout EventRow) {
        e.sourceType = sourceType; e.referrerHost = referrerHost; e.referrerPath = referrerPath
        e.utmSource = utmSource; e.utmMedium = utmMedium; e.utmCampaign = utmCampaign; e.utmTerm = utmTerm; e.utmContent = utmContent
        e.channel = channel; e.sourceName = sourceName
        if e.clickID == nil { e.clickIDKind = clickIDKind }
    }
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

    public init(id: Int64, siteID: String, visitor: Int64, subject: Int64?, decision: String, startedAt: Int64, lastSeen: Int64,
                entryPath: String?, exitPath: String?, pageviews: Int64, interactions: Int64, engagedMs: Int64, durationMs: Int64,
                bounce: Bool) {
        self.id = id; self.siteID = siteID; self.visitor = visitor; self.subject = subject; self.decision = decision
        self.startedAt = startedAt; self.lastSeen = lastSeen; self.entryPath = entryPath; self.exitPath = exitPath
        self.pageviews = pageviews; self.interactions = interactions; self.engagedMs = engagedMs; self.durationMs = durationMs
        self.bounce = bounce
    }
}

/// Sessions end after this much inactivity. An event belongs to a session of its visitor whose
/// span, widened by this gap on both sides, holds the event's time (events dated by the browser
/// may arrive after later ones).
public let sessionGapMilliseconds: Int64 = 30 * 60 * 1000


/// Per site and day, how consent shaped what was collected: events stored identified and
/// anonymous, events that came with DNT or GPC, events dropped for consent, banners shown.
/// Counted in the transaction that stores (or would have stored) the events, so a count is
/// never ahead of, or lost behind, what was acknowledged.
public enum ConsentMetric: String, Sendable, CaseIterable {
    case identified, anonymous, dnt, gpc
    case droppedDenied = "dropped_consent_denied"
    case droppedMissing = "dropped_consent_missing"
    case droppedSignal = "dropped_opt_out_signal"
    case bannerShown = "banner_shown"
}

/// Counts to add for one site: day → metric → n. Days are the site's days.
public struct ConsentTally: Sendable, Equatable {
    public var site: String
    public var counts: [Int64: [ConsentMetric: Int]] = [:]
    /// Visitor hashes (today's and yesterday's salt) whose events refused or objected, stored or
    /// dropped: their visits stop being forwardable (``Consent/ForwardingGate``).
    public var withdrawn: Set<Int64> = []
    public init(site: String) { self.site = site }
    public var isEmpty: Bool { counts.isEmpty && withdrawn.isEmpty }
    public mutating func add(_ metric: ConsentMetric, day: Int64, _ n: Int = 1) {
        guard n > 0 else { return }
        counts[day, default: [:]][metric, default: 0] += n
    }
}

/// One day of a site's consent counts.
public struct ConsentDay: Sendable, Equatable {
    public var day: Int64
    public var counts: [ConsentMetric: Int]
    public init(day: Int64, counts: [ConsentMetric: Int]) { self.day = day; self.counts = counts }
}


/// Where the collector's events are stored: the group-commit writer's one call.
public protocol EventSink: Sendable {
    /// Stores a batch in one transaction, with the sessions its events continue or open (an event
    /// joins its visitor's session whose span, widened by ``sessionGapMilliseconds`` on both
    /// sides, holds its time; under yesterday's visitor hash too during the overlap after
    /// midnight), the attributed conversions of its conversion events, and the consent counts
    /// of what it stored (by decision and signal, on the event's day in its site's time zone)
    /// plus `tallies` (counts that come without a row). Either all of it commits or none of it
    /// does, and the call returns only after the commit. An event whose client id was stored
    /// before is a duplicate and changes nothing.
    func insertEvents(_ batch: [EventRow], tallies: [ConsentTally]) throws -> [InsertOutcome]
}

/// The stored events read back, as they are (tests, the CLI, the migration's checks).
public protocol EventReader: Sendable {
    func eventCount(site: String?) throws -> Int
    /// Client ids of the stored events of a site.
    func clientIDs(site: String) throws -> Set<String>
    /// A site's events, in the order they were stored.
    func events(site: String) throws -> [EventRow]
    /// A site's sessions, in the order they were opened.
    func sessions(site: String) throws -> [SessionRow]
    /// A site's consent counts for the days `from...to`, oldest first (days without any omitted).
    func consentDays(site: String, from: Int64, to: Int64) throws -> [ConsentDay]
}

/// A session as an event changes it: the session rule in one statement. PostgreSQL applies it in
/// memory under the visitor's lock (PostgresStore); SQLite's ingestion runs the same arithmetic
/// as its UPDATE statement, and the conformance suite holds the two to the same sessions.
public struct VisitState: Sendable, Equatable {
    /// The figures read back as a ``SessionRow``.
    public var session: SessionRow
    /// The latest event's ForwardingGate answer.
    public var forwardable: Bool
    public var acquisition: VisitAcquisition
    public var country: String?
    public var browser: String?
    public var os: String?
    public var device: String?

    /// The session `e` opens.
    public init(id: Int64, opening e: EventRow) {
        session = SessionRow(id: id, siteID: e.siteID, visitor: e.visitor, subject: e.subject, decision: e.decision.rawValue,
                             startedAt: e.timestamp, lastSeen: e.timestamp, entryPath: e.path, exitPath: e.path,
                             pageviews: e.isPageview ? 1 : 0, interactions: e.isInteraction ? 1 : 0,
                             engagedMs: max(0, e.engagedMs ?? 0), durationMs: 0, bounce: !e.isInteraction)
        forwardable = e.forwardable; acquisition = VisitAcquisition(e)
        country = e.country; browser = e.browser; os = e.os; device = e.device
    }

    public init(session: SessionRow, forwardable: Bool, acquisition: VisitAcquisition, country: String?, browser: String?,
                os: String?, device: String?) {
        self.session = session; self.forwardable = forwardable; self.acquisition = acquisition
        self.country = country; self.browser = browser; self.os = os; self.device = device
    }

    /// Whether an event of `site` at `ts` by `visitor` (a hash under today's salt or yesterday's)
    /// joins this session: its span, widened by ``sessionGapMilliseconds`` on both sides, holds `ts`.
    public func holds(site: String, visitor: Int64, at ts: Int64) -> Bool {
        session.siteID == site && session.visitor == visitor && session.lastSeen >= ts - sessionGapMilliseconds
            && session.startedAt <= ts + sessionGapMilliseconds
    }

    /// Adds `e` (which ``holds(site:visitor:at:)``). Events may arrive out of order: the exit
    /// page and the forwarding answer are the latest event's.
    public mutating func add(_ e: EventRow) {
        let latest = e.timestamp >= session.lastSeen
        let pageview: Int64 = e.isPageview ? 1 : 0, interaction: Int64 = e.isInteraction ? 1 : 0
        session.durationMs = max(session.durationMs, e.timestamp - session.startedAt)
        if e.isPageview && latest { session.exitPath = e.path }
        session.bounce = session.pageviews + pageview <= 1 && session.interactions + interaction == 0
        session.pageviews += pageview; session.interactions += interaction; session.engagedMs += max(0, e.engagedMs ?? 0)
        if latest { forwardable = e.forwardable }
        session.lastSeen = max(session.lastSeen, e.timestamp)
        if let s = e.subject { session.subject = session.subject ?? s; session.decision = EventRow.Decision.identified.rawValue }
    }
}

extension ConsentTally {
    /// The counts a batch commits, one tally per site: `tallies` (counts that come without a
    /// row), and each stored event's decision and signals on its day (`day`: the site's day of
    /// the event's time).
    public static func merging(_ tallies: [ConsentTally], stored: [EventRow], day: (EventRow) throws -> Int64) rethrows -> [ConsentTally] {
        var counted: [String: ConsentTally] = [:]
        for t in tallies {
            for (d, metrics) in t.counts { for (m, n) in metrics { counted[t.site, default: .init(site: t.site)].add(m, day: d, n) } }
            counted[t.site, default: .init(site: t.site)].withdrawn.formUnion(t.withdrawn)
        }
        for e in stored {
            let d = try day(e)
            var t = counted[e.siteID] ?? .init(site: e.siteID)
            t.add(e.decision == .identified ? .identified : .anonymous, day: d)
            if e.doNotTrack { t.add(.dnt, day: d) }
            if e.globalPrivacyControl { t.add(.gpc, day: d) }
            counted[e.siteID] = t
        }
        return counted.keys.sorted().map { counted[$0]! }
    }
}
