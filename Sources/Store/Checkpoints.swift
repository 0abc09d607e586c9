import GRDB

/// Copies committed WAL pages into the database file from a connection of its own, so that
/// the ingestion writer does not copy and sync them inside a commit.
///
/// A passive checkpoint never blocks the writer or readers. It cannot start the WAL over
/// itself (the writer keeps appending while it runs): see ``AppDatabase/finishCheckpoint()``.
public final class WALCheckpointer: Sendable {
    private let connection: DatabaseQueue

    /// Opens a separate connection to the database file.
    public init(database: AppDatabase) throws {
        guard let path = database.path else { throw DatabaseError(message: "checkpoints need a database file") }
        connection = try DatabaseQueue(path: path)
    }

    /// One passive checkpoint; returns the number of frames in the WAL (it changes while events
    /// are being written). Another checkpoint in progress (the writer's, or an erasure's
    /// truncation) makes it copy nothing this time.
    @discardableResult
    public func run() throws -> Int {
        try connection.writeWithoutTransaction(passiveCheckpoint)
    }
}

extension AppDatabase {
    /// Stops the writer connection's own checkpoints (SQLite runs one inside the commit that
    /// takes the WAL past 1000 pages: a copy and two syncs while every waiting event waits).
    /// Call only when something else checkpoints: a ``WALCheckpointer`` in the background, and
    /// ``finishCheckpoint()`` between transactions so that the WAL starts over.
    public func handOverCheckpoints() throws {
        try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
    }

    /// A passive checkpoint on the writer connection, between transactions: it copies what the
    /// background checkpoints have not copied yet (little, right after one), and since no commit
    /// can come in between, the next transaction starts the WAL from its beginning. Returns the
    /// frames that were in the WAL, or -1 when another checkpoint was in progress.
    @discardableResult
    public func finishCheckpoint() throws -> Int {
        try writer.writeWithoutTransaction(passiveCheckpoint)
    }
}

/// A passive checkpoint on `db`'s connection; the frames in the WAL, or -1 when another
/// checkpoint was in progress.
private func passiveCheckpoint(_ db: Database) throws -> Int {
    do {
        return try db.checkpoint(.passive).walFrameCount
    } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
        return -1
    }
}
