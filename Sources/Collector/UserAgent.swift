import Privacy
import Synchronization

/// A user agent reduced to what is stored: browser family + major version, OS family, device class.
/// The full string is never kept.
struct ReducedUserAgent: Equatable, Sendable {
    var browser: String
    var browserVersion: String?
    var os: String
    var device: String

    init(browser: String, browserVersion: String?, os: String, device: String) {
        self.browser = browser; self.browserVersion = browserVersion; self.os = os; self.device = device
    }

    init(_ uaString: String) {
        let ua = Bytes(uaString)
        // Order matters: many browsers claim to be Chrome and Safari.
        let rules: [(token: String, name: String)] = [
            ("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("OPR/", "Opera"), ("OPiOS/", "Opera"),
            ("SamsungBrowser/", "Samsung Internet"), ("YaBrowser/", "Yandex Browser"), ("Vivaldi/", "Vivaldi"),
            ("UCBrowser/", "UC Browser"), ("DuckDuckGo/", "DuckDuckGo"), ("Brave/", "Brave"),
            ("FxiOS/", "Firefox"), ("Firefox/", "Firefox"), ("CriOS/", "Chrome"), ("Chromium/", "Chromium"),
            ("Chrome/", "Chrome"),
        ]
        var browser = "Other"
        var version: String?
        for rule in rules {
            if let v = ua.digits(after: rule.token) {
                browser = rule.name; version = v; break
            }
        }
        if browser == "Other" {
            if ua.contains("Safari/"), let v = ua.digits(after: "Version/") {
                browser = "Safari"; version = v
            } else if let v = ua.digits(after: "MSIE ") {
                browser = "Internet Explorer"; version = v
            } else if ua.contains("Trident/"), let v = ua.digits(after: "rv:") {
                browser = "Internet Explorer"; version = v
            }
        }
        let os: String
        if ua.contains("Windows") { os = "Windows" }
        else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") { os = "iOS" }
        else if ua.contains("Android") { os = "Android" }
        else if ua.contains("CrOS") { os = "ChromeOS" }
        else if ua.contains("Mac OS X") || ua.contains("Macintosh") { os = "macOS" }
        else if ua.contains("Linux") || ua.contains("X11") { os = "Linux" }
        else { os = "Other" }
        let device: String
        if ua.contains("iPad") || ua.contains("Tablet") || (os == "Android" && !ua.contains("Mobile")) { device = "tablet" }
        else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("iPod") { device = "mobile" }
        else { device = "desktop" }
        self.init(browser: browser, browserVersion: version, os: os, device: device)
    }
}

/// Bot and non-human traffic detection from the user agent and request headers.
enum BotFilter {
    static let patterns = [
        "bot", "crawl", "spider", "slurp", "headless", "phantomjs", "selenium", "puppeteer", "playwright",
        "lighthouse", "pagespeed", "gtmetrix", "pingdom", "uptime", "monitor", "curl/", "wget/", "python-requests",
        "python-urllib", "aiohttp", "httpx", "go-http-client", "java/", "okhttp", "libwww", "node-fetch", "axios/",
        "scrapy", "facebookexternalhit", "preview", "whatsapp", "embedly", "feedfetcher", "ahrefs", "semrush",
        "mj12", "dataprovider", "bytespider", "petalbot", "yandex.com/bots", "applebot", "chrome-lighthouse",
    ]

    /// True if the request looks automated or speculative (prefetch/prerender).
    static func isBot(userAgent: String, purpose: String?) -> Bool {
        isSpeculative(purpose: purpose) || isBot(userAgent: userAgent)
    }

    static func isSpeculative(purpose: String?) -> Bool {
        guard let purpose else { return false }
        let p = purpose.lowercased()
        return p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
    }

    static func isBot(userAgent: String) -> Bool {
        if userAgent.utf8.count < 12 { return true }
        let ua = Bytes(userAgent, lowercased: true)
        if !ua.hasPrefix("mozilla/") && !ua.hasPrefix("opera/") { return true }
        return patterns.contains { ua.contains($0) }
    }
}

/// What the pipeline derives from a user agent (bot or not, the reduced form), remembered per
/// user agent: the same few strings arrive again and again. Entries are keyed by a keyed hash
/// under a per-process random key, so the strings themselves are not kept past their request.
final class UserAgentCache: Sendable {
    struct Entry: Sendable { let bot: Bool; let reduced: ReducedUserAgent }
    private let key = SecretBytes(random: 32)
    private let entries = Mutex<[Int64: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// Entries held (tests).
    var count: Int { entries.withLock { $0.count } }

    func lookup(_ userAgent: String) -> Entry {
        let id = key.withBytes { k in Array(userAgent.utf8).withUnsafeBytes { Sodium.keyedHash64(key: k, message: $0) } }
        if let hit = entries.withLock({ $0[id] }) { return hit }
        let entry = Entry(bot: BotFilter.isBot(userAgent: userAgent), reduced: ReducedUserAgent(userAgent))
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[id] = entry
        }
        return entry
    }
}
