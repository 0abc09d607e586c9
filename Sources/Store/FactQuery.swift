import Foundation
import GRDB

/// Loaded days covering one range (see ``FactStore/view(site:from:to:)``).
struct FactView: Sendable {
    let codes: SiteCodes
    let blocks: [FactBlock]
    let from: Int64
    let to: Int64
}

/// Every figure of one view that comes from events and visits, computed in one pass over the
/// loaded days. The meaning of each figure and filter is the one the SQL in `Dashboard.swift`
/// and `Goals.swift` gives it (the property test in `FactEngineTests` holds them to it):
/// visitors are distinct visitor hashes per UTC day summed over the days; a filter on a field
/// keeps the events with that value; a filter on an event name keeps the visits (sessions) that
/// sent it in the range; visits are the sessions started in the range with a kept event in it.
public struct FactFigures: Sendable {
    /// Cards (conversions and revenue included).
    public internal(set) var summary = SiteSummary(visitors: 0, visits: 0, pageviews: 0, bounces: 0, durationMs: 0, conversions: 0,
                                                   revenue: Revenue(), lastEvent: nil)
    public internal(set) var breakdowns: [Dimension: [BreakdownRow]] = [:]
    public internal(set) var entry: [BreakdownRow] = [], exit: [BreakdownRow] = []
    public internal(set) var daily: [SeriesPoint] = [], hourly: [SeriesPoint] = []
    /// Pages with their engagement, most pageviews first (at most 50).
    public internal(set) var engagement: [PageEngagement] = []
    /// Every goal of the site, in the order of ``AppDatabase/goals(site:)``.
    public internal(set) var goals: [GoalResult] = []
    /// Page and event goals by id, before conversion goals join them.
    var eventGoals: [Int64: GoalResult] = [:]
}

/// Sessions by id (a bitmap over the ids the days refer to).
struct SessionBits {
    let base: Int64
    var words: [UInt64]

    init(_ blocks: [FactBlock]) {
        let lower = blocks.map(\.sessionRange.lower).min() ?? 0, upper = blocks.map(\.sessionRange.upper).max() ?? -1
        base = lower
        words = upper >= lower ? [UInt64](repeating: 0, count: Int((upper - lower) / 64) + 1) : []
    }

    @inline(__always) mutating func insert(_ id: Int64) {
        let i = Int(id - base)
        words[i >> 6] |= 1 << UInt64(i & 63)
    }

    @inline(__always) func contains(_ id: Int64) -> Bool {
        let i = id - base
        guard i >= 0, Int(i >> 6) < words.count else { return false }
        return words[Int(i >> 6)] & (1 << UInt64(i & 63)) != 0
    }
}

/// Filters as codes: a term whose value no event ever had makes the view empty.
struct CompiledFilters {
    var empty = false
    var paths: [UInt32] = []
    var fields: [(index: Int, code: UInt32)] = []
    var names: [UInt32] = []
    var isEmpty: Bool { paths.isEmpty && fields.isEmpty && names.isEmpty && !empty }

    init(_ filters: Filters, codes: SiteCodes) {
        for (d, value) in filters.terms {
            guard let code = codes.book(d).existing(value) else { empty = true; continue }
            switch d {
            case .page: paths.append(code)
            case .event: names.append(code)
            default: fields.append((FactStore.profileDimensions.firstIndex(of: d)!, code))
            }
        }
    }

    /// Per profile of the block: whether it has every field value (nil when no field is filtered).
    func profilesMatching(_ b: FactBlock) -> [Bool]? {
        guard !fields.isEmpty else { return nil }
        let width = FactStore.profileDimensions.count
        return (0..<(b.profiles.count / width)).map { p in fields.allSatisfy { b.profiles[p * width + $0.index] == $0.code } }
    }
}

/// Distinct visitors and a count per code of one dimension.
struct Tally {
    var last: [UInt64]
    var visitors: [Int32]
    var count: [Int64]

    init(_ size: Int) {
        last = [UInt64](repeating: .max, count: size)
        visitors = [Int32](repeating: 0, count: size)
        count = [Int64](repeating: 0, count: size)
    }

    @inline(__always) mutating func add(_ code: Int, visitor key: UInt64, count n: Int64) {
        if last[code] != key { last[code] = key; visitors[code] += 1 }
        count[code] += n
    }

    /// Rows with at least one visitor, most visitors first, then count, then value (bytewise, NULL first).
    func rows(_ values: [String], limit: Int) -> [BreakdownRow] {
        var codes = visitors.indices.filter { visitors[$0] > 0 }
        codes.sort { a, b in
            if visitors[a] != visitors[b] { return visitors[a] > visitors[b] }
            if count[a] != count[b] { return count[a] > count[b] }
            if a == 0 || b == 0 { return a == 0 && b != 0 }
            return values[a].utf8.lexicographicallyPrecedes(values[b].utf8)
        }
        return codes.prefix(limit).map { BreakdownRow(value: $0 == 0 ? nil : values[$0], visitors: Int(visitors[$0]), pageviews: Int(count[$0])) }
    }
}

extension Tally {
    /// The codes with a visitor, as a day keeps them.
    func sparse() -> DayTally {
        var d = DayTally()
        for c in visitors.indices where visitors[c] > 0 { d.codes.append(UInt32(c)); d.visitors.append(visitors[c]); d.counts.append(count[c]) }
        return d
    }

    /// Adds a day's counts (codes shifted by `offset`); distinct visitors of different days add up.
    mutating func add(_ d: DayTally, offset: Int = 0) {
        for i in d.codes.indices {
            let c = Int(d.codes[i]) + offset
            guard c >= 0 && c < visitors.count else { continue }
            visitors[c] += d.visitors[i]
            count[c] += d.counts[i]
        }
    }
}

/// Distinct visitors and a count per code, only the codes present (one day's table).
struct DayTally: Sendable {
    var codes: [UInt32] = []
    var visitors: [Int32] = []
    var counts: [Int64] = []
}

/// One day's figures without filters, computed when the day is loaded.
struct DayTotals: Sendable {
    var visitors = 0, pageviews = 0, visits = 0, bounces = 0
    var durationMs: Int64 = 0
    var pages = DayTally(), named = DayTally(), entry = DayTally(), exit = DayTally()
    var fields: [DayTally] = []
    /// Code = hour of the day.
    var hours = DayTally()
    var engaged: [(path: UInt32, count: Int64, sum: Int64, scrolls: Int64, depth: Int64)] = []
    /// The latest event or visit start, in ms after the day's start.
    var lastOffset: Int32 = Int32.max
}

/// The tallies of one view, filled day by day: by scanning a day's events and visits under the
/// filters, or (without filters, a day the range holds whole) by adding the day's totals.
struct Scan {
    let view: FactView
    let compiled: CompiledFilters
    let paths: [String]
    let pageview: UInt32, engagement: UInt32
    let internalNames: Set<UInt32>
    let dayBuckets: [Int64], hourBuckets: [Int64]
    /// Page goals with the paths they match, event goals with their name.
    let pageGoals: [(Goal, [Bool])]
    let eventGoals: [(Goal, UInt32)]
    var pages: Tally, named: Tally, fields: [Tally], daily: Tally, hourly: Tally, entry: Tally, exit: Tally, goalTally: Tally
    var engaged: [(count: Int64, sum: Int64, scrolls: Int64, depth: Int64)]
    var visitors = 0, pageviews = 0, visitCount = 0, bounces = 0
    var durationMs: Int64 = 0
    /// Sessions with a kept event (under filters), and per named event the sessions that sent it in the range.
    var kept: SessionBits
    var sent: [SessionBits] = []

    init(view: FactView, filters: Filters, goals: [Goal]) {
        self.view = view
        let codes = view.codes
        compiled = CompiledFilters(filters, codes: codes)
        paths = codes.path.values
        pageview = codes.name.existing("pageview") ?? .max
        engagement = codes.name.existing("engagement") ?? .max
        internalNames = Set(AppDatabase.internalEventNames.compactMap { codes.name.existing($0) })
        dayBuckets = FactView.buckets(from: view.from, to: view.to, size: AppDatabase.dayMs)
        hourBuckets = FactView.buckets(from: view.from, to: view.to, size: 3_600_000)
        let paths = paths
        pageGoals = goals.filter { $0.kind == .page }.map { g in
            (g, paths.map { p in g.match.hasSuffix("*") ? p.hasPrefix(String(g.match.dropLast())) : p == g.match })
        }
        eventGoals = goals.filter { $0.kind == .event }.map { ($0, codes.name.existing($0.match) ?? .max) }
        pages = Tally(paths.count); named = Tally(codes.name.values.count)
        fields = codes.fields.map { Tally($0.values.count) }
        daily = Tally(dayBuckets.count); hourly = Tally(hourBuckets.count)
        entry = Tally(paths.count); exit = Tally(paths.count)
        goalTally = Tally(pageGoals.count + eventGoals.count)
        engaged = [(count: Int64, sum: Int64, scrolls: Int64, depth: Int64)](repeating: (0, 0, 0, 0), count: paths.count)
        kept = SessionBits(view.blocks)
        if !compiled.empty {
            sent = compiled.names.map { name in
                var bits = SessionBits(view.blocks)
                view.sessions(sending: name, into: &bits)
                return bits
            }
        }
    }

    /// Adds a day's totals (no filters, the day wholly in the range).
    mutating func add(_ t: DayTotals, of b: FactBlock) {
        visitors += t.visitors; pageviews += t.pageviews; visitCount += t.visits; bounces += t.bounces; durationMs += t.durationMs
        pages.add(t.pages); named.add(t.named); entry.add(t.entry); exit.add(t.exit)
        for f in fields.indices { fields[f].add(t.fields[f]) }
        let day = Int(b.day - view.from / AppDatabase.dayMs)
        if day >= 0 && day < daily.visitors.count { daily.visitors[day] += Int32(t.visitors); daily.count[day] += Int64(t.pageviews) }
        hourly.add(t.hours, offset: Int(b.start / 3_600_000 - view.from / 3_600_000))
        for e in t.engaged where Int(e.path) < engaged.count {
            engaged[Int(e.path)].count += e.count; engaged[Int(e.path)].sum += e.sum
            engaged[Int(e.path)].scrolls += e.scrolls; engaged[Int(e.path)].depth += e.depth
        }
    }

    /// Scans one day's events in the range that pass the filters.
    mutating func events(_ bi: Int, _ b: FactBlock, goalsOnly: Bool) {
        let width = FactStore.profileDimensions.count
        let from = view.from
        let lo = Int32(max(0, from - b.start)), hi = Int32(min(AppDatabase.dayMs, view.to - b.start))
        let profileOK = compiled.profilesMatching(b)
        var profileViews = [Int64](repeating: 0, count: b.profiles.count / width)
        var profileSeen = [UInt64](repeating: .max, count: b.profiles.count / width)
        var lastVisitor = UInt32.max
        let blockKey = UInt64(bi) << 32
        let filtered = !compiled.isEmpty
        for i in 0..<b.events {
            let t = b.ts[i]
            guard t >= lo && t < hi else { continue }
            let p = Int(b.profile[i])
            if let profileOK, !profileOK[p] { continue }
            let path = b.path[i]
            if !compiled.paths.isEmpty && !compiled.paths.allSatisfy({ $0 == path }) { continue }
            let session = b.session[i]
            if !sent.isEmpty && (session < 0 || !sent.allSatisfy({ $0.contains(session) })) { continue }
            // Kept.
            let v = b.visitor[i]
            let key = blockKey | UInt64(v)
            let name = b.name[i]
            let view: Int64 = name == pageview ? 1 : 0
            for (g, goal) in pageGoals.enumerated() where view == 1 && goal.1[Int(path)] { goalTally.add(g, visitor: key, count: 1) }
            for (g, goal) in eventGoals.enumerated() where name == goal.1 { goalTally.add(pageGoals.count + g, visitor: key, count: 1) }
            if goalsOnly { continue }
            if v != lastVisitor { visitors += 1; lastVisitor = v }
            pageviews += Int(view)
            pages.add(Int(path), visitor: key, count: view)
            if !internalNames.contains(name) { named.add(Int(name), visitor: key, count: 1) }
            profileViews[p] += view
            if profileSeen[p] != key {
                profileSeen[p] = key
                for f in 0..<width { fields[f].add(Int(b.profiles[p * width + f]), visitor: key, count: 0) }
            }
            let absolute = b.start + Int64(t)
            let d = Int(absolute / AppDatabase.dayMs - from / AppDatabase.dayMs), h = Int(absolute / 3_600_000 - from / 3_600_000)
            if d < daily.visitors.count { daily.add(d, visitor: key, count: view) }
            if h < hourly.visitors.count { hourly.add(h, visitor: key, count: view) }
            if name == engagement {
                if b.engaged[i] >= 0 { engaged[Int(path)].count += 1; engaged[Int(path)].sum += Int64(b.engaged[i]) }
                if b.scroll[i] >= 0 { engaged[Int(path)].scrolls += 1; engaged[Int(path)].depth += Int64(b.scroll[i]) }
            }
            if session >= 0 && filtered { kept.insert(session) }
        }
        for p in profileViews.indices where profileViews[p] > 0 {
            for f in 0..<width { fields[f].count[Int(b.profiles[p * width + f])] += profileViews[p] }
        }
    }

    /// Counts one day's visits started in the range (under filters, those with a kept event:
    /// call after every day's events are scanned).
    mutating func visits(_ bi: Int, _ b: FactBlock) {
        let lo = Int32(max(0, view.from - b.start)), hi = Int32(min(AppDatabase.dayMs, view.to - b.start))
        let blockKey = UInt64(bi) << 32
        for i in b.visitID.indices where b.visitStart[i] >= lo && b.visitStart[i] < hi {
            guard compiled.isEmpty || kept.contains(b.visitID[i]) else { continue }
            visitCount += 1
            bounces += Int(b.visitBounce[i])
            durationMs += b.visitDuration[i]
            let key = blockKey | UInt64(b.visitVisitor[i])
            entry.add(Int(b.visitEntry[i]), visitor: key, count: 1)
            exit.add(Int(b.visitExit[i]), visitor: key, count: 1)
        }
    }
}

extension FactView {
    /// Sessions that sent event `name` (a code) in the range.
    func sessions(sending name: UInt32, into bits: inout SessionBits) {
        for b in blocks {
            let (lo, hi) = bounds(b)
            for i in b.name.indices where b.name[i] == name && b.session[i] >= 0 && b.ts[i] >= lo && b.ts[i] < hi { bits.insert(b.session[i]) }
        }
    }

    /// The block's part of the range, in ms after its start.
    private func bounds(_ b: FactBlock) -> (Int32, Int32) {
        (Int32(max(0, from - b.start)), Int32(min(AppDatabase.dayMs, to - b.start)))
    }

    /// Whether the range holds all of the block (its events and visit starts).
    private func covers(_ b: FactBlock) -> Bool {
        let (lo, hi) = bounds(b)
        return lo <= 0 && hi > b.totals.lastOffset
    }

    /// Every figure under `filters`. Without filters, the days the range holds whole add their
    /// totals (computed when loaded) instead of being scanned again (goals still scan them).
    func figures(filters: Filters, goals: [Goal], limit: Int = 1000) -> FactFigures {
        var out = FactFigures()
        var scan = Scan(view: self, filters: filters, goals: goals)
        let paths = scan.paths, names = codes.name.values
        let fieldValues = codes.fields.map(\.values)
        if !scan.compiled.empty {
            for (bi, b) in blocks.enumerated() {
                if scan.compiled.isEmpty && covers(b) {
                    scan.add(b.totals, of: b)
                    if !scan.pageGoals.isEmpty || !scan.eventGoals.isEmpty { scan.events(bi, b, goalsOnly: true) }
                } else {
                    scan.events(bi, b, goalsOnly: false)
                }
            }
            for (bi, b) in blocks.enumerated() where !(scan.compiled.isEmpty && covers(b)) { scan.visits(bi, b) }
        }
        out.summary.visitors = scan.visitors; out.summary.pageviews = scan.pageviews; out.summary.visits = scan.visitCount
        out.summary.bounces = scan.bounces; out.summary.durationMs = scan.durationMs
        for d in Dimension.allCases {
            switch d {
            case .page: out.breakdowns[d] = scan.pages.rows(paths, limit: limit)
            case .event: out.breakdowns[d] = scan.named.rows(names, limit: limit)
            default:
                let f = FactStore.profileDimensions.firstIndex(of: d)!
                out.breakdowns[d] = scan.fields[f].rows(fieldValues[f], limit: limit)
            }
        }
        out.entry = scan.entry.rows(paths, limit: limit)
        out.exit = scan.exit.rows(paths, limit: limit)
        out.daily = scan.dayBuckets.enumerated().map { SeriesPoint(start: $1, visitors: Int(scan.daily.visitors[$0]), pageviews: Int(scan.daily.count[$0])) }
        out.hourly = scan.hourBuckets.enumerated().map { SeriesPoint(start: $1, visitors: Int(scan.hourly.visitors[$0]), pageviews: Int(scan.hourly.count[$0])) }
        // Pages with their engagement: every page with a kept event, most pageviews first.
        let pages = scan.pages
        var withEvents = pages.visitors.indices.filter { pages.visitors[$0] > 0 }
        withEvents.sort { a, b in
            pages.count[a] != pages.count[b] ? pages.count[a] > pages.count[b] : paths[a].utf8.lexicographicallyPrecedes(paths[b].utf8)
        }
        out.engagement = withEvents.prefix(50).map { c in
            let e = scan.engaged[c]
            return PageEngagement(path: paths[c], pageviews: Int(pages.count[c]),
                                  averageEngagedMs: e.count == 0 ? 0 : Int64((Double(e.sum) / Double(e.count)).rounded()),
                                  averageScroll: e.scrolls == 0 ? 0 : Int((Double(e.depth) / Double(e.scrolls)).rounded()))
        }
        for (g, goal) in scan.pageGoals.enumerated() {
            out.eventGoals[goal.0.id ?? -1] = GoalResult(goal: goal.0, visitors: Int(scan.goalTally.visitors[g]), completions: Int(scan.goalTally.count[g]))
        }
        for (g, goal) in scan.eventGoals.enumerated() {
            let i = scan.pageGoals.count + g
            out.eventGoals[goal.0.id ?? -1] = GoalResult(goal: goal.0, visitors: Int(scan.goalTally.visitors[i]), completions: Int(scan.goalTally.count[i]))
        }
        return out
    }

    /// A day's figures without filters (kept with the day when it is loaded).
    static func totals(of block: FactBlock, codes: SiteCodes) -> DayTotals {
        var b = block
        b.totals.lastOffset = max(b.ts.max() ?? -1, b.visitStart.max() ?? -1)
        let view = FactView(codes: codes, blocks: [b], from: b.start, to: b.start + AppDatabase.dayMs)
        var scan = Scan(view: view, filters: Filters(), goals: [])
        scan.events(0, b, goalsOnly: false)
        scan.visits(0, b)
        var t = DayTotals()
        t.lastOffset = b.totals.lastOffset
        t.visitors = scan.visitors; t.pageviews = scan.pageviews; t.visits = scan.visitCount; t.bounces = scan.bounces
        t.durationMs = scan.durationMs
        t.pages = scan.pages.sparse(); t.named = scan.named.sparse(); t.entry = scan.entry.sparse(); t.exit = scan.exit.sparse()
        t.fields = scan.fields.map { $0.sparse() }
        t.hours = scan.hourly.sparse()
        t.engaged = scan.engaged.indices.filter { scan.engaged[$0] != (0, 0, 0, 0) }.map {
            let e = scan.engaged[$0]
            return (UInt32($0), e.count, e.sum, e.scrolls, e.depth)
        }
        return t
    }

    /// Sessions of these days that match the filters at any time (conversions count for the visit
    /// they are attributed to, wherever it lies): one event of the session has every field value,
    /// and the session sent every named event. Nil without filters (every session matches).
    func sessionsMatchingAnyTime(_ filters: Filters) -> SessionBits? {
        guard !filters.isEmpty else { return nil }
        let compiled = CompiledFilters(filters, codes: codes)
        var matching = SessionBits(blocks)
        if compiled.empty { return matching }
        var fieldsOK = SessionBits(blocks)
        var sent = compiled.names.map { _ in SessionBits(blocks) }
        let anyField = !compiled.fields.isEmpty || !compiled.paths.isEmpty
        var candidates = SessionBits(blocks)
        for b in blocks {
            let profileOK = compiled.profilesMatching(b)
            for i in 0..<b.events {
                let session = b.session[i]
                guard session >= 0 else { continue }
                candidates.insert(session)
                for (n, name) in compiled.names.enumerated() where b.name[i] == name { sent[n].insert(session) }
                guard anyField else { continue }
                if let profileOK, !profileOK[Int(b.profile[i])] { continue }
                let path = b.path[i]
                if !compiled.paths.allSatisfy({ $0 == path }) { continue }
                fieldsOK.insert(session)
            }
        }
        for w in matching.words.indices {
            var word = anyField ? fieldsOK.words[w] : candidates.words[w]
            for s in sent { word &= s.words[w] }
            matching.words[w] = word
        }
        return matching
    }

    /// Starts of the buckets of `size` ms covering `from..<to` (UTC-aligned), at most 2000.
    static func buckets(from: Int64, to: Int64, size: Int64) -> [Int64] {
        var starts: [Int64] = []
        var b = from / size
        while b * size < to && starts.count < 2000 { starts.append(b * size); b += 1 }
        return starts
    }
}

extension AppDatabase {
    /// Every figure of a view from the engine, or nil when it has not loaded (or no longer holds
    /// current copies of) every day of the range.
    public func factFigures(site: String, from: Int64, to: Int64, filters: Filters) throws -> FactFigures? {
        guard let view = facts.view(site: site, from: from, to: to) else { return nil }
        let goals = try goals(site: site)
        var out = view.figures(filters: filters, goals: goals)
        // Conversions in the range, each with the visit it is attributed to.
        let rows = try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.ts, c.kind, coalesce(c.currency, ''), c.value, c.session_id, s.started_at, s.visitor
                FROM conversions c LEFT JOIN sessions s ON s.id = c.session_id
                WHERE c.site_id = ? AND c.ts >= ? AND c.ts < ? ORDER BY c.ts, c.id
                """, arguments: [site, from, to]).map {
                (ts: $0[0] as Int64, kind: $0[1] as String, currency: $0[2] as String, value: $0[3] as Double,
                 session: $0[4] as Int64?, started: $0[5] as Int64?, visitor: $0[6] as Int64?)
            }
        }
        var matching: SessionBits?
        if !filters.isEmpty {
            // A conversion counts when its visit matches, wherever the visit lies: the engine must
            // hold every day from the earliest such visit on.
            let last = try writer.read { db in try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) } ?? to
            let earliest = rows.compactMap(\.started).min() ?? from
            guard let wide = facts.view(site: site, from: min(earliest, from), to: max(to, last + 1)) else { return nil }
            matching = wide.sessionsMatchingAnyTime(filters)
        }
        func counts(_ r: (ts: Int64, kind: String, currency: String, value: Double, session: Int64?, started: Int64?, visitor: Int64?)) -> Bool {
            guard let matching else { return true }
            return r.session.map { matching.contains($0) } ?? false
        }
        do {
            var sold: [String: (Int, Double)] = [:]
            for r in rows where counts(r) {
                if r.kind != "refund" { out.summary.conversions += 1 }
                if r.kind == "sale" || r.kind == "refund" { sold[r.currency, default: (0, 0)].0 += 1; sold[r.currency, default: (0, 0)].1 += r.value }
            }
            out.summary.revenue = Revenue(sold.mapValues(\.1))
            out.summary.lastEvent = try writer.read { db in try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [site]) }
        }
        out.goals = goals.map { g in
            guard g.kind == .conversion else { return out.eventGoals[g.id ?? -1] ?? GoalResult(goal: g, visitors: 0, completions: 0) }
            var completions = 0
            var visitors: Set<[Int64]> = []
            for r in rows where r.kind == g.match && counts(r) {
                completions += 1
                if let v = r.visitor { visitors.insert([r.ts / Self.dayMs, v]) }
            }
            return GoalResult(goal: g, visitors: visitors.count, completions: completions)
        }
        return out
    }
}

extension FactView {
    /// Visits started in `from..<to` reaching each step in order, and their distinct visitors per
    /// day of the visit's start summed, for steps that are page or event goals; nil when a step is
    /// a conversion goal. Matches `AppDatabase.funnelResult`: a step is reached by the visit's
    /// first event for it at or after the previous step's time, wherever the event lies in time
    /// (the view must hold every day from before the range to the last event).
    func funnel(_ steps: [Goal], from: Int64, to: Int64) -> [(visits: Int, visitors: Int)]? {
        guard !steps.isEmpty, steps.count <= 32, steps.allSatisfy({ $0.kind != .conversion }) else { return steps.isEmpty ? [] : nil }
        let paths = codes.path.values
        let pageview = codes.name.existing("pageview") ?? .max
        let matchers: [(path: [Bool]?, name: UInt32)] = steps.map { g in
            g.kind == .page ? (paths.map { p in g.match.hasSuffix("*") ? p.hasPrefix(String(g.match.dropLast())) : p == g.match }, pageview)
                : (nil, codes.name.existing(g.match) ?? .max)
        }
        // Visits started in the range, with their visitor (per day).
        var started = SessionBits(blocks)
        var visitor = [UInt64](repeating: 0, count: started.words.count * 64)
        for (bi, b) in blocks.enumerated() {
            for i in b.visitID.indices {
                let t = b.start + Int64(b.visitStart[i])
                guard t >= from && t < to else { continue }
                started.insert(b.visitID[i])
                visitor[Int(b.visitID[i] - started.base)] = UInt64(bi) << 32 | UInt64(b.visitVisitor[i])
            }
        }
        // Each visit's stage, advanced in time order (a visit's events are contiguous in a day and
        // in time order; days come in order). Events at the same millisecond count together, so a
        // step may be reached at the very time of the previous one, as the SQL's `>=` allows.
        var stage = [UInt8](repeating: 0, count: visitor.count)
        for b in blocks {
            var current: Int64 = -1, groupTs: Int32 = -1, groupMask: UInt32 = 0
            for i in 0..<b.events {
                let s = b.session[i]
                guard s >= 0, started.contains(s) else { continue }
                let name = b.name[i], path = Int(b.path[i])
                var mask: UInt32 = 0
                for (k, m) in matchers.enumerated() where name == m.name && (m.path?[path] ?? true) { mask |= 1 << UInt32(k) }
                guard mask != 0 else { continue }
                if s != current || b.ts[i] != groupTs { current = s; groupTs = b.ts[i]; groupMask = 0 }
                groupMask |= mask
                let slot = Int(s - started.base)
                while Int(stage[slot]) < steps.count && groupMask & (1 << UInt32(stage[slot])) != 0 { stage[slot] += 1 }
            }
        }
        var visits = [Int](repeating: 0, count: steps.count)
        var visitors = [Set<UInt64>](repeating: [], count: steps.count)
        for slot in stage.indices where stage[slot] > 0 {
            for k in 0..<Int(stage[slot]) { visits[k] += 1; visitors[k].insert(visitor[slot]) }
        }
        return steps.indices.map { (visits[$0], visitors[$0].count) }
    }
}

extension AppDatabase {
    /// A funnel from the engine, or nil when it does not hold the days needed (or a step is a
    /// conversion goal): then ``funnelResult(_:from:to:)`` answers.
    public func factFunnel(_ funnel: Funnel, from: Int64, to: Int64) throws -> FunnelResult? {
        let byID = Dictionary(uniqueKeysWithValues: try goals(site: funnel.siteID).compactMap { g in g.id.map { ($0, g) } })
        let steps = funnel.steps.compactMap { byID[$0] }
        let last = try writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT max(ts) FROM events WHERE site_id = ?", arguments: [funnel.siteID])
        } ?? to
        // Late events may belong to a visit that started a little after them: one day before the range too.
        guard let view = facts.view(site: funnel.siteID, from: from - Self.dayMs, to: max(to, last + 1)),
              let counts = view.funnel(steps, from: from, to: to) else { return nil }
        return FunnelResult(funnel: funnel, steps: zip(steps, counts).map { ($0, $1.visits, $1.visitors) })
    }
}
