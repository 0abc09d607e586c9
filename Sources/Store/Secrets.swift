import Foundation
import GRDB

extension AppDatabase {
    // MARK: Daily salts (see Privacy.SaltKeeper). Raw bytes in, raw bytes out; nothing else reads them.

    public func insertSalt(day: Int64, bytes: UnsafeRawBufferPointer) throws {
        var copy = Data(bytes)
        defer { copy.resetBytes(in: 0..<copy.count) }
        try writer.write { db in
            try db.execute(sql: "INSERT INTO salts (day, salt) VALUES (?, ?)", arguments: [day, copy])
        }
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

    /// Deletes the salts of the given days (secure_delete zeroes their cells), then
    /// checkpoints and truncates the WAL so that no page image holding them survives.
    public func destroySalts(days: [Int64]) throws {
        guard !days.isEmpty else { return }
        try writer.write { db in
            for day in days {
                try db.execute(sql: "DELETE FROM salts WHERE day = ?", arguments: [day])
            }
        }
        try checkpointAndTruncateWAL()
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
}
