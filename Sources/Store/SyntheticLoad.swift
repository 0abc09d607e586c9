import Foundation
import GRDB

/// Synthetic data for benchmarks (`make bench`): many events fast, bypassing the collector's
/// per-event session bookkeeping. Never used by the appliance itself.
public struct SyntheticLoad: Sendable {
    public var site: String
    public var events: Int
    /// Events spread evenly over this many days before `end`.
    public var days: Int
    public var end: Int64
    /// Events per session.
    public var eventsPerSession: Int = 5
    /// Every n-th session is identified (consented) and belongs to one of `subjects`.
    public var identifiedEvery: Int = 5
    public var subjectHashes: [Int64]

    public init(site: String, events: Int, days: Int, end: Int64, subjectHashes: [Int64]) {
        self.site = site; self.events = events; self.days = days; self.end = end; self.subjectHashes = subjectHashes
    }
}

extension AppDatabase {
    /// Inserts the load in transactions of `batch` sessions; calls `progress` with rows done.
    public func load(_ s: SyntheticLoad, batch: Int = 20_000, progress: (Int) -> Void = { _ in }) throws {
        let paths = ["/", "/pricing", "/blog/launch", "/blog/privacy", "/docs/install", "/docs/api", "/contact", "/about"]
        let sources = [("direct", nil as String?), ("organic", "www.google.com"), ("social", "news.ycombinator.com"),
                       ("referral", "blog.example.org"), ("email", nil), ("paid", "www.bing.com")]
        let countries = ["DE", "FR", "GB", "US", "NL", "SE", "ES", "IT"]
        let browsers = ["Chrome", "Firefox", "Safari", "Edge"]
        let sessions = (s.events + s.eventsPerSession - 1) / s.eventsPerSession
        let span = Int64(s.days) * 86_400_000
        let start = s.end - span
        var done = 0
        var sessionIndex = 0
        var rng = SystemRandomNumberGenerator()
        while sessionIndex < sessions {
            let upper = min(sessionIndex + batch, sessions)
            try writer.write { db in
                let insertSession = try db.cachedStatement(sql: """
                    INSERT INTO sessions (site_id, visitor, subject, decision, started_at, last_seen, entry_path, exit_path,
                      pageviews, interactions, engaged_ms, duration_ms, bounce, source_type, referrer_host, country, browser, os, device)
                    VALUES (?,?,?,?,?,?,?,?, ?,0,?,?,?,?,?,?,?,'Linux','desktop')
                    """)
                let insertEvent = try db.cachedStatement(sql: """
                    INSERT INTO events (site_id, ts, name, path, decision, visitor, session_id, subject, country, browser,
                      browser_version, os, device, screen, source_type, referrer_host, engaged_ms, scroll)
                    VALUES (?,?,?,?,?,?,?,?,?,?,'131','Linux','desktop','m',?,?,?,?)
                    """)
                for i in sessionIndex..<upper {
                    let count = min(s.eventsPerSession, s.events - i * s.eventsPerSession)
                    let t0 = start + Int64(i) * span / Int64(sessions)
                    let identified = i % s.identifiedEvery == 0 && !s.subjectHashes.isEmpty
                    let subject: Int64? = identified ? s.subjectHashes[(i / s.identifiedEvery) % s.subjectHashes.count] : nil
                    let visitor = Int64.random(in: .min ... .max, using: &rng)
                    let source = sources[i % sources.count]
                    let country = countries[i % countries.count]
                    let browser = browsers[i % browsers.count]
                    let decision = identified ? "identified" : "anonymous"
                    try insertSession.execute(arguments: [
                        s.site, visitor, subject, decision, t0, t0 + Int64(count) * 30_000, paths[i % paths.count],
                        paths[(i + count) % paths.count], count, count * 20_000, count * 30_000, count <= 1,
                        source.0, source.1, country, browser,
                    ])
                    let sessionID = db.lastInsertedRowID
                    for j in 0..<count {
                        try insertEvent.execute(arguments: [
                            s.site, t0 + Int64(j) * 30_000, j == count - 1 && j > 0 ? "engagement" : "pageview",
                            paths[(i + j) % paths.count], decision, visitor, sessionID, subject, country, browser,
                            source.0, source.1, 20_000, (i * 7 + j * 13) % 101,
                        ])
                    }
                    done += count
                }
            }
            sessionIndex = upper
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
