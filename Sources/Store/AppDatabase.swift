import Foundation
import GRDB
import Storage
import Synchronization

/// The one owner of Candor's SQLite file. Only this module imports GRDB.
///
/// Writes are named by intent. Ingestion writes go through ``insertEvents(_:)``, which the
/// collector's writer calls from its single writer thread, one transaction per batch.
public final class AppDatabase: Sendable {
    let writer: any DatabaseWriter
    /// Path of the database file, or nil for an in-memory database.
    public let path: String?
    /// Open session per recently seen visitor: the ingestion writer's shortcut (see `insertEvents`).
    let sessionHints = Mutex<[SessionKey: SessionHint]>([:])
    /// Held by whichever checkpoint of this process runs: a checkpoint that finds another one
    /// running fails at once with SQLITE_BUSY (SQLite calls no busy handler for that lock), so the
    /// background passive checkpoints skip a turn while a truncation holds it (see `truncateWAL`).
    let checkpointTurn = Mutex<Void>(())
    /// The analytics engine's loaded days (empty until ``FactStore/reconcile(maxDays:)`` runs).
    public let facts: FactStore

    /// Opens (creating if needed) the database file at `path` in WAL mode and migrates it.
    public convenience init(path: String) throws {
        try self.init(path: path, migratingUpTo: nil)
    }

    /// Opens the file migrated up to `target` only (tests of an upgrade), or fully when nil.
    init(path: String, migratingUpTo target: String?) throws {
        var config = Configuration()
        config.prepareDatabase(Self.prepare)
        config.busyMode = .timeout(Double(Self.busyTimeoutMs) / 1000)
        let pool = try DatabasePool(path: path, configuration: config)
        self.writer = pool
        self.path = path
        self.facts = FactStore(writer: pool)
        if let target { try Self.migrator.migrate(pool, upTo: target) } else { try Self.migrator.migrate(pool) }
        // Deletions are verified with SQLite's dbstat table (see FreeSpace): without it no erasure
        // could complete, so the file is not opened at all.
        try pool.read { db in
            do { _ = try db.makeStatement(sql: "SELECT pageno FROM dbstat LIMIT 0") } catch {
                throw DatabaseError(resultCode: .SQLITE_ERROR, message: "this SQLite has no dbstat table (SQLITE_ENABLE_DBSTAT_VTAB), which "
                                    + "Candor needs to verify erasures; use a build that has it (Debian's libsqlite3 does)")
            }
        }
    }

    /// An in-memory database for unit tests.
    public init() throws {
        var config = Configuration()
        config.prepareDatabase(Self.prepare)
        let queue = try DatabaseQueue(configuration: config)
        self.writer = queue
        self.path = nil
        self.facts = FactStore(writer: queue)
        try Self.migrator.migrate(queue)
    }

    /// Every connection: deleted content (destroyed salts, erased subjects) is overwritten, not
    /// left in free pages; foreign keys hold; `candor_day(ts, zone)` gives an instant's local day
    /// in a zone (``SiteCalendar/sqlDay(_:)``).
    @Sendable static func prepare(_ db: Database) throws {
        try db.execute(sql: "PRAGMA secure_delete = ON")
        try db.execute(sql: "PRAGMA foreign_keys = ON")
        db.add(function: DatabaseFunction("candor_day", argumentCount: 2, pure: true) { values in
            guard let ts = Int64.fromDatabaseValue(values[0]), let zone = String.fromDatabaseValue(values[1]),
                  let calendar = SiteCalendar.named(zone) else { return nil }
            return calendar.day(of: ts)
        })
    }

    /// `PRAGMA integrity_check`; returns "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer" }
    }

}
