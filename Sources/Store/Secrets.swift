import Foundation
import GRDB
public import Storage

extension WriteTransaction: SaltWriter {
    // MARK: Daily salts (see Privacy.SaltKeeper). Raw bytes in, raw bytes out; nothing else reads them.

    /// Stores a day's salt unless another process stored that day's first (a CLI `rotate-salt`
    /// and the server at midnight). Returns false then; read the stored one with `salt(day:)`.
    public func insertSalt(day: Int64, bytes: UnsafeRawBufferPointer) throws -> Bool {
        var copy = Data(bytes)
        defer { copy.resetBytes(in: 0..<copy.count) }
        try db.execute(sql: "INSERT INTO salts (day, salt) VALUES (?, ?) ON CONFLICT(day) DO NOTHING", arguments: [day, copy])
        return db.changesCount == 1
    }

    /// Whether the salt of `day` was deleted (it is never made again).
    public func saltDeleted(day: Int64) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT 1 FROM salt_destructions WHERE day = ?", arguments: [day]) != nil
    }

    /// Calls `body` with the stored salt of a day, without keeping a copy.
    public func withSalt<R>(day: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        guard let row = try Row.fetchOne(db, sql: "SELECT salt FROM salts WHERE day = ?", arguments: [day]),
              let data = row.dataNoCopy(atIndex: 0) else { return nil }
        return try data.withUnsafeBytes(body)
    }

    /// Deletes the salts of the given days (secure_delete zeroes their cells) and records each as
    /// waiting for destruction: its page images may live on in the WAL until a verified
    /// truncation (``completeSaltDestruction(day:at:)``). Returns the days whose row was deleted.
    public func deleteSalts(days: [Int64], at: Int64) throws -> [Int64] {
        var deleted: [Int64] = []
        for day in days {
            try db.execute(sql: "DELETE FROM salts WHERE day = ?", arguments: [day])
            guard db.changesCount == 1 else { continue }
            deleted.append(day)
            try db.execute(sql: """
                INSERT INTO salt_destructions (day, deleted_at) VALUES (?, ?)
                ON CONFLICT(day) DO UPDATE SET deleted_at = excluded.deleted_at, destroyed_at = NULL
                """, arguments: [day, at])
        }
        return deleted
    }

    /// Marks a deleted salt destroyed: a WAL truncation after its deletion was verified. False
    /// when it was marked already (by another process).
    public func completeSaltDestruction(day: Int64, at: Int64) throws -> Bool {
        try db.execute(sql: "UPDATE salt_destructions SET destroyed_at = ? WHERE day = ? AND destroyed_at IS NULL", arguments: [at, day])
        return db.changesCount == 1
    }
}

extension AppDatabase: SaltVault {
    public func writingSalts<T>(_ body: (any SaltWriter) throws -> T) throws -> T {
        try transaction { try body($0) }
    }

    /// Days whose salt row is deleted but whose destruction is not verified yet.
    public func pendingSaltDestructions() throws -> [Int64] {
        try writer.read { db in try Int64.fetchAll(db, sql: "SELECT day FROM salt_destructions WHERE destroyed_at IS NULL ORDER BY day") }
    }

    /// Calls `body` with each stored salt's bytes, without keeping a copy.
    public func withSalts(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        try writer.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT day, salt FROM salts ORDER BY day")
            while let row = try rows.next() {
                let day: Int64 = row[0]
                if let data = row.dataNoCopy(atIndex: 1) {
                    try data.withUnsafeBytes { try body(day, $0) }
                }
            }
        }
    }

    /// Days whose salt is stored, oldest first.
    public func saltDays() throws -> [Int64] {
        try writer.read { db in try Int64.fetchAll(db, sql: "SELECT day FROM salts ORDER BY day") }
    }

    /// A long-lived random secret by name, created with `make` on first use.
    public func secret(named name: String, orCreate make: () -> [UInt8]) throws -> [UInt8] {
        try writer.write { db in
            if let existing = try Data.fetchOne(db, sql: "SELECT value FROM secrets WHERE name = ?", arguments: [name]) {
                return [UInt8](existing)
            }
            let value = make()
            try db.execute(sql: "INSERT INTO secrets (name, value) VALUES (?, ?)", arguments: [name, Data(value)])
            return value
        }
    }

    /// A stored secret's value, nil when there is none.
    public func storedSecret(named name: String) throws -> [UInt8]? {
        try writer.read { db in try Data.fetchOne(db, sql: "SELECT value FROM secrets WHERE name = ?", arguments: [name]).map { [UInt8]($0) } }
    }

    /// Whether destination credentials or second-factor secrets sealed under the secret key are stored.
    public func sealedCredentialsExist() throws -> Bool {
        try writer.read { db in try Self.sealedCredentialsExist(db) }
    }

    static func sealedCredentialsExist(_ db: Database) throws -> Bool {
        try Int.fetchOne(db, sql: """
            SELECT 1 FROM destinations WHERE credential IS NOT NULL UNION ALL SELECT 1 FROM two_factor
            UNION ALL SELECT 1 FROM notification_channels LIMIT 1
            """) != nil
    }

    /// Stores `value` under `name`: inserted when absent; replaced when no sealed credential is
    /// stored (nothing depends on the old value); left as it is otherwise.
    public func recordSecret(named name: String, value: [UInt8]) throws {
        try writer.write { db in
            if try Data.fetchOne(db, sql: "SELECT value FROM secrets WHERE name = ?", arguments: [name]) == nil {
                try db.execute(sql: "INSERT INTO secrets (name, value) VALUES (?, ?)", arguments: [name, Data(value)])
            } else if try !Self.sealedCredentialsExist(db) {
                try db.execute(sql: "UPDATE secrets SET value = ? WHERE name = ?", arguments: [Data(value), name])
            }
        }
    }
}
