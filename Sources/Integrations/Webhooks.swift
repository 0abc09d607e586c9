import Crypto
public import Foundation
import Privacy
public import Store

/// The webhook sources Candor understands, each with its provider's signing scheme.
public enum Provider: String, Sendable, CaseIterable {
    case stripe, shopify, typeform, jotform, callrail, generic

    /// How the provider proves a delivery is genuine (README, `candor hooks set`).
    public var scheme: String {
        switch self {
        case .stripe: "Stripe-Signature: t=…,v1=hex HMAC-SHA256(secret, \"t.body\"), 5 min tolerance"
        case .shopify: "X-Shopify-Hmac-Sha256: base64 HMAC-SHA256(secret, body)"
        case .typeform: "Typeform-Signature: sha256=base64 HMAC-SHA256(secret, body)"
        case .jotform: "no signature exists: the secret is a token in the URL (?token=…)"
        case .callrail: "Signature: base64 HMAC-SHA1(signing key, body)"
        case .generic: "X-Candor-Timestamp: unix seconds; X-Candor-Signature: sha256=hex HMAC-SHA256(secret, \"timestamp.body\"), 5 min window"
        }
    }
}

/// Why a delivery was refused (401), could not be read (400), or was read but holds values
/// Candor cannot store (422). None of them is worth a provider's retry.
public enum WebhookError: Error, Equatable, CustomStringConvertible {
    case missingSignature(String)
    case badSignature
    case staleTimestamp
    case malformed(String)
    /// Signed and readable, but a value is out of range (a date, an amount, a currency, an id).
    case invalid(String)

    public var description: String {
        switch self {
        case .missingSignature(let header): "missing \(header)"
        case .badSignature: "signature does not match"
        case .staleTimestamp: "timestamp outside the replay window"
        case .malformed(let why), .invalid(let why): why
        }
    }

    public var status: Int {
        switch self {
        case .malformed: 400
        case .invalid: 422
        default: 401
        }
    }
}

/// A conversion as a provider reported it, before attribution.
public struct WebhookEvent: Sendable, Equatable {
    public var externalID: String
    public var kind: ConversionRow.Kind
    public var value: Double
    public var currency: String?
    public var timestamp: Date?
    /// For refunds: the external id of the sale.
    public var refersTo: String?
    public var subjectID: String?
    public var email: String?
    public var userID: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?
    /// Provider facts kept with the conversion (no personal data).
    public var detail: [(String, String)] = []

    public init(externalID: String, kind: ConversionRow.Kind, value: Double = 0, currency: String? = nil) {
        self.externalID = externalID; self.kind = kind; self.value = value; self.currency = currency
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.externalID == b.externalID && a.kind == b.kind && a.value == b.value && a.currency == b.currency
            && a.refersTo == b.refersTo && a.subjectID == b.subjectID && a.email == b.email && a.userID == b.userID
    }
}

extension WebhookEvent {
    /// Earliest conversion time accepted (2000-01-01), and how far ahead of the server's clock.
    static let earliest = Date(timeIntervalSince1970: 946_684_800)
    static let aheadAllowed: TimeInterval = 86_400

    /// Every provider's event passes here before it is attributed and stored: a value the
    /// conversions table cannot hold is refused with its reason (422), never left to fail in the
    /// database (where it would look like an outage) or to trap in arithmetic.
    func checked(now: Date) throws(WebhookError) -> WebhookEvent {
        var e = self
        guard value.isFinite, abs(value) < 1e12 else { throw .invalid("amount out of range (|value| < 10^12)") }
        if let t = timestamp {
            guard t >= Self.earliest, t <= now.addingTimeInterval(Self.aheadAllowed) else {
                throw .invalid("the conversion's time is out of range (2000-01-01 to a day ahead of now)")
            }
        }
        if let c = currency {
            guard c.utf8.count == 3, c.utf8.allSatisfy({ (65...90).contains($0) }) else { throw .invalid("currency must be an ISO 4217 code") }
        }
        guard (1...200).contains(externalID.unicodeScalars.count) else { throw .invalid("the event id must be 1-200 characters") }
        if let r = refersTo, r.unicodeScalars.count > 200 { throw .invalid("refers_to must be at most 200 characters") }
        e.detail = detail.map { ($0.0, String($0.1.unicodeScalars.prefix(200))) }
        return e
    }
}

/// What a delivery means: an event to store, or a reason it is not one (an event type Candor ignores).
public enum WebhookOutcome: Sendable, Equatable {
    case event(WebhookEvent)
    case ignored(String)
}

public enum Webhooks {
    public static let replayWindow: TimeInterval = 300

    /// Verifies a delivery against the site's secret. `header` reads a request header
    /// (case-insensitive); `query` a URL query parameter.
    public static func verify(_ provider: Provider, body: [UInt8], secret: String, now: Date,
                              header: (String) -> String?, query: (String) -> String?) throws(WebhookError) {
        let key = SymmetricKey(data: Array(secret.utf8))
        switch provider {
        case .stripe:
            guard let value = header("Stripe-Signature") else { throw .missingSignature("Stripe-Signature") }
            var t: String?
            var signatures: [[UInt8]] = []
            for part in value.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { continue }
                if kv[0] == "t" { t = kv[1] }
                if kv[0] == "v1", let bytes = Hex.decode(kv[1]) { signatures.append(bytes) }
            }
            guard let t, let seconds = TimeInterval(t), !signatures.isEmpty else { throw .missingSignature("Stripe-Signature t= and v1=") }
            let signed = Array("\(t).".utf8) + body
            guard signatures.contains(where: { HMAC<SHA256>.isValidAuthenticationCode($0, authenticating: signed, using: key) }) else {
                throw .badSignature
            }
            guard abs(now.timeIntervalSince1970 - seconds) <= replayWindow else { throw .staleTimestamp }
        case .shopify:
            try base64(header("X-Shopify-Hmac-Sha256"), "X-Shopify-Hmac-Sha256", body, key, SHA256.self)
        case .typeform:
            guard let value = header("Typeform-Signature") else { throw .missingSignature("Typeform-Signature") }
            guard value.hasPrefix("sha256=") else { throw .badSignature }
            try base64(String(value.dropFirst(7)), "Typeform-Signature", body, key, SHA256.self)
        case .callrail:
            try base64(header("Signature"), "Signature", body, key, Insecure.SHA1.self)
        case .jotform:
            guard let token = query("token") else { throw .missingSignature("token in the URL") }
            guard Sodium.equal(Array(token.utf8), Array(secret.utf8)) else { throw .badSignature }
        case .generic:
            guard let t = header("X-Candor-Timestamp") else { throw .missingSignature("X-Candor-Timestamp") }
            guard let value = header("X-Candor-Signature") else { throw .missingSignature("X-Candor-Signature") }
            guard value.hasPrefix("sha256="), let mac = Hex.decode(String(value.dropFirst(7))) else { throw .badSignature }
            guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array("\(t).".utf8) + body, using: key) else {
                throw .badSignature
            }
            guard let seconds = TimeInterval(t), abs(now.timeIntervalSince1970 - seconds) <= replayWindow else { throw .staleTimestamp }
        }
    }

    static func base64<H: HashFunction>(_ value: String?, _ name: String, _ body: [UInt8], _ key: SymmetricKey,
                                        _: H.Type) throws(WebhookError) {
        guard let value else { throw .missingSignature(name) }
        guard let mac = Data(base64Encoded: value.trimmingCharacters(in: .whitespaces)),
              HMAC<H>.isValidAuthenticationCode(mac, authenticating: body, using: key) else { throw .badSignature }
    }

    /// Signature header values for a body, as each provider computes them (used by the tests).
    public static func sign(_ provider: Provider, body: [UInt8], secret: String, timestamp: Int) -> [(String, String)] {
        let key = SymmetricKey(data: Array(secret.utf8))
        func b64<H: HashFunction>(_: H.Type, _ m: [UInt8]) -> String { Data(HMAC<H>.authenticationCode(for: m, using: key)).base64EncodedString() }
        func hex(_ m: [UInt8]) -> String { Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: m, using: key))) }
        switch provider {
        case .stripe: return [("Stripe-Signature", "t=\(timestamp),v1=\(hex(Array("\(timestamp).".utf8) + body))")]
        case .shopify: return [("X-Shopify-Hmac-Sha256", b64(SHA256.self, body))]
        case .typeform: return [("Typeform-Signature", "sha256=" + b64(SHA256.self, body))]
        case .callrail: return [("Signature", b64(Insecure.SHA1.self, body))]
        case .jotform: return []
        case .generic:
            return [("X-Candor-Timestamp", String(timestamp)), ("X-Candor-Signature", "sha256=" + hex(Array("\(timestamp).".utf8) + body))]
        }
    }
}
