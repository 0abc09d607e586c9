import Consent
import Foundation
import Privacy
public import Store
public import Traffic

/// A URL split into the parts the pipeline needs. Userinfo and fragment are discarded.
struct LightURL {
    var host: String
    var path: Substring
    var query: [(String, String)]

    /// Parses an absolute http(s) URL; nil for anything else. Works on UTF-8 bytes: every
    /// delimiter is ASCII, so the byte positions found are valid string indices.
    init?(_ text: String) {
        let u = text.utf8
        let start: String.Index
        if u.starts(with: "https://".utf8) { start = u.index(u.startIndex, offsetBy: 8) }
        else if u.starts(with: "http://".utf8) { start = u.index(u.startIndex, offsetBy: 7) }
        else { return nil }
        let end = u[start...].firstIndex(of: UInt8(ascii: "#")) ?? u.endIndex
        let rest = u[start..<end]
        let authorityEnd = rest.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: UInt8(ascii: "@")) { authority = authority[authority.index(after: at)...] }
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            authority = authority[...close]
        } else if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
            authority = authority[..<colon]
        }
        guard !authority.isEmpty else { return nil }
        if authority.last == UInt8(ascii: ".") { authority = authority.dropLast() }
        host = asciiLowercased(Substring(authority))
        let afterAuthority = rest[authorityEnd...]
        if let q = afterAuthority.firstIndex(of: UInt8(ascii: "?")) {
            path = Substring(afterAuthority[..<q])
            query = afterAuthority[afterAuthority.index(after: q)...].split(separator: UInt8(ascii: "&")).compactMap { pair in
                let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                guard let k = kv.first, !k.isEmpty else { return nil }
                let key = asciiLowercased(Minimize.percentDecoded(Substring(k)))
                let value = kv.count > 1 ? String(Minimize.percentDecoded(Substring(kv[1]))) : ""
                return (key, value)
            }
        } else {
            path = Substring(afterAuthority)
            query = []
        }
        if path.isEmpty { path = "/" }
    }

    func queryValue(_ key: String) -> String? {
        query.first(where: { $0.0 == key })?.1
    }
}

/// Is `host` one of `domains` or a subdomain of one?
func hostMatches(_ host: String, domains: [String]) -> Bool {
    domains.contains { hostMatches(host, domain: $0) }
}

/// Is `host` the `domain` or a subdomain of it? (Byte comparison: both are lowercased ASCII or IDN text.)
func hostMatches(_ host: String, domain: String) -> Bool {
    let h = host.utf8, d = domain.utf8
    guard h.count >= d.count else { return false }
    guard h.reversed().starts(with: d.reversed()) else { return false }
    return h.count == d.count || h[h.index(h.endIndex, offsetBy: -d.count - 1)] == UInt8(ascii: ".")
}

/// `s` lowercased; ASCII-only text (nearly every host and query key) without Unicode case mapping.
func asciiLowercased(_ s: Substring) -> String {
    var needsWork = false
    for c in s.utf8 {
        if c >= 0x80 { return s.lowercased() }
        if c >= 65 && c <= 90 { needsWork = true }
    }
    guard needsWork else { return String(s) }
    return String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
}


struct Attribution: Equatable {
    var acquisition = Acquisition(channel: .direct, source: nil)
    var referrerHost: String?
    var referrerPath: String?
    var utmSource: String?
    var utmMedium: String?
    var utmCampaign: String?
    var utmTerm: String?
    var utmContent: String?
    var clickIDKind: String?
    var clickID: String?
}

enum Classifier {
    /// Classifies one event's landing URL and referrer (`ReferrerList.acquisition` decides the
    /// channel). `siteDomains` makes self-referrals direct. `audienceOnly` (the cnil-exempt
    /// mode) reads no campaign values or click ids and keeps referrer hosts only.
    static func attribution(page: LightURL?, referrer: String?, siteDomains: [String], keepClickID: Bool,
                            referrers: ReferrerList, audienceOnly: Bool = false) -> Attribution {
        var a = Attribution()
        if let page, !audienceOnly {
            a.utmSource = Minimize.bounded(page.queryValue("utm_source") ?? page.queryValue("ref") ?? page.queryValue("source"))
            a.utmMedium = Minimize.bounded(page.queryValue("utm_medium"))?.lowercased()
            a.utmCampaign = Minimize.bounded(page.queryValue("utm_campaign"))
            a.utmTerm = Minimize.bounded(page.queryValue("utm_term"))
            a.utmContent = Minimize.bounded(page.queryValue("utm_content"))
            for key in Policy.clickIDKeys {
                if let v = page.queryValue(key) {
                    a.clickIDKind = key
                    if keepClickID { a.clickID = Minimize.bounded(v) }
                    break
                }
            }
        }
        var referrerPath: Substring = "/"
        if let referrer, let ref = LightURL(referrer), !hostMatches(ref.host, domains: siteDomains) {
            a.referrerHost = ref.host.hasPrefix("www.") ? String(ref.host.dropFirst(4)) : ref.host
            referrerPath = ref.path
        }
        a.acquisition = referrers.acquisition(referrerHost: a.referrerHost, referrerPath: referrerPath, utmSource: a.utmSource,
                                              utmMedium: a.utmMedium, clickIDKind: a.clickIDKind)
        if !audienceOnly, a.referrerHost != nil, let kind = a.acquisition.referrer?.kind, kind == .search || kind == .social {
            // Path only for search and social referrers (e.g. reddit.com/r/swift), redacted.
            a.referrerPath = Minimize.path(referrerPath)
        }
        return a
    }

    /// Screen width to a bucket.
    static func screenBucket(_ width: Int?) -> String? {
        guard let width, width > 0 else { return nil }
        switch width {
        case ..<576: return "mobile"
        case ..<992: return "tablet"
        case ..<1440: return "laptop"
        default: return "desktop"
        }
    }
}

/// What the pipeline derives from a request's user agent, page URL and referrer, as labelled
/// lines (`candor classify`, for debugging a classification).
public func explainClassification(traffic: TrafficClassifier, userAgent: String?, purpose: String?, page: String?,
                                  referrer: String?, siteDomains: [String]) -> [(String, String)] {
    var lines: [(String, String)] = []
    if let userAgent {
        let v = traffic.agent(userAgent, purpose: purpose)
        lines.append(("bot", v.bot.map { "yes (\($0.rawValue)\(v.crawlerPattern.map { ": /\($0)/" } ?? ""))" } ?? "no"))
        lines.append(("browser", v.browser + (v.browserVersion.map { " \($0)" } ?? "")))
        lines.append(("os", v.os + (v.facts.osMajor.map { " \($0)" } ?? "")))
        lines.append(("device", "\(v.device.rawValue) (uap-core: \(v.facts.device)\(v.facts.brand.map { ", brand \($0)" } ?? "")\(v.facts.model.map { ", model \($0)" } ?? ""))"))
    }
    if page != nil || referrer != nil {
        let a = Classifier.attribution(page: page.flatMap(LightURL.init), referrer: referrer, siteDomains: siteDomains,
                                       keepClickID: false, referrers: traffic.referrers)
        lines.append(("channel", a.acquisition.channel.rawValue))
        lines.append(("source type", a.acquisition.sourceType))
        lines.append(("source", a.acquisition.source.map { "\($0.name) (\($0.kind.rawValue))" } ?? "-"))
        lines.append(("referrer host", a.referrerHost ?? "-"))
        for (label, value) in [("utm_source", a.utmSource), ("utm_medium", a.utmMedium), ("utm_campaign", a.utmCampaign),
                               ("click id", a.clickIDKind)] where value != nil {
            lines.append((label, value!))
        }
    }
    return lines
}

/// Fills in the channel and source name of rows stored before Candor recorded them, a batch per
/// call for up to `budget` seconds; the summary says how many rows were filled.
public func backfillChannels(database: AppDatabase, referrers: ReferrerList, budget: Double = 1) throws -> String {
    let start = Date()
    var filled = 0
    while Date().timeIntervalSince(start) < budget {
        let n = try database.fillUnsetChannels(limit: 20_000) { stored in
            let a = referrers.acquisition(referrerHost: stored.referrerHost, referrerPath: Substring(stored.referrerPath ?? "/"),
                                          utmSource: stored.utmSource, utmMedium: stored.utmMedium, clickIDKind: stored.clickIDKind)
            return Classified(channel: a.channel.rawValue, sourceName: a.source?.name, sourceType: a.sourceType)
        }
        if n == 0 { break }
        filled += n
    }
    return filled == 0 ? "nothing to fill" : "\(filled) row(s) given their channel"
}
