import Foundation
import GRDB
import Storage

/// A data-subject deletion request (GDPR Art. 17, CCPA delete).
public struct PrivacyRequest: Sendable, Equatable {
    /// received → scheduled → erasing (rows deleted, waiting for a verified WAL truncation) → done;
    /// or rejected while not yet erasing.
    public enum Status: String, Sendable, CaseIterable { case received, scheduled, erasing, done, rejected }
    /// What identifies the subject. Only a keyed hash of the identifier is stored.
    public enum SubjectKind: String, Sendable, CaseIterable { case subject, email, user }

    public var id: String
    public var siteID: String
    public var subjectKind: SubjectKind
    /// Keyed hash of the identifier while the request is open; cleared when it is done or rejected.
    public var subjectHash: Int64?
    public var receivedAt: Int64
    public var deadlineAt: Int64
    public var status: Status
    public var reason: String?
    public var filedBy: String
    public var processedAt: Int64?
    /// Receipt JSON once done.
    public var receipt: String?
    /// Rows deleted per table (JSON object) once erasing.
    public var erased: String?
    public var erasedAt: Int64?

    public init(id: String, siteID: String, subjectKind: SubjectKind, subjectHash: Int64?, receivedAt: Int64,
                deadlineAt: Int64, status: Status, reason: String? = nil, filedBy: String, processedAt: Int64? = nil,
                receipt: String? = nil) {
        self.id = id; self.siteID = siteID; self.subjectKind = subjectKind; self.subjectHash = subjectHash
        self.receivedAt = receivedAt; self.deadlineAt = deadlineAt; self.status = status; self.reason = reason
        self.filedBy = filedBy; self.processedAt = processedAt; self.receipt = receipt
    }

    /// Not closed yet: waiting, or erased but not yet verified.
    public var isOpen: Bool { status == .received || status == .scheduled || status == .erasing }

    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], subjectKind: SubjectKind(rawValue: row["subject_kind"]) ?? .subject,
                  subjectHash: row["subject_hash"], receivedAt: row["received_at"], deadlineAt: row["deadline_at"],
                  status: Status(rawValue: row["status"]) ?? .received, reason: row["reason"], filedBy: row["filed_by"],
                  processedAt: row["processed_at"], receipt: row["receipt"])
        erased = row["erased"]
        erasedAt = row["erased_at"]
    }
}

extension WriteTransaction {
    /// Whether a site has a deletion request not yet carried out.
    public func hasOpenPrivacyRequests(site: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM privacy_requests WHERE site_id = ? AND status IN ('received','scheduled','erasing'))",
                          arguments: [site]) ?? false
    }

    public func insertPrivacyRequest(_ r: PrivacyRequest) throws {
        try db.execute(sql: """
            INSERT INTO privacy_requests (id, site_id, subject_kind, subject_hash, received_at, deadline_at, status, reason, filed_by)
            VALUES (?,?,?,?,?,?,?,?,?)
            """, arguments: [r.id, r.siteID, r.subjectKind.rawValue, r.subjectHash, r.receivedAt, r.deadlineAt,
                             r.status.rawValue, r.reason, r.filedBy])
    }

    /// Closes a request as rejected, forgetting the identifier's hash. A request whose rows are
    /// already deleted (erasing) can no longer be rejected.
    public func rejectPrivacyRequest(id: String, reason: String, at: Int64) throws -> Bool {
        try db.execute(sql: """
            UPDATE privacy_requests SET status = 'rejected', reason = ?, processed_at = ?, subject_hash = NULL
            WHERE id = ? AND status IN ('received','scheduled')
            """, arguments: [reason, at, id])
        return db.changesCount == 1
    }
}

extension AppDatabase {
    public func privacyRequest(id: String) throws -> PrivacyRequest? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM privacy_requests WHERE id = ?", arguments: [id]).map(PrivacyRequest.init(row:))
        }
    }

    /// Requests, newest first, optionally of one site and/or only the open ones.
    public func privacyRequests(site: String? = nil, openOnly: Bool = false, limit: Int = 500) throws -> [PrivacyRequest] {
        try writer.read { db in
            var sql = "SELECT * FROM privacy_requests WHERE 1"
            var args: [any DatabaseValueConvertible] = []
            if let site { sql += " AND site_id = ?"; args.append(site) }
            if openOnly { sql += " AND status IN ('received','scheduled','erasing')" }
            sql += " ORDER BY received_at DESC, id LIMIT ?"
            args.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(PrivacyRequest.init(row:))
        }
    }

    /// Requests whose rows are still to be deleted (received, scheduled), oldest deadline first.
    public func pendingPrivacyRequests() throws -> [PrivacyRequest] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM privacy_requests WHERE status IN ('received','scheduled') ORDER BY deadline_at, id
                """).map(PrivacyRequest.init(row:))
        }
    }

    /// Requests whose rows are deleted and which wait for a verified WAL truncation.
    public func erasingPrivacyRequests() throws -> [PrivacyRequest] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM privacy_requests WHERE status = 'erasing' ORDER BY erased_at, id")
                .map(PrivacyRequest.init(row:))
        }
    }

    /// Days (site, UTC day) whose rollups an erasing request still has to refresh.
    public func rollupDays(erasing request: String) throws -> [Int64] {
        try writer.read { db in
            let text = try String.fetchOne(db, sql: "SELECT rollup_days FROM privacy_requests WHERE id = ?", arguments: [request]) ?? ""
            return text.split(separator: ",").compactMap { Int64($0) }
        }
    }

    /// (open, overdue) request counts at `now` (ms).
    public func privacyRequestCounts(now: Int64) throws -> (open: Int, overdue: Int) {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(deadline_at < ?), 0) FROM privacy_requests WHERE status IN ('received','scheduled','erasing')
                """, arguments: [now])
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    /// Whether anything of the site is linked to the subject hash (a cheap indexed check, run
    /// before any work on a self-service request).
    public func holdsSubject(site: String, hash: Int64) throws -> Bool {
        try writer.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM events WHERE subject = :h AND site_id = :site)
                    OR EXISTS (SELECT 1 FROM sessions WHERE subject = :h AND site_id = :site)
                    OR EXISTS (SELECT 1 FROM consent_records WHERE subject = :h AND site_id = :site)
                    OR EXISTS (SELECT 1 FROM conversions WHERE subject = :h AND site_id = :site)
                """, arguments: ["h": hash, "site": site]) ?? false
        }
    }

    /// Rows of one site whose visitor-identity link matches a subject. A journey is the set of
    /// sessions holding the subject (or an event holding it); every event of those sessions goes
    /// with it, including the ones recorded before consent was given.
    static func subjectScope(kind: PrivacyRequest.SubjectKind) -> (events: String, sessions: String)? {
        switch kind {
        // UNION, not OR: each branch uses its own index (an OR here scans the site's events).
        case .subject:
            return ("""
                SELECT id FROM events WHERE subject = :h AND site_id = :site
                UNION SELECT id FROM events WHERE session_id IN (SELECT id FROM sessions WHERE subject = :h AND site_id = :site)
                """, "SELECT id FROM sessions WHERE subject = :h AND site_id = :site")
        case .email:
            return ("""
                SELECT id FROM events WHERE email_hash = :h AND site_id = :site
                UNION SELECT id FROM events WHERE session_id IN
                  (SELECT session_id FROM events WHERE email_hash = :h AND site_id = :site AND session_id IS NOT NULL)
                """, "SELECT DISTINCT session_id FROM events WHERE email_hash = :h AND site_id = :site AND session_id IS NOT NULL")
        case .user:
            // User ids arrive only with webhook conversions; they link no visit by themselves.
            return nil
        }
    }

    /// Ids of a subject's conversions: those holding its identifier's hash, and those attributed to
    /// a visit of its journey (a conversion the pixel tracked before consent, in the same visit).
    static func subjectConversions(kind: PrivacyRequest.SubjectKind) -> String {
        let held = "SELECT id FROM conversions WHERE \(conversionColumn(kind)) = :h AND site_id = :site"
        guard let scope = subjectScope(kind: kind) else { return held }
        return held + " UNION SELECT id FROM conversions WHERE session_id IN (\(scope.sessions)) AND site_id = :site"
    }

    /// The conversions column holding each kind of identifier's hash.
    static func conversionColumn(_ kind: PrivacyRequest.SubjectKind) -> String {
        switch kind {
        case .subject: "subject"
        case .email: "email_hash"
        case .user: "user_hash"
        }
    }

}

/// What deleting a subject's rows removed, and what was checked in the same transaction.
public struct Erasure: Sendable, Equatable {
    /// Rows deleted per table (and `consent_records_unlinked`).
    public var counts: [String: Int]
    /// Rows of the site still linked to the subject after the deletion, counted in the deleting
    /// transaction (0, or the transaction does not commit).
    public var remaining: Int
    /// UTC days whose rollups held the subject's events.
    public var days: [Int64]
}

extension WriteTransaction {
    /// Deletes everything of the request's site linked to its subject, forgets the identifier's
    /// hash and marks the request `erasing` with the counts: the request is done only once a WAL
    /// truncation after this commit has been verified (``completeErasure(id:receipt:at:)``).
    /// Consent records linked to the subject are deleted, or kept with the link removed when
    /// `keepConsentProof` is set. Throws, and changes nothing, if any linked row remains.
    public func eraseSubject(of request: PrivacyRequest, keepConsentProof: Bool, at: Int64,
                             counts encode: ([String: Int]) -> String) throws -> Erasure? {
        // Another process (the server's scheduler, a CLI run) may have taken it meanwhile.
        guard try String.fetchOne(db, sql: "SELECT status FROM privacy_requests WHERE id = ?", arguments: [request.id])
                .map({ $0 == "received" || $0 == "scheduled" }) == true else { return nil }
        guard let h = request.subjectHash else { throw StoreError("request \(request.id) holds no subject hash") }
        var counts: [String: Int] = ["events": 0, "sessions": 0, "conversions": 0, "consent_records": 0, "consent_records_unlinked": 0]
        let args: StatementArguments = ["site": request.siteID, "h": h]
        var days: [Int64] = []
        let scope = AppDatabase.subjectScope(kind: request.subjectKind)
        // Conversions first, while the visits they are attributed to can still be found.
        try db.execute(sql: "DELETE FROM conversions WHERE id IN (\(AppDatabase.subjectConversions(kind: request.subjectKind)))", arguments: args)
        counts["conversions"] = db.changesCount
        if let scope {
            let calendar = try AppDatabase.calendar(db, site: request.siteID)
            days = try Int64.fetchAll(db, sql: "SELECT DISTINCT \(calendar.sqlDay("ts")) FROM events WHERE id IN (\(scope.events)) ORDER BY 1",
                                      arguments: args)
            // Sessions first collected by id, because deleting events would lose the email link.
            let sessionIDs = try Int64.fetchAll(db, sql: scope.sessions, arguments: args)
            try factsChanged(site: request.siteID, days: days)
            try db.execute(sql: "DELETE FROM events WHERE id IN (\(scope.events))", arguments: args)
            counts["events"] = db.changesCount
            for chunk in stride(from: 0, to: sessionIDs.count, by: 500) {
                let ids = sessionIDs[chunk..<min(chunk + 500, sessionIDs.count)]
                // The engine reloads the days the visits started on, as well as those of the events.
                try factsChanged(site: request.siteID, days: try Int64.fetchAll(db, sql: """
                    SELECT DISTINCT \(calendar.sqlDay("started_at")) FROM sessions WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ",")))
                    """, arguments: StatementArguments(Array(ids))))
                try db.execute(sql: "DELETE FROM sessions WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ",")))",
                               arguments: StatementArguments(Array(ids)))
                counts["sessions", default: 0] += db.changesCount
            }
        }
        if request.subjectKind == .subject {
            if keepConsentProof {
                try db.execute(sql: "UPDATE consent_records SET subject = NULL WHERE site_id = :site AND subject = :h", arguments: args)
                counts["consent_records_unlinked"] = db.changesCount
            } else {
                try db.execute(sql: "DELETE FROM consent_records WHERE site_id = :site AND subject = :h", arguments: args)
                counts["consent_records"] = db.changesCount
            }
        }
        // Checked in the deleting transaction: nothing of the site is linked to the subject any more.
        var remaining = try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(AppDatabase.subjectConversions(kind: request.subjectKind)))",
                                         arguments: args) ?? 0
        if let scope {
            remaining += try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE id IN (\(scope.events))", arguments: args) ?? 0
            remaining += try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(scope.sessions))", arguments: args) ?? 0
        }
        if request.subjectKind == .subject {
            remaining += try Int.fetchOne(db, sql: "SELECT count(*) FROM consent_records WHERE site_id = :site AND subject = :h",
                                          arguments: args) ?? 0
        }
        guard remaining == 0 else { throw StoreError("\(remaining) row(s) still linked to the subject of \(request.id) after the deletion") }
        try db.execute(sql: """
            UPDATE privacy_requests SET status = 'erasing', subject_hash = NULL, erased = ?, erased_at = ?, rollup_days = ?
            WHERE id = ? AND status IN ('received','scheduled')
            """, arguments: [encode(counts), at, days.map(String.init).joined(separator: ","), request.id])
        guard db.changesCount == 1 else { throw StoreError("request \(request.id) is no longer waiting to be carried out") }
        return Erasure(counts: counts, remaining: remaining, days: days)
    }

    /// Closes an erasing request with its receipt, once the WAL truncation after its deletion
    /// was verified. False when it is no longer erasing (another process closed it).
    public func completeErasure(id: String, receipt: String, at: Int64) throws -> Bool {
        try db.execute(sql: """
            UPDATE privacy_requests SET status = 'done', processed_at = ?, receipt = ?, rollup_days = NULL
            WHERE id = ? AND status = 'erasing'
            """, arguments: [at, receipt, id])
        return db.changesCount == 1
    }
}

/// A storage-level failure with a reason.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A value a table's constraints refuse (a CHECK, NOT NULL, UNIQUE): the input's fault, not the
/// storage's, so callers answer 4xx rather than "retry later".
public struct ConstraintViolation: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `body`, turning SQLite constraint failures into ``ConstraintViolation``.
func refusingViolations<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
        throw ConstraintViolation(description: error.message ?? "constraint failed")
    }
}
