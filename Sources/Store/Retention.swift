import Foundation
import GRDB
public import Storage

/// Tables that retention deletes from, each aged by one time column (milliseconds since 1970).
public enum RetainedTable: String, Sendable, CaseIterable {
    case events, sessions
    case consentRecords = "consent_records"
    /// Closed deletion requests (their receipts); open ones are never aged out.
    case privacyRequests = "privacy_requests"
    /// Install-wide, not per site; pruning leaves an anchor entry (see Retention.Purger).
    case auditLog = "audit_log"
    /// Sales and refunds from webhooks.
    case conversions
    /// Leads and calls from webhooks (same table as conversions).
    case leads

    var tableName: String {
        switch self {
        case .conversions, .leads: "conversions"
        default: rawValue
        }
    }

    var timeColumn: String {
        switch self {
        case .events, .consentRecords, .auditLog, .conversions, .leads: "ts"
        case .sessions: "started_at"
        case .privacyRequests: "processed_at"
        }
    }

    var extraCondition: String {
        switch self {
        case .privacyRequests: " AND status IN ('done','rejected')"
        case .conversions: " AND kind IN ('sale','refund')"
        case .leads: " AND kind IN ('lead','call')"
        default: ""
        }
    }
}

/// Identifying columns that a policy may clear before the rows themselves expire.
public enum ExpiringColumns: String, Sendable, CaseIterable {
    /// The keyed subject hash (events, sessions, consent records) and the e-mail hash of leads.
    case subject
    /// Ad-platform click ids kept under marketing consent.
    case clickID = "click_id"
    /// Region and city (country stays).
    case geoDetail = "geo_detail"

    /// Deliveries still queued hold a click id and the sealed e-mail digest and contact: they go
    /// with the identifiers they carry (a delivery without facts is not sent).
    static let queuedDeliveries = (table: "deliveries", time: "created_at", set: "facts = NULL, contact = NULL",
                                   holding: "(facts IS NOT NULL OR contact IS NOT NULL)")

    /// (table, time column, SET clause, WHERE clause for rows still holding the columns).
    var targets: [(table: String, time: String, set: String, holding: String)] {
        switch self {
        case .subject:
            [("events", "ts", "subject = NULL, email_hash = NULL", "(subject IS NOT NULL OR email_hash IS NOT NULL)"),
             ("sessions", "started_at", "subject = NULL", "subject IS NOT NULL"),
             ("consent_records", "ts", "subject = NULL", "subject IS NOT NULL"),
             ("conversions", "ts", "subject = NULL, email_hash = NULL, user_hash = NULL",
              "(subject IS NOT NULL OR email_hash IS NOT NULL OR user_hash IS NOT NULL)"),
             Self.queuedDeliveries]
        case .clickID:
            [("events", "ts", "click_id = NULL", "click_id IS NOT NULL"), Self.queuedDeliveries]
        case .geoDetail:
            [("events", "ts", "region = NULL, city = NULL", "(region IS NOT NULL OR city IS NOT NULL)")]
        }
    }
}

/// A retention purge: its rows are deleted chunk by chunk, each chunk's count recorded in the
/// chunk's own transaction; it is verified once a WAL truncation after its last chunk succeeded.
public struct PurgeRun: Sendable, Equatable {
    public var id: Int64
    public var actor: String
    public var startedAt: Int64
    /// Renewed by every chunk: a run whose heartbeat is old was left by a process that stopped.
    public var heartbeatAt: Int64
    /// Nil while the run is going on, or when the process running it stopped before its end.
    public var finishedAt: Int64?
    /// Rows deleted or cleared per `site:class` target.
    public var counts: [(String, Int)]

    public var total: Int { counts.reduce(0) { $0 + $1.1 } }

    public static func == (a: Self, b: Self) -> Bool {
        a.id == b.id && a.actor == b.actor && a.startedAt == b.startedAt && a.heartbeatAt == b.heartbeatAt && a.finishedAt == b.finishedAt
            && a.counts.map(\.0) == b.counts.map(\.0) && a.counts.map(\.1) == b.counts.map(\.1)
    }
}

extension WriteTransaction {
    /// Starts a purge run; returns its id.
    public func startPurgeRun(actor: String, at: Int64) throws -> Int64 {
        try db.execute(sql: "INSERT INTO purge_runs (actor, started_at, heartbeat_at) VALUES (?, ?, ?)", arguments: [actor, at, at])
        return db.lastInsertedRowID
    }

    /// Adds `rows` to a run's count for `target`, in the transaction that deleted them, and renews
    /// the run's heartbeat.
    public func countPurged(run: Int64, target: String, rows: Int, at: Int64) throws {
        try db.execute(sql: "UPDATE purge_runs SET heartbeat_at = ? WHERE id = ?", arguments: [at, run])
        guard rows > 0 else { return }
        try db.execute(sql: """
            INSERT INTO purge_run_counts (run_id, target, rows) VALUES (?, ?, ?)
            ON CONFLICT(run_id, target) DO UPDATE SET rows = rows + excluded.rows
            """, arguments: [run, target, rows])
    }

    /// Marks a run's deletions complete (or, for a run a stopped process left open, ended).
    public func finishPurgeRun(_ id: Int64, at: Int64) throws {
        try db.execute(sql: "UPDATE purge_runs SET finished_at = ? WHERE id = ? AND finished_at IS NULL", arguments: [at, id])
    }

    /// Marks a finished run verified: a WAL truncation after its last chunk succeeded. False when
    /// it was verified already (by another process).
    public func verifyPurgeRun(_ id: Int64, at: Int64) throws -> Bool {
        try db.execute(sql: "UPDATE purge_runs SET verified_at = ? WHERE id = ? AND finished_at IS NOT NULL AND verified_at IS NULL",
                       arguments: [at, id])
        return db.changesCount == 1
    }

    /// Deletes at most `limit` of the oldest rows older than `cutoff` and returns how many went.
    /// Callers loop, a short transaction per chunk, until it returns less than `limit`, so
    /// ingestion's writer gets the write lock between chunks.
    public func deleteOlderChunk(_ table: RetainedTable, site: String?, cutoff: Int64, limit: Int) throws -> Int {
        let (sql, args) = AppDatabase.olderClause(table, site: site, cutoff: cutoff)
        let key = table == .privacyRequests ? "rowid" : (table == .auditLog ? "seq" : "id")
        if let site, table == .events || table == .sessions, let span = try Row.fetchOne(db, sql: """
            SELECT min(t), max(t) FROM (SELECT \(table.timeColumn) AS t FROM \(table.tableName) WHERE \(sql) ORDER BY \(table.timeColumn) LIMIT \(limit))
            """, arguments: args), let lower: Int64 = span[0], let upper: Int64 = span[1] {
            try factsChanged(site: site, from: lower, to: upper)
        }
        try db.execute(sql: """
            DELETE FROM \(table.tableName) WHERE \(key) IN
              (SELECT \(key) FROM \(table.tableName) WHERE \(sql) ORDER BY \(table.timeColumn) LIMIT \(limit))
            """, arguments: args)
        return db.changesCount
    }

    /// Clears the columns in at most `limit` rows per table; returns how many rows changed.
    public func expireColumnsChunk(_ columns: ExpiringColumns, site: String, cutoff: Int64, limit: Int) throws -> Int {
        var changed = 0
        for t in columns.targets {
            if t.table == "events" || t.table == "sessions", let span = try Row.fetchOne(db, sql: """
                SELECT min(\(t.time)), max(\(t.time)) FROM \(t.table) WHERE site_id = ? AND \(t.time) < ? AND \(t.holding)
                """, arguments: [site, cutoff]), let lower: Int64 = span[0], let upper: Int64 = span[1] {
                try factsChanged(site: site, from: lower, to: upper)
            }
            try db.execute(sql: """
                UPDATE \(t.table) SET \(t.set) WHERE id IN
                  (SELECT id FROM \(t.table) WHERE site_id = ? AND \(t.time) < ? AND \(t.holding) LIMIT \(limit))
                """, arguments: [site, cutoff])
            changed += db.changesCount
        }
        return changed
    }

    /// When a job ran, in the transaction of what it did.
    public func recordRun(job: String, at: Int64, detail: String?) throws {
        try db.execute(sql: """
            INSERT INTO job_runs (name, last_run_at, detail) VALUES (?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET last_run_at = excluded.last_run_at, detail = excluded.detail
            """, arguments: [job, at, detail])
    }
}

extension AppDatabase {
    /// Rows of `site` in `table` older than `cutoff` (ms).
    public func countOlder(_ table: RetainedTable, site: String?, cutoff: Int64) throws -> Int {
        try writer.read { db in
            let (sql, args) = Self.olderClause(table, site: site, cutoff: cutoff)
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.tableName) WHERE \(sql)", arguments: args) ?? 0
        }
    }

    /// Time of the oldest row of `site` in `table`, or nil when it is empty.
    public func oldest(_ table: RetainedTable, site: String?) throws -> Int64? {
        try writer.read { db in
            let scope = site == nil ? "\(table.timeColumn) IS NOT NULL" : "site_id = ? AND \(table.timeColumn) IS NOT NULL"
            return try Int64.fetchOne(db, sql: "SELECT min(\(table.timeColumn)) FROM \(table.tableName) WHERE \(scope)\(table.extraCondition)",
                                      arguments: site.map { [$0] } ?? [])
        }
    }

    /// Time of the newest row of `site` in `table`, or nil when it is empty.
    public func newest(_ table: RetainedTable, site: String) throws -> Int64? {
        try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT max(\(table.timeColumn)) FROM \(table.tableName) WHERE site_id = ?\(table.extraCondition)",
                               arguments: [site])
        }
    }

    /// Rows older than `cutoff` that still hold the columns.
    public func countExpiring(_ columns: ExpiringColumns, site: String, cutoff: Int64) throws -> Int {
        try writer.read { db in
            try columns.targets.reduce(0) { sum, t in
                sum + (try Int.fetchOne(db, sql: "SELECT count(*) FROM \(t.table) WHERE site_id = ? AND \(t.time) < ? AND \(t.holding)",
                                        arguments: [site, cutoff]) ?? 0)
            }
        }
    }

    static func olderClause(_ table: RetainedTable, site: String?, cutoff: Int64) -> (String, StatementArguments) {
        if let site {
            return ("site_id = ? AND \(table.timeColumn) < ?\(table.extraCondition)", [site, cutoff])
        }
        return ("\(table.timeColumn) < ?\(table.extraCondition)", [cutoff])
    }

    // MARK: Purge runs

    /// Purge runs whose deletions are not yet verified by a WAL truncation, oldest first, with
    /// their counts per target (`site:class`).
    public func unverifiedPurgeRuns() throws -> [PurgeRun] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM purge_runs WHERE verified_at IS NULL ORDER BY id").map { row in
                let id: Int64 = row["id"]
                let counts = try Row.fetchAll(db, sql: "SELECT target, rows FROM purge_run_counts WHERE run_id = ? ORDER BY target",
                                              arguments: [id]).map { ($0["target"] as String, $0["rows"] as Int) }
                return PurgeRun(id: id, actor: row["actor"], startedAt: row["started_at"], heartbeatAt: row["heartbeat_at"],
                                finishedAt: row["finished_at"], counts: counts)
            }
        }
    }

    // MARK: Scheduled jobs

    /// When a job ran, outside a job's own transaction.
    public func recordRun(job: String, at: Int64, detail: String?) throws {
        try transaction { tx in try tx.recordRun(job: job, at: at, detail: detail) }
    }
}

extension AppDatabase: JobLedger {
    public func lastRun(job: String) throws -> Int64? {
        try writer.read { db in try Int64.fetchOne(db, sql: "SELECT last_run_at FROM job_runs WHERE name = ?", arguments: [job]) }
    }

    /// The check and the claim run in one write transaction, which SQLite serializes across
    /// every process that opens the file.
    public func claimRun(job: String, node: String, lastRunAtMost: Int64, now: Int64, lease: Int64) throws -> Bool {
        try writer.write { db in
            if let last = try Int64.fetchOne(db, sql: "SELECT last_run_at FROM job_runs WHERE name = ?", arguments: [job]),
               last > lastRunAtMost { return false }
            try db.execute(sql: """
                INSERT INTO job_claims (name, node, until) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET node = excluded.node, until = excluded.until
                WHERE job_claims.node = excluded.node OR job_claims.until <= ?
                """, arguments: [job, node, now + lease, now])
            return db.changesCount == 1
        }
    }

    public func finishRun(job: String, node: String, ranAt: Int64, dueFrom: Int64, detail: String?) throws {
        try writer.write { db in
            try WriteTransaction(db: db).recordRun(job: job, at: dueFrom, detail: detail)
            try db.execute(sql: "DELETE FROM job_claims WHERE name = ? AND node = ?", arguments: [job, node])
            try db.execute(sql: "INSERT INTO job_run_log (name, node, ran_at, detail) VALUES (?, ?, ?, ?)",
                           arguments: [job, node, ranAt, detail])
            try db.execute(sql: "DELETE FROM job_run_log WHERE ran_at < ?", arguments: [ranAt - runLogRetentionMilliseconds])
        }
    }

    public func releaseClaim(job: String, node: String) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM job_claims WHERE name = ? AND node = ?", arguments: [job, node]) }
    }

    public func runLog(job: String, limit: Int) throws -> [LoggedRun] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT name, node, ran_at, detail FROM job_run_log WHERE name = ? ORDER BY ran_at DESC, id DESC LIMIT ?",
                             arguments: [job, limit]).map { LoggedRun(job: $0["name"], node: $0["node"], ranAt: $0["ran_at"], detail: $0["detail"]) }
        }
    }

    public func jobRuns() throws -> [JobRun] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT name, last_run_at, detail FROM job_runs ORDER BY name").map {
                JobRun(name: $0["name"], lastRunAt: $0["last_run_at"], detail: $0["detail"])
            }
        }
    }
}
