public import Foundation
public import Storage
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
/// A salt is 32 random bytes (never derived from the date or a fixed secret), one per day,
/// stored in the database so a restart keeps counting the same visitors. Days are local dates:
/// a site's visitors are hashed with the salt of the site's own day (``SiteCalendar``), so a
/// visitor is one visitor for the whole of a local day. Yesterday's salt stays until `overlap`
/// after the site's midnight so sessions that span midnight continue; once that has passed in
/// the zone of every site, its row is deleted (secure_delete) and its memory zeroed, and it is
/// recorded as destroyed once a WAL truncation after the deletion is verified (``Scrubber``).
/// After that nobody, including us, can recompute a past day's visitor hashes. (A day's salt
/// so lives from the start of that date in the easternmost zone in use to the end of the
/// overlap in the westernmost: at most about 50 hours.)
public final class SaltKeeper: Sendable {
    public static let defaultOverlap: TimeInterval = 3600

    private struct State {
        /// Salts by day, in sodium memory.
        var salts: [Int64: SecretBytes] = [:]
        /// Days whose salt was deleted already (never made again).
        var deleted: Set<Int64> = []
    }

    private let vault: any SaltVault
    /// The zones of the install's sites (UTC when there is none).
    private let zones: @Sendable () throws -> Set<SiteCalendar>
    /// Where a rotation pass is recorded as the job run "salt_rotation".
    private let ledger: any JobLedger
    private let overlap: TimeInterval

    /// Records a rotation pass of process `node` as the job run "salt_rotation" (its detail starts
    /// with "failed" when it failed). Every process rotates its own copies, so nothing is claimed.
    public func recordRun(at t: Int64, node: String, detail: String) throws {
        try ledger.finishRun(job: "salt_rotation", node: node, at: t, detail: detail)
    }
    private let audit: AuditLog
    private let state = Mutex(State())

    public convenience init(database: AppDatabase, overlap: TimeInterval = SaltKeeper.defaultOverlap, audit: AuditLog? = nil) throws {
        try self.init(vault: database, ledger: database, zones: { Set(try database.sites().map(\.calendar)) }, overlap: overlap, audit: audit)
    }

    /// Keeps the salts in `vault`, for sites in the zones `zones` returns; loads the stored ones.
    public init(vault: any SaltVault, ledger: any JobLedger, zones: @escaping @Sendable () throws -> Set<SiteCalendar>,
                overlap: TimeInterval = SaltKeeper.defaultOverlap, audit: AuditLog? = nil) throws {
        self.vault = vault
        self.ledger = ledger
        self.zones = zones
        self.overlap = overlap
        self.audit = audit ?? AuditLog(chain: vault)
        var loaded: [Int64: SecretBytes] = [:]
        try vault.withSalts { day, bytes in loaded[day] = SecretBytes(copying: bytes) }
        state.withLock { $0.salts = loaded }
    }

    /// Visitor hash of (site, ip, user agent) under the salt of `now`'s day in the site's
    /// `calendar`, and under yesterday's salt while it is still kept (the overlap window).
    public func visitorHashes(site: String, ip: String, userAgent: String, now: Date, calendar: SiteCalendar = .utc) throws
        -> (current: Int64, previous: Int64?) {
        let (current, previous) = try salts(now: now, calendar: calendar)
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

    private func salts(now: Date, calendar: SiteCalendar) throws -> (SecretBytes, SecretBytes?) {
        let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        var day = calendar.day(of: ms)
        var inOverlap = Double(ms - calendar.start(of: day)) / 1000 < overlap
        return try state.withLock { state in
            // A day whose salt is gone already (a site moved to, or was added in, a zone still on
            // that day after every other zone had left it) takes the next day's: a destroyed salt
            // is never made again.
            for _ in 0..<3 {
                if state.deleted.contains(day) { day += 1; inOverlap = false; continue }
                if let existing = state.salts[day] { return (existing, inOverlap ? state.salts[day - 1] : nil) }
                let fresh = SecretBytes(random: 32)
                // The new salt and the audit entry recording it commit together; if another process
                // stored the day's salt first, that one is used.
                let made = try vault.writingSalts { tx -> SecretBytes? in
                    if try tx.saltDeleted(day: day) { return nil }
                    if try fresh.withBytes({ try tx.insertSalt(day: day, bytes: $0) }) {
                        try audit.record(in: tx, actor: "system", action: "salt_rotated", detail: ["day": .int(day)])
                        return fresh
                    }
                    guard let stored = try tx.withSalt(day: day, { SecretBytes(copying: $0) }) else {
                        throw StoreError("the salt of day \(day) is neither new nor stored")
                    }
                    return stored
                }
                guard let made else { state.deleted.insert(day); continue }
                state.salts[day] = made
                return (made, inOverlap ? state.salts[day - 1] : nil)
            }
            throw StoreError("no salt can be made for day \(day)")
        }
    }

    /// Stores again the salts this process holds that the store no longer has (and did not
    /// delete): PostgreSQL empties its UNLOGGED salts table after a crash, and a node started
    /// afterwards would make a new salt for the day and count every visitor twice. Where another
    /// process stored a salt for a day first (its copy, or a new one made before this pass), the
    /// stored one is taken, so every process converges on one salt per day within a pass (the
    /// rotation service calls this at least once a minute). Returns the days this
    /// process stored again (each with a `salt_restored` audit entry).
    @discardableResult
    public func restoreLost() throws -> [Int64] {
        let held = state.withLock { $0.salts }
        guard !held.isEmpty else { return [] }
        var stored: [Int64: SecretBytes] = [:]
        try vault.withSalts { day, bytes in if held[day] != nil { stored[day] = SecretBytes(copying: bytes) } }
        var restored: [Int64] = []
        for (day, salt) in held.sorted(by: { $0.key < $1.key }) {
            if let copy = stored[day] {
                // A process that did not hold the day stored a new salt for it before this pass:
                // the stored one is taken, so every process counts alike from now on.
                let same = salt.withBytes { a in copy.withBytes { b in a.elementsEqual(b) } }
                if !same { state.withLock { $0.salts[day] = copy } }
                continue
            }
            let (kept, storedNow) = try vault.writingSalts { tx -> (SecretBytes?, Bool) in
                if try tx.saltDeleted(day: day) { return (nil, false) }
                if try salt.withBytes({ try tx.insertSalt(day: day, bytes: $0) }) {
                    try audit.record(in: tx, actor: "system", action: "salt_restored", detail: ["day": .int(day)])
                    return (salt, true)
                }
                return (try tx.withSalt(day: day, { SecretBytes(copying: $0) }), false)
            }
            state.withLock { s in
                if let kept { s.salts[day] = kept } else { s.salts[day] = nil; s.deleted.insert(day) }
            }
            if storedNow { restored.append(day) }
        }
        return restored
    }

    private func calendars() throws -> Set<SiteCalendar> {
        let all = try zones()
        return all.isEmpty ? [.utc] : all
    }

    /// Makes sure today's salt exists in every site's zone (called at midnight by the rotation service).
    public func rotate(now: Date) throws {
        for c in try calendars() { _ = try salts(now: now, calendar: c) }
    }

    /// The oldest day whose salt a site still needs at `now`: its today, or its yesterday during the overlap.
    private func oldestNeeded(now: Date) throws -> Int64 {
        let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        return try calendars().map { c in
            let today = c.day(of: ms)
            return Double(ms - c.start(of: today)) / 1000 < overlap ? today - 1 : today
        }.min() ?? utcDay(now)
    }

    /// Deletes every salt no longer needed at `now` (all days before yesterday, and yesterday's
    /// once the overlap window has passed) and zeroes it in memory. Each deleted day is recorded
    /// as waiting for destruction; ``Scrubber/run(actor:)`` marks it destroyed (and writes
    /// `salt_destroyed`) once a WAL truncation after the deletion is verified. Returns the days
    /// deleted now.
    @discardableResult
    public func deleteExpired(now: Date) throws -> [Int64] {
        let oldest = try oldestNeeded(now: now)
        let expired = try vault.saltDays().filter { $0 < oldest }
        let at = Int64(now.timeIntervalSince1970 * 1000)
        let deleted = expired.isEmpty ? [] : try vault.writingSalts { tx in try tx.deleteSalts(days: expired, at: at) }
        // Dropping the last reference frees the sodium memory, which zeroes it.
        state.withLock { s in for day in s.salts.keys where day < oldest { s.salts[day] = nil } }
        return deleted
    }

    /// Days currently held in memory (tests, health).
    public var daysInMemory: [Int64] {
        state.withLock { $0.salts.keys.sorted() }
    }

    /// When the next rotation or destruction is due after `now`, in the zone where it comes
    /// first: the overlap's end where yesterday's salt is still held, else the next midnight.
    public func nextDeadline(after now: Date) -> Date {
        let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        let next = ((try? calendars()) ?? [.utc]).map { c -> Int64 in
            let today = c.day(of: ms)
            let overlapEnd = c.start(of: today) + Int64(overlap * 1000)
            return ms < overlapEnd ? overlapEnd : c.end(of: today)
        }.min() ?? ms + 60_000
        return Date(timeIntervalSince1970: Double(next) / 1000)
    }
}
