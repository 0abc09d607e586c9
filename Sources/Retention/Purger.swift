public import Consent
public import Foundation
public import Privacy
public import Store
import Storage

/// One line of a purge plan or report: what goes (or went) for one site and data class, and why.
public struct PurgeLine: Sendable, Equatable {
    /// Site id, or nil for install-wide classes (the audit log).
    public var site: String?
    /// Data class (`events`, …) or `expire:<column group>` for identifying columns cleared early.
    public var target: String
    /// Days of the policy rule.
    public var days: Int
    public var cutoff: Int64
    /// Rows that qualify (plan) or were changed (run).
    public var rows: Int
    public var reason: String
}

/// Retention by data class, per each site's policy. Deletes in bounded chunks, each in its own
/// short transaction (which also adds its count to the run's record), so the collector's writer
/// is never blocked for long. The run's `purge_ran` audit entry is written by the ``Scrubber``
/// once a WAL truncation after the last chunk is verified.
public struct Purger: Sendable {
    let database: AppDatabase
    let policies: PolicyBook
    let audit: AuditLog
    let scrubber: Scrubber
    let now: @Sendable () -> Date
    /// Rows per transaction to start with; adapted so one transaction holds the write lock for
    /// about `chunkBudget`.
    public var chunk: Int
    public var chunkBudget: Duration = .milliseconds(4)
    /// Least pause between chunks; the pause is at least twice as long as the last chunk took,
    /// so ingestion's commits get the write lock at least two thirds of the time.
    public var pause: Duration

    public init(database: AppDatabase, policies: PolicyBook, now: @escaping @Sendable () -> Date = { Date() },
                chunk: Int = 1000, pause: Duration = .milliseconds(2), scrubber: Scrubber? = nil) {
        self.database = database
        self.policies = policies
        self.now = now
        self.chunk = chunk
        self.pause = pause
        self.audit = AuditLog(database: database, now: now)
        self.scrubber = scrubber ?? Scrubber(database: database, policies: policies, now: now)
    }

    /// Which table holds each data class; classes without a table in this version hold nothing yet.
    static func table(_ c: DataClass) -> RetainedTable? {
        switch c {
        case .events: .events
        case .sessions: .sessions
        case .consentRecords: .consentRecords
        case .deletionRequests: .privacyRequests
        case .auditLog: .auditLog
        case .conversions: .conversions
        case .leads: .leads
        case .rollups: nil
        }
    }

    static func columns(_ g: ColumnGroup) -> ExpiringColumns {
        switch g {
        case .subject: .subject
        case .clickID: .clickID
        case .geoDetail: .geoDetail
        }
    }

    struct Rule {
        var site: String?
        var target: String
        var days: Int
        var cutoff: Int64
        var kind: Kind
        enum Kind { case rows(RetainedTable), columns(ExpiringColumns), rollupDays }
    }

    func rules() throws -> [Rule] {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        func cutoff(_ days: Int) -> Int64 { t - Int64(days) * 86_400_000 }
        var rules: [Rule] = []
        for site in try database.sites() {
            let policy = policies[site.policy] ?? .default
            if let days = policy.retentionDays[.rollups] {
                rules.append(Rule(site: site.id, target: DataClass.rollups.rawValue, days: days, cutoff: cutoff(days), kind: .rollupDays))
            }
            for c in DataClass.allCases where c != .auditLog {
                guard let days = policy.retentionDays[c], let table = Self.table(c) else { continue }
                rules.append(Rule(site: site.id, target: c.rawValue, days: days, cutoff: cutoff(days), kind: .rows(table)))
            }
            for g in ColumnGroup.allCases {
                guard let days = policy.columnExpiryDays[g] else { continue }
                rules.append(Rule(site: site.id, target: "expire:\(g.rawValue)", days: days, cutoff: cutoff(days),
                                  kind: .columns(Self.columns(g))))
            }
        }
        // The audit log is install-wide: the default policy decides.
        if let days = (policies["default"] ?? .default).retentionDays[.auditLog] {
            rules.append(Rule(site: nil, target: DataClass.auditLog.rawValue, days: days, cutoff: cutoff(days), kind: .rows(.auditLog)))
        }
        return rules
    }

    static func reason(_ r: Rule) -> String {
        switch r.kind {
        case .rows: "older than \(r.days) days (before \(ISO.string(r.cutoff)))"
        case .columns(let c): "\(c.rawValue) columns of rows older than \(r.days) days (before \(ISO.string(r.cutoff)))"
        case .rollupDays: "rolled-up days older than \(r.days) days (before \(ISO.string(r.cutoff)))"
        }
    }

    /// What a purge would do now, per site and class. Reads only.
    public func plan() throws -> [PurgeLine] {
        try rules().map { r in
            let n = switch r.kind {
            case .rows(let table): try database.countOlder(table, site: r.site, cutoff: r.cutoff)
            case .columns(let c): try database.countExpiring(c, site: r.site ?? "", cutoff: r.cutoff)
            case .rollupDays: try database.countRollupDaysOlder(site: r.site ?? "", cutoff: r.cutoff)
            }
            return PurgeLine(site: r.site, target: r.target, days: r.days, cutoff: r.cutoff, rows: n, reason: Self.reason(r))
        }
    }

    /// What a purge did.
    public struct Outcome: Sendable {
        public var lines: [PurgeLine]
        /// The WAL truncation that verified the run, or nil when it failed (the run then waits for
        /// the next ``Scrubber`` run, and `purge_ran` is written then).
        public var truncation: WALTruncation?
        public var problems: [String]
    }

    /// A run whose heartbeat is older than this was left by a process that stopped.
    public static let abandonedAfter: Int64 = 10 * 60_000

    /// Purges, chunk by chunk; each chunk's transaction adds its count to the run's record and
    /// renews its heartbeat. Runs a stopped process left unfinished (heartbeat older than
    /// ``abandonedAfter``) are closed first, with the counts they reached; a run another process
    /// is carrying out is left alone.
    @discardableResult
    public func run(actor: String) async throws -> Outcome {
        let started = Int64(now().timeIntervalSince1970 * 1000)
        let run = try database.transaction { tx in
            for unfinished in try database.unverifiedPurgeRuns()
            where unfinished.finishedAt == nil && unfinished.heartbeatAt < started - Self.abandonedAfter {
                try tx.finishPurgeRun(unfinished.id, at: started)
            }
            return try tx.startPurgeRun(actor: actor, at: started)
        }
        var lines: [PurgeLine] = []
        for r in try rules() {
            let target = "\(r.site ?? "*"):\(r.target)"
            var total = 0
            if case .rows(.auditLog) = r.kind {
                total = try pruneAudit(r, run: run, actor: actor, target: target)
            } else {
                var size = chunk
                let clock = ContinuousClock()
                while true {
                    let started = clock.now
                    let n = try database.transaction { tx in
                        let n = switch r.kind {
                        case .rows(let table): try tx.deleteOlderChunk(table, site: r.site, cutoff: r.cutoff, limit: size)
                        case .columns(let c): try tx.expireColumnsChunk(c, site: r.site ?? "", cutoff: r.cutoff, limit: size)
                        case .rollupDays: try tx.deleteOldestRollupDay(site: r.site ?? "", cutoff: r.cutoff) ? 1 : 0
                        }
                        try tx.countPurged(run: run, target: target, rows: n, at: Int64(now().timeIntervalSince1970 * 1000))
                        return n
                    }
                    let took = clock.now - started
                    total += n
                    if case .rollupDays = r.kind { if n == 0 { break } else { try await Task.sleep(for: pause); continue } }
                    if n < size { break }
                    if took > chunkBudget { size = max(1, size / 2) } else if took < chunkBudget / 2 { size = min(20_000, size * 2) }
                    try await Task.sleep(for: max(pause, took * 2))
                }
            }
            lines.append(PurgeLine(site: r.site, target: r.target, days: r.days, cutoff: r.cutoff, rows: total, reason: Self.reason(r)))
        }
        try database.transaction { tx in try tx.finishPurgeRun(run, at: Int64(now().timeIntervalSince1970 * 1000)) }
        let scrub = await scrubber.run(actor: actor)
        return Outcome(lines: lines, truncation: scrub.purges.contains(run) ? scrub.truncation : nil, problems: scrub.problems)
    }

    /// Prunes the audit log in one transaction with the `audit_pruned` entry holding the hash the
    /// chain continues from, so the chain verifies at every commit.
    func pruneAudit(_ r: Rule, run: Int64, actor: String, target: String) throws -> Int {
        try database.transaction { tx in
            let n = try tx.deleteOlderChunk(.auditLog, site: nil, cutoff: r.cutoff, limit: Int.max)
            guard n > 0 else { return 0 }
            try tx.countPurged(run: run, target: target, rows: n, at: Int64(now().timeIntervalSince1970 * 1000))
            if let first = try tx.firstAuditEntry() {
                try audit.record(in: tx, actor: actor, action: "audit_pruned",
                                 detail: ["first_seq": .int(first.seq), "anchor": .string(Hex.encode(first.prevHash)), "rows": .init(n)])
            }
            return n
        }
    }
}
