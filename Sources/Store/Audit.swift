import Foundation
import GRDB
public import Storage

extension AuditEntry {
    init(row: Row) {
        self.init(seq: row["seq"], timestamp: row["ts"], actor: row["actor"], action: row["action"], siteID: row["site_id"],
                  detail: row["detail"], prevHash: [UInt8](row["prev_hash"] as Data), hash: [UInt8](row["hash"] as Data))
    }
}

extension WriteTransaction: AuditAppender {
    /// Appends an entry in this transaction (``AuditAppender``). Appends are serialized by
    /// SQLite's write lock, so concurrent appends cannot fork the chain.
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

extension AppDatabase: AuditChain {
    public func appendingAudit<T>(_ body: (any AuditAppender) throws -> T) throws -> T {
        try transaction { try body($0) }
    }

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
