import Foundation
import GRDB

/// Synthetic data for benchmarks (`make bench`, `make bench-dashboard`) and the engine's property
/// test: visits with several pages, skewed like real traffic (a few pages, referrers and cities
/// take most visits, then a long tail), custom events, pixel conversions with values in two
/// currencies, and the sessions the collector would have written for them. Written directly,
/// bypassing the collector's per-event bookkeeping; deterministic for a given `seed`. Never used
/// by the appliance itself.
public struct SyntheticLoad: Sendable {
    public var site: String
    public var events: Int
    /// Events spread evenly over this many days before `end`.
    public var days: Int
    public var end: Int64
    /// Every n-th session is identified (consented) and belongs to one of `subjectHashes`.
    public var identifiedEvery: Int = 5
    public var subjectHashes: [Int64]
    public var seed: UInt64 = 1
    /// Distinct pages, referrer hosts and cities to draw from (the long tails).
    public var pages = 2000, referrers = 800, cities = 3000

    public init(site: String, events: Int, days: Int, end: Int64, subjectHashes: [Int64]) {
        self.site = site; self.events = events; self.days = days; self.end = end; self.subjectHashes = subjectHashes
    }

    /// The funnel the generated visits walk through (a share of visits reach each next step).
    public static let funnelPaths = ["/pricing", "/signup", "/welcome"]
    /// Custom events the generated visits send.
    public static let customEvents = ["download", "signup", "add_to_cart", "video_play"]
}

/// SplitMix64: a small seeded generator (the synthetic load, and a fuzz run replayed from its
/// printed seed, are the same for the same seed).
public struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An index below `n`, skewed to the first ones (about a fifth of draws take index 0 when `skew` is 3).
    mutating func skewed(_ n: Int, skew: Double = 3) -> Int {
        let u = Double(next() >> 11) / Double(1 << 53)
        return min(n - 1, Int(pow(u, skew) * Double(n)))
    }

    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

extension AppDatabase {
    /// Inserts the load in transactions of `batch` visits; calls `progress` with events done.
    public func load(_ s: SyntheticLoad, batch: Int = 20_000, progress: (Int) -> Void = { _ in }) throws {
        var rng = SplitMix(seed: s.seed)
        let paths = ["/", "/pricing", "/signup", "/welcome", "/blog", "/docs", "/about", "/contact"]
            + (8..<max(8, s.pages)).map { i in ["/blog/post-\(i)", "/docs/page-\(i)", "/product/item-\(i)"][i % 3] }
        let searches = ["www.google.com", "www.bing.com", "duckduckgo.com", "www.ecosia.org"]
        let socials = ["news.ycombinator.com", "www.reddit.com", "t.co", "www.linkedin.com"]
        // Channel and source name as the classifier names them (this module does not run it).
        let names = ["www.google.com": "Google", "www.bing.com": "Bing", "duckduckgo.com": "DuckDuckGo", "www.ecosia.org": "Ecosia",
                     "news.ycombinator.com": "Hacker News", "www.reddit.com": "Reddit", "t.co": "X", "www.linkedin.com": "LinkedIn"]
        let channels = ["direct": "Direct", "organic": "Organic Search", "social": "Organic Social", "referral": "Referral",
                        "email": "Email", "paid": "Paid Search"]
        let referrals = (0..<max(1, s.referrers)).map { "site-\($0).example.net" }
        let countries = ["US", "DE", "GB", "FR", "IN", "NL", "BR", "CA", "ES", "IT", "SE", "PL", "JP", "AU", "CH", "AT", "BE", "MX", "DK", "NO"]
        let cities = (0..<max(1, s.cities)).map { "City \($0)" }
        let networks = (0..<200).map { "Network \($0)" }
        let browsers = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera"]
        let systems = ["Windows", "Android", "iOS", "macOS", "Linux"]
        let devices = ["desktop", "mobile", "tablet"]
        let screens = ["s", "m", "l", "xl"]
        let campaigns = (0..<40).map { "campaign-\($0)" }
        let span = Int64(max(1, s.days)) * 86_400_000
        let start = s.end - span
        var done = 0, visit = 0
        var visitor: Int64 = 0, visitorDay: Int64 = -1
        while done < s.events {
            try writer.write { db in
                let insertSession = try db.cachedStatement(sql: """
                    INSERT INTO sessions (site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path,
                      pageviews, interactions, engaged_ms, duration_ms, bounce, source_type, referrer_host, utm_source, utm_medium,
                      utm_campaign, country, browser, os, device, channel, source_name)
                    VALUES (?,?,?,?,?,?,?,?, ?,?,?,?,?, ?,?,?,?,?, ?,?,?,?, ?,?)
                    """)
                let updateSession = try db.cachedStatement(sql: """
                    UPDATE sessions SET last_seen = ?, exit_path = ?, pageviews = ?, interactions = ?, duration_ms = ?, bounce = ? WHERE id = ?
                    """)
                let insertEvent = try db.cachedStatement(sql: """
                    INSERT INTO events (site_id, client_id, ts, name, path, decision, visitor, session_id, subject, country, region, city,
                      asn_org, browser, browser_version, os, device, screen, source_type, referrer_host, utm_source, utm_medium,
                      utm_campaign, value, currency, engaged_ms, scroll, props, channel, source_name)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?, ?,?,'131',?,?,?,?,?,?,?, ?,?,?,?,?,?, ?,?)
                    """)
                let insertConversion = try db.cachedStatement(sql: """
                    INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, subject, attributed_via,
                      last_source_type, last_referrer_host, last_ts, session_id)
                    VALUES (?, '\(ConversionRow.pixelProvider)', ?, 'sale', ?, ?, ?, ?, 'visit', ?, ?, ?, ?)
                    """)
                var inBatch = 0
                while inBatch < batch && done < s.events {
                    let t0 = start + Int64(done) * (span - 1_800_000) / Int64(s.events) + Int64(rng.next() % 20_000)
                    // A visitor hash lives one day (the daily salt); some people come back the same day.
                    if t0 / 86_400_000 != visitorDay || !rng.chance(0.15) {
                        visitor = Int64(bitPattern: rng.next())
                        visitorDay = t0 / 86_400_000
                    }
                    let identified = visit % s.identifiedEvery == 0 && !s.subjectHashes.isEmpty
                    let subject: Int64? = identified ? s.subjectHashes[(visit / s.identifiedEvery) % s.subjectHashes.count] : nil
                    let decision = identified ? "identified" : "anonymous"
                    // The visit's acquisition, place and device.
                    var source = "direct", referrer: String?, utm: (String?, String?, String?) = (nil, nil, nil)
                    switch rng.skewed(100, skew: 1) {
                    case 0..<35: source = "organic"; referrer = searches[rng.skewed(searches.count)]
                    case 35..<45: source = "social"; referrer = socials[rng.skewed(socials.count)]
                    case 45..<60: source = "referral"; referrer = referrals[rng.skewed(referrals.count)]
                    case 60..<66: source = "email"; utm = ("newsletter", "email", campaigns[rng.skewed(campaigns.count)])
                    case 66..<72: source = "paid"; referrer = searches[0]; utm = ("google", "cpc", campaigns[rng.skewed(campaigns.count)])
                    default: break
                    }
                    let channel = channels[source], sourceName = referrer.flatMap { names[$0] }
                    let country = countries[rng.skewed(countries.count)]
                    let city: String? = rng.chance(0.9) ? cities[rng.skewed(cities.count, skew: 4)] : nil
                    let region: String? = city.map { _ in "\(country)-\(rng.skewed(12))" }
                    let network = networks[rng.skewed(networks.count)]
                    let browser = browsers[rng.skewed(browsers.count)], os = systems[rng.skewed(systems.count)]
                    let device = devices[rng.skewed(devices.count, skew: 2)], screen = screens[rng.skewed(screens.count, skew: 1.5)]
                    // Pages: a landing page, internal navigation, the funnel for some.
                    var visitPaths = [paths[rng.skewed(paths.count, skew: 4)]]
                    let length = 1 + rng.skewed(8, skew: 2)
                    var funnelStep = visitPaths[0] == SyntheticLoad.funnelPaths[0] ? 1 : 0
                    while visitPaths.count < length {
                        if funnelStep > 0 && funnelStep < SyntheticLoad.funnelPaths.count && rng.chance(0.5) {
                            visitPaths.append(SyntheticLoad.funnelPaths[funnelStep]); funnelStep += 1
                        } else {
                            let p = paths[rng.skewed(paths.count, skew: 4)]
                            if p == SyntheticLoad.funnelPaths[0] { funnelStep = 1 }
                            visitPaths.append(p)
                        }
                    }
                    try insertSession.execute(arguments: [
                        s.site, visitor, subject, decision, t0, t0, visitPaths[0], visitPaths[0], 0, 0, 0, 0, 1,
                        source, referrer, utm.0, utm.1, utm.2, country, browser, os, device, channel, sourceName,
                    ])
                    let session = db.lastInsertedRowID
                    var t = t0, views = 0, interactions = 0
                    func event(_ name: String, _ path: String, value: Double? = nil, currency: String? = nil,
                               engaged: Int64? = nil, scroll: Int64? = nil, props: String? = nil) throws {
                        try insertEvent.execute(arguments: [
                            s.site, "s\(s.seed)-\(done)", t, name, path, decision, visitor, session, subject, country, region, city,
                            network, browser, os, device, screen, source, referrer, utm.0, utm.1, utm.2, value, currency, engaged, scroll, props,
                            channel, sourceName,
                        ])
                        done += 1; inBatch += 1
                    }
                    for (i, path) in visitPaths.enumerated() where done < s.events {
                        if i > 0 { t += 5_000 + Int64(rng.next() % 120_000) }
                        try event("pageview", path)
                        views += 1
                        if rng.chance(0.3) && done < s.events {
                            t += 1_000
                            try event("engagement", path, engaged: Int64(rng.next() % 60_000), scroll: rng.chance(0.8) ? Int64(rng.next() % 101) : nil)
                        }
                        if rng.chance(0.08) && done < s.events {
                            t += 1_000
                            // Custom events carry properties as the pixel stores them (a flat JSON object).
                            let name = SyntheticLoad.customEvents[rng.skewed(SyntheticLoad.customEvents.count)]
                            let props: String? = switch name {
                            case "download": #"{"file":"guide-\#(rng.skewed(20)).pdf"}"#
                            case "signup": #"{"plan":"\#(["free", "pro", "team"][rng.skewed(3)])","seats":\#(1 + rng.skewed(10))}"#
                            case "video_play": rng.chance(0.5) ? #"{"autoplay":true,"position":\#(Double(rng.skewed(100)) / 4)}"# : nil
                            default: nil
                            }
                            try event(name, path, props: props)
                            interactions += 1
                        }
                    }
                    // About one visit in 40 buys, in euros mostly.
                    if rng.chance(0.025) && done < s.events {
                        t += 2_000
                        let value = Double(rng.next() % 20_000) / 100, currency = rng.chance(0.8) ? "EUR" : "USD"
                        try event("conversion", visitPaths.last!, value: value, currency: currency)
                        try insertConversion.execute(arguments: [s.site, "s\(s.seed)-\(done)", t, value, currency, subject, source, referrer, t0, session])
                        interactions += 1
                    }
                    try updateSession.execute(arguments: [t, visitPaths.last!, views, interactions, t - t0, views <= 1 && interactions == 0, session])
                    visit += 1
                }
            }
            progress(done)
        }
    }

    /// The query plan SQLite picks for a subject export of `site` (benchmark output).
    public func subjectExportPlan(site: String) throws -> String {
        try writer.read { db in
            guard let scope = Self.subjectScope(kind: .subject) else { return "" }
            return try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT * FROM events WHERE id IN (\(scope.events))",
                                    arguments: ["site": site, "h": 1]).map { $0["detail"] as String }.joined(separator: "; ")
        }
    }
}

extension AppDatabase {
    /// Deletes the `n` oldest events (a benchmark's deletion before timing a truncation); returns how many went.
    public func deleteOldestEventsForBenchmark(_ n: Int) throws -> Int {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY rowid LIMIT ?)", arguments: [n])
            return db.changesCount
        }
    }
}
