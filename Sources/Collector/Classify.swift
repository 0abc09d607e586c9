import Privacy

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

/// Traffic source classification: direct, organic, paid, social, email, referral.
enum SourceType: String, Sendable {
    case direct, organic, paid, social, email, referral
}

/// Click-id query keys; only the kind is kept under anonymous, the value only under
/// identified + marketing consent.
let clickIDKeys = ["gclid", "fbclid", "msclkid", "ttclid", "twclid", "li_fat_id", "sc_click_id", "dclid", "wbraid", "gbraid"]

struct Attribution: Equatable {
    var sourceType: SourceType = .direct
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
    static let searchHosts = ["google.", "bing.com", "duckduckgo.com", "search.yahoo.", "yahoo.com", "baidu.com",
                              "yandex.", "ecosia.org", "qwant.com", "search.brave.com", "startpage.com", "naver.com",
                              "seznam.cz", "kagi.com", "sogou.com"]
    static let socialHosts = ["facebook.com", "fb.com", "m.facebook.com", "l.facebook.com", "lm.facebook.com",
                              "instagram.com", "l.instagram.com", "t.co", "twitter.com", "x.com", "linkedin.com",
                              "lnkd.in", "reddit.com", "old.reddit.com", "youtube.com", "youtu.be", "pinterest.com",
                              "tiktok.com", "news.ycombinator.com", "mastodon.social", "threads.net", "bsky.app",
                              "vk.com", "snapchat.com", "tumblr.com", "quora.com", "whatsapp.com", "telegram.org", "t.me"]
    static let emailHosts = ["mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com",
                             "mail.yahoo.com", "mail.proton.me", "app.fastmail.com", "mail.aol.com", "webmail."]
    static let paidMediums: Set<String> = ["cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search", "cpm",
                                           "cpv", "cpa", "display", "banner", "paid_social", "paidsocial", "paid-social",
                                           "retargeting", "affiliate", "ads"]
    static let socialMediums: Set<String> = ["social", "social-network", "social-media", "sm", "social_network", "social_media"]
    static let emailMediums: Set<String> = ["email", "e-mail", "e_mail", "newsletter", "mail"]
    static let organicMediums: Set<String> = ["organic", "seo"]

    static func matches(_ host: String, _ list: [String]) -> Bool {
        list.contains { entry in
            if entry.utf8.last == UInt8(ascii: ".") {
                // "google." matches google.com, www.google.co.uk, …: the entry starts a label of the host.
                let h = host.utf8
                var i = h.startIndex
                while i < h.endIndex {
                    if (i == h.startIndex || h[h.index(before: i)] == UInt8(ascii: ".")) && h[i...].starts(with: entry.utf8) { return true }
                    i = h.index(after: i)
                }
                return false
            }
            return hostMatches(host, domain: entry)
        }
    }

    /// Classifies one event's landing URL and referrer. `siteDomains` makes self-referrals direct.
    static func attribution(page: LightURL?, referrer: String?, siteDomains: [String], keepClickID: Bool) -> Attribution {
        var a = Attribution()
        if let page {
            a.utmSource = bounded(page.queryValue("utm_source") ?? page.queryValue("ref") ?? page.queryValue("source"))
            a.utmMedium = bounded(page.queryValue("utm_medium"))?.lowercased()
            a.utmCampaign = bounded(page.queryValue("utm_campaign"))
            a.utmTerm = bounded(page.queryValue("utm_term"))
            a.utmContent = bounded(page.queryValue("utm_content"))
            for key in clickIDKeys {
                if let v = page.queryValue(key) {
                    a.clickIDKind = key
                    if keepClickID { a.clickID = bounded(v) }
                    break
                }
            }
        }
        if let referrer, let ref = LightURL(referrer) {
            let host = ref.host.hasPrefix("www.") ? String(ref.host.dropFirst(4)) : ref.host
            if !hostMatches(ref.host, domains: siteDomains) {
                a.referrerHost = host
                if matches(host, searchHosts) || matches(host, socialHosts) {
                    // Path only for classification-relevant hosts (e.g. reddit.com/r/swift), redacted.
                    a.referrerPath = Minimize.path(ref.path)
                }
            }
        }
        a.sourceType = sourceType(a)
        return a
    }

    static func sourceType(_ a: Attribution) -> SourceType {
        if let m = a.utmMedium {
            if paidMediums.contains(m) { return .paid }
            if emailMediums.contains(m) { return .email }
            if socialMediums.contains(m) { return .social }
            if organicMediums.contains(m) { return .organic }
        }
        if a.clickIDKind != nil { return .paid }
        if let host = a.referrerHost {
            if matches(host, emailHosts) { return .email }
            if matches(host, searchHosts) { return .organic }
            if matches(host, socialHosts) { return .social }
            return .referral
        }
        if a.utmSource != nil { return .referral }
        return .direct
    }

    static func bounded(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return Minimize.value(s.utf8.count <= 200 ? s : String(s.prefix(200)))
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
