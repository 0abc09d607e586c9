import Dispatch
import Foundation
import Synchronization

/// Candor's tables on a PostgreSQL server (15 or later): the backend for installs that outgrow
/// one machine. Any number of Candor processes may open the same database; what must happen
/// once (migrations, a scheduled job's run) is decided in the database, under advisory locks.
///
/// Connections come from a small pool (libpq, one per caller at a time). A connection that broke
/// (the server restarted or failed over) is dropped and the next caller connects again with the
/// same URL, so a multi-host URL with `target_session_attrs=read-write` finds the new primary.
public final class PostgresDatabase: Sendable {
    let url: String
    private let idle = Mutex<[PostgresConnection]>([])
    private let slots: DispatchSemaphore
    /// This process, as ingest batches record it.
    let node = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    /// UTC days whose events partition this process knows to exist.
    let partitions = Mutex<Set<Int64>>([])
    /// When this process last kept the ingestion tables (``maintainIngestion(now:)``), ms; the
    /// queue it does so on, and its last error.
    let maintainedAt = Mutex<Int64>(0)
    let maintenance = DispatchQueue(label: "candor.postgres.maintenance")
    let maintenanceError = Mutex<String?>(nil)

    /// Connects to `url` (libpq syntax: `postgres://user:password@host:port/database?…`) and brings
    /// the schema up to date, under a lock so that nodes starting together migrate it once.
    public init(url: String, maxConnections: Int = 8) throws {
        self.url = url
        self.slots = DispatchSemaphore(value: max(1, maxConnections))
        try PostgresSchema.migrate(self)
    }

    /// Runs `body` with a connection of the pool.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        let connection = try idle.withLock { $0.popLast() } ?? PostgresConnection(url: url)
        // Only a connection idle outside any transaction goes back to the pool (one left inside a
        // transaction that could not be ended would hand its state to the next caller).
        defer { if connection.isIdle { idle.withLock { $0.append(connection) } } }
        return try body(connection)
    }

    /// Lets go of the idle connections: after one was found lost (the server restarted or failed
    /// over), the others are too, and the next caller should not be handed one.
    func dropIdleConnections() {
        idle.withLock { $0.removeAll() }
    }

    /// Runs `body` in one READ COMMITTED transaction (whatever the server's default: each
    /// statement sees what committed before it, which locking before reading relies on): it
    /// commits when `body` returns and rolls back when it throws. A COMMIT that fails with a lost
    /// connection leaves the outcome unknown; the error says so (``PostgresError/connectionLost``).
    func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withConnection { connection in
            try connection.query("BEGIN ISOLATION LEVEL READ COMMITTED")
            let result: T
            do {
                result = try body(connection)
            } catch {
                _ = try? connection.query("ROLLBACK")
                throw error
            }
            // COMMIT of a transaction a failed statement aborted answers "ROLLBACK", not an error.
            let commit = try connection.query("COMMIT")
            guard commit.command == "COMMIT" else {
                throw PostgresError(message: "the transaction was rolled back (a statement in it failed)", sqlState: "25P02")
            }
            return result
        }
    }

    /// One statement outside a transaction of the caller's.
    @discardableResult
    func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        try withConnection { try $0.query(sql, parameters) }
    }

    /// The server's version (`SHOW server_version`).
    public func serverVersion() throws -> String {
        try query("SHOW server_version").text(0, 0) ?? "unknown"
    }
}

/// The advisory-lock classes Candor takes (the first key of `pg_advisory_xact_lock(int, int)`).
enum AdvisoryLock: Int32 {
    /// Schema migrations (second key 0).
    case migrations = 0x4341_0001
    /// One scheduled job (second key: `hashtext(name)`).
    case job = 0x4341_0002
    /// The audit chain's head (second key 0).
    case audit = 0x4341_0003
    /// One ingest batch (second key: from its id), held by each attempt to store it.
    case batch = 0x4341_0004
    // Ingestion locks a visitor with the one-key form, pg_advisory_xact_lock(bigint), whose keys
    // never meet these two-key ones.
}
