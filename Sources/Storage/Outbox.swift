public import Foundation

/// What a delivery forwards, minimised, as written to the outbox with its conversion. No IP
/// address, user agent, visitor or subject hash: a click id and an e-mail's SHA-256 only where the
/// visit had marketing consent (the only visits whose conversions reach the outbox).
public struct DeliveryFacts: Codable, Sendable, Equatable {
    /// sale, lead or call (refunds are not forwarded).
    public var kind: String
    /// The pixel event's name, or the webhook provider.
    public var name: String
    /// Milliseconds since 1970.
    public var ts: Int64
    public var value: Double?
    public var currency: String?
    /// Page path of the conversion (pixel) or the visit's landing page (webhook).
    public var path: String?
    public var clickKind: String?
    public var clickID: String?
    /// When the click id was seen (ms), for Meta's fbc.
    public var clickTS: Int64?
    /// The visit's landing page path.
    public var landing: String?
    /// The SHA-256 of the trimmed, lowercased e-mail address (lowercase hex), sealed (SecretBox,
    /// base64): a plain digest of an address is found again by hashing candidate addresses.
    public var sealedEmailSHA256: String?
    /// The digest opened, for the mapping (never stored).
    public var emailSHA256: String?
    /// The same for a phone number in international form (digits only), sealed; and opened.
    public var sealedPhoneSHA256: String?
    public var phoneSHA256: String?

    enum CodingKeys: String, CodingKey {
        case kind, name, ts, value, currency, path, clickKind, clickID, clickTS, landing, sealedEmailSHA256, sealedPhoneSHA256
        case sourceType, utmSource, utmMedium, utmCampaign
    }
    public var sourceType: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?

    public init(kind: String, name: String, ts: Int64) { self.kind = kind; self.name = name; self.ts = ts }
}

extension DeliveryFacts {
    /// The facts of a conversion the pixel tracked (an event named `conversion`, or with a
    /// value), its visit's acquisition already applied: a sale with a value, a lead without.
    public init(pixel e: EventRow) {
        self.init(kind: e.value == nil ? "lead" : "sale", name: e.name, ts: e.timestamp)
        value = e.value; currency = e.currency; path = e.path
        if let id = e.clickID { clickKind = e.clickIDKind; clickID = id; clickTS = e.timestamp }
        sealedEmailSHA256 = e.forwardEmailSHA256
        sealedPhoneSHA256 = e.forwardPhoneSHA256
        sourceType = e.sourceType; utmSource = e.utmSource; utmMedium = e.utmMedium; utmCampaign = e.utmCampaign
    }
}

extension EventRow {
    /// The provider of conversions tracked by the pixel.
    public static let conversionProvider = "pixel"

    /// The external id of the conversion this event tracks: its client id, or (an event sent
    /// without one) its stored id and time.
    public func conversionExternalID(storedID: Int64) -> String { clientID ?? "event-\(storedID)-\(timestamp)" }
}

/// An enabled destination of a site, as the outbox needs it.
public struct OutboxDestination: Sendable {
    public var id: Int64
    /// The settings column's JSON text.
    public var settings: String
    public var wantsContact: Bool
    public init(id: Int64, settings: String, wantsContact: Bool) { self.id = id; self.settings = settings; self.wantsContact = wantsContact }
}

/// One outbox row to write (a pending delivery).
public struct OutboxRow: Sendable, Equatable {
    public var destinationID: Int64
    public var eventID: String
    /// The facts as stored: JSON with sorted keys.
    public var facts: String
    public var contact: Data?
    public var dueAt: Int64
}

/// How a conversion of a forwardable visit enters its site's outbox, for every store: one row
/// per enabled destination, the visit's landing page and latest click id (kept only under
/// marketing consent) added to the facts, due after the destination's delay, with the sealed
/// contact only for destinations that want it (CRMs).
public enum Outbox {
    /// The rows for a conversion stored with `eventID` (`provider:external id`). `click` is the
    /// visit's latest click (kind, id, time), used when the facts carry none.
    public static func rows(facts: DeliveryFacts, eventID: String, landing: String?,
                            click: (kind: String?, id: String, ts: Int64)?, contact: Data?,
                            destinations: [OutboxDestination], now: Int64) throws -> [OutboxRow] {
        guard facts.kind != "refund", !destinations.isEmpty else { return [] }
        var f = facts
        f.landing = landing
        f.path = f.path ?? landing
        if f.clickID == nil, let click { f.clickKind = click.kind; f.clickID = click.id; f.clickTS = click.ts }
        let text = try json(f)
        let id = Self.eventID(eventID)
        return destinations.map { d in
            let delay = settings(d.settings)["delay_seconds"].flatMap(Int64.init).map { max(0, min($0, 86_400)) } ?? 0
            return OutboxRow(destinationID: d.id, eventID: id, facts: text, contact: d.wantsContact ? contact : nil,
                             dueAt: now + delay * 1000)
        }
    }

    /// A destination's settings column: a JSON object of strings (an unreadable one: none).
    public static func settings(_ text: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }

    /// JSON text with sorted keys (settings, outbox facts).
    public static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The id a destination deduplicates by: `provider:external id`, or, past 200 code points, its
    /// first 150 and a 128-bit digest of the whole (two ids never collide by their end).
    public static func eventID(_ id: String) -> String {
        guard id.unicodeScalars.count > 200 else { return id }
        var a: UInt64 = 0xcbf29ce484222325, b: UInt64 = 0x84222325cbf29ce4
        for byte in id.utf8 {
            a = (a ^ UInt64(byte)) &* 0x100000001b3
            b = (b &+ UInt64(byte)) &* 0x9E3779B97F4A7C15
            b ^= b >> 29
        }
        return id.prefix(codePoints: 150) + "~" + String(a, radix: 16) + String(b, radix: 16)
    }
}

extension String {
    /// The first `n` Unicode code points (what the CHECKs of both stores count: SQLite's and
    /// PostgreSQL's length()), never cut by grapheme clusters.
    public func prefix(codePoints n: Int) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: unicodeScalars.prefix(n))
        return String(scalars)
    }
}
