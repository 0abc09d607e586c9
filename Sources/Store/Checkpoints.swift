import Foundation
import GRDB
import Synchronization

/// Copies committed WAL pages into the database file from a connection of its own, so that
/// the ingestion writer does not copy and sync them inside a commit.
///
/// A passive checkpoint never blocks the writer or readers. It cannot start the WAL over
/// itself (the writer keeps appending while it runs): see ``AppDatabase/finishCheckpoint()``.
public final class WALCheckpointer: Sendable {
    private let connection: DatabaseQueue
    private let database: AppDatabase

    /// Opens a separate connection to the database file.
    public init(database: AppDatabase) throws {
        guard let path = database.path else { throw DatabaseError(message: "checkpoints need a database file") }
        connection = try DatabaseQueue(path: path)
        self.database = database
    }

    /// One passive checkpoint; returns the number of frames in the WAL (it changes while events
    /// are being written), or -1 when it skipped its turn because a truncation (``AppDatabase/truncateWAL(attempts:)``)
    /// or another process's checkpoint was running.
    @discardableResult
    public func run() throws -> Int {
        try database.checkpointTurn.withLockIfAvailable { _ in
            try connection.writeWithoutTransaction(passiveCheckpoint)
        } ?? -1
    }
}

/// What a verified WAL truncation established: every committed page was copied into the
/// database file, and the WAL file then held zero bytes, checked while no write could start.
public struct WALTruncation: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        /// The WAL was checkpointed and truncated; its size was read back as 0 bytes.
        case truncated
        /// The database has no WAL (in memory): nothing outlives a deletion there.
        case noWAL = "no_wal"
    }
    public var outcome: Outcome
    /// Milliseconds since 1970 when the empty WAL was observed.
    public var at: Int64
    /// Frames the WAL held before the checkpoint that emptied it.
    public var framesBefore: Int
    /// Attempts it took (another checkpoint, a writer or a reader of an older snapshot make an attempt fail).
    public var attempts: Int
    /// B-tree pages whose free space was read, and those where bytes left by deleted or moved
    /// cells were found and overwritten with zeros (see `FreeSpace`); 0 and 0 without a WAL.
    public var pagesRead = 0
    public var pagesZeroed = 0
    /// Whether the WAL was truncated again after the pass's own commit (a reader can hold that up;
    /// the WAL then holds only what was written after the pass).
    public var truncatedAfterPass = false
    /// How long the free-space pass held the write lock (ms): writes of every process waited that long.
    public var passLockedMs = 0.0
}

/// The WAL could not be truncated within the attempts allowed; whatever waits for it stays pending.
public struct WALTruncationFailed: Error, CustomStringConvertible {
    public let attempts: Int
    public let lastError: String
    public init(attempts: Int, lastError: String) { self.attempts = attempts; self.lastError = lastError }
    public var description: String { "WAL not truncated after \(attempts) attempt(s): \(lastError)" }
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
        try writer.writeWithoutTransaction { db in
            try checkpointTurn.withLockIfAvailable { _ in try passiveCheckpoint(db) } ?? -1
        }
    }

    /// Copies every committed page into the database file and truncates the WAL to zero bytes,
    /// then reads the WAL file's size back: only a 0 counts as done. Page images of deleted rows
    /// (an erased subject, purged rows, a destroyed salt) live on in the WAL until this succeeds.
    /// With the WAL empty, the free space of every b-tree page in the file is zeroed (`FreeSpace`:
    /// SQLite may leave copies of cells there that `secure_delete` never reaches), and the WAL is
    /// truncated again after the pass's own commit.
    ///
    /// Each attempt runs on the write connection, so no write of this process can start while it
    /// runs, and holds the checkpoint turn, so the background passive checkpoints wait for it.
    /// An attempt fails when another process checkpoints, or a reader of an older snapshot does not
    /// finish within `attemptTimeout` (short: ingestion waits while an attempt waits); it is retried
    /// after a growing, jittered pause (writes go on in between), about 25 s in all by default.
    /// Throws ``WALTruncationFailed`` when no attempt succeeded.
    public func truncateWAL(attempts: Int = 40, attemptTimeout: Duration = .milliseconds(25),
                            sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) async throws -> WALTruncation {
        guard let path else {
            return WALTruncation(outcome: .noWAL, at: Int64(Date().timeIntervalSince1970 * 1000), framesBefore: 0, attempts: 0)
        }
        var lastError = "not attempted"
        var pause = Duration.milliseconds(5)
        for attempt in 1...max(1, attempts) {
            switch try truncationAttempt(path: path, timeout: attemptTimeout) {
            case .done(let frames, let pass, let again):
                return WALTruncation(outcome: .truncated, at: Int64(Date().timeIntervalSince1970 * 1000), framesBefore: frames,
                                     attempts: attempt, pagesRead: pass.pagesRead, pagesZeroed: pass.pagesZeroed, truncatedAfterPass: again,
                                     passLockedMs: pass.lockedMs)
            case .busy(let why):
                lastError = why
            }
            if attempt < attempts {
                try await sleep(pause + .milliseconds(Int64.random(in: 0...max(1, pause.milliseconds))))
                pause = min(pause * 2, .milliseconds(1000))
            }
        }
        throw WALTruncationFailed(attempts: attempts, lastError: lastError)
    }

    private enum TruncationAttempt { case done(frames: Int, FreeSpace.Pass, truncatedAgain: Bool), busy(String) }

    private func truncationAttempt(path: String, timeout: Duration) throws -> TruncationAttempt {
        let walPath = path + "-wal"
        return try writer.writeWithoutTransaction { db -> TruncationAttempt in
            try checkpointTurn.withLock { _ -> TruncationAttempt in
                let before = Self.fileSize(walPath)
                // A short busy timeout for this attempt: writes of this process queue behind it.
                try db.execute(sql: "PRAGMA busy_timeout = \(max(1, timeout.milliseconds))")
                defer { try? db.execute(sql: "PRAGMA busy_timeout = \(Self.busyTimeoutMs)") }
                func truncate() throws -> String? {
                    do {
                        _ = try db.checkpoint(.truncate)
                    } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                        return "\(error.resultCode): \(error.message ?? "busy")"
                    }
                    let after = Self.fileSize(walPath)
                    return after == 0 ? nil : after < 0 ? "the WAL's size could not be read" : "the WAL still holds \(after) bytes after the checkpoint"
                }
                if let busy = try truncate() { return .busy(busy) }
                guard let pass = try FreeSpace.zero(path: path, walPath: walPath, busyTimeout: timeout) else {
                    return .busy("the free-space pass did not get the write lock within \(timeout.milliseconds) ms, or another process wrote after the checkpoint")
                }
                // What the WAL holds now was written after the pass, from pages read back from the
                // file: truncating it again is for a clean 0 bytes, not for the deleted bytes; a
                // reader holding it up does not undo the pass.
                let again = try truncate() == nil
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                return .done(frames: max(0, (max(before, 0) - 32) / (pageSize + 24)), pass, truncatedAgain: again)
            }
        }
    }

    /// The size of a file: 0 when it does not exist, -1 when it cannot be read (never taken for empty).
    static func fileSize(_ path: String) -> Int {
        var info = stat()
        if stat(path, &info) == 0 { return Int(info.st_size) }
        return errno == ENOENT ? 0 : -1
    }

    /// The busy timeout of every connection (GRDB's `busyMode`), in milliseconds.
    static let busyTimeoutMs = 5000
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

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
