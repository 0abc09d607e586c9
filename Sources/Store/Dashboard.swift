import Foundation
import GRDB

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
    public var revenue: Double
    public var lastEvent: Int64?

    public var bounceRate: Double { visits == 0 ? 0 : Double(bounces) / Double(visits) }
    public var viewsPerVisit: Double { visits == 0 ? 0 : Double(pageviews) / Double(visits) }
    public var averageDurationMs: Int64 { visits == 0 ? 0 : durationMs / Int64(visits) }
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
    case utmCampaign = "utm_campaign", country, region, city, asnOrg = "asn_org", browser, os, device, screen, event = "name"

    public var label: String {
        switch self {
        case .page: "Pages"
        case .source: "Sources"
        case .referrer: "Referrers"
        case .utmSource: "UTM source"
        case .utmMedium: "UTM medium"
        case .utmCampaign: "UTM campaign"
        case .country: "Countries"
        case .region: "Regions"
        case .city: "Cities"
        case .asnOrg: "Networks"
        case .browser: "Browsers"
        case .os: "Operating systems"
        case .device: "Devices"
        case .screen: "Screens"
        case .event: "Events"
        }
    }
}

extension AppDatabase {
    // MARK: Users and their sites

    public func users() throws -> [User] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY id").map(User.init(row:)) }
    }

    public func user(id: Int64) throws -> User? {
        try writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(User.init(row:)) }
    }

    public func setUserSites(user: Int64, sites: [String]) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM user_sites WHERE user_id = ?", arguments: [user])
            for s in sites { try db.execute(sql: "INSERT INTO user_sites (user_id, site_id) VALUES (?, ?)", arguments: [user, s]) }
        }
    }

    public func siteIDs(user: Int64) throws -> [String] {
        try writer.read { db in
            try String.fetchAll(db, sql: "SELECT site_id FROM user_sites WHERE user_id = ? ORDER BY site_id", arguments: [user])
        }
    }

    public func setPasswordHash(user: Int64, hash: String) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE users SET password_hash = ? WHERE id = ?", arguments: [hash, user])
            // A new password ends every session of the account.
            try db.execute(sql: "DELETE FROM web_sessions WHERE user_id = ?", arguments: [user])
        }
    }

    // MARK: Dashboard sessions (only a hash of the cookie token is stored)

    public func insertWebSession(tokenHash: [UInt8], user: Int64, csrf: String, createdAt: Int64, expiresAt: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM web_sessions WHERE expires_at < ?", arguments: [createdAt])
            try db.execute(sql: "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?,?,?,?,?)",
                           arguments: [Data(tokenHash), user, csrf, createdAt, expiresAt])
        }
    }

    /// (user id, CSRF token) of a live session.
    public func webSession(tokenHash: [UInt8], now: Int64) throws -> (user: Int64, csrf: String)? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT user_id, csrf FROM web_sessions WHERE token_hash = ? AND expires_at > ?",
                             arguments: [Data(tokenHash), now]).map { ($0[0], $0[1]) }
        }
    }

    public func deleteWebSession(tokenHash: [UInt8]) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM web_sessions WHERE token_hash = ?", arguments: [Data(tokenHash)]) }
    }

    // MARK: Statistics

    public func summary(site: String, from: Int64, to: Int64) throws -> SiteSummary {
        try writer.read { db in
            let e = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(v), 0), coalesce(sum(p), 0) FROM (
                  SELECT count(DISTINCT visitor) AS v, sum(name = 'pageview') AS p FROM events
                  WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY ts / 86400000)
                """, arguments: [site, from, to])
            let s = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(bounce), 0), coalesce(sum(duration_ms), 0) FROM sessions
                WHERE site_id = ? AND started_at >= ? AND started_at < ?
                """, arguments: [site, from, to])
            let c = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(CASE WHEN kind IN ('sale','refund') THEN value ELSE 0 END), 0) FROM conversions
                WHERE site_id = ? AND ts >= ? AND ts < ? AND kind != 'refund'
                """, arguments: [site, from, to])
            let refunds = try Double.fetchOne(db, sql: """
                SELECT coalesce(sum(value), 0) FROM conversions WHERE site_id = ? AND ts >= ? AND ts < ? AND kind = 'refund'
                """, arguments: [site, from, to]) ?? 0
            let last = try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site])
            return SiteSummary(visitors: e?[0] ?? 0, visits: s?[0] ?? 0, pageviews: e?[1] ?? 0, bounces: s?[1] ?? 0,
                               durationMs: s?[2] ?? 0, conversions: c?[0] ?? 0, revenue: (c?[1] ?? 0) + refunds, lastEvent: last)
        }
    }

    /// Rows of a breakdown, most visitors first (at most `limit`, plus nothing folded: the caller folds).
    public func breakdown(site: String, from: Int64, to: Int64, dimension: Dimension, limit: Int = 1000) throws -> [BreakdownRow] {
        try writer.read { db in
            let column = dimension.rawValue
            return try Row.fetchAll(db, sql: """
                SELECT value, sum(v), sum(p) FROM (
                  SELECT \(column) AS value, count(DISTINCT visitor) AS v, sum(name = 'pageview') AS p FROM events
                  WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY \(column), ts / 86400000)
                GROUP BY value ORDER BY sum(v) DESC, sum(p) DESC, value LIMIT ?
                """, arguments: [site, from, to, limit]).map { BreakdownRow(value: $0[0], visitors: $0[1], pageviews: $0[2]) }
        }
    }
}
