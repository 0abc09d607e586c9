import Foundation

/// What kind of site a referrer is.
public enum ReferrerKind: String, Sendable, CaseIterable {
    case search, social, email, ai
    /// Ad servers (a click on an ad, whatever the campaign fields say).
    case paid
    /// A known company's other sites (support.google.com, news.yahoo.com): referrals.
    case unknown
}

/// A known referrer: its name ("Google", "GMX") and kind.
public struct KnownReferrer: Sendable, Equatable {
    public var name: String
    public var kind: ReferrerKind
}

/// Search engines, social networks and webmail from the referer-parser dataset (Snowplow,
/// Apache-2.0; `referers.json` of Debian's `ruby-referer-parser`), plus `additions`: entries
/// written for Candor where that dataset (last updated 2020) has nothing: AI assistants, and
/// networks and webmail hosts that appeared or moved since. Lookup follows referer-parser:
/// the host with its first path segment, then the host, then the host without its first label,
/// and so on.
public final class ReferrerList: Sendable {
    private let byDomain: [String: KnownReferrer]
    private let byName: [String: KnownReferrer]
    /// Whether the host-name rules for webmail apply (part of Candor's additions).
    private let withRules: Bool
    /// Entries read from the dataset, per kind.
    public let datasetCounts: [ReferrerKind: Int]

    /// Written for Candor (not taken from a dataset): kind, name, domains. Wins over the
    /// dataset where both list a domain.
    static let additions: [(ReferrerKind, String, [String])] = [
        (.ai, "ChatGPT", ["chatgpt.com", "chat.openai.com"]),
        (.ai, "Perplexity", ["perplexity.ai", "www.perplexity.ai"]),
        (.ai, "Gemini", ["gemini.google.com", "bard.google.com"]),
        (.ai, "Claude", ["claude.ai"]),
        (.ai, "Copilot", ["copilot.microsoft.com", "copilot.cloud.microsoft"]),
        (.ai, "Mistral Le Chat", ["chat.mistral.ai"]),
        (.ai, "DeepSeek", ["chat.deepseek.com"]),
        (.ai, "Meta AI", ["meta.ai", "www.meta.ai"]),
        (.ai, "Grok", ["grok.com"]),
        (.ai, "Phind", ["phind.com", "www.phind.com"]),
        (.ai, "You.com", ["you.com"]),
        (.ai, "Poe", ["poe.com"]),
        (.search, "DuckDuckGo", ["duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com"]),
        (.search, "Brave Search", ["search.brave.com"]),
        (.search, "Kagi", ["kagi.com"]),
        (.search, "Qwant", ["qwant.com", "www.qwant.com", "lite.qwant.com"]),
        (.search, "Startpage", ["startpage.com", "www.startpage.com"]),
        (.search, "Ecosia", ["ecosia.org", "www.ecosia.org"]),
        (.search, "Yandex", ["ya.ru", "yandex.ru", "yandex.com", "yandex.com.tr", "yandex.kz", "yandex.by", "yandex.ua"]),
        (.search, "Bing", ["bing.com", "www.bing.com", "cn.bing.com"]),
        (.search, "Seznam", ["search.seznam.cz"]),
        (.search, "Mojeek", ["mojeek.com", "www.mojeek.com"]),
        (.search, "Presearch", ["presearch.com"]),
        (.social, "X", ["x.com", "twitter.com", "t.co", "mobile.twitter.com"]),
        (.social, "Threads", ["threads.net", "threads.com"]),
        (.social, "Bluesky", ["bsky.app"]),
        (.social, "Mastodon", ["mastodon.social", "mastodon.online", "mstdn.social", "fosstodon.org", "hachyderm.io"]),
        (.social, "TikTok", ["tiktok.com"]),
        (.social, "LinkedIn", ["linkedin.com", "lnkd.in"]),
        (.social, "Youtube", ["youtube.com", "youtu.be"]),
        (.social, "Facebook", ["facebook.com", "fb.com", "fb.me"]),
        (.social, "Instagram", ["instagram.com"]),
        (.social, "Reddit", ["reddit.com", "redd.it"]),
        (.social, "Pinterest", ["pinterest.com", "pin.it"]),
        (.social, "Vkontakte", ["vk.com", "vk.ru", "m.vk.com"]),
        (.social, "Odnoklassniki", ["ok.ru", "odnoklassniki.ru"]),
        (.social, "Discord", ["discord.com", "discordapp.com"]),
        (.social, "Telegram", ["t.me", "web.telegram.org"]),
        (.social, "WhatsApp", ["web.whatsapp.com", "wa.me"]),
        (.social, "Snapchat", ["snapchat.com"]),
        (.social, "Quora", ["quora.com"]),
        (.social, "Hacker News", ["news.ycombinator.com"]),
        (.social, "Xing", ["xing.com"]),
        (.email, "Gmail", ["mail.google.com"]),
        (.email, "Outlook.com", ["outlook.live.com", "outlook.office.com", "outlook.office365.com", "outlook.cloud.microsoft"]),
        (.email, "Yahoo! Mail", ["mail.yahoo.com", "mail.yahoo.co.jp", "mail.yahoo.co.uk", "mail.yahoo.net"]),
        (.email, "AOL Mail", ["mail.aol.com"]),
        (.ai, "Character.AI", ["character.ai"]),
        (.social, "Workplace", ["workplace.com"]),
        (.social, "Lnk.Bio", ["lnk.bio"]),
        (.social, "Linktree", ["linktr.ee"]),
        (.paid, "Google Ads", ["doubleclick.net", "googlesyndication.com", "googleadservices.com", "adsensecustomsearchads.com",
                               "syndicatedsearch.goog"]),
        // United Internet's webmail (GMX, WEB.DE, 1&1, mail.com) sends links through "deref-" hosts.
        (.email, "GMX", ["gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.com", "gmx.fr", "gmx.es", "gmx.it", "gmx.co.uk",
                         "deref-gmx.net", "deref-gmx.de", "deref-gmx.at", "deref-gmx.ch", "deref-gmx.com", "deref-gmx.fr",
                         "deref-gmx.es", "deref-gmx.it", "deref-gmx.co.uk"]),
        (.email, "WEB.DE", ["web.de", "deref-web.de", "deref-web-02.de"]),
        (.email, "1&1 Mail", ["email.1und1.de", "mail.1und1.de", "navigator.1und1.de", "deref-1und1.de", "deref-1und1-02.de"]),
        (.email, "mail.com", ["mail.com", "deref-mail.com"]),
        (.email, "Bluewin", ["bluewin.ch"]),
        (.email, "IONOS Mail", ["mail.ionos.de", "mail.ionos.com", "mail.ionos.co.uk"]),
        (.email, "T-Online Mail", ["email.t-online.de"]),
        (.email, "Freenet Mail", ["webmail.freenet.de"]),
        (.email, "Orange Mail", ["mail.orange.fr", "messagerie.orange.fr", "webmail.orange.fr"]),
        (.email, "SFR Mail", ["webmail.sfr.fr"]),
        (.email, "Free Mail", ["webmail.free.fr", "zimbra.free.fr"]),
        (.email, "Laposte Mail", ["webmail.laposte.net"]),
        (.email, "Libero Mail", ["mail.libero.it"]),
        (.email, "Proton Mail", ["mail.proton.me", "mail.protonmail.com"]),
        (.email, "Fastmail", ["app.fastmail.com", "www.fastmail.com"]),
        (.email, "Zoho Mail", ["mail.zoho.com", "mail.zoho.eu"]),
        (.email, "Yandex Mail", ["mail.yandex.ru", "mail.yandex.com"]),
        (.email, "Mail.ru Mail", ["e.mail.ru", "touch.mail.ru"]),
        (.email, "Seznam Mail", ["email.seznam.cz"]),
        (.email, "iCloud Mail", ["www.icloud.com/mail", "icloud.com/mail"]),
        (.email, "Interia Mail", ["poczta.interia.pl"]),
        (.email, "WP Mail", ["poczta.wp.pl"]),
        (.email, "o2 Mail", ["poczta.o2.pl"]),
    ]

    static let webmailLabels = ["webmail", "wmail", "mail", "email", "owa", "messagerie", "lightmailer", "mailbusiness",
                                "posta", "poczta", "correo", "courrier"]

    /// Reads the dataset at `path` (nil: the additions only); `additions: false` measures the
    /// dataset alone.
    public init(json path: String?, additions: Bool = true) throws {
        var domains: [String: KnownReferrer] = [:]
        var names: [String: KnownReferrer] = [:]
        var counts: [ReferrerKind: Int] = [:]
        if let path {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw DatasetError.malformed(path, "not an object")
            }
            // In a fixed order, so that a domain or name listed twice resolves the same way in
            // every process: a main kind before "unknown" (a company's other sites).
            for medium in ["search", "social", "email", "unknown"] {
                guard let kind = ReferrerKind(rawValue: medium), let group = root[medium] as? [String: Any] else { continue }
                for (name, value) in group.sorted(by: { $0.key < $1.key }) {
                    guard let hosts = (value as? [String: Any])?["domains"] as? [String] else { continue }
                    let known = KnownReferrer(name: name, kind: kind)
                    counts[kind, default: 0] += 1
                    names[name.lowercased()] = names[name.lowercased()] ?? known
                    for host in hosts { domains[host.lowercased()] = domains[host.lowercased()] ?? known }
                }
            }
            guard !domains.isEmpty else { throw DatasetError.malformed(path, "no referrers") }
        }
        for (kind, name, hosts) in additions ? Self.additions : [] {
            let known = KnownReferrer(name: name, kind: kind)
            names[name.lowercased()] = known
            for host in hosts { domains[host] = known }
        }
        byDomain = domains
        byName = names
        withRules = additions
        datasetCounts = counts
    }

    public var domainCount: Int { byDomain.count }

    /// The referrer `host` (lowercased) with `path` belongs to, if it is known.
    public func lookup(host: String, path: Substring = "/") -> KnownReferrer? {
        // Hosts are stored without "www."; the dataset lists some only with it (www.baidu.com).
        if let hit = lookupListed(host: host.hasPrefix("www.") ? host : "www." + host, path: path) { return hit }
        guard withRules else { return nil }
        // Not in the lists: webmail front-ends by their conventional first label, whole or
        // followed by digits or "-" (mail01.orange.fr, webmail1m.…, lightmailer-bs.gmx.net,
        // email.t-online.de, owa.…; three labels at least, so mail.ru the portal is not one)
        // and link dereferrers ("deref-…").
        let labels = host.split(separator: ".")
        if labels.count >= 3, let first = labels.first, Self.webmailLabels.contains(where: { word in
            first == word || (first.hasPrefix(word) && first.dropFirst(word.count).first.map { $0.isNumber || $0 == "-" } == true)
        }) {
            return KnownReferrer(name: host, kind: .email)
        }
        if host.hasPrefix("deref-") { return KnownReferrer(name: host, kind: .email) }
        return nil
    }

    private func lookupListed(host: String, path: Substring) -> KnownReferrer? {
        let segment = path.dropFirst().prefix { $0 != "/" && $0 != "?" }
        var candidate = Substring(host)
        while true {
            if !segment.isEmpty, let hit = byDomain[String(candidate) + "/" + String(segment)] { return hit }
            if let hit = byDomain[String(candidate)] { return hit }
            guard let dot = candidate.firstIndex(of: "."), candidate[candidate.index(after: dot)...].contains(".") else { break }
            candidate = candidate[candidate.index(after: dot)...]
        }
        return nil
    }

    /// A campaign source (utm_source) as a known referrer: a host ("chatgpt.com") or a name
    /// ("google", "Facebook").
    public func lookup(source: String) -> KnownReferrer? {
        let s = source.lowercased()
        if s.contains("."), let hit = lookup(host: s.hasPrefix("www.") ? String(s.dropFirst(4)) : s) { return hit }
        return byName[s]
    }
}
