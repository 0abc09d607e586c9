public import Consent
public import Foundation
public import JSONOutput
public import Store
import Storage

/// Data-subject requests: deletion (GDPR Art. 17 / CCPA delete) with deadlines and receipts,
/// and access / portability exports (Art. 15 / 20). Every action is written to the audit log.
public final class PrivacyOffice: Sendable {
    public let database: AppDatabase
    public let policies: PolicyBook
    public let audit: AuditLog
    public let scrubber: Scrubber
    let subjects: SubjectHasher
    let now: @Sendable () -> Date

    public init(database: AppDatabase, policies: PolicyBook, subjects: SubjectHasher,
                now: @escaping @Sendable () -> Date = { Date() }, scrubber: Scrubber? = nil) {
        self.database = database
        self.policies = policies
        self.subjects = subjects
        self.now = now
        self.audit = AuditLog(database: database, now: now)
        self.scrubber = scrubber ?? Scrubber(database: database, policies: policies, now: now)
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
        try database.transaction { tx in
            try tx.insertPrivacyRequest(request)
            try audit.record(in: tx, actor: filedBy, action: "request_received", site: site,
                             detail: ["request": .string(request.id), "subject_kind": .string(request.subjectKind.rawValue),
                                      "deadline_at": .int(request.deadlineAt)])
        }
        return request
    }

    /// What a run of the deletion requests did.
    public struct RunReport: Sendable {
        /// Requests closed as done in this run (their receipts written).
        public var done: [PrivacyRequest] = []
        /// Requests whose rows are deleted but which still wait for a verified WAL truncation;
        /// the next run retries them.
        public var erasing: [PrivacyRequest] = []
        /// Requests that could not be carried out, with the reason; the others went on.
        public var failed: [(id: String, reason: String)] = []
        public var problems: [String] = []

        public var summary: String {
            var s = "\(done.count) request(s) done"
            if !erasing.isEmpty { s += ", \(erasing.count) waiting for the WAL truncation" }
            if !failed.isEmpty { s += ", \(failed.count) failed (\(failed.map { "\($0.id): \($0.reason)" }.joined(separator: "; ")))" }
            if !problems.isEmpty { s += "; " + problems.joined(separator: "; ") }
            return s
        }
    }

    /// Carries out the open requests (all, or those in `only`), oldest deadline first: each one's
    /// rows are deleted in a transaction of its own, which also marks it `erasing` and writes
    /// `request_erased`; a request that fails leaves the others going. Then the ``Scrubber``
    /// truncates the WAL and closes every erasing request (these and earlier ones) with a receipt
    /// and `request_done`. Requests still erasing after a failed truncation are retried next run.
    public func processOpenRequests(actor: String, only: Set<String>? = nil) async -> RunReport {
        var report = RunReport()
        let pending: [PrivacyRequest]
        do { pending = try database.pendingPrivacyRequests() } catch {
            report.problems.append("could not read the requests: \(error)")
            return report
        }
        for request in pending where only.map({ $0.contains(request.id) }) ?? true {
            do { try erase(request, actor: actor) } catch {
                report.failed.append((request.id, "\(error)"))
            }
        }
        let scrub = await scrubber.run(actor: actor)
        report.problems += scrub.problems
        do {
            report.done = try scrub.requests.compactMap { try database.privacyRequest(id: $0) }
            report.erasing = try database.erasingPrivacyRequests().filter { r in only.map { $0.contains(r.id) } ?? true }
        } catch {
            report.problems.append("could not read the requests back: \(error)")
        }
        return report
    }

    /// Carries out one request now (see ``processOpenRequests(actor:only:)``) and returns it as it then stands:
    /// `done` with its receipt, or `erasing` when the WAL could not be truncated yet.
    public func process(_ request: PrivacyRequest, actor: String) async throws -> PrivacyRequest {
        let report = await processOpenRequests(actor: actor, only: [request.id])
        if let failure = report.failed.first { throw PrivacyOfficeError.notCarriedOut(failure.reason) }
        return try database.privacyRequest(id: request.id) ?? request
    }

    /// Deletes the request's rows and marks it erasing, with its audit entry, in one transaction.
    func erase(_ request: PrivacyRequest, actor: String) throws {
        let policy = try policy(site: request.siteID).1
        let at = nowMs
        try database.transaction { tx in
            guard let erasure = try tx.eraseSubject(of: request, keepConsentProof: policy.keepConsentProof, at: at, counts: { counts in
                JSON.object(counts.sorted { $0.key < $1.key }.map { ($0.key, JSON($0.value)) }).text
            }) else { return }   // another process is carrying it out
            var detail: [String: AuditValue] = ["request": .string(request.id), "days": .init(erasure.days.count)]
            for (table, n) in erasure.counts { detail[table] = .init(n) }
            try audit.record(in: tx, actor: actor, action: "request_erased", site: request.siteID, detail: detail)
        }
    }

    public func reject(id: String, reason: String, actor: String) throws -> Bool {
        guard let request = try database.privacyRequest(id: id) else { return false }
        let reason = String(reason.prefix(500))
        let at = nowMs
        return try database.transaction { tx in
            guard try tx.rejectPrivacyRequest(id: id, reason: reason, at: at) else { return false }
            try audit.record(in: tx, actor: actor, action: "request_rejected", site: request.siteID,
                             detail: ["request": .string(id), "reason": .string(reason)])
            return true
        }
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
    case notCarriedOut(String)

    public var description: String {
        switch self {
        case .unknownSite(let s): "unknown site \(s.prefix(64))"
        case .invalidIdentifier(let why): why
        case .notCarriedOut(let why): "not carried out: \(why)"
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

