import Foundation
import GRDB
import Storage

/// Totals of a site over a time range.
public struct SiteSummary: Sendable, Equatable {
    /// Distinct daily visitor hashes per day, summed over the range (a visitor seen on three days counts three times:
    /// the daily salt makes anything else impossible, by design).
    public var visitors: Int
    public var visits: Int
    public var pageviews: Int
    public var bounces: Int
    public var durationMs: Int64
    public var conversions: Int
    public var revenue: Revenue
    public var lastEvent: Int64?

    public var bounceRate: Double { visits == 0 ? 0 : Double(bounces) / Double(visits) }
    public var viewsPerVisit: Double { visits == 0 ? 0 : Double(pageviews) / Double(visits) }
    public var averageDurationMs: Int64 { visits == 0 ? 0 : durationMs / Int64(visits) }
}

/// Sales minus refunds per currency: amounts in different currencies are never added up (nor
/// converted). Amounts sent without a currency are kept under "".
public struct Revenue: Sendable, Equatable {
    public var byCurrency: [String: Double]

    public init(_ byCurrency: [String: Double] = [:]) { self.byCurrency = byCurrency }

    /// Currencies with their amounts, largest first (then by code).
    public var entries: [(currency: String, amount: Double)] {
        byCurrency.map { ($0.key, $0.value) }.sorted { ($0.amount, $1.currency) > ($1.amount, $0.currency) }
    }

    /// The amount when there is at most one currency (0 when none), nil when several.
    public var single: Double? { byCurrency.count <= 1 ? byCurrency.values.first ?? 0 : nil }

    /// "3036.00 EUR", "3036.00 EUR · 120.00 USD", "0.00".
    public var text: String {
        guard !byCurrency.isEmpty else { return "0.00" }
        return entries.map { String(format: "%.2f", $0.amount) + ($0.currency.isEmpty ? "" : " \($0.currency)") }.joined(separator: " · ")
    }
}

extension AppDatabase {
    /// Rows a breakdown keeps (the most visitors first), from the engine, the rollups and the queries alike.
    public static let tableRowLimit = 1000
}

/// One row of a breakdown: a dimension value with its distinct daily visitors and pageviews.
public struct BreakdownRow: Sendable, Equatable {
    public var value: String?
    public var visitors: Int
    public var pageviews: Int

    public init(value: String?, visitors: Int, pageviews: Int) {
        self.value = value; self.visitors = visitors; self.pageviews = pageviews
    }
}

/// Dimensions a breakdown may group events by (the column names are fixed here, never taken from a request).
public enum Dimension: String, Sendable, CaseIterable {
    case page = "path", source = "source_type", referrer = "referrer_host", utmSource = "utm_source", utmMedium = "utm_medium"
    case utmCampaign = "utm_campaign", utmTerm = "utm_term", utmContent = "utm_content", country, region, city
    case asnOrg = "asn_org", browser, os, device, screen, event = "name"
    case channel, sourceName = "source_name"

    public var label: String {
        switch self {
        case .page: "Pages"
        case .source: "Sources"
        case .referrer: "Referrers"
        case .utmSource: "UTM source"
        case .utmMedium: "UTM medium"
        case .utmCampaign: "UTM campaign"
        case .utmTerm: "UTM term"
        case .utmContent: "UTM content"
        case .country: "Countries"
        case .region: "Regions"
        case .city: "Cities"
        case .asnOrg: "Networks (ASN)"
        case .browser: "Browsers"
        case .os: "Operating systems"
        case .device: "Devices"
        case .screen: "Screen sizes"
        case .event: "Events"
        case .channel: "Channels"
        case .sourceName: "Source names"
        }
    }
}

/// Breakdowns read from sessions rather than events.
public enum SessionDimension: String, Sendable, CaseIterable {
    case entry = "entry_path", exit = "exit_path"
    public var label: String { self == .entry ? "Entry pages" : "Exit pages" }
}

/// Filters (dimension = value) that narrow every figure of a dashboard view.
public struct Filters: Sendable, Equatable {
    public var terms: [(Dimension, String)]

    public init(_ terms: [(Dimension, String)] = []) { self.terms = terms }

    public static func == (a: Self, b: Self) -> Bool { a.terms.map { "\($0.0.rawValue)=\($0.1)" } == b.terms.map { "\($0.0.rawValue)=\($0.1)" } }

    public var isEmpty: Bool { terms.isEmpty }

    /// SQL narrowing rows of `events` (under table alias `alias`, if any) of the site in
    /// `from..<to` to the filters, with its arguments: " AND …", or "" without filters.
    ///
    /// One place decides what a filter means. A term on an event's own fields (page, country,
    /// browser…, and the visit's source and campaign, which every event of the visit carries)
    /// keeps the events that have the value. A term on an event name keeps the visits that
    /// sent it: every event of those visits, so their pages, sources and cards show.
    func clause(_ alias: String = "", site: String, from: Int64, to: Int64) -> (sql: String, arguments: [(any DatabaseValueConvertible)?]) {
        let p = alias.isEmpty ? "" : alias + "."
        var sql = "", arguments: [(any DatabaseValueConvertible)?] = []
        for (dimension, value) in terms {
            if dimension == .event {
                sql += " AND \(p)session_id IN (SELECT session_id FROM events WHERE site_id = ? AND ts >= ? AND ts < ? AND name = ?)"
                arguments += [site, from, to, value]
            } else {
                sql += " AND \(p)\(dimension.rawValue) IS ?"
                arguments.append(value)
            }
        }
        return (sql, arguments)
    }

    /// Narrows sessions of the site started in `from..<to` to those with an event in the range that
    /// matches the filters (" AND id IN …"), or "" without filters.
    func sessionScope(site: String, from: Int64, to: Int64) -> (sql: String, arguments: [(any DatabaseValueConvertible)?]) {
        guard !isEmpty else { return ("", []) }
        let events = clause(site: site, from: from, to: to)
        return (" AND id IN (SELECT session_id FROM events WHERE site_id = ? AND ts >= ? AND ts < ?\(events.sql))", [site, from, to] + events.arguments)
    }

    /// Narrows conversions (of table alias `alias`) to those attributed to a visit that matches
    /// the filters as a view does — an event of the visit has every field value, and the visit
    /// sent every named event — wherever the visit lies in time (a sale in the range may come from
    /// a visit before it); nothing to add without filters. A conversion linked to no visit is in
    /// unfiltered views only. Each test looks up the visit's own events (`events_by_session`).
    func conversionScope(_ alias: String) -> (sql: String, arguments: [(any DatabaseValueConvertible)?]) {
        guard !isEmpty else { return ("", []) }
        let fields = terms.filter { $0.0 != .event }
        var sql = " AND \(alias).session_id IS NOT NULL"
        var arguments: [(any DatabaseValueConvertible)?] = []
        if !fields.isEmpty {
            sql += " AND EXISTS (SELECT 1 FROM events v WHERE v.session_id = \(alias).session_id"
                + fields.map { " AND v.\($0.0.rawValue) IS ?" }.joined() + ")"
            arguments += fields.map { $0.1 }
        }
        for term in terms where term.0 == .event {
            sql += " AND EXISTS (SELECT 1 FROM events v WHERE v.session_id = \(alias).session_id AND v.name = ?)"
            arguments.append(term.1)
        }
        return (sql, arguments)
    }
}

/// One bucket of a time series.
public struct SeriesPoint: Sendable, Equatable {
    public var start: Int64
    public var visitors: Int
    public var pageviews: Int
    /// Visits started in the bucket.
    public var visits = 0
    /// Conversions in the bucket (refunds not counted) and revenue net of refunds per currency,
    /// counted as the cards count them.
    public var conversions = 0
    public var revenue = Revenue()

    /// Starts of the buckets covering `from..<to`: hours, or local days (the first bucket may
    /// start before `from`); at most 2000.
    static func buckets(from: Int64, to: Int64, hourly: Bool, calendar: SiteCalendar) -> [Int64] {
        guard to > from else { return [] }
        if hourly {
            let grid = hourGrid(from: from, calendar: calendar)
            return Array(stride(from: grid.anchor + grid.first * 3_600_000, to: to, by: 3_600_000).prefix(2000))
        }
        return (calendar.day(of: from)...calendar.day(of: to - 1)).prefix(2000).map { calendar.start(of: $0) }
    }

    /// The hours of a range: counted from the local day start of `from` (`anchor`), so a day of
    /// 23 or 25 hours has 23 or 25 of them; `first` is the index of the hour holding `from`.
    static func hourGrid(from: Int64, calendar: SiteCalendar) -> (anchor: Int64, first: Int64) {
        let anchor = calendar.start(of: calendar.day(of: from))
        return (anchor, (from - anchor) / 3_600_000)
    }
}

/// Engagement of a page: pageviews, average engaged time and scroll depth (from the events sent when leaving it).
public struct PageEngagement: Sendable, Equatable {
    public var path: String
    public var pageviews: Int
    public var averageEngagedMs: Int64
    public var averageScroll: Int

    public init(path: String, pageviews: Int, averageEngagedMs: Int64, averageScroll: Int) {
        self.path = path; self.pageviews = pageviews; self.averageEngagedMs = averageEngagedMs; self.averageScroll = averageScroll
    }
}

extension AppDatabase {
    /// Events the pixel sends for itself: never listed as custom events.
    static let internalEventNames: Set<String> = ["pageview", "engagement"]
    /// The same as an SQL list.
    static let internalEventList = "(" + internalEventNames.sorted().map { "'\($0)'" }.joined(separator: ", ") + ")"

    // MARK: Users and their sites

    public func users() throws -> [User] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY id").map(User.init(row:)) }
    }

    public func user(id: Int64) throws -> User? {
        try writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(User.init(row:)) }
    }

    public func setUserSites(user: Int64, sites: [String]) throws {
        try transaction { tx in try tx.setUserSites(user: user, sites: sites) }
    }

    public func siteIDs(user: Int64) throws -> [String] {
        try writer.read { db in
            try String.fetchAll(db, sql: "SELECT site_id FROM user_sites WHERE user_id = ? ORDER BY site_id", arguments: [user])
        }
    }

    /// The sites an account may read: every site for owners and admins, its assigned ones for others.
    public func visibleSiteIDs(user: User) throws -> Set<String> {
        user.role == .owner || user.role == .admin ? Set(try sites().map(\.id)) : Set(try siteIDs(user: user.id ?? -1))
    }



    // MARK: Dashboard sessions (only a hash of the cookie token is stored)

    /// `device`: the browser's label in its owner's session list ("Chrome on Linux").
    public func insertWebSession(tokenHash: [UInt8], user: Int64, csrf: String, createdAt: Int64, expiresAt: Int64, device: String = "") throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM web_sessions WHERE expires_at < ?", arguments: [createdAt])
            try db.execute(sql: """
                INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at, device, last_seen_at) VALUES (?,?,?,?,?,?,?)
                """, arguments: [Data(tokenHash), user, csrf, createdAt, expiresAt, device, createdAt])
        }
    }

    /// (user id, CSRF token, last use) of a live session.
    public func webSession(tokenHash: [UInt8], now: Int64) throws -> (user: Int64, csrf: String, lastSeen: Int64)? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT user_id, csrf, last_seen_at FROM web_sessions WHERE token_hash = ? AND expires_at > ?",
                             arguments: [Data(tokenHash), now]).map { ($0[0], $0[1], $0[2]) }
        }
    }

    /// Remembers a browser that signed in to an account (only a hash of its device cookie); an
    /// account keeps its 20 most recent devices.
    public func insertLoginDevice(tokenHash: [UInt8], user: Int64, at: Int64) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO login_devices (token_hash, user_id, created_at, last_used_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(token_hash) DO UPDATE SET last_used_at = excluded.last_used_at
                """, arguments: [Data(tokenHash), user, at, at])
            try db.execute(sql: """
                DELETE FROM login_devices WHERE user_id = ? AND token_hash NOT IN
                  (SELECT token_hash FROM login_devices WHERE user_id = ? ORDER BY last_used_at DESC LIMIT 20)
                """, arguments: [user, user])
        }
    }

    /// The account a device cookie (by its hash) signed in to before, if any.
    public func loginDeviceUser(tokenHash: [UInt8]) throws -> Int64? {
        try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT user_id FROM login_devices WHERE token_hash = ?", arguments: [Data(tokenHash)])
        }
    }

    public func deleteWebSession(tokenHash: [UInt8]) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM web_sessions WHERE token_hash = ?", arguments: [Data(tokenHash)]) }
    }

    // MARK: Statistics

    public func summary(site: String, from: Int64, to: Int64, filters: Filters = Filters()) throws -> SiteSummary {
        try writer.read { db in
            let base: [(any DatabaseValueConvertible)?] = [site, from, to]
            let f = filters.clause(site: site, from: from, to: to)
            let day = try Self.calendar(db, site: site).sqlDay("ts")
            let e = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(v), 0), coalesce(sum(p), 0) FROM (
                  SELECT count(DISTINCT visitor) AS v, sum(name = 'pageview') AS p FROM events
                  WHERE site_id = ? AND ts >= ? AND ts < ?\(f.sql) GROUP BY \(day))
                """, arguments: StatementArguments(base + f.arguments))
            let scope = filters.sessionScope(site: site, from: from, to: to)
            let s = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(bounce), 0), coalesce(sum(duration_ms), 0) FROM sessions
                WHERE site_id = ? AND started_at >= ? AND started_at < ?\(scope.sql)
                """, arguments: StatementArguments(base + scope.arguments))
            let c = try Self.conversionTotals(db, site: site, from: from, to: to, filters: filters)
            let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site])
            return SiteSummary(visitors: e?[0] ?? 0, visits: s?[0] ?? 0, pageviews: e?[1] ?? 0, bounces: s?[1] ?? 0,
                               durationMs: s?[2] ?? 0, conversions: c.count, revenue: c.revenue, lastEvent: last)
        }
    }

    /// The same summary over whole local days from the rollups (no filters), conversions read directly.
    public func rollupSiteSummary(site: String, fromDay: Int64, toDay: Int64) throws -> SiteSummary {
        let r = try rollupSummary(site: site, fromDay: fromDay, toDay: toDay)
        return try writer.read { db in
            let calendar = try Self.calendar(db, site: site)
            let c = try Self.conversionTotals(db, site: site, from: calendar.start(of: fromDay), to: calendar.end(of: toDay), filters: Filters())
            let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site])
            return SiteSummary(visitors: r.visitors, visits: r.visits, pageviews: r.pageviews, bounces: r.bounces, durationMs: r.durationMs,
                               conversions: c.count, revenue: c.revenue, lastEvent: last)
        }
    }

    /// Conversions (sales, leads, calls, from webhooks and the pixel; refunds not counted) and
    /// revenue net of refunds per currency.
    static func conversionTotals(_ db: Database, site: String, from: Int64, to: Int64, filters: Filters) throws -> (count: Int, revenue: Revenue) {
        try conversionCounts(db, site: site, from: from, to: to, filters: filters)[0] ?? (0, Revenue())
    }

    /// The same per bucket: `bucket` is an SQL expression of the conversion's time `c.ts` (all
    /// in bucket 0 without one). The one place conversions and revenue are counted from SQL.
    static func conversionCounts(_ db: Database, site: String, from: Int64, to: Int64, filters: Filters,
                                 bucket: String = "0") throws -> [Int64: (count: Int, revenue: Revenue)] {
        let scope = filters.conversionScope("c")
        var counts: [Int64: (count: Int, revenue: Revenue)] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT \(bucket), coalesce(c.currency, ''), sum(c.kind != 'refund'), sum(c.kind IN ('sale','refund')),
              sum(CASE WHEN c.kind IN ('sale','refund') THEN c.value ELSE 0 END)
            FROM conversions c WHERE c.site_id = ? AND c.ts >= ? AND c.ts < ?\(scope.sql) GROUP BY 1, 2
            """, arguments: StatementArguments(([site, from, to] as [(any DatabaseValueConvertible)?]) + scope.arguments)) {
            let b: Int64 = row[0]
            var entry = counts[b] ?? (0, Revenue())
            entry.count += row[2] as Int
            if (row[3] as Int) > 0 { entry.revenue.byCurrency[row[1] as String] = row[4] as Double }
            counts[b] = entry
        }
        return counts
    }

    /// Rows of a breakdown, most visitors first.
    public func breakdown(site: String, from: Int64, to: Int64, dimension: Dimension, filters: Filters = Filters(),
                          limit: Int = AppDatabase.tableRowLimit) throws -> [BreakdownRow] {
        try writer.read { db in
            let column = dimension.rawValue
            let args: [(any DatabaseValueConvertible)?] = [site, from, to]
            let f = filters.clause(site: site, from: from, to: to)
            // The events table counts custom events (not pageviews, not the pixel's engagement
            // events) and how many were sent; every other table counts pageviews.
            let (count, only) = dimension == .event ? ("count(*)", " AND name NOT IN \(Self.internalEventList)") : ("sum(name = 'pageview')", "")
            let day = try Self.calendar(db, site: site).sqlDay("ts")
            return try Row.fetchAll(db, sql: """
                SELECT value, sum(v), sum(p) FROM (
                  SELECT \(column) AS value, count(DISTINCT visitor) AS v, \(count) AS p FROM events
                  WHERE site_id = ? AND ts >= ? AND ts < ?\(only)\(f.sql) GROUP BY \(column), \(day))
                GROUP BY value ORDER BY sum(v) DESC, sum(p) DESC, value LIMIT ?
                """, arguments: StatementArguments(args + f.arguments + [limit])).map {
                BreakdownRow(value: $0[0], visitors: $0[1], pageviews: $0[2])
            }
        }
    }

    /// Entry or exit pages: visitors (distinct per day, summed) and visits of the sessions that started in the range.
    public func sessionBreakdown(site: String, from: Int64, to: Int64, dimension: SessionDimension, filters: Filters = Filters(),
                                 limit: Int = AppDatabase.tableRowLimit) throws -> [BreakdownRow] {
        try writer.read { db in
            let base: [(any DatabaseValueConvertible)?] = [site, from, to]
            let scope = filters.sessionScope(site: site, from: from, to: to)
            let args = base + scope.arguments
            // Visitors per day summed over the range, as in every other table.
            let day = try Self.calendar(db, site: site).sqlDay("started_at")
            return try Row.fetchAll(db, sql: """
                SELECT value, sum(v), sum(n) FROM (
                  SELECT \(dimension.rawValue) AS value, count(DISTINCT visitor) AS v, count(*) AS n FROM sessions
                  WHERE site_id = ? AND started_at >= ? AND started_at < ?\(scope.sql) GROUP BY 1, \(day))
                GROUP BY value ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?
                """, arguments: StatementArguments(args + [limit])).map { BreakdownRow(value: $0[0], visitors: $0[1], pageviews: $0[2]) }
        }
    }

    /// Visitors, pageviews, visits, conversions and revenue per local day (`hourly` false) or per
    /// hour counted from `from`, empty buckets included (at most 2000).
    public func series(site: String, from: Int64, to: Int64, hourly: Bool, filters: Filters = Filters()) throws -> [SeriesPoint] {
        let (counts, visits, sales, calendar) = try writer.read { db in
            let f = filters.clause(site: site, from: from, to: to)
            let calendar = try Self.calendar(db, site: site)
            let grid = SeriesPoint.hourGrid(from: from, calendar: calendar)
            func bucket(_ ts: String) -> String { hourly ? "(\(ts) - \(grid.anchor)) / 3600000 - \(grid.first)" : calendar.sqlDay(ts) }
            let base: [(any DatabaseValueConvertible)?] = [site, from, to]
            let counts = try Row.fetchAll(db, sql: """
                SELECT \(bucket("ts")) AS b, count(DISTINCT visitor), sum(name = 'pageview') FROM events
                WHERE site_id = ? AND ts >= ? AND ts < ?\(f.sql) GROUP BY b
                """, arguments: StatementArguments(base + f.arguments))
                .reduce(into: [Int64: (Int, Int)]()) { $0[$1[0]] = ($1[1], $1[2]) }
            let scope = filters.sessionScope(site: site, from: from, to: to)
            let visits = try Row.fetchAll(db, sql: """
                SELECT \(bucket("started_at")) AS b, count(*) FROM sessions
                WHERE site_id = ? AND started_at >= ? AND started_at < ?\(scope.sql) GROUP BY b
                """, arguments: StatementArguments(base + scope.arguments))
                .reduce(into: [Int64: Int]()) { $0[$1[0]] = $1[1] }
            let sales = try Self.conversionCounts(db, site: site, from: from, to: to, filters: filters, bucket: bucket("c.ts"))
            return (counts, visits, sales, calendar)
        }
        let starts = SeriesPoint.buckets(from: from, to: to, hourly: hourly, calendar: calendar)
        return starts.enumerated().map { i, start in
            let b = hourly ? Int64(i) : calendar.day(of: start)
            let (v, p) = counts[b] ?? (0, 0)
            return SeriesPoint(start: start, visitors: v, pageviews: p, visits: visits[b] ?? 0, conversions: sales[b]?.count ?? 0,
                               revenue: sales[b]?.revenue ?? Revenue())
        }
    }

    /// Custom-event properties of `event`: each `key = value` with its distinct daily visitors and events.
    public func propertyBreakdown(site: String, from: Int64, to: Int64, event: String, filters: Filters = Filters(),
                                  limit: Int = AppDatabase.tableRowLimit) throws -> [BreakdownRow] {
        try writer.read { db in
            let f = filters.clause("e", site: site, from: from, to: to)
            return try Row.fetchAll(db, sql: """
                SELECT k || ' = ' || v, sum(n), sum(c) FROM (
                  SELECT j.key AS k, CAST(j.value AS TEXT) AS v, count(DISTINCT e.visitor) AS n, count(*) AS c
                  FROM events e, json_each(e.props) j
                  WHERE e.site_id = ? AND e.ts >= ? AND e.ts < ? AND e.name = ? AND e.props IS NOT NULL\(f.sql)
                  GROUP BY j.key, CAST(j.value AS TEXT), \(try Self.calendar(db, site: site).sqlDay("e.ts")))
                GROUP BY k, v ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?
                """, arguments: StatementArguments(([site, from, to, event] as [(any DatabaseValueConvertible)?]) + f.arguments + [limit]))
                .map { BreakdownRow(value: $0[0], visitors: $0[1], pageviews: $0[2]) }
        }
    }

    /// Pageviews per path with the average engaged time and scroll depth of the engagement events.
    public func pageEngagement(site: String, from: Int64, to: Int64, filters: Filters = Filters(), limit: Int = 50) throws -> [PageEngagement] {
        try writer.read { db in
            let f = filters.clause(site: site, from: from, to: to)
            return try Row.fetchAll(db, sql: """
                SELECT path, sum(name = 'pageview'), coalesce(avg(CASE WHEN name = 'engagement' THEN engaged_ms END), 0),
                  coalesce(avg(CASE WHEN name = 'engagement' THEN scroll END), 0)
                FROM events WHERE site_id = ? AND ts >= ? AND ts < ?\(f.sql)
                GROUP BY path ORDER BY 2 DESC, path LIMIT ?
                """, arguments: StatementArguments(([site, from, to] as [(any DatabaseValueConvertible)?]) + f.arguments + [limit])).map {
                PageEngagement(path: $0[0], pageviews: $0[1], averageEngagedMs: Int64(($0[2] as Double).rounded()),
                               averageScroll: Int(($0[3] as Double).rounded()))
            }
        }
    }
}

/// One event as the live view shows it (no hashes, no identifiers).
public struct LiveEvent: Sendable, Equatable {
    public var id: Int64
    public var timestamp: Int64
    public var name: String
    public var path: String
    public var sourceType: String
    public var referrerHost: String?
    public var country: String?
    public var device: String?
}

extension AppDatabase {
    /// Distinct visitors (current daily hashes) seen since `since` (ms).
    public func activeVisitors(site: String, since: Int64) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(DISTINCT visitor) FROM events WHERE site_id = ? AND ts >= ?", arguments: [site, since]) ?? 0
        }
    }

    /// Events of a site with a row id above `after`, oldest first; `after: nil` gives the latest `limit`.
    public func liveEvents(site: String, after: Int64?, limit: Int = 50) throws -> [LiveEvent] {
        try writer.read { db in
            let rows: [Row]
            if let after {
                rows = try Row.fetchAll(db, sql: """
                    SELECT id, ts, name, path, source_type, referrer_host, country, device FROM events
                    WHERE site_id = ? AND id > ? ORDER BY id LIMIT ?
                    """, arguments: [site, after, limit])
            } else {
                rows = try Row.fetchAll(db, sql: """
                    SELECT * FROM (SELECT id, ts, name, path, source_type, referrer_host, country, device FROM events
                    WHERE site_id = ? ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY id
                    """, arguments: [site, limit])
            }
            return rows.map {
                LiveEvent(id: $0["id"], timestamp: $0["ts"], name: $0["name"], path: $0["path"], sourceType: $0["source_type"],
                          referrerHost: $0["referrer_host"], country: $0["country"], device: $0["device"])
            }
        }
    }
}
