/// A write transaction that stores and deletes daily salts, and records them in the audit chain
/// in the same commit.
public protocol SaltWriter: AuditAppender {
    /// Stores a day's salt unless the day has one already (stored by another process or node
    /// first): false then, and ``withSalt(day:_:)`` reads the stored one.
    func insertSalt(day: Int64, bytes: UnsafeRawBufferPointer) throws -> Bool
    /// Whether the salt of `day` was deleted (it is never made again).
    func saltDeleted(day: Int64) throws -> Bool
    /// Calls `body` with the stored salt of a day, without keeping a copy.
    func withSalt<R>(day: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R?
    /// Deletes the salts of the given days and records each as deleted and waiting for its
    /// destruction to be made sure of (the backend's way: a verified WAL truncation in SQLite, a
    /// table rewrite in PostgreSQL). Returns the days whose salt was deleted.
    func deleteSalts(days: [Int64], at: Int64) throws -> [Int64]
}

/// Where the random daily salts of visitor hashes are kept (see Privacy.SaltKeeper), one per
/// local day, shared by every process of an install so all count the same visitors.
public protocol SaltVault: AuditChain {
    /// Runs `body` in one write transaction.
    func writingSalts<T>(_ body: (any SaltWriter) throws -> T) throws -> T
    /// Calls `body` with each stored salt's day and bytes, oldest first, without keeping a copy.
    func withSalts(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws
    /// Days whose salt is stored, oldest first.
    func saltDays() throws -> [Int64]
    /// Days whose salt is deleted but whose destruction is not made sure of yet.
    func pendingSaltDestructions() throws -> [Int64]
}
