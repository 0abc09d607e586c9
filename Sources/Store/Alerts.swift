public import Foundation
import GRDB

/// An alert rule: what to watch (a site's, or the install's when `siteID` is nil), its threshold,
/// the quiet time after it fired or resolved, and its state.
public struct AlertRule: Sendable, Equatable {
    public var id: String
    public var siteID: String?
    public var kind: String
    public var threshold: Double
    public var cooldownMinutes: Int
    public var createdBy: String
    public var createdAt: Int64
    /// When the condition was found true (nil: not firing).
    public var firingSince: Int64?
    /// When it last fired or resolved (the cooldown counts from here).
    public var lastChangeAt: Int64?

    public init(id: String, siteID: String?, kind: String, threshold: Double, cooldownMinutes: Int, createdBy: String, createdAt: Int64,
                firingSince: Int64? = nil, lastChangeAt: Int64? = nil) {
        self.id = id; self.siteID = siteID; self.kind = kind; self.threshold = threshold; self.cooldownMinutes = cooldownMinutes
        self.createdBy = createdBy; self.createdAt = createdAt; self.firingSince = firingSince; self.lastChangeAt = lastChangeAt
    }

    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], kind: row["kind"], threshold: row["threshold"], cooldownMinutes: row["cooldown_minutes"],
                  createdBy: row["created_by"], createdAt: row["created_at"], firingSince: row["firing_since"], lastChangeAt: row["last_change_at"])
    }
}

/// A rule that fired or resolved, with what it said and where it was sent.
public struct AlertHistoryEntry: Sendable, Equatable {
    public var ruleID: String
    public var siteID: String?
    public var kind: String
    public var state: String
    public var at: Int64
    public var message: String
    public var delivered: String
}

/// Where alerts go besides e-mail: a Slack or Teams incoming webhook, or a signed webhook. The
/// URL (a secret for Slack and Teams) and the signing secret are stored sealed (SecretBox).
public struct NotificationChannel: Sendable, Equatable {
    public var id: String
    public var siteID: String?
    public var kind: String
    public var label: String
    public var sealedURL: Data
    public var sealedSecret: Data?
    public var createdAt: Int64

    public init(id: String, siteID: String?, kind: String, label: String, sealedURL: Data, sealedSecret: Data?, createdAt: Int64) {
        self.id = id; self.siteID = siteID; self.kind = kind; self.label = label; self.sealedURL = sealedURL; self.sealedSecret = sealedSecret
        self.createdAt = createdAt
    }
}

extension WriteTransaction {
    public func insertAlertRule(_ r: AlertRule) throws {
        try db.execute(sql: """
            INSERT INTO alert_rules (id, site_id, kind, threshold, cooldown_minutes, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [r.id, r.siteID, r.kind, r.threshold, r.cooldownMinutes, r.createdBy, r.createdAt])
    }

    public func alertRule(id: String) throws -> AlertRule? {
        try Row.fetchOne(db, sql: "SELECT * FROM alert_rules WHERE id = ?", arguments: [id]).map(AlertRule.init(row:))
    }

    public func deleteAlertRule(id: String) throws {
        try db.execute(sql: "DELETE FROM alert_rules WHERE id = ?", arguments: [id])
    }

    /// Records a rule's change of state (fired: `firing` true) with its history entry; false when
    /// another process changed it first (the state was not `expectFiring`).
    public func changeAlertState(rule: AlertRule, firing: Bool, at: Int64, message: String) throws -> Bool {
        try db.execute(sql: """
            UPDATE alert_rules SET firing_since = ?, last_change_at = ? WHERE id = ? AND (firing_since IS NULL) = ?
            """, arguments: [firing ? at : nil, at, rule.id, firing])
        guard db.changesCount == 1 else { return false }
        try db.execute(sql: "INSERT INTO alert_history (rule_id, site_id, kind, state, at, message) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [rule.id, rule.siteID, rule.kind, firing ? "fired" : "resolved", at, message])
        return true
    }

    public func insertNotificationChannel(_ c: NotificationChannel) throws {
        try db.execute(sql: """
            INSERT INTO notification_channels (id, site_id, kind, label, target, secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [c.id, c.siteID, c.kind, c.label, c.sealedURL, c.sealedSecret, c.createdAt])
    }

    public func notificationChannel(id: String) throws -> NotificationChannel? {
        try Row.fetchOne(db, sql: "SELECT * FROM notification_channels WHERE id = ?", arguments: [id]).map(AppDatabase.channel)
    }

    public func deleteNotificationChannel(id: String) throws {
        try db.execute(sql: "DELETE FROM notification_channels WHERE id = ?", arguments: [id])
    }

    public func setAlertEmails(user: Int64, _ on: Bool) throws {
        try db.execute(sql: "UPDATE users SET alert_emails = ? WHERE id = ?", arguments: [on, user])
    }
}

extension AppDatabase {
    static func channel(_ row: Row) -> NotificationChannel {
        NotificationChannel(id: row["id"], siteID: row["site_id"], kind: row["kind"], label: row["label"], sealedURL: row["target"],
                            sealedSecret: row["secret"], createdAt: row["created_at"])
    }

    public func alertRules() throws -> [AlertRule] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM alert_rules ORDER BY created_at, id").map(AlertRule.init(row:)) }
    }

    public func notificationChannels() throws -> [NotificationChannel] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM notification_channels ORDER BY created_at, id").map(Self.channel) }
    }

    /// The newest entries first.
    public func alertHistory(limit: Int) throws -> [AlertHistoryEntry] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alert_history ORDER BY at DESC, id DESC LIMIT ?", arguments: [limit]).map {
                AlertHistoryEntry(ruleID: $0["rule_id"], siteID: $0["site_id"], kind: $0["kind"], state: $0["state"], at: $0["at"],
                                  message: $0["message"], delivered: $0["delivered"])
            }
        }
    }

    /// Notes where the newest history entry of a rule was sent.
    public func noteAlertDelivery(rule: String, at: Int64, delivered: String) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE alert_history SET delivered = ? WHERE rule_id = ? AND at = ?", arguments: [delivered, rule, at])
        }
    }

    /// Accounts that asked for alerts by e-mail.
    public func alertEmailUsers() throws -> [User] {
        try writer.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users WHERE alert_emails = 1 ORDER BY id").map(User.init(row:)) }
    }

    public func alertEmails(user: Int64) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, sql: "SELECT alert_emails FROM users WHERE id = ?", arguments: [user]) ?? false }
    }

    // MARK: What the rules watch

    /// The newest event's time of a site (nil: none yet).
    public func newestEvent(site: String) throws -> Int64? {
        try writer.read { db in try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) }
    }

    /// Pageviews of a site in [from, to).
    public func pageviewCount(site: String, from: Int64, to: Int64) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE site_id = ? AND ts >= ? AND ts < ? AND name = 'pageview'",
                             arguments: [site, from, to]) ?? 0
        }
    }

    /// The most viewed pages and the most frequent sources of a site's pageviews in [from, to): the
    /// source's name where known, else the UTM source, the referrer's host or the source type.
    public func topOfHour(site: String, from: Int64, to: Int64, limit: Int = 3) throws -> (pages: [(String, Int)], sources: [(String, Int)]) {
        try writer.read { db in
            func top(_ column: String) throws -> [(String, Int)] {
                try Row.fetchAll(db, sql: """
                    SELECT coalesce(\(column), '(none)'), count(*) AS n FROM events WHERE site_id = ? AND ts >= ? AND ts < ? AND name = 'pageview'
                    GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?
                    """, arguments: [site, from, to, limit]).map { ($0[0], $0[1]) }
            }
            return (try top("path"), try top("coalesce(source_name, utm_source, referrer_host, source_type)"))
        }
    }
}

extension AppDatabase {
    /// Deleted salts whose destruction is not verified and that were deleted before `before` (ms).
    public func saltDestructionsWaiting(before: Int64) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM salt_destructions WHERE destroyed_at IS NULL AND deleted_at < ?", arguments: [before]) ?? 0
        }
    }
}

/// A scheduled report: an account gets a site's report of each whole day, week or month, or
/// (no site) the consolidated report of every site it may read.
public struct ReportSubscription: Sendable, Equatable {
    public var id: String
    public var userID: Int64
    public var siteID: String?
    public var period: String
    public var csv: Bool
    /// The first day of the last period sent (nil: none yet).
    public var lastFirstDay: Int64?
    public var createdAt: Int64

    public init(id: String, userID: Int64, siteID: String?, period: String, csv: Bool, lastFirstDay: Int64? = nil, createdAt: Int64) {
        self.id = id; self.userID = userID; self.siteID = siteID; self.period = period; self.csv = csv; self.lastFirstDay = lastFirstDay
        self.createdAt = createdAt
    }
}

extension AppDatabase {
    public func insertReportSubscription(_ s: ReportSubscription) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO report_subscriptions (id, user_id, site_id, period, csv, last_first_day, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [s.id, s.userID, s.siteID, s.period, s.csv, s.lastFirstDay, s.createdAt])
        }
    }

    public func reportSubscriptions(user: Int64? = nil) throws -> [ReportSubscription] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM report_subscriptions WHERE ? IS NULL OR user_id = ? ORDER BY created_at, id", arguments: [user, user]).map {
                ReportSubscription(id: $0["id"], userID: $0["user_id"], siteID: $0["site_id"], period: $0["period"], csv: $0["csv"],
                                   lastFirstDay: $0["last_first_day"], createdAt: $0["created_at"])
            }
        }
    }

    /// Removes one of the user's subscriptions; false when it is not theirs.
    public func deleteReportSubscription(id: String, user: Int64) throws -> Bool {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM report_subscriptions WHERE id = ? AND user_id = ?", arguments: [id, user])
            return db.changesCount == 1
        }
    }

    public func markReportSent(id: String, firstDay: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE report_subscriptions SET last_first_day = ? WHERE id = ?", arguments: [firstDay, id])
        }
    }
}
