import Foundation
import GRDB
import Storage
import GRDBSQLite
import Synchronization

/// The analytics engine's memory: per site and local day (its time zone, ``SiteCalendar``), the day's events and the visits that
/// started on it as columns of dictionary codes, so that a view under any filters is a scan of
/// integer arrays instead of SQL over the raw rows (see `FactQuery.swift`).
///
/// A day is loaded only once its rollup exists (the rollup job builds it); a loaded day is used
/// only while its change generation is the one it was loaded at (`fact_changes`, raised in the
/// same transaction by every rollup refresh, by any process, and by erasures, retention purges
/// and expiring columns). A day that late events arrived for (`rollup_stale`: events a browser
/// queued while offline) keeps its loaded copy until the rollup job rebuilds it, within a
/// minute, as today's does; views over it say so (``FactFigures/lateDays``). Anything else — a
/// day not loaded yet, a process that never loads (the CLI) — reads the raw events, which give
/// the same figures, slower.
public final class FactStore: Sendable {
    let writer: any DatabaseWriter
    private let state = Mutex<[String: SiteFacts]>([:])
    /// Goal counts of whole days without filters (see `Scan.goals`), at most 4096 days.
    let goalDays = Memo<GoalDayKey, Tally>(capacity: 4096)
    /// Funnel counts by what they depend on (see `AppDatabase.factFunnel`), at most 256.
    let funnels = Memo<FunnelKey, [FunnelCounts]>(capacity: 256)

    init(writer: any DatabaseWriter) { self.writer = writer }

    private let loading = Atomic<Bool>(false)
    /// Whether this process is loading the engine for the first time (``expectLoad()`` until the
    /// end of the first complete ``reconcile(maxDays:)``). Views it does not hold wait meanwhile
    /// instead of being counted from the raw events. Processes that never load (the CLI) never are.
    public var isLoading: Bool { loading.load(ordering: .acquiring) }
    /// Marks the engine as loading until the next complete ``reconcile(maxDays:)`` (`candor serve` at start).
    public func expectLoad() { loading.store(true, ordering: .releasing) }

    /// The dimensions every event carries besides its page and name: one "profile" per distinct
    /// combination and day (events of one visit mostly share one).
    static let profileDimensions: [Dimension] = [.channel, .sourceName, .source, .referrer, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent,
                                                 .country, .region, .city, .asnOrg, .browser, .os, .device, .screen]

    /// Events and visits held in memory (for `/metrics` and the benchmark).
    public var loaded: (days: Int, events: Int, visits: Int, bytes: Int) {
        state.withLock { sites in
            sites.values.reduce((0, 0, 0, 0)) { t, s in
                s.blocks.values.reduce(t) { ($0.0 + 1, $0.1 + $1.events, $0.2 + $1.visitID.count, $0.3 + $1.bytes) }
            }
        }
    }

    /// Loads every day whose rollup is newer than (or missing from) memory and drops the days
    /// that no longer have one, for every site; returns how many days were loaded.
    @discardableResult
    public func reconcile(maxDays: Int = .max) throws -> Int {
        // The first complete pass ends the loading state, even when it fails (views then fall
        // back to the raw events, slower, rather than wait for ever).
        defer { if maxDays == .max { loading.store(false, ordering: .releasing) } }
        let sites = try writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM sites ORDER BY id") }
        var loaded = 0
        state.withLock { current in
            for gone in Set(current.keys).subtracting(sites) { current[gone] = nil }
        }
        for site in sites {
            let calendar = try writer.read { db in try AppDatabase.calendar(db, site: site) }
            // Days before the first stored event are answered by their rollups alone.
            let first = try daysWithEvents(site: site, calendar, fromDay: .max, toDay: .max).first ?? .max
            // Days counted in another zone (the site moved) wait for their new rollup.
            let wanted = try versions(site: site, calendar, fromDay: first, toDay: .max).compactMapValues { $0.current ? $0.generation : nil }
            let facts = siteFacts(site)
            let have = state.withLock { _ in facts.blocks.mapValues(\.generation) }
            for day in have.keys where wanted[day] == nil { state.withLock { _ in facts.blocks[day] = nil } }
            // Newest days first (today's view is the one most often open), a day per core at a time.
            let days = Array(wanted.sorted(by: { $0.key > $1.key }).filter { have[$0.key] != $0.value }.map(\.key).prefix(maxDays - loaded))
            let next = Mutex(0), failure = Mutex<(any Error)?>(nil)
            DispatchQueue.concurrentPerform(iterations: max(1, min(ProcessInfo.processInfo.activeProcessorCount, days.count))) { _ in
                while let day = next.withLock({ i -> Int64? in
                    guard i < days.count, failure.withLock({ $0 == nil }) else { return nil }
                    defer { i += 1 }
                    return days[i]
                }) {
                    do {
                        if let block = try load(site: site, day: day, codes: facts.codes) { state.withLock { _ in facts.blocks[day] = block } }
                    } catch {
                        failure.withLock { $0 = error }
                    }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
            loaded += days.count
        }
        return loaded
    }

    /// The loaded days of `site` covering `from..<to`, when every one of them is current; nil otherwise.
    func view(site: String, from: Int64, to: Int64) -> FactView? {
        guard to > from, let calendar = try? writer.read({ db in try AppDatabase.calendar(db, site: site) }) else { return nil }
        let fromDay = calendar.day(of: from), toDay = calendar.day(of: to - 1)
        guard let facts = state.withLock({ $0[site] }),
              let wanted = try? versions(site: site, calendar, fromDay: fromDay, toDay: toDay),
              let (first, days) = try? daysWithEvents(site: site, calendar, fromDay: fromDay, toDay: toDay) else { return nil }
        // Days before the first stored event (retention keeps rollups longer than events) are
        // answered by their rollups, not by the engine's empty copies.
        if wanted.keys.contains(where: { day in first.map { day < $0 } ?? true }) { return nil }
        var blocks: [FactBlock] = []
        var lateDays = 0
        for day in days {
            guard let version = wanted[day] else {
                // A day without a rollup is fine only when it has nothing to roll up (no event).
                guard (try? hasEvents(site: site, calendar, day: day)) == false else { return nil }
                continue
            }
            // A day counted in another zone is not rolled up anew yet.
            guard version.current, let block = state.withLock({ _ in facts.blocks[day] }), block.generation == version.generation,
                  block.zone == calendar.identifier else { return nil }
            blocks.append(block)
            if version.late { lateDays += 1 }
        }
        return FactView(codes: facts.codes, blocks: blocks, from: from, to: to, calendar: calendar, site: site, goalDays: goalDays,
                        lateDays: lateDays)
    }

    /// Forgets every loaded day of a site (tests: a server that has not loaded it yet).
    func unload(site: String) {
        state.withLock { _ = $0.removeValue(forKey: site) }
    }

    private func siteFacts(_ site: String) -> SiteFacts {
        state.withLock { sites in
            if let s = sites[site] { return s }
            let s = SiteFacts()
            sites[site] = s
            return s
        }
    }

    /// Rolled-up days of the site in `fromDay...toDay`, with the day's change generation, whether
    /// the rollup is in the site's zone (`calendar`'s) and whether late events wait for it.
    private func versions(site: String, _ calendar: SiteCalendar, fromDay: Int64, toDay: Int64)
        throws -> [Int64: (generation: Int64, current: Bool, late: Bool)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT r.day, coalesce(c.generation, 0), r.zone = ?, s.day IS NOT NULL FROM rollup_days r
                LEFT JOIN fact_changes c ON c.site_id = r.site_id AND c.day = r.day
                LEFT JOIN rollup_stale s ON s.site_id = r.site_id AND s.day = r.day
                WHERE r.site_id = ? AND r.day BETWEEN ? AND ?
                """, arguments: [calendar.identifier, site, fromDay, toDay]).reduce(into: [:]) {
                $0[$1[0]] = ($1[1] as Int64, $1[2] as Bool, $1[3] as Bool)
            }
        }
    }

    /// The day of the site's first stored event, and the days of `fromDay...toDay` from it to the
    /// last event's (a day outside needs no block), in the site's days (`calendar`).
    private func daysWithEvents(site: String, _ calendar: SiteCalendar, fromDay: Int64, toDay: Int64) throws -> (first: Int64?, days: [Int64]) {
        try writer.read { db in
            guard let (first, last) = try AppDatabase.eventSpan(db, site: site) else { return (nil, []) }
            let firstDay = calendar.day(of: first)
            let lower = max(firstDay, fromDay), upper = min(calendar.day(of: last), toDay)
            guard lower <= upper else { return (firstDay, []) }
            return (firstDay, Array(lower...upper))
        }
    }

    private func hasEvents(site: String, _ calendar: SiteCalendar, day: Int64) throws -> Bool {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT 1 FROM events WHERE site_id = ? AND ts >= ? AND ts < ? LIMIT 1",
                                    arguments: [site, calendar.start(of: day), calendar.end(of: day)]) != nil
        }
    }

    /// Reads one day of a site, or nil when its rollup is missing or stale (nothing to match it against).
    private func load(site: String, day: Int64, codes: SiteCodes) throws -> FactBlock? {
        try writer.read { db -> FactBlock? in
            guard let generation = try Int64.fetchOne(db, sql: """
                SELECT coalesce(c.generation, 0) FROM rollup_days r
                LEFT JOIN fact_changes c ON c.site_id = r.site_id AND c.day = r.day
                WHERE r.site_id = ? AND r.day = ? AND r.zone = ?
                  AND r.day NOT IN (SELECT day FROM rollup_stale WHERE site_id = ?)
                """, arguments: [site, day, try AppDatabase.calendar(db, site: site).identifier, site]) else { return nil }
            return try Self.read(db, site: site, day: day, codes: codes, generation: generation)
        }
    }

    /// Reads one day of a site as it is now (the rollup job writes the day's rollup from it, see
    /// `refreshRollup`), with the site's codebooks.
    /// The block carries the day's generation as of the same snapshot.
    func read(site: String, day: Int64) throws -> (FactBlock, SiteCodes) {
        let codes = siteFacts(site).codes
        return (try writer.read { db in
            let generation = try Int64.fetchOne(db, sql: "SELECT generation FROM fact_changes WHERE site_id = ? AND day = ?",
                                                arguments: [site, day]) ?? 0
            return try Self.read(db, site: site, day: day, codes: codes, generation: generation)
        }, codes)
    }

    /// Keeps a day read by ``read(site:day:)`` as loaded at `generation` (the one its rollup was written with).
    func keep(_ block: FactBlock, site: String, generation: Int64) {
        var b = block
        b.generation = generation
        let facts = siteFacts(site)
        state.withLock { _ in facts.blocks[b.day] = b }
    }

    private static func read(_ db: Database, site: String, day: Int64, codes: SiteCodes, generation: Int64) throws -> FactBlock {
        let calendar = try AppDatabase.calendar(db, site: site)
        let start = calendar.start(of: day), end = calendar.end(of: day)
        var b = FactBlock(day: day, start: start, end: end, zone: calendar.identifier, generation: generation)
        let profileColumns = Self.profileDimensions.map(\.rawValue).joined(separator: ", ")
        // Sorted by visitor, then time: a visitor's events are contiguous, which makes distinct
        // counts a comparison with the previous row, and repeats of a visit's fields cheap to code.
        var events = try RawStatement(db, """
            SELECT visitor, ts, name, path, coalesce(session_id, -1), coalesce(engaged_ms, -1), coalesce(scroll, -1), \(profileColumns),
              CASE WHEN props IS NULL THEN -1 ELSE id END
            FROM events WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY visitor, ts
            """)
        events.start(); events.bind(site); events.bind(start); events.bind(end)
        var visitors = VisitorCoder()
        var name = ColumnCoder(), path = ColumnCoder()
        var fields = [ColumnCoder](repeating: ColumnCoder(), count: Self.profileDimensions.count)
        var profile = [UInt32](repeating: 0, count: Self.profileDimensions.count)
        var profileIDs: [[UInt32]: UInt32] = [:]
        var lastProfile: UInt32 = 0
        var firstRow = true
        var withProps: [Int64: UInt32] = [:]
        let propsColumn = Int32(7 + Self.profileDimensions.count)
        try events.forEachRow { row in
            if row.int64(propsColumn) >= 0 { withProps[row.int64(propsColumn)] = UInt32(b.visitor.count) }
            b.visitor.append(visitors.code(row.int64(0)))
            b.ts.append(Int32(row.int64(1) - start))
            b.name.append(name.code(row, 2, codes.name))
            b.path.append(path.code(row, 3, codes.path))
            let session = row.int64(4)
            b.session.append(session)
            if session >= 0 { b.sessionRange = (min(b.sessionRange.lower, session), max(b.sessionRange.upper, session)) }
            b.engaged.append(Int32(clamping: row.int64(5)))
            b.scroll.append(Int8(clamping: row.int64(6)))
            var changed = firstRow
            for i in 0..<fields.count {
                let (c, same) = fields[i].codeNoting(row, Int32(7 + i), codes.fields[i])
                if !same { changed = true }
                profile[i] = c
            }
            firstRow = false
            if changed {
                if let id = profileIDs[profile] { lastProfile = id } else {
                    lastProfile = UInt32(profileIDs.count)
                    profileIDs[profile] = lastProfile
                    b.profiles.append(contentsOf: profile)
                }
            }
            if b.profile.last != lastProfile { b.runs.append(UInt32(b.profile.count)) }
            b.profile.append(lastProfile)
        }
        // Custom-event properties, each `key = value` pair as one code (identified by key and
        // value, shown as SQLite's `key || ' = ' || value`).
        if !withProps.isEmpty {
            var props = try RawStatement(db, """
                SELECT e.id, json_array(j.key, CAST(j.value AS TEXT)), j.key || ' = ' || CAST(j.value AS TEXT)
                FROM events e, json_each(e.props) j WHERE e.site_id = ? AND e.ts >= ? AND e.ts < ? AND e.props IS NOT NULL
                """)
            props.start(); props.bind(site); props.bind(start); props.bind(end)
            var pairs: [(UInt32, UInt32)] = []
            try props.forEachRow { row in
                guard let event = withProps[row.int64(0)], let identity = row.text(1) else { return }
                pairs.append((event, codes.property(identity, shown: row.text(2))))
            }
            pairs.sort { $0 < $1 }
            b.propEvent = pairs.map(\.0)
            b.propPair = pairs.map(\.1)
        }
        var sessions = try RawStatement(db, """
            SELECT id, visitor, started_at, bounce, duration_ms, entry_path, exit_path FROM sessions
            WHERE site_id = ? AND started_at >= ? AND started_at < ? ORDER BY visitor, started_at
            """)
        sessions.start(); sessions.bind(site); sessions.bind(start); sessions.bind(end)
        var entry = ColumnCoder(), exit = ColumnCoder()
        try sessions.forEachRow { row in
            let id = row.int64(0)
            b.visitID.append(id)
            b.sessionRange = (min(b.sessionRange.lower, id), max(b.sessionRange.upper, id))
            b.visitVisitor.append(visitors.code(row.int64(1)))
            b.visitStart.append(Int32(row.int64(2) - start))
            b.visitBounce.append(UInt8(clamping: row.int64(3)))
            b.visitDuration.append(row.int64(4))
            b.visitEntry.append(entry.code(row, 5, codes.path))
            b.visitExit.append(exit.code(row, 6, codes.path))
        }
        b.totals = FactView.totals(of: b, codes: codes)
        return b
    }
}

/// One site's loaded days and the codes their values share.
final class SiteFacts: @unchecked Sendable {
    // Guarded by the FactStore's lock.
    var blocks: [Int64: FactBlock] = [:]
    let codes = SiteCodes()
}

/// Codes of one dimension's values for one site; 0 stands for no value (NULL). Codes only grow
/// while the process runs (a value's code never changes, so loaded days stay valid).
/// Values are told apart by their bytes, as SQLite compares text (Swift's `==` would merge
/// canonically equivalent spellings such as a composed and a decomposed "é").
final class Codebook: Sendable {
    private let state = Mutex<(codes: [[UInt8]: UInt32], values: [String], ranks: [UInt32])>(([:], [""], [0]))

    func code(_ value: String) -> UInt32 { code(bytes: Array(value.utf8)) }

    func code(bytes: [UInt8]) -> UInt32 {
        state.withLock { s in
            if let c = s.codes[bytes] { return c }
            let c = UInt32(s.values.count)
            s.codes[bytes] = c
            s.values.append(String(decoding: bytes, as: UTF8.self))
            return c
        }
    }

    /// The code of a value some event had, nil when none had it.
    func existing(_ value: String) -> UInt32? { state.withLock { $0.codes[Array(value.utf8)] } }

    /// Every value by code (index 0 unused).
    var values: [String] { state.withLock { $0.values } }

    /// Every value by code, with each code's place in the bytewise order of the values (0 for no
    /// value, code 0), as SQLite orders text: tables sort by integers instead of comparing
    /// strings. Ordered again only when the book has grown since last asked.
    var ranked: (values: [String], ranks: [UInt32]) {
        state.withLock { s in
            if s.ranks.count != s.values.count {
                let values = s.values
                let order = (1..<values.count).sorted { values[$0].utf8.lexicographicallyPrecedes(values[$1].utf8) }
                var ranks = [UInt32](repeating: 0, count: values.count)
                for (place, code) in order.enumerated() { ranks[code] = UInt32(place + 1) }
                s.ranks = ranks
            }
            return (s.values, s.ranks)
        }
    }
}

/// The codebooks of one site: pages (also entry and exit pages), event names, each profile
/// dimension, and custom-event property pairs (with the text each is shown as).
final class SiteCodes: Sendable {
    let path = Codebook()
    let name = Codebook()
    let fields = FactStore.profileDimensions.map { _ in Codebook() }
    let properties = Codebook()
    private let shown = Mutex<[String?]>([nil])

    /// The code of a property pair (by its identity), remembering how it is shown.
    func property(_ identity: String, shown text: String?) -> UInt32 {
        let c = properties.code(identity)
        shown.withLock { all in
            if Int(c) >= all.count { all.append(contentsOf: [String?](repeating: nil, count: Int(c) + 1 - all.count)) }
            if all[Int(c)] == nil { all[Int(c)] = text }
        }
        return c
    }

    /// How each property pair is shown, by code.
    var propertyTexts: [String?] { shown.withLock { $0 } }

    func book(_ d: Dimension) -> Codebook {
        switch d {
        case .page: path
        case .event: name
        default: fields[FactStore.profileDimensions.firstIndex(of: d)!]
        }
    }
}

/// One local day of one site.
struct FactBlock: Sendable {
    let day: Int64
    /// The day's bounds (ms) in the zone it was read in (23, 24 or 25 hours).
    let start: Int64, end: Int64
    let zone: String
    var generation: Int64
    // Events, sorted by visitor then time. Visitor codes are dense within the day; ts is ms after
    // the day's start; session -1 is none; engaged -1 and scroll -1 are NULL.
    var visitor: [UInt32] = []
    var ts: [Int32] = []
    var name: [UInt32] = []
    var path: [UInt32] = []
    var session: [Int64] = []
    var engaged: [Int32] = []
    var scroll: [Int8] = []
    var profile: [UInt32] = []
    /// Where each run of events with one profile starts (a visitor's events mostly share one):
    /// scans under field filters skip the runs whose profile fails them.
    var runs: [UInt32] = []
    /// Codes of ``FactStore/profileDimensions`` per profile, flattened.
    var profiles: [UInt32] = []
    /// Property pairs of custom events: the event's index and the pair's code, by event index.
    var propEvent: [UInt32] = []
    var propPair: [UInt32] = []
    // Visits started on the day, sorted by visitor.
    var visitID: [Int64] = []
    var visitVisitor: [UInt32] = []
    var visitStart: [Int32] = []
    var visitBounce: [UInt8] = []
    var visitDuration: [Int64] = []
    var visitEntry: [UInt32] = []
    var visitExit: [UInt32] = []
    /// Least and greatest session id referred to.
    var sessionRange: (lower: Int64, upper: Int64) = (.max, .min)
    /// The day's figures without filters.
    var totals = DayTotals()

    init(day: Int64, start: Int64, end: Int64, zone: String, generation: Int64) {
        self.day = day; self.start = start; self.end = end; self.zone = zone; self.generation = generation
    }

    var events: Int { visitor.count }

    /// The event columns as raw pointers, for a scan's inner loop (all `count` long; `profiles`
    /// holds ``FactStore/profileDimensions``'s codes per profile).
    struct Columns {
        let count: Int
        let visitor: UnsafePointer<UInt32>, ts: UnsafePointer<Int32>, name: UnsafePointer<UInt32>, path: UnsafePointer<UInt32>
        let session: UnsafePointer<Int64>, engaged: UnsafePointer<Int32>, scroll: UnsafePointer<Int8>, profile: UnsafePointer<UInt32>
        let profiles: UnsafePointer<UInt32>
        let runs: UnsafePointer<UInt32>, runCount: Int
    }

    func withColumns<R>(_ body: (Columns) -> R) -> R {
        func base<T>(_ p: UnsafeBufferPointer<T>) -> UnsafePointer<T> { p.baseAddress ?? UnsafePointer(UnsafeMutablePointer<T>.dangling) }
        return visitor.withUnsafeBufferPointer { visitor in ts.withUnsafeBufferPointer { ts in name.withUnsafeBufferPointer { name in
            path.withUnsafeBufferPointer { path in session.withUnsafeBufferPointer { session in engaged.withUnsafeBufferPointer { engaged in
                scroll.withUnsafeBufferPointer { scroll in profile.withUnsafeBufferPointer { profile in profiles.withUnsafeBufferPointer { profiles in
                    runs.withUnsafeBufferPointer { runs in
                        body(Columns(count: visitor.count, visitor: base(visitor), ts: base(ts), name: base(name), path: base(path), session: base(session),
                                     engaged: base(engaged), scroll: base(scroll), profile: base(profile), profiles: base(profiles),
                                     runs: base(runs), runCount: runs.count))
                    }
                }}}
            }}}
        }}}
    }
    var bytes: Int { events * 37 + profiles.count * 4 + runs.count * 4 + visitID.count * 37 }
}

/// Dense codes for the visitor hashes of one day, in order of first appearance.
private struct VisitorCoder {
    var codes: [Int64: UInt32] = [:]
    var last: (Int64, UInt32)?
    mutating func code(_ hash: Int64) -> UInt32 {
        if let last, last.0 == hash { return last.1 }
        let c = codes[hash] ?? { let c = UInt32(codes.count); codes[hash] = c; return c }()
        last = (hash, c)
        return c
    }
}

/// Codes a text column, reusing the previous row's code when its bytes repeat (rows come grouped
/// by visitor, so most do), without making a String for them.
private struct ColumnCoder {
    var last: [UInt8] = []
    var lastCode: UInt32 = 0
    var lastNull = true
    var started = false

    mutating func code(_ row: RawStatement, _ column: Int32, _ book: Codebook) -> UInt32 { codeNoting(row, column, book).0 }

    /// The code, and whether it is the previous row's.
    mutating func codeNoting(_ row: RawStatement, _ column: Int32, _ book: Codebook) -> (UInt32, Bool) {
        guard let bytes = row.textBytes(column) else {
            defer { lastNull = true; lastCode = 0; started = true }
            return (0, started && lastNull)
        }
        if started && !lastNull && bytes.elementsEqual(last) { return (lastCode, true) }
        last = Array(bytes)
        lastNull = false
        started = true
        lastCode = book.code(bytes: last)
        return (lastCode, false)
    }
}

extension WriteTransaction {
    /// Raises the change generation of the site's days holding `from...to` (ms) so the engine
    /// reloads them: called, in their own transaction, by whatever deletes or rewrites stored
    /// events or visits other than by appending (erasure, retention, expiring columns).
    func factsChanged(site: String, from: Int64, to: Int64) throws {
        let calendar = try AppDatabase.calendar(db, site: site)
        let last = calendar.day(of: to), first = calendar.day(of: from)
        guard first <= last else { return }
        // A range longer than a retention policy can hold is cut (its older days have no rollup to match anyway).
        try factsChanged(site: site, days: Array(max(first, last - 4000)...last))
    }

    /// The same for the days of `days` (local day numbers).
    func factsChanged(site: String, days: [Int64]) throws {
        guard let last = days.max() else { return }
        let statement = try db.cachedStatement(sql: """
            INSERT INTO fact_changes (site_id, day, generation) VALUES (?, ?, 1)
            ON CONFLICT(site_id, day) DO UPDATE SET generation = generation + 1
            """)
        for day in Set(days) where day >= last - 4000 { try statement.execute(arguments: [site, day]) }
    }
}
