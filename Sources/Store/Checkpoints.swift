import GRDB

/// Copies committed WAL pages into the database file from a connection of its own, so that the
/// checkpoint SQLite runs in the committing connection (the ingestion writer, every 1000 WAL
/// pages) finds little left to copy and sync.
///
/// A passive checkpoint never blocks the writer or readers. It cannot start the WAL over
/// itself (the writer keeps appending while it runs); the writer's own checkpoint does that,
/// quickly, since only the pages of the last moments are left.
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
        try connection.writeWithoutTransaction { db in
            do {
                return try db.checkpoint(.passive).walFrameCount
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                return -1
            }
        }
    }
}
