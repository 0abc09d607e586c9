import Foundation
public import Storage

extension PostgresDatabase: SaltVault {
    public func writingSalts<T>(_ body: (any SaltWriter) throws -> T) throws -> T {
        try transaction { try body(PostgresTransaction(connection: $0)) }
    }

    public func withSalts(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        let rows = try query("SELECT day, salt FROM salts ORDER BY day")
        for i in rows.rows.indices {
            guard let day = rows.int(i, 0), var bytes = rows.bytes(i, 1) else { continue }
            defer { for j in bytes.indices { bytes[j] = 0 } }
            try bytes.withUnsafeBytes { try body(day, $0) }
        }
    }

    public func saltDays() throws -> [Int64] {
        let rows = try query("SELECT day FROM salts ORDER BY day")
        return rows.rows.indices.compactMap { rows.int($0, 0) }
    }

    public func pendingSaltDestructions() throws -> [Int64] {
        let rows = try query("SELECT day FROM salt_destructions WHERE destroyed_at IS NULL ORDER BY day")
        return rows.rows.indices.compactMap { rows.int($0, 0) }
    }

    /// Makes sure the deleted salts are gone from the server's files, and records them destroyed.
    ///
    /// PostgreSQL has no secure delete: a deleted row stays in its page until the page is
    /// rewritten. `VACUUM FULL` rewrites the (small) salts table into a new file; the old file is
    /// truncated when it commits (and unlinked at the next checkpoint). A transaction whose
    /// snapshot is older than a deletion (a long report, a `pg_dump` of the database) may still
    /// read the deleted row, so the rewrite copies it: the server says so ("N dead row versions
    /// cannot be removed yet"), and then nothing is recorded destroyed and a later pass tries
    /// again. The table being UNLOGGED, a salt never reached the WAL, a standby, a WAL archive or
    /// a base backup. What stays out of reach is the file system's freed blocks (and the server's
    /// memory until reused): keep the data directory on encrypted storage. Returns the days
    /// recorded destroyed now.
    public func destroyDeletedSalts(at: Int64) throws -> [Int64] {
        let pending = try pendingSaltDestructions()
        guard !pending.isEmpty else { return [] }
        let notices = try withConnection { c in
            // Waiting for a lock would stall every salt lookup queued behind the rewrite.
            try c.query("SET lock_timeout = '2s'")
            defer { _ = try? c.query("RESET lock_timeout") }
            return try c.collectingNotices { try c.query("VACUUM (FULL, VERBOSE) salts") }.1
        }
        guard let kept = Self.deadRowsKept(notices) else {
            throw PostgresError(message: "VACUUM's report on the salts table could not be read (Candor reads it in English: a superuser can "
                                + "set lc_messages = 'C' for Candor's role), so no deleted salt is recorded destroyed", sqlState: nil)
        }
        // Kept for a transaction older than the deletion: a later pass tries again.
        guard kept == 0 else { return [] }
        let rows = try query("""
            UPDATE salt_destructions SET destroyed_at = $1 WHERE destroyed_at IS NULL AND day = ANY($2::bigint[]) RETURNING day
            """, [.int(at), .text("{" + pending.map(String.init).joined(separator: ",") + "}")])
        return rows.rows.indices.compactMap { rows.int($0, 0) }.sorted()
    }

    /// The dead rows `VACUUM (FULL, VERBOSE)` reports it kept ("N dead row versions cannot be
    /// removed yet"), or nil when its report holds no such line (messages in another language).
    static func deadRowsKept(_ notices: [String]) -> Int? {
        let counts = notices.flatMap { $0.split(separator: "\n") }.compactMap { line -> Int? in
            guard let range = line.range(of: " dead row versions cannot be removed yet") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }
        return counts.isEmpty ? nil : counts.reduce(0, +)
    }
}
