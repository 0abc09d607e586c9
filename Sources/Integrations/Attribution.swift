public import Foundation
import JSONOutput
public import Privacy
public import Store
public import Traffic

/// A conversion that cannot be attributed as given.
public struct AttributionError: Error, CustomStringConvertible {
    public let description: String
}

/// Turns a webhook event into a stored conversion linked, where consent allows, to the visitor's
/// journey: the visits (sessions) of an identified subject within the site's lookback window.
///
/// Link, in order: the pixel's subject id passed through checkout or form; the keyed hash of the
/// e-mail address matching a lead the pixel captured under consent; else the payload's own UTM
/// fields; else unattributed. Anonymous visits carry no subject, so they never link across days.
public struct Attributor: Sendable {
    let database: AppDatabase
    let subjects: SubjectHasher

    /// Decides the source type of a touch known only from its campaign fields, as for events.
    let referrers: ReferrerList
    /// Seals the payload's e-mail for CRM destinations (nil: not kept).
    let contactBox: SecretBox?

    public init(database: AppDatabase, subjects: SubjectHasher, referrers: ReferrerList = TrafficClassifier.installed.referrers,
                contactBox: SecretBox? = nil) {
        self.database = database
        self.subjects = subjects
        self.referrers = referrers
        self.contactBox = contactBox
    }

    /// First touch: the earliest visit in the window. Last touch: the latest visit that did not
    /// come direct (a return by bookmark does not take the credit), else the latest visit.
    static func touches(_ journey: [Touch]) -> (first: Touch, last: Touch)? {
        guard let first = journey.first, let latest = journey.last else { return nil }
        return (first, journey.last { $0.sourceType != "direct" } ?? latest)
    }

    public func conversion(_ e: WebhookEvent, site: String, provider: Provider, receivedAt: Date) throws -> ConversionRow {
        // Webhooks.parse bounds the time; a date that still does not fit is refused, not trapped on.
        guard let ts = Int64(exactly: ((e.timestamp ?? receivedAt).timeIntervalSince1970 * 1000).rounded(.down)),
              ts > Int64.min / 2, ts < Int64.max / 2 else {
            throw AttributionError(description: "the conversion's time is out of range")
        }
        let terms = try database.clientTerms(site: site)
        var row = ConversionRow(siteID: site, provider: provider.rawValue, externalID: e.externalID, kind: e.kind, timestamp: ts,
                                value: e.value, currency: e.currency, refersTo: e.refersTo)
        row.subject = e.subjectID.map { subjects.hash($0, kind: .subject) }
        row.emailHash = e.email.flatMap { Minimize.looksLikeEmail(Substring($0.trimmingCharacters(in: .whitespaces))) ? $0 : nil }
            .map { subjects.hash($0, kind: .email) }
        // Leaves the appliance only if the attributed visit is forwardable (AppDatabase.insertConversion).
        if let box = contactBox,
           let email = e.email.map({ $0.trimmingCharacters(in: .whitespaces) }), Minimize.looksLikeEmail(Substring(email)) {
            row.forwardEmailSHA256 = box.sealText(Minimize.emailSHA256(email))
            row.forwardContact = box.seal(Array(JSON.object([("email", .string(email))]).text.utf8))
        }
        row.userHash = e.userID.map { subjects.hash($0, kind: .userID) }
        row.detail = e.detail.isEmpty ? nil : JSON.object(e.detail.map { ($0.0, .string($0.1)) }).text

        // A cumulative refund amount (Stripe's amount_refunded) counts only what was not refunded before,
        // whether or not the sale itself reached Candor.
        if e.kind == .refund, let refersTo = e.refersTo, e.detail.contains(where: { $0 == ("cumulative", "true") }) {
            row.value = min(0, e.value - (try database.refundedTotal(site: site, provider: provider.rawValue, refersTo: refersTo)))
        }
        if e.kind == .refund, let original = try e.refersTo.flatMap({ try database.conversion(site: site, provider: provider.rawValue, externalID: $0) }) {
            // A refund takes the attribution of the sale it reverses, so it reduces the same source's revenue.
            row.attributedVia = original.attributedVia
            row.firstTouch = original.firstTouch
            row.lastTouch = original.lastTouch
            row.visit = original.visit
            row.currency = row.currency ?? original.currency
            return row
        }
        let window = (ts - Int64(terms.lookbackDays) * 86_400_000, ts)
        var linked: (String, [(visit: Int64, touch: Touch)])?
        if let subject = row.subject {
            let journey = try database.journey(site: site, subject: subject, from: window.0, to: window.1)
            if !journey.isEmpty { linked = ("subject", journey) }
        }
        if linked == nil, let email = row.emailHash, let subject = try database.subject(site: site, emailHash: email) {
            let journey = try database.journey(site: site, subject: subject, from: window.0, to: window.1)
            if !journey.isEmpty { linked = ("email", journey) }
        }
        if let (via, journey) = linked, let t = Self.touches(journey.map(\.touch)) {
            row.attributedVia = via
            row.firstTouch = t.first
            row.lastTouch = t.last
            // The visitor who converted: the latest visit before the conversion.
            row.visit = journey.last?.visit
        } else if e.utmSource != nil || e.utmMedium != nil || e.utmCampaign != nil {
            let touch = Touch(sourceType: referrers.acquisition(referrerHost: nil, utmSource: e.utmSource, utmMedium: e.utmMedium,
                                                           clickIDKind: nil).sourceType, utmSource: e.utmSource, utmMedium: e.utmMedium,
                              utmCampaign: e.utmCampaign)
            row.attributedVia = "payload"
            row.firstTouch = touch
            row.lastTouch = touch
        }
        return row
    }
}
