import Foundation
import GRDB

/// One entry of the append-only audit log. `hash` seals this entry together with `prevHash`,
/// the hash of the entry before it (see Privacy.AuditLog for the chain rule).
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    /// Milliseconds since 1970 (UTC).
    public var timestamp: Int64
    /// Who or what acted: "cli", "scheduler", "api-key:ID", "self-service", "user:EMAIL".
    public var actor: String
    public var action: String
    public var siteID: String?
    /// Flat JSON object text; never contains identifiers of visitors.
    public var detail: String
    public var prevHash: [UInt8]
    public var hash: [UInt8]

    public init(seq: Int64, timestamp: Int64, actor: String, action: String, siteID: String?, detail: String,
                prevHash: [UInt8], hash: [UInt8]) {
        self.seq = seq; self.timestamp = timestamp; self.actor = actor; self.action = action
        self.siteID = siteID; self.detail = detail; self.prevHash = prevHash; self.hash = hash
    }

    init(row: Row) {
        self.init(seq: row["seq"], timestamp: row["ts"], actor: row["actor"], action: row["action"], siteID: row["site_id"],
                  detail: row["detail"], prevHash: [UInt8](row["prev_hash"] as Data), hash: [UInt8](row["hash"] as Data))
    }
}

extension WriteTransaction {
    /// Appends an entry in this transaction, so it commits or rolls back with the change it
    /// records. `seal` receives the entry with `seq` and `prevHash` filled in (the head's hash,
    /// or 32 zero bytes for the first entry) and returns its hash. Appends are serialized by the
    /// write lock, so concurrent appends cannot fork the chain.
    @discardableResult
    public func appendAudit(timestamp: Int64, actor: String, action: String, siteID: String?, detail: String,
                            seal: (AuditEntry) -> [UInt8]) throws -> AuditEntry {
        let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        let seq: Int64 = (head?["seq"] ?? 0) + 1
        let prev = head.map { [UInt8]($0["hash"] as Data) } ?? [UInt8](repeating: 0, count: 32)
        var entry = AuditEntry(seq: seq, timestamp: timestamp, actor: actor, action: action, siteID: siteID,
                               detail: detail, prevHash: prev, hash: [])
        entry.hash = seal(entry)
        try db.execute(sql: """
            INSERT INTO audit_log (seq, ts, actor, action, site_id, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)
            """, arguments: [seq, timestamp, actor, action, siteID, detail, Data(prev), Data(entry.hash)])
        return entry
    }
}

extension WriteTransaction {
    /// The oldest entry still in the log.
    public func firstAuditEntry() throws -> AuditEntry? {
        try Row.fetchOne(db, sql: "SELECT * FROM audit_log ORDER BY seq LIMIT 1").map(AuditEntry.init(row:))
    }
}

extension AppDatabase {
    /// Entries with `seq > after`, in order, at most `limit`.
    public func auditEntries(after: Int64 = 0, limit: Int = 1000) throws -> [AuditEntry] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, limit])
                .map(AuditEntry.init(row:))
        }
    }

    /// The newest entries first (the audit viewer).
    public func recentAuditEntries(limit: Int, action: String? = nil) throws -> [AuditEntry] {
        try writer.read { db in
            if let action {
                return try Row.fetchAll(db, sql: "SELECT * FROM audit_log WHERE action = ? ORDER BY seq DESC LIMIT ?",
                                        arguments: [action, limit]).map(AuditEntry.init(row:))
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM audit_log ORDER BY seq DESC LIMIT ?", arguments: [limit])
                .map(AuditEntry.init(row:))
        }
    }
}
