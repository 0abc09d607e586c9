public import Consent
public import Foundation
import JSONOutput
public import Store
import Storage

/// Decides when a deletion is done: only once a WAL truncation after it has been verified.
///
/// Deleting rows (an erased subject, a purge chunk, a destroyed salt) commits at once, with
/// `secure_delete` overwriting their bytes in the database file; but page images holding them
/// live on in the write-ahead log until it is checkpointed and truncated. Everything waiting for
/// that is recorded with the deletion (requests in `erasing`, `salt_destructions`, `purge_runs`).
/// One run truncates the WAL once (verified by reading its size back), then closes each waiting
/// item in a transaction together with the audit entry that reports it. When the truncation
/// fails nothing is closed and everything stays waiting for the next run: the deletion-request
/// job, the salt rotation and the purge call it right after their deletions, and the scheduler
/// every minute.
public struct Scrubber: Sendable {
    let database: AppDatabase
    let policies: PolicyBook
    let audit: AuditLog
    let now: @Sendable () -> Date
    let truncate: @Sendable () async throws -> WALTruncation

    /// `truncate` defaults to ``AppDatabase/truncateWAL(attempts:attemptTimeout:sleep:)``; tests replace it to force failures.
    public init(database: AppDatabase, policies: PolicyBook, now: @escaping @Sendable () -> Date = { Date() },
                truncate: (@Sendable () async throws -> WALTruncation)? = nil) {
        self.database = database
        self.policies = policies
        self.now = now
        self.audit = AuditLog(database: database, now: now)
        self.truncate = truncate ?? { try await database.truncateWAL() }
    }

    /// What one run closed, and what is still waiting.
    public struct Report: Sendable {
        public var requests: [String] = []
        public var salts: [Int64] = []
        public var purges: [Int64] = []
        public var truncation: WALTruncation?
        /// Why items still wait (the truncation failed, a rollup could not be refreshed, …).
        public var problems: [String] = []
        /// Items left waiting after the run.
        public var waiting = 0

        public var summary: String {
            var parts = ["\(requests.count) request(s), \(salts.count) salt(s), \(purges.count) purge run(s) verified"]
            if waiting > 0 { parts.append("\(waiting) waiting") }
            if !problems.isEmpty { parts.append(problems.joined(separator: "; ")) }
            return parts.joined(separator: ", ")
        }
    }

    /// Truncates the WAL if anything waits for it, then closes what waited.
    public func run(actor: String) async -> Report {
        var report = Report()
        let requests: [PrivacyRequest]
        let salts: [Int64]
        let purges: [PurgeRun]
        do {
            requests = try database.erasingPrivacyRequests()
            salts = try database.pendingSaltDestructions()
            purges = try database.unverifiedPurgeRuns().filter { $0.finishedAt != nil }
        } catch {
            report.problems.append("could not read what waits: \(error)")
            return report
        }
        guard !requests.isEmpty || !salts.isEmpty || !purges.isEmpty else { return report }
        // Aggregates first: a request is done only when the rollups no longer count the subject.
        // Each (site, day) is recomputed once, however many requests touched it.
        var ready: [PrivacyRequest] = []
        var refreshed: [String: Result<Void, any Error>] = [:]
        for request in requests {
            do {
                for day in try database.rollupDays(erasing: request.id) {
                    let key = "\(request.siteID) \(day)"
                    if refreshed[key] == nil {
                        refreshed[key] = Result { try database.refreshRollup(site: request.siteID, day: day, now: Int64(now().timeIntervalSince1970 * 1000)) }
                    }
                    try refreshed[key]!.get()
                }
                ready.append(request)
            } catch {
                report.problems.append("rollups of \(request.id) not refreshed: \(error)")
            }
        }
        let truncation: WALTruncation
        do {
            truncation = try await truncate()
        } catch {
            report.problems.append("\(error)")
            report.waiting = requests.count + salts.count + purges.count
            return report
        }
        report.truncation = truncation
        let at = Int64(now().timeIntervalSince1970 * 1000)
        for request in ready {
            do {
                try database.transaction { tx in
                    let policy = try policy(site: request.siteID)
                    let receipt = Self.receipt(request, completed: at, truncation: truncation, policy: policy)
                    guard try tx.completeErasure(id: request.id, receipt: receipt.text, at: at) else { return }
                    var detail: [String: AuditValue] = ["request": .string(request.id), "on_time": .int(at <= request.deadlineAt ? 1 : 0)]
                    for (table, n) in Self.counts(request) { detail[table] = .init(n) }
                    detail.merge(Self.detail(truncation)) { $1 }
                    try audit.record(in: tx, actor: actor, action: "request_done", site: request.siteID, detail: detail)
                }
                report.requests.append(request.id)
            } catch {
                report.problems.append("\(request.id) not closed: \(error)")
            }
        }
        for day in salts {
            do {
                try database.transaction { tx in
                    guard try tx.completeSaltDestruction(day: day, at: at) else { return }
                    try audit.record(in: tx, actor: actor, action: "salt_destroyed",
                                     detail: ["day": .int(day)].merging(Self.detail(truncation)) { $1 })
                }
                report.salts.append(day)
            } catch {
                report.problems.append("salt of day \(day) not closed: \(error)")
            }
        }
        for run in purges {
            do {
                try database.transaction { tx in
                    guard try tx.verifyPurgeRun(run.id, at: at) else { return }
                    var detail: [String: AuditValue] = ["run": .int(run.id), "total": .init(run.total)].merging(Self.detail(truncation)) { $1 }
                    for (target, n) in run.counts { detail[target] = .init(n) }
                    try audit.record(in: tx, actor: run.actor, action: "purge_ran", detail: detail)
                }
                report.purges.append(run.id)
            } catch {
                report.problems.append("purge run \(run.id) not closed: \(error)")
            }
        }
        report.waiting = requests.count + salts.count + purges.count - report.requests.count - report.salts.count - report.purges.count
        return report
    }

    func policy(site: String) throws -> Policy {
        guard let s = try database.site(id: site) else { return .default }
        return policies[s.policy] ?? .default
    }

    /// What the audit entry of a closed item says of the truncation it waited for.
    static func detail(_ truncation: WALTruncation) -> [String: AuditValue] {
        ["wal_truncated_at": .string(ISO.string(truncation.at)), "free_space_pages_zeroed": .init(truncation.pagesZeroed)]
    }

    /// Rows deleted per table, as the deleting transaction recorded them.
    static func counts(_ r: PrivacyRequest) -> [(String, Int)] {
        guard let text = r.erased, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [] }
        return object.compactMap { k, v in (v as? NSNumber).map { (k, $0.intValue) } }.sorted { $0.0 < $1.0 }
    }

    /// The receipt: what was deleted, and what was checked, with the times.
    static func receipt(_ r: PrivacyRequest, completed: Int64, truncation: WALTruncation, policy: Policy) -> JSON {
        let counts = Dictionary(uniqueKeysWithValues: counts(r))
        let wal: JSON = switch truncation.outcome {
        case .truncated:
            ["checkpointed_and_truncated_at": .string(ISO.string(truncation.at)), "bytes_after": 0,
             "frames_copied": JSON(truncation.framesBefore), "attempts": JSON(truncation.attempts),
             "free_space": ["pages_read": JSON(truncation.pagesRead), "pages_zeroed": JSON(truncation.pagesZeroed),
                            "truncated_after": .bool(truncation.truncatedAfterPass)]]
        case .noWAL:
            ["none": "in-memory database without a write-ahead log"]
        }
        return [
            "receipt_version": 4,
            "request": .string(r.id),
            "site": .string(r.siteID),
            "subject_kind": .string(r.subjectKind.rawValue),
            "filed_by": .string(r.filedBy),
            "received_at": .string(ISO.string(r.receivedAt)),
            "deadline_at": .string(ISO.string(r.deadlineAt)),
            "rows_deleted_at": .string(ISO.string(r.erasedAt ?? completed)),
            "completed_at": .string(ISO.string(completed)),
            "on_time": .bool(completed <= r.deadlineAt),
            "deleted": ["events": JSON(counts["events"] ?? 0), "sessions": JSON(counts["sessions"] ?? 0),
                        "conversions": JSON(counts["conversions"] ?? 0), "consent_records": JSON(counts["consent_records"] ?? 0)],
            "consent_records_kept_unlinked": JSON(counts["consent_records_unlinked"] ?? 0),
            "verified": [
                "rows_linked_after_deletion": 0,
                "write_ahead_log": wal,
            ],
            "policy": ["name": .string(policy.name), "version": JSON(policy.version), "keep_consent_proof": .bool(policy.keepConsentProof)],
            "note": .string("The rows were deleted in one transaction, which also counted the rows still linked to the subject (none) "
                + "and forgot the request's hash of the identifier; secure_delete overwrote their bytes in the database file. "
                + "The rollups of the days they touched were recomputed. "
                + (truncation.outcome == .truncated
                    ? "After that, the write-ahead log was checkpointed into the database file and truncated, and its size read back "
                        + "as 0 bytes; then, with no write possible, the free space of every table and index page of the file (but "
                        + "gaps of 1 to 3 bytes between rows) was overwritten with zeros where it was not (SQLite can leave copies of "
                        + "moved rows there that secure_delete does not reach)"
                        + (truncation.truncatedAfterPass ? ", and the log truncated again" : "")
                        + ", before this receipt was written. The overwriting happens in the file: storage that keeps old blocks "
                        + "(copy-on-write file systems, snapshots, backups, flash wear levelling) is not reached."
                    : "The database has no write-ahead log (in memory).")),
        ]
    }
}
