public import Foundation
import GRDB
import Storage

/// A traffic source as seen at one visit: the start of a session.
public struct Touch: Sendable, Equatable {
    public var sourceType: String
    public var referrerHost: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?
    /// When the visit started (ms), nil when the touch came from the webhook payload.
    public var timestamp: Int64?

    public init(sourceType: String, referrerHost: String? = nil, utmSource: String? = nil, utmMedium: String? = nil,
                utmCampaign: String? = nil, timestamp: Int64? = nil) {
        self.sourceType = sourceType; self.referrerHost = referrerHost; self.utmSource = utmSource
        self.utmMedium = utmMedium; self.utmCampaign = utmCampaign; self.timestamp = timestamp
    }
}

/// A payment, refund, lead or call reported by a webhook, or a conversion tracked by the pixel,
/// with its attribution.
public struct ConversionRow: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case sale, refund, lead, call }

    /// The provider of conversions tracked by the pixel (stored by the ingestion writer, with the
    /// event's client id as their external id).
    public static let pixelProvider = EventRow.conversionProvider

    public var id: Int64?
    public var siteID: String
    public var provider: String
    /// The provider's id for the event (idempotency: stored once per site and provider).
    public var externalID: String
    public var kind: Kind
    public var timestamp: Int64
    /// Negative for refunds.
    public var value: Double
    public var currency: String?
    /// For a refund: the external id of the sale it refunds.
    public var refersTo: String?
    /// Keyed hashes of the identifiers the payload carried (never the identifiers).
    public var subject: Int64?
    public var emailHash: Int64?
    public var userHash: Int64?
    /// visit (tracked by the pixel in that visit), subject, email, user (linked to a consented
    /// journey), payload (UTM fields in the payload), none.
    public var attributedVia: String
    /// The visit (session) the conversion is attributed to: the pixel's own, or the latest visit
    /// of the journey a webhook conversion was linked to. Its visitor is the one who converted.
    public var visit: Int64?
    public var firstTouch: Touch?
    public var lastTouch: Touch?
    /// Provider-specific facts as JSON text (call duration, first-time caller, form id …).
    public var detail: String?
    /// The SHA-256 of the payload's e-mail address, sealed (SecretBox, base64), for the delivery
    /// outbox only (not stored on the row); used only when the attributed visit is forwardable.
    public var forwardEmailSHA256: String?
    /// The payload's e-mail address sealed (SecretBox), for CRM destinations only.
    public var forwardContact: Data?

    public init(siteID: String, provider: String, externalID: String, kind: Kind, timestamp: Int64, value: Double,
                currency: String?, refersTo: String? = nil, subject: Int64? = nil, emailHash: Int64? = nil, userHash: Int64? = nil,
                attributedVia: String = "none", firstTouch: Touch? = nil, lastTouch: Touch? = nil, detail: String? = nil) {
        self.siteID = siteID; self.provider = provider; self.externalID = externalID; self.kind = kind
        self.timestamp = timestamp; self.value = value; self.currency = currency; self.refersTo = refersTo
        self.subject = subject; self.emailHash = emailHash; self.userHash = userHash; self.attributedVia = attributedVia
        self.firstTouch = firstTouch; self.lastTouch = lastTouch; self.detail = detail
    }

    init(row: Row) {
        func touch(_ p: String) -> Touch? {
            guard let type: String = row["\(p)_source_type"] else { return nil }
            return Touch(sourceType: type, referrerHost: row["\(p)_referrer_host"], utmSource: row["\(p)_utm_source"],
                         utmMedium: row["\(p)_utm_medium"], utmCampaign: row["\(p)_utm_campaign"], timestamp: row["\(p)_ts"])
        }
        self.init(siteID: row["site_id"], provider: row["provider"], externalID: row["external_id"],
                  kind: Kind(rawValue: row["kind"]) ?? .sale, timestamp: row["ts"], value: row["value"], currency: row["currency"],
                  refersTo: row["refers_to"], subject: row["subject"], emailHash: row["email_hash"], userHash: row["user_hash"],
                  attributedVia: row["attributed_via"], firstTouch: touch("first"), lastTouch: touch("last"), detail: row["detail"])
        id = row["id"]
        visit = row["session_id"]
    }
}

/// Commission and attribution terms of a client site.
public struct ClientTerms: Sendable, Equatable {
    public enum Credit: String, Sendable, CaseIterable { case first, last, either }
    public var siteID: String
    public var lookbackDays: Int
    /// Which touch decides whether a conversion was "our work".
    public var credit: Credit
    public var percent: Double
    public var perLead: Double
    public var perCall: Double
    public var monthlyMinimum: Double
    public var currency: String
    /// Source matchers: a source type (paid, social …), `utm_source:NAME`, `utm_medium:NAME`,
    /// `utm_campaign:NAME` or `referrer:HOST`. Empty: every attributed conversion counts.
    public var ourSources: [String]

    public init(siteID: String, lookbackDays: Int = 30, credit: Credit = .last, percent: Double = 0, perLead: Double = 0,
                perCall: Double = 0, monthlyMinimum: Double = 0, currency: String = "USD", ourSources: [String] = []) {
        self.siteID = siteID; self.lookbackDays = lookbackDays; self.credit = credit; self.percent = percent
        self.perLead = perLead; self.perCall = perCall; self.monthlyMinimum = monthlyMinimum; self.currency = currency
        self.ourSources = ourSources
    }
}

extension AppDatabase {
    // MARK: Webhook sources

    public func setWebhookSecret(site: String, provider: String, secret: String, at: Int64) throws {
        try transaction { tx in try tx.setWebhookSecret(site: site, provider: provider, secret: secret, at: at) }
    }

    public func webhookSecret(site: String, provider: String) throws -> String? {
        try writer.read { db in
            try String.fetchOne(db, sql: "SELECT secret FROM webhook_sources WHERE site_id = ? AND provider = ?", arguments: [site, provider])
        }
    }

    public func webhookProviders(site: String) throws -> [String] {
        try writer.read { db in
            try String.fetchAll(db, sql: "SELECT provider FROM webhook_sources WHERE site_id = ? ORDER BY provider", arguments: [site])
        }
    }

    // MARK: Conversions

    /// Stores a conversion unless one with the same (site, provider, external id) exists.
    /// Returns false for a redelivery.
    @discardableResult
    public func insertConversion(_ c: ConversionRow) throws -> Bool {
        try refusingViolations { try writer.write { db in
            let f = c.firstTouch, l = c.lastTouch
            let args: [(any DatabaseValueConvertible)?] = [
                c.siteID, c.provider, c.externalID, c.kind.rawValue, c.timestamp, c.value, c.currency, c.refersTo,
                c.subject, c.emailHash, c.userHash, c.attributedVia,
                f?.sourceType, f?.referrerHost, f?.utmSource, f?.utmMedium, f?.utmCampaign, f?.timestamp,
                l?.sourceType, l?.referrerHost, l?.utmSource, l?.utmMedium, l?.utmCampaign, l?.timestamp, c.detail, c.visit,
            ]
            try db.execute(sql: """
                INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, refers_to,
                  subject, email_hash, user_hash, attributed_via,
                  first_source_type, first_referrer_host, first_utm_source, first_utm_medium, first_utm_campaign, first_ts,
                  last_source_type, last_referrer_host, last_utm_source, last_utm_medium, last_utm_campaign, last_ts, detail, session_id)
                VALUES (?,?,?,?,?,?,?,?, ?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?,?,?)
                ON CONFLICT(site_id, provider, external_id) DO NOTHING
                """, arguments: StatementArguments(args))
            guard db.changesCount == 1 else { return false }
            var facts = DeliveryFacts(kind: c.kind.rawValue, name: c.provider, ts: c.timestamp)
            if c.kind == .sale { facts.value = c.value; facts.currency = c.currency }
            facts.sealedEmailSHA256 = c.forwardEmailSHA256
            facts.sourceType = l?.sourceType; facts.utmSource = l?.utmSource; facts.utmMedium = l?.utmMedium; facts.utmCampaign = l?.utmCampaign
            try db.enqueueDeliveries(site: c.siteID, conversionID: db.lastInsertedRowID, eventID: "\(c.provider):\(c.externalID)",
                                     visit: c.visit, facts: facts, contact: c.forwardContact, now: Int64(Date().timeIntervalSince1970 * 1000))
            return true
        } }
    }

    public func conversion(site: String, provider: String, externalID: String) throws -> ConversionRow? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM conversions WHERE site_id = ? AND provider = ? AND external_id = ?",
                             arguments: [site, provider, externalID]).map(ConversionRow.init(row:))
        }
    }

    /// Conversions of a site with `from <= ts < to`, oldest first.
    public func conversions(site: String, from: Int64 = .min, to: Int64 = .max) throws -> [ConversionRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM conversions WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts, id",
                             arguments: [site, from, to]).map(ConversionRow.init(row:))
        }
    }

    /// Sum of the refunds already stored against a sale.
    public func refundedTotal(site: String, provider: String, refersTo: String) throws -> Double {
        try writer.read { db in
            try Double.fetchOne(db, sql: """
                SELECT coalesce(sum(value), 0) FROM conversions
                WHERE site_id = ? AND provider = ? AND refers_to = ? AND kind = 'refund'
                """, arguments: [site, provider, refersTo]) ?? 0
        }
    }

    /// The visits of an identified subject that started in `[from, to]`, oldest first, with their session ids.
    public func journey(site: String, subject: Int64, from: Int64, to: Int64) throws -> [(visit: Int64, touch: Touch)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, source_type, referrer_host, utm_source, utm_medium, utm_campaign, started_at FROM sessions
                WHERE subject = ? AND site_id = ? AND started_at BETWEEN ? AND ? ORDER BY started_at, id
                """, arguments: [subject, site, from, to]).map {
                ($0[0], Touch(sourceType: $0[1] ?? "direct", referrerHost: $0[2], utmSource: $0[3], utmMedium: $0[4], utmCampaign: $0[5],
                              timestamp: $0[6]))
            }
        }
    }

    /// The subject of the newest consented visit in which a lead entered the e-mail address with this hash.
    public func subject(site: String, emailHash: Int64) throws -> Int64? {
        try writer.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT subject FROM events WHERE email_hash = ? AND site_id = ? AND subject IS NOT NULL ORDER BY ts DESC LIMIT 1
                """, arguments: [emailHash, site])
        }
    }

    // MARK: Client terms

    public func setClientTerms(_ t: ClientTerms, at: Int64) throws {
        try transaction { tx in try tx.setClientTerms(t, at: at) }
    }

    /// Whether the site has terms of its own (set on its commission page or with the CLI).
    public func hasClientTerms(site: String) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM client_terms WHERE site_id = ?)", arguments: [site]) ?? false }
    }

    /// The site's terms, or the defaults (30-day lookback, last touch, no commission).
    public func clientTerms(site: String) throws -> ClientTerms {
        try writer.read { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT * FROM client_terms WHERE site_id = ?", arguments: [site]) else {
                return ClientTerms(siteID: site)
            }
            return ClientTerms(siteID: site, lookbackDays: r["lookback_days"], credit: .init(rawValue: r["credit"]) ?? .last,
                               percent: r["percent"], perLead: r["per_lead"], perCall: r["per_call"],
                               monthlyMinimum: r["monthly_minimum"], currency: r["currency"],
                               ourSources: (r["our_sources"] as String).split(separator: ",").map(String.init))
        }
    }
}

extension WriteTransaction {
    public func setWebhookSecret(site: String, provider: String, secret: String, at: Int64) throws {
        try db.execute(sql: """
            INSERT INTO webhook_sources (site_id, provider, secret, created_at) VALUES (?,?,?,?)
            ON CONFLICT(site_id, provider) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at
            """, arguments: [site, provider, secret, at])
    }

    public func setClientTerms(_ t: ClientTerms, at: Int64) throws {
        try db.execute(sql: """
            INSERT INTO client_terms (site_id, lookback_days, credit, percent, per_lead, per_call, monthly_minimum, currency,
              our_sources, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT(site_id) DO UPDATE SET lookback_days = excluded.lookback_days, credit = excluded.credit,
              percent = excluded.percent, per_lead = excluded.per_lead, per_call = excluded.per_call,
              monthly_minimum = excluded.monthly_minimum, currency = excluded.currency, our_sources = excluded.our_sources,
              updated_at = excluded.updated_at
            """, arguments: [t.siteID, t.lookbackDays, t.credit.rawValue, t.percent, t.perLead, t.perCall, t.monthlyMinimum,
                             t.currency, t.ourSources.joined(separator: ","), at])
    }
}
