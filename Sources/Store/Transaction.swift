import GRDB

/// One write transaction, for callers that must commit a change together with the audit entry
/// that records it (``AppDatabase/transaction(_:)``). Its operations are the intent-named writes
/// defined in this module's extensions; the transaction commits when the closure returns and
/// rolls back when it throws.
public struct WriteTransaction {
    let db: Database
}

extension AppDatabase {
    /// Runs `body` in one write transaction: everything it does commits together, or nothing does.
    public func transaction<T>(_ body: (WriteTransaction) throws -> T) throws -> T {
        try writer.write { db in try body(WriteTransaction(db: db)) }
    }
}
