public import Foundation
public import Store
import Synchronization

/// A UTC day number (days since 1970-01-01).
public func utcDay(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
}

/// Start of a UTC day.
public func startOfUTCDay(_ day: Int64) -> Date {
    Date(timeIntervalSince1970: Double(day) * 86_400)
}

/// Owns the daily visitor-hash salts.
///
/// A salt is 32 random bytes (never derived from the date or a fixed secret), one per UTC day,
/// stored in the database so a restart keeps counting the same visitors. Yesterday's salt stays
/// until `overlap` after midnight so sessions that span midnight continue; then its row is
/// deleted (secure_delete) and its memory zeroed, and it is recorded as destroyed once a WAL
/// truncation after the deletion is verified (``Scrubber``). After that nobody, including us,
/// can recompute a past day's visitor hashes.
public final class SaltKeeper: Sendable {
    public static let defaultOverlap: TimeInterval = 3600

    private struct State {
        /// Salts by day, in sodium memory.
        var salts: [Int64: SecretBytes] = [:]
    }

    private let database: AppDatabase
    private let overlap: TimeInterval
    private let audit: AuditLog
    private let state = Mutex(State())

    public init(database: AppDatabase, overlap: TimeInterval = SaltKeeper.defaultOverlap, audit: AuditLog? = nil) throws {
        self.database = database
        self.overlap = overlap
        self.audit = audit ?? AuditLog(database: database)
        var loaded: [Int64: SecretBytes] = [:]
        try database.withSalts { day, bytes in loaded[day] = SecretBytes(copying: bytes) }
        state.withLock { $0.salts = loaded }
    }

    /// Visitor hash of (site, ip, user agent) under the salt of `now`'s day, and under
    /// yesterday's salt while it is still kept (the overlap window).
    public func visitorHashes(site: String, ip: String, userAgent: String, now: Date) throws
        -> (current: Int64, previous: Int64?) {
        let day = utcDay(now)
        let (current, previous) = try salts(day: day, now: now)
        var message = [UInt8]()
        message.reserveCapacity(site.utf8.count + ip.utf8.count + userAgent.utf8.count + 2)
        message.append(contentsOf: site.utf8); message.append(0)
        message.append(contentsOf: ip.utf8); message.append(0)
        message.append(contentsOf: userAgent.utf8)
        defer { message.withUnsafeMutableBytes { Sodium.memzero($0) } }
        let hash = { (salt: SecretBytes) -> Int64 in
            salt.withBytes { key in message.withUnsafeBytes { Sodium.keyedHash64(key: key, message: $0) } }
        }
        return (hash(current), previous.map(hash))
    }

    private func salts(day: Int64, now: Date) throws -> (SecretBytes, SecretBytes?) {
        try state.withLock { state in
            let current: SecretBytes
            if let existing = state.salts[day] {
                current = existing
            } else {
                let fresh = SecretBytes(random: 32)
                // The new salt and the audit entry recording it commit together; if another process
                // stored the day's salt first, that one is used.
                current = try database.transaction { tx in
                    if try fresh.withBytes({ try tx.insertSalt(day: day, bytes: $0) }) {
                        try audit.record(in: tx, actor: "system", action: "salt_rotated", detail: ["day": .int(day)])
                        return fresh
                    }
                    guard let stored = try tx.withSalt(day: day, { SecretBytes(copying: $0) }) else {
                        throw StoreError("the salt of day \(day) is neither new nor stored")
                    }
                    return stored
                }
                state.salts[day] = current
            }
            let inOverlap = now.timeIntervalSince(startOfUTCDay(day)) < overlap
            return (current, inOverlap ? state.salts[day - 1] : nil)
        }
    }

    /// Makes sure today's salt exists (called at midnight by the rotation service).
    public func rotate(now: Date) throws {
        _ = try salts(day: utcDay(now), now: now)
    }

    /// Deletes every salt no longer needed at `now` (all days before yesterday, and yesterday's
    /// once the overlap window has passed) and zeroes it in memory. Each deleted day is recorded
    /// as waiting for destruction; ``Scrubber/run(actor:)`` marks it destroyed (and writes
    /// `salt_destroyed`) once a WAL truncation after the deletion is verified. Returns the days
    /// deleted now.
    @discardableResult
    public func deleteExpired(now: Date) throws -> [Int64] {
        let today = utcDay(now)
        let keepYesterday = now.timeIntervalSince(startOfUTCDay(today)) < overlap
        let oldest = keepYesterday ? today - 1 : today
        let expired = try database.saltDays().filter { $0 < oldest }
        let at = Int64(now.timeIntervalSince1970 * 1000)
        let deleted = expired.isEmpty ? [] : try database.transaction { tx in try tx.deleteSalts(days: expired, at: at) }
        // Dropping the last reference frees the sodium memory, which zeroes it.
        state.withLock { s in for day in s.salts.keys where day < oldest { s.salts[day] = nil } }
        return deleted
    }

    /// Days currently held in memory (tests, health).
    public var daysInMemory: [Int64] {
        state.withLock { $0.salts.keys.sorted() }
    }

    /// When the next rotation or destruction is due after `now`: the overlap's end if
    /// yesterday's salt is still held, else the next UTC midnight.
    public func nextDeadline(after now: Date) -> Date {
        let today = utcDay(now)
        let overlapEnd = startOfUTCDay(today).addingTimeInterval(overlap)
        if now < overlapEnd { return overlapEnd }
        return startOfUTCDay(today + 1)
    }
}
