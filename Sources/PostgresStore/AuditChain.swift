public import Storage

/// A PostgreSQL write transaction that appends to the audit chain.
struct PostgresAuditAppender: AuditAppender {
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
            """, [.int(seq), .int(timestamp), .text(actor), .text(action), siteID.map(PostgresValue.text) ?? .null, .text(detail),
                  .bytes(prev), .bytes(entry.hash)])
        return entry
    }
}

extension PostgresDatabase: AuditChain {
    public func appendingAudit<T>(_ body: (any AuditAppender) throws -> T) throws -> T {
        try transaction { try body(PostgresAuditAppender(connection: $0)) }
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
            """, [action.map(PostgresValue.text) ?? .null, .int(Int64(limit))]))
    }

    private static func entries(_ rows: PostgresRows) -> [AuditEntry] {
        rows.rows.indices.map { i in
            AuditEntry(seq: rows.int(i, 0) ?? 0, timestamp: rows.int(i, 1) ?? 0, actor: rows.text(i, 2) ?? "",
                       action: rows.text(i, 3) ?? "", siteID: rows.text(i, 4), detail: rows.text(i, 5) ?? "",
                       prevHash: rows.bytes(i, 6) ?? [], hash: rows.bytes(i, 7) ?? [])
        }
    }
}
