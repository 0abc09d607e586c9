public import Consent

/// Bounds of the wire format (documented in README, "API").
public enum WireLimits {
    public static let maxBodyBytes = 64 * 1024
    public static let maxEventsPerBatch = 50
    public static let maxNameLength = 64
    public static let maxURLLength = 2000
    public static let maxIDLength = 64
    public static let maxProps = 30
    public static let maxPropKeyLength = 64
    public static let maxPropValueLength = 256
    public static let maxEngagedMs = 24 * 3600 * 1000
    public static let maxScreenWidth = 20_000
    /// How far an event's own time (`ts`) may lie behind and ahead of the server's clock, in ms:
    /// 72 hours (a phone offline for a weekend) and 5 minutes (clock drift).
    public static let clientTimeWindow = (behind: Int64(72 * 3_600_000), ahead: Int64(5 * 60_000))
    public static let maxValue = 1e12
}

/// A property value as sent.
public enum PropValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
}

/// One event as the pixel (or an API caller) sent it, bounded and type-checked but not yet
/// through the pipeline. Nothing here is stored as is.
public struct IncomingEvent: Sendable, Equatable {
    public var site: String
    public var name: String
    public var url: String
    public var referrer: String?
    public var id: String?
    public var props: [(String, PropValue)]
    public var value: Double?
    public var currency: String?
    public var consent: ConsentState
    /// Where the pixel read a grant from (nil: Candor's banner or a `candor('consent')` call).
    public var consentSource: ConsentSource?
    public var subject: String?
    public var screen: Int?
    public var engagedMs: Int?
    public var scroll: Int?
    /// When the event happened by the browser's clock (ms since 1970), sent for events the pixel
    /// held back (offline, retried); within ``WireLimits/clientTimeWindow`` of the server's clock.
    public var clientTime: Int64?

    public init(site: String, name: String = "pageview", url: String, referrer: String? = nil, id: String? = nil,
                props: [(String, PropValue)] = [], value: Double? = nil, currency: String? = nil,
                consent: ConsentState = .unset, subject: String? = nil, screen: Int? = nil,
                engagedMs: Int? = nil, scroll: Int? = nil) {
        self.site = site; self.name = name; self.url = url; self.referrer = referrer; self.id = id
        self.props = props; self.value = value; self.currency = currency; self.consent = consent
        self.subject = subject; self.screen = screen; self.engagedMs = engagedMs; self.scroll = scroll
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.site == b.site && a.name == b.name && a.url == b.url && a.referrer == b.referrer && a.id == b.id
            && a.props.count == b.props.count && zip(a.props, b.props).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            && a.value == b.value && a.currency == b.currency && a.consent == b.consent && a.consentSource == b.consentSource
            && a.subject == b.subject
            && a.screen == b.screen && a.engagedMs == b.engagedMs && a.scroll == b.scroll
    }
}

/// Why a request body was refused (400).
public struct WireError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

enum Wire {
    static let eventKeys: Set<String> = [
        "site", "name", "url", "referrer", "id", "props", "value", "currency", "consent", "subject",
        "screen", "engaged_ms", "scroll", "ts",
    ]

    /// Parses a body: one event object, or `{"events": [...]}` with 1…50 events.
    static func parseBatch(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> [IncomingEvent] {
        let doc: JSONValue
        do { doc = try JSONParser.parse(bytes) } catch { throw WireError(error.description) }
        guard case .object(let members) = doc else { throw WireError("body must be a JSON object") }
        if members.contains(where: { $0.0 == "events" }) {
            guard members.count == 1, case .array(let items)? = doc["events"] else {
                throw WireError("a batch is {\"events\": [...]} with no other keys")
            }
            guard !items.isEmpty else { throw WireError("events must not be empty") }
            guard items.count <= WireLimits.maxEventsPerBatch else {
                throw WireError("at most \(WireLimits.maxEventsPerBatch) events per request")
            }
            var out: [IncomingEvent] = []
            out.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                do { out.append(try event(item)) } catch { throw WireError("events[\(index)]: \(error.description)") }
            }
            return out
        }
        return [try event(doc)]
    }

    static func event(_ v: JSONValue) throws(WireError) -> IncomingEvent {
        guard case .object(let members) = v else { throw WireError("an event must be an object") }
        for (key, _) in members where !eventKeys.contains(key) {
            throw WireError("unknown field \"\(key.prefix(40))\"")
        }
        let site = try requiredString(v, "site", max: WireLimits.maxIDLength)
        guard site.utf8.allSatisfy(isIDByte) else { throw WireError("site must be an id of letters, digits, - and _") }
        let name = try optionalString(v, "name", max: WireLimits.maxNameLength) ?? "pageview"
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw WireError("name must be 1–\(WireLimits.maxNameLength) printable characters")
        }
        let url = try requiredString(v, "url", max: WireLimits.maxURLLength)
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw WireError("url must be an absolute http(s) URL") }
        var e = IncomingEvent(site: site, name: name, url: url)
        e.referrer = try optionalString(v, "referrer", max: WireLimits.maxURLLength)
        if let id = try optionalString(v, "id", max: WireLimits.maxIDLength) {
            guard !id.isEmpty, id.utf8.allSatisfy(isIDByte) else { throw WireError("id must be letters, digits, - and _") }
            e.id = id
        }
        if let subject = try optionalString(v, "subject", max: WireLimits.maxIDLength) {
            guard isValidSubject(subject) else {
                throw WireError("subject must be 16–64 letters, digits, - and _")
            }
            e.subject = subject
        }
        e.props = try props(v["props"])
        if let value = try optionalNumber(v, "value") {
            guard abs(value) <= WireLimits.maxValue else { throw WireError("value out of range") }
            e.value = value
        }
        if let currency = try optionalString(v, "currency", max: 3) {
            guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
                throw WireError("currency must be an ISO 4217 code such as USD")
            }
            e.currency = currency
        }
        if e.currency != nil && e.value == nil { throw WireError("currency without value") }
        (e.consent, e.consentSource) = try consent(v["consent"])
        e.screen = try optionalInt(v, "screen", 0...WireLimits.maxScreenWidth)
        e.engagedMs = try optionalInt(v, "engaged_ms", 0...WireLimits.maxEngagedMs)
        e.scroll = try optionalInt(v, "scroll", 0...100)
        if let t = try optionalNumber(v, "ts") {
            guard t.rounded() == t, abs(t) < 1e15 else { throw WireError("ts must be whole milliseconds since 1970") }
            e.clientTime = Int64(t)
        }
        return e
    }

    static func consent(_ v: JSONValue?) throws(WireError) -> (ConsentState, ConsentSource?) {
        switch v {
        case nil, .null?: return (.unset, nil)
        case .string("unset")?: return (.unset, nil)
        case .string("denied")?: return (.denied, nil)
        case .string("granted")?: return (.granted(analytics: true, marketing: true), nil)
        case .object(let members)?:
            var state: String?
            var analytics: Bool?
            var marketing: Bool?
            var source: ConsentSource?
            for (key, value) in members {
                switch (key, value) {
                case ("state", .string(let s)): state = s
                case ("analytics", .bool(let b)): analytics = b
                case ("marketing", .bool(let b)): marketing = b
                case ("src", .string(let s)):
                    guard let known = ConsentSource(rawValue: s) else { throw WireError("consent.src must be candor, tcf or gcm") }
                    source = known
                default: throw WireError("consent accepts state (string), analytics and marketing (booleans), src (string)")
                }
            }
            switch state {
            case "unset"?: return (.unset, source)
            case "denied"?: return (.denied, source)
            case "granted"?, nil:
                let a = analytics ?? (state != nil), m = marketing ?? false
                if state == nil && analytics == nil && marketing == nil { return (.unset, source) }
                return (a || m ? .granted(analytics: a, marketing: m) : .denied, source)
            default: throw WireError("consent.state must be unset, granted or denied")
            }
        default:
            throw WireError("consent must be \"unset\", \"granted\", \"denied\" or an object")
        }
    }

    static func props(_ v: JSONValue?) throws(WireError) -> [(String, PropValue)] {
        guard let v, v != .null else { return [] }
        guard case .object(let members) = v else { throw WireError("props must be a flat object") }
        guard members.count <= WireLimits.maxProps else { throw WireError("at most \(WireLimits.maxProps) props") }
        var out: [(String, PropValue)] = []
        out.reserveCapacity(members.count)
        for (key, value) in members {
            guard !key.isEmpty, key.count <= WireLimits.maxPropKeyLength else {
                throw WireError("prop keys must be 1–\(WireLimits.maxPropKeyLength) characters")
            }
            switch value {
            case .string(let s):
                guard s.count <= WireLimits.maxPropValueLength else {
                    throw WireError("props.\(key.prefix(40)): longer than \(WireLimits.maxPropValueLength) characters")
                }
                out.append((key, .string(s)))
            case .number(let d): out.append((key, .number(d)))
            case .bool(let b): out.append((key, .bool(b)))
            default: throw WireError("props.\(key.prefix(40)): values must be strings, numbers or booleans")
            }
        }
        return out
    }

    /// The pixel's random subject id: 16–64 letters, digits, `-` and `_`.
    static func isValidSubject(_ s: String) -> Bool {
        (16...WireLimits.maxIDLength).contains(s.utf8.count) && s.utf8.allSatisfy(isIDByte)
    }

    static func isIDByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95
    }

    static func requiredString(_ v: JSONValue, _ key: String, max: Int) throws(WireError) -> String {
        guard let s = try optionalString(v, key, max: max) else { throw WireError("\(key) is required") }
        return s
    }

    static func optionalString(_ v: JSONValue, _ key: String, max: Int) throws(WireError) -> String? {
        switch v[key] {
        case nil, .null?: return nil
        case .string(let s)?:
            guard s.utf8.count <= max else { throw WireError("\(key) longer than \(max) bytes") }
            return s
        default: throw WireError("\(key) must be a string")
        }
    }

    static func optionalNumber(_ v: JSONValue, _ key: String) throws(WireError) -> Double? {
        switch v[key] {
        case nil, .null?: return nil
        case .number(let d)?: return d
        default: throw WireError("\(key) must be a number")
        }
    }

    static func optionalInt(_ v: JSONValue, _ key: String, _ range: ClosedRange<Int>) throws(WireError) -> Int? {
        guard let d = try optionalNumber(v, key) else { return nil }
        guard d.rounded() == d, d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            throw WireError("\(key) must be an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return Int(d)
    }
}
