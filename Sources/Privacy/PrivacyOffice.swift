public import Consent
public import Foundation
public import JSONOutput
public import Store

/// Data-subject requests: deletion (GDPR Art. 17 / CCPA delete) with deadlines and receipts,
/// and access / portability exports (Art. 15 / 20). Every action is written to the audit log.
public final class PrivacyOffice: Sendable {
    public let database: AppDatabase
    public let policies: PolicyBook
    public let audit: AuditLog
    let subjects: SubjectHasher
    let now: @Sendable () -> Date

    public init(database: AppDatabase, policies: PolicyBook, subjects: SubjectHasher,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.policies = policies
        self.subjects = subjects
        self.now = now
        self.audit = AuditLog(database: database, now: now)
    }

    /// How a request names its subject. The value is hashed at once and never stored.
    public enum Identifier: Sendable, Equatable {
        /// The pixel's random subject id (what `candor('forget')` sends).
        case subject(String)
        case email(String)
        case userID(String)

        public var kind: PrivacyRequest.SubjectKind {
            switch self {
            case .subject: .subject
            case .email: .email
            case .userID: .user
            }
        }

        /// Checks the shape of the value; returns a reason when it is unusable.
        public var problem: String? {
            switch self {
            case .subject(let s), .userID(let s):
                return s.isEmpty || s.utf8.count > 128 ? "identifier must be 1-128 bytes" : nil
            case .email(let e):
                let t = e.trimmingWhitespace()
                return t.utf8.count <= 254 && Minimize.looksLikeEmail(Substring(t)) ? nil : "not an e-mail address"
            }
        }
    }

    func hash(_ identifier: Identifier) -> Int64 {
        switch identifier {
        case .subject(let s): subjects.hash(s, kind: .subject)
        case .email(let e): subjects.hash(e, kind: .email)
        case .userID(let u): subjects.hash(u, kind: .userID)
        }
    }

    func policy(site: String) throws -> (Site, Policy) {
        guard let s = try database.site(id: site) else { throw PrivacyOfficeError.unknownSite(site) }
        return (s, policies[s.policy] ?? .default)
    }

    var nowMs: Int64 { Int64(now().timeIntervalSince1970 * 1000) }

    // MARK: Deletion requests

    /// Files a deletion request; it is carried out by ``processOpenRequests(actor:)`` (scheduled, or "run now").
    @discardableResult
    public func file(site: String, identifier: Identifier, filedBy: String) throws -> PrivacyRequest {
        if let problem = identifier.problem { throw PrivacyOfficeError.invalidIdentifier(problem) }
        let (_, policy) = try policy(site: site)
        let received = nowMs
        let request = PrivacyRequest(
            id: "dsr_" + PasswordHasher.randomPassword(length: 16).lowercased().filter { $0.isLetter || $0.isNumber },
            siteID: site, subjectKind: identifier.kind, subjectHash: hash(identifier), receivedAt: received,
            deadlineAt: received + Int64(policy.deletionDeadlineDays) * 86_400_000, status: .received, filedBy: filedBy)
        try database.insertPrivacyRequest(request)
        try audit.record(actor: filedBy, action: "request_received", site: site,
                         detail: ["request": .string(request.id), "subject_kind": .string(request.subjectKind.rawValue),
                                  "deadline_at": .int(request.deadlineAt)])
        return request
    }

    /// Carries out every open request, oldest deadline first. Returns the closed requests.
    @discardableResult
    public func processOpenRequests(actor: String) throws -> [PrivacyRequest] {
        var closed: [PrivacyRequest] = []
        for request in try database.openPrivacyRequests() {
            closed.append(try process(request, actor: actor))
        }
        return closed
    }

    /// Deletes everything linked to the request's subject and records a receipt.
    public func process(_ request: PrivacyRequest, actor: String) throws -> PrivacyRequest {
        guard request.isOpen else { return request }
        let (_, policy) = try policy(site: request.siteID)
        try database.markPrivacyRequestScheduled(id: request.id)
        let completed = nowMs
        let days = try database.subjectEventDays(request: request)
        let counts = try database.erase(request: request, keepConsentProof: policy.keepConsentProof, at: completed) { counts in
            Self.receipt(request, counts: counts, completed: completed, policy: policy)
        }
        // Rollups of the days that held the subject's events are recomputed without them.
        for day in days { try database.refreshRollup(site: request.siteID, day: day, now: completed) }
        try audit.record(actor: actor, action: "request_done", site: request.siteID,
                         detail: ["request": .string(request.id), "events": .init(counts["events"] ?? 0),
                                  "sessions": .init(counts["sessions"] ?? 0), "conversions": .init(counts["conversions"] ?? 0),
                                  "consent_records": .init(counts["consent_records"] ?? 0),
                                  "consent_records_unlinked": .init(counts["consent_records_unlinked"] ?? 0),
                                  "on_time": .int(completed <= request.deadlineAt ? 1 : 0)])
        return try database.privacyRequest(id: request.id) ?? request
    }

    public func reject(id: String, reason: String, actor: String) throws -> Bool {
        guard let request = try database.privacyRequest(id: id) else { return false }
        let reason = String(reason.prefix(500))
        guard try database.rejectPrivacyRequest(id: id, reason: reason, at: nowMs) else { return false }
        try audit.record(actor: actor, action: "request_rejected", site: request.siteID,
                         detail: ["request": .string(id), "reason": .string(reason)])
        return true
    }

    static func receipt(_ r: PrivacyRequest, counts: [String: Int], completed: Int64, policy: Policy) -> String {
        let receipt: JSON = [
            "receipt_version": 1,
            "request": .string(r.id),
            "site": .string(r.siteID),
            "subject_kind": .string(r.subjectKind.rawValue),
            "filed_by": .string(r.filedBy),
            "received_at": .string(ISO.string(r.receivedAt)),
            "deadline_at": .string(ISO.string(r.deadlineAt)),
            "completed_at": .string(ISO.string(completed)),
            "on_time": .bool(completed <= r.deadlineAt),
            "deleted": ["events": JSON(counts["events"] ?? 0), "sessions": JSON(counts["sessions"] ?? 0),
                        "conversions": JSON(counts["conversions"] ?? 0), "consent_records": JSON(counts["consent_records"] ?? 0)],
            "consent_records_kept_unlinked": JSON(counts["consent_records_unlinked"] ?? 0),
            "policy": ["name": .string(policy.name), "version": JSON(policy.version), "keep_consent_proof": .bool(policy.keepConsentProof)],
            "note": "Deleted rows were overwritten in the database file (secure_delete) and the write-ahead log was truncated.",
        ]
        return receipt.text
    }

    // MARK: Access / portability

    /// Everything held on a subject for a site, with the policy in force and the consent history.
    public func export(site: String, identifier: Identifier, actor: String) throws -> SubjectExport {
        if let problem = identifier.problem { throw PrivacyOfficeError.invalidIdentifier(problem) }
        let (s, policy) = try policy(site: site)
        let tables = try database.subjectRecords(site: site, kind: identifier.kind, hash: hash(identifier))
        let export = SubjectExport(site: s, policy: policy, kind: identifier.kind, generatedAt: nowMs, tables: tables)
        try audit.record(actor: actor, action: "export_made", site: site,
                         detail: ["subject_kind": .string(identifier.kind.rawValue),
                                  "rows": .init(tables.reduce(0) { $0 + $1.rows.count })])
        return export
    }
}

public enum PrivacyOfficeError: Error, CustomStringConvertible, Equatable {
    case unknownSite(String)
    case invalidIdentifier(String)

    public var description: String {
        switch self {
        case .unknownSite(let s): "unknown site \(s.prefix(64))"
        case .invalidIdentifier(let why): why
        }
    }
}

/// An access / portability export.
public struct SubjectExport: Sendable {
    public var site: Site
    public var policy: Policy
    public var kind: PrivacyRequest.SubjectKind
    public var generatedAt: Int64
    /// events, sessions, consent_records.
    public var tables: [ResultTable]

    public func table(_ name: String) -> ResultTable? { tables.first { $0.name == name } }

    /// The export as one JSON document.
    public var json: String {
        var members: [(String, JSON)] = [
            ("export_version", 1),
            ("site", ["id": .string(site.id), "name": .string(site.name), "domains": .array(site.domains.map(JSON.string))]),
            ("subject_kind", .string(kind.rawValue)),
            ("generated_at", .string(ISO.string(generatedAt))),
            ("policy", policy.summary),
            ("explanation", .string("Everything this Candor install holds that is linked to you on this site: the events and "
                + "visits recorded while you had agreed to be recognised, and your consent history. "
                + "Visitor and subject hashes are left out; they are keyed hashes that mean nothing outside this install.")),
        ]
        for t in tables {
            let key = t.name == "consent_records" ? "consent_history" : t.name
            members.append((key, .array(t.rows.map { row in .object(Array(zip(t.columns, row.map(\.json)))) })))
        }
        return JSON.object(members).text
    }
}

extension Cell {
    /// The cell as a JSON value (blobs as base64).
    public var json: JSON {
        switch self {
        case .null: .null
        case .integer(let i): .int(i)
        case .real(let d): .double(d)
        case .text(let s): .string(s)
        case .blob(let b): .string(b.base64EncodedString())
        }
    }
}

/// ISO 8601 UTC timestamps from milliseconds.
public enum ISO {
    public static func string(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601)
    }

    /// YYYY-MM-DD (UTC).
    public static func day(_ ms: Int64) -> String { String(string(ms).prefix(10)) }
}
