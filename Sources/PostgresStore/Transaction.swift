import Foundation
public import Storage

/// One PostgreSQL write transaction, for the storage protocols' writers.
struct PostgresTransaction: AuditAppender, SaltWriter {
    let connection: PostgresConnection

    /// The chain's head is read and extended under a transaction-scoped advisory lock, held until
    /// COMMIT or ROLLBACK: appends from every node queue there, so the chain cannot fork, and an
    /// append that rolls back leaves the head as it was for the next one.
    @discardableResult
    func appendAudit(timestamp: Int64, actor: String, action: String, siteID: String?, detail: String,
                     seal: (AuditEntry) -> [UInt8]) throws -> AuditEntry {
        try connection.query("SELECT pg_advisory_xact_lock($1, 0)", [.int(Int64(AdvisoryLock.audit.rawValue))])
        let head = try connection.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        let seq = (head.rows.isEmpty ? 0 : head.int(0, 0) ?? 0) + 1
        let prev = head.rows.isEmpty ? [UInt8](repeating: 0, count: 32) : head.bytes(0, 1) ?? []
        var entry = AuditEntry(seq: seq, timestamp: timestamp, actor: actor, action: action, siteID: siteID,
                               detail: detail, prevHash: prev, hash: [])
        entry.hash = seal(entry)
        try connection.query("""
            INSERT INTO audit_log (seq, ts, actor, action, site_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """, [.int(seq), .int(timestamp), .text(actor), .text(action), PostgresValue(siteID), .text(detail),
                  .bytes(prev), .bytes(entry.hash)])
        return entry
    }

    func insertSalt(day: Int64, bytes: UnsafeRawBufferPointer) throws -> Bool {
        var copy = [UInt8](bytes)
        defer { for i in copy.indices { copy[i] = 0 } }
        return try connection.query("INSERT INTO salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
                                    [.int(day), .bytes(copy)]).changes == 1
    }

    func saltDeleted(day: Int64) throws -> Bool {
        try !connection.query("SELECT 1 FROM salt_destructions WHERE day = $1", [.int(day)]).rows.isEmpty
    }

    func withSalt<R>(day: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        let rows = try connection.query("SELECT salt FROM salts WHERE day = $1", [.int(day)])
        guard !rows.rows.isEmpty, var bytes = rows.bytes(0, 0) else { return nil }
        defer { for i in bytes.indices { bytes[i] = 0 } }
        return try bytes.withUnsafeBytes(body)
    }

    func deleteSalts(days: [Int64], at: Int64) throws -> [Int64] {
        var deleted: [Int64] = []
        for day in days where try connection.query("DELETE FROM salts WHERE day = $1", [.int(day)]).changes == 1 {
            deleted.append(day)
            try connection.query("""
                INSERT INTO salt_destructions (day, deleted_at) VALUES ($1, $2)
                ON CONFLICT (day) DO UPDATE SET deleted_at = excluded.deleted_at, destroyed_at = NULL
                """, [.int(day), .int(at)])
        }
        return deleted
    }
}

extension PostgresDatabase: AuditChain {
    public func appendingAudit<T>(_ body: (any AuditAppender) throws -> T) throws -> T {
        try transaction { try body(PostgresTransaction(connection: $0)) }
    }

    public func auditEntries(after: Int64, limit: Int) throws -> [AuditEntry] {
        Self.entries(try query("""
            SELECT seq, ts, actor, action, site_id, detail, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2
            """, [.int(after), .int(Int64(limit))]))
    }

    public func recentAuditEntries(limit: Int, action: String?) throws -> [AuditEntry] {
        Self.entries(try query("""
            SELECT seq, ts, actor, action, site_id, detail, prev_hash, hash FROM audit_log
            WHERE $1::text IS NULL OR action = $1 ORDER BY seq DESC LIMIT $2
            """, [PostgresValue(action), .int(Int64(limit))]))
    }

    private static func entries(_ rows: PostgresRows) -> [AuditEntry] {
        rows.rows.indices.map { i in
            AuditEntry(seq: rows.int(i, 0) ?? 0, timestamp: rows.int(i, 1) ?? 0, actor: rows.text(i, 2) ?? "",
                       action: rows.text(i, 3) ?? "", siteID: rows.text(i, 4), detail: rows.text(i, 5) ?? "",
                       prevHash: rows.bytes(i, 6) ?? [], hash: rows.bytes(i, 7) ?? [])
        }
    }
}
