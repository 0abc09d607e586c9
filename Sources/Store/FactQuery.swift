import Foundation
import GRDB
import Storage
import Synchronization

/// Loaded days covering one range (see ``FactStore/view(site:from:to:)``).
struct FactView: Sendable {
    let codes: SiteCodes
    let blocks: [FactBlock]
    let from: Int64
    let to: Int64
    /// The site's days (the blocks are its days).
    var calendar: SiteCalendar = .utc
    var site = ""
    /// Goal counts of whole days, by day, generation and goals (shared with the FactStore).
    var goalDays: Memo<GoalDayKey, Tally>? = nil
    /// Days of the range whose late events are not in their loaded copy yet (see ``FactStore``).
    var lateDays = 0
}

/// What a day's goal counts depend on.
struct GoalDayKey: Hashable, Sendable {
    let site: String
    let day: Int64, generation: Int64
    let goals: [String]
}

/// Every figure of one view that comes from events and visits, computed in one pass over the
/// loaded days. The meaning of each figure and filter is the one the SQL in `Dashboard.swift`
/// and `Goals.swift` gives it (the property test in `FactEngineTests` holds them to it):
/// visitors are distinct visitor hashes per local day summed over the days; a filter on a field
/// keeps the events with that value; a filter on an event name keeps the visits (sessions) that
/// sent it in the range; visits are the sessions started in the range with a kept event in it.
public struct FactFigures: Sendable {
    /// Cards (conversions and revenue included).
    public internal(set) var summary = SiteSummary(visitors: 0, visits: 0, pageviews: 0, bounces: 0, durationMs: 0, conversions: 0,
                                                   revenue: Revenue(), lastEvent: nil)
    public internal(set) var breakdowns: [Dimension: [BreakdownRow]] = [:]
    public internal(set) var entry: [BreakdownRow] = [], exit: [BreakdownRow] = []
    /// The chart's points per local day of the range.
    public internal(set) var daily: [SeriesPoint] = []
    /// The same per hour, when asked for (``AppDatabase/factFigures(site:from:to:filters:hourly:)``).
    public internal(set) var hourly: [SeriesPoint]?
    /// Pages with their engagement, most pageviews first (at most 50).
    public internal(set) var engagement: [PageEngagement] = []
    /// Every goal of the site, in the order of ``AppDatabase/goals(site:)``.
    public internal(set) var goals: [GoalResult] = []
    /// Page and event goals by id, before conversion goals join them.
    var eventGoals: [Int64: GoalResult] = [:]
    /// Days of the range that late events (queued by an offline browser) arrived for since the
    /// day was last rolled up: the figures count them once the rollup job has rebuilt the day,
    /// within a minute.
    public internal(set) var lateDays = 0
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

    mutating func formUnion(_ o: SessionBits) {
        for w in words.indices { words[w] |= o.words[w] }
    }

    @inline(__always) mutating func insert(_ id: Int64) {
        words.withUnsafeMutableBufferPointer { Self.insert(id, base: base, into: $0) }
    }

    /// Sets session `id`'s bit in `words` (a bitmap's storage, from `base`): the scans' inner loops.
    @inline(__always) static func insert(_ id: Int64, base: Int64, into words: UnsafeMutableBufferPointer<UInt64>) {
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
            case .page:
                if let other = paths.first, other != code { empty = true }
                paths.append(code)
            case .event: names.append(code)
            default: fields.append((FactStore.profileDimensions.firstIndex(of: d)!, code))
            }
        }
    }

    /// Per profile of the block: whether it has every field value (all do when no field is filtered).
    func profilesMatching(_ b: FactBlock) -> [Bool] {
        let width = FactStore.profileDimensions.count, count = b.profiles.count / width
        var ok = [Bool](repeating: true, count: count)
        for (index, code) in fields {
            b.profiles.withUnsafeBufferPointer { profiles in
                ok.withUnsafeMutableBufferPointer { ok in
                    for p in 0..<count where profiles[p &* width &+ index] != code { ok[p] = false }
                }
            }
        }
        return ok
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

    /// Rows of a dimension's `n` codes from `offset` (code 0 is no value, NULL) with at least one
    /// visitor, as the SQL orders them: most visitors first, then count, then value (bytewise,
    /// NULL first: the codebook's `ranks`).
    func rows(_ book: (values: [String], ranks: [UInt32]), offset: Int = 0, count n: Int, limit: Int) -> [BreakdownRow] {
        let n = min(n, book.values.count)
        let visitors = self.visitors, count = self.count, ranks = book.ranks
        var codes: [Int] = []
        for c in 0..<n where visitors[offset + c] > 0 { codes.append(c) }
        codes.sort { a, b in
            let va = visitors[offset + a], vb = visitors[offset + b]
            if va != vb { return va > vb }
            let ca = count[offset + a], cb = count[offset + b]
            if ca != cb { return ca > cb }
            return ranks[a] < ranks[b]
        }
        return codes.prefix(limit).map {
            BreakdownRow(value: $0 == 0 ? nil : book.values[$0], visitors: Int(visitors[offset + $0]), pageviews: Int(count[offset + $0]))
        }
    }

    /// Rows of the `count` codes from `offset` with at least one visitor, as the SQL orders them:
    /// most visitors first, then count, then value (bytewise, NULL first); `value` names a code
    /// counted from `offset`.
    func rows(offset: Int = 0, count n: Int, limit: Int, value: (Int) -> String?) -> [BreakdownRow] {
        let visitors = Array(self.visitors[offset..<offset + n]), count = Array(self.count[offset..<offset + n])
        let values = (0..<n).map { visitors[$0] > 0 ? value($0) : nil }
        var codes = visitors.indices.filter { visitors[$0] > 0 }
        codes.sort { a, b in
            if visitors[a] != visitors[b] { return visitors[a] > visitors[b] }
            if count[a] != count[b] { return count[a] > count[b] }
            switch (values[a], values[b]) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case (let x?, let y?): return x.utf8.lexicographicallyPrecedes(y.utf8)
            }
        }
        return codes.prefix(limit).map { BreakdownRow(value: values[$0], visitors: Int(visitors[$0]), pageviews: Int(count[$0])) }
    }
}

extension Tally {
    /// The codes with a visitor, as a day keeps them (those of `count` codes from `offset`, renumbered from 0).
    func sparse(offset: Int = 0, count n: Int? = nil) -> DayTally {
        var d = DayTally()
        for c in offset..<offset + (n ?? visitors.count) where visitors[c] > 0 {
            d.codes.append(UInt32(c - offset)); d.visitors.append(visitors[c]); d.counts.append(count[c])
        }
        return d
    }

    /// Adds another tally of other days.
    mutating func merge(_ o: Tally) {
        for c in visitors.indices { visitors[c] += o.visitors[c]; count[c] += o.count[c] }
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

/// What keeps an event of one day in a scan: its time within `lo..<hi` (ms after the day's
/// start), a profile with every filtered field value, the filtered page, and a visit that sent
/// every filtered event name (`sent`). The one place that applies the filters to an event.
struct KeptEvents {
    let lo: Int32, hi: Int32
    let profileOK: [Bool]
    let page: UInt32?
    let sent: SessionBits?

    /// `ok` is `profileOK`'s storage.
    @inline(__always) func keeps(_ c: FactBlock.Columns, _ i: Int, _ ok: UnsafeBufferPointer<Bool>) -> Bool {
        let t = c.ts[i]
        guard t >= lo && t < hi, ok[Int(c.profile[i])] else { return false }
        if let page, c.path[i] != page { return false }
        if let sent {
            let s = c.session[i]
            if s < 0 || !sent.contains(s) { return false }
        }
        return true
    }
}

/// A tally's columns as raw pointers, for the scan's inner loop (see ``Scan/events(_:_:)``).
struct TallyPointers {
    let last: UnsafeMutablePointer<UInt64>
    let visitors: UnsafeMutablePointer<Int32>
    let count: UnsafeMutablePointer<Int64>

    @inline(__always) func add(_ code: Int, visitor key: UInt64, count n: Int64) {
        if last[code] != key { last[code] = key; visitors[code] &+= 1 }
        count[code] &+= n
    }
}

extension Tally {
    /// Runs `body` with the columns as raw pointers (an empty tally's are never read).
    mutating func withPointers<R>(_ body: (TallyPointers) -> R) -> R {
        last.withUnsafeMutableBufferPointer { l in
            visitors.withUnsafeMutableBufferPointer { v in
                count.withUnsafeMutableBufferPointer { c in
                    body(TallyPointers(last: l.baseAddress ?? .dangling, visitors: v.baseAddress ?? .dangling, count: c.baseAddress ?? .dangling))
                }
            }
        }
    }
}

extension UnsafeMutablePointer {
    /// A non-null address for an empty buffer, never read or written.
    static var dangling: UnsafeMutablePointer { UnsafeMutablePointer(bitPattern: MemoryLayout<Pointee>.alignment)! }
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
    /// Code = hour of the day; `visitHours` counts the visits started in it.
    var hours = DayTally(), visitHours = DayTally()
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
    let dayBuckets: [Int64], hourBuckets: [Int64]
    /// The local day of the range's start (the daily chart's first point), and its hours.
    let firstDay: Int64
    let hourGrid: (anchor: Int64, first: Int64)
    /// Page goals and event goals (at most 64 in all: their bits in the masks below).
    let pageGoals: [Goal], eventGoals: [Goal]
    /// Per page code, the page goals it completes; per event name code, the event goals.
    let pathGoals: [UInt64], nameGoals: [UInt64]
    /// Per event name code, whether it is a custom event (listed in the events table).
    let custom: [Bool]
    /// Where each profile dimension's codes start in `fields`.
    let fieldOffsets: [Int]
    var pages: Tally, named: Tally, fields: Tally, daily: Tally, hourly: Tally, entry: Tally, exit: Tally, goalTally: Tally
    /// Visits started in each day and hour of the chart (their `count`).
    var dailyVisits: Tally, hourlyVisits: Tally
    var engaged: [(count: Int64, sum: Int64, scrolls: Int64, depth: Int64)]
    var visitors = 0, pageviews = 0, visitCount = 0, bounces = 0
    var durationMs: Int64 = 0
    /// Sessions with a kept event (under filters), and the sessions that sent every named event in the range.
    var kept: SessionBits
    var sent: SessionBits?

    init(view: FactView, filters: Filters, goals: [Goal], hourly: Bool = true) {
        self.view = view
        let codes = view.codes
        compiled = CompiledFilters(filters, codes: codes)
        let paths = codes.path.values, names = codes.name.values
        self.paths = paths
        pageview = codes.name.existing("pageview") ?? .max
        engagement = codes.name.existing("engagement") ?? .max
        custom = names.indices.map { $0 != 0 && !AppDatabase.internalEventNames.contains(names[$0]) }
        dayBuckets = SeriesPoint.buckets(from: view.from, to: view.to, hourly: false, calendar: view.calendar)
        hourBuckets = hourly ? SeriesPoint.buckets(from: view.from, to: view.to, hourly: true, calendar: view.calendar) : []
        firstDay = view.calendar.day(of: view.from)
        hourGrid = SeriesPoint.hourGrid(from: view.from, calendar: view.calendar)
        pageGoals = Array(goals.filter { $0.kind == .page }.prefix(64))
        eventGoals = Array(goals.filter { $0.kind == .event }.prefix(64 - pageGoals.count))
        var pathGoals = [UInt64](repeating: 0, count: paths.count)
        for (g, goal) in pageGoals.enumerated() {
            let prefix = goal.match.hasSuffix("*") ? String(goal.match.dropLast()) : nil
            for c in paths.indices where c != 0 && FactView.matches(paths[c], exactly: goal.match, prefix: prefix) { pathGoals[c] |= 1 << UInt64(g) }
        }
        var nameGoals = [UInt64](repeating: 0, count: names.count)
        for (g, goal) in eventGoals.enumerated() {
            if let c = codes.name.existing(goal.match) { nameGoals[Int(c)] |= 1 << UInt64(pageGoals.count + g) }
        }
        self.pathGoals = pathGoals; self.nameGoals = nameGoals
        var offsets: [Int] = [], size = 0
        for book in codes.fields { offsets.append(size); size += book.values.count }
        fieldOffsets = offsets
        pages = Tally(paths.count); named = Tally(names.count); fields = Tally(size)
        daily = Tally(dayBuckets.count); self.hourly = Tally(hourBuckets.count)
        dailyVisits = Tally(dayBuckets.count); hourlyVisits = Tally(hourBuckets.count)
        entry = Tally(paths.count); exit = Tally(paths.count)
        goalTally = Tally(pageGoals.count + eventGoals.count)
        engaged = [(count: Int64, sum: Int64, scrolls: Int64, depth: Int64)](repeating: (0, 0, 0, 0), count: paths.count)
        kept = SessionBits(view.blocks)
        if !compiled.empty && !compiled.names.isEmpty {
            var all: SessionBits?
            for name in compiled.names {
                var bits = SessionBits(view.blocks)
                view.sessions(sending: name, into: &bits)
                if var a = all { for w in a.words.indices { a.words[w] &= bits.words[w] }; all = a } else { all = bits }
            }
            sent = all
        }
    }

    /// Adds the tallies of another worker's days.
    mutating func merge(_ o: Scan) {
        visitors += o.visitors; pageviews += o.pageviews; visitCount += o.visitCount; bounces += o.bounces; durationMs += o.durationMs
        pages.merge(o.pages); named.merge(o.named); fields.merge(o.fields); daily.merge(o.daily); hourly.merge(o.hourly)
        dailyVisits.merge(o.dailyVisits); hourlyVisits.merge(o.hourlyVisits)
        entry.merge(o.entry); exit.merge(o.exit); goalTally.merge(o.goalTally)
        for i in engaged.indices {
            engaged[i].count += o.engaged[i].count; engaged[i].sum += o.engaged[i].sum
            engaged[i].scrolls += o.engaged[i].scrolls; engaged[i].depth += o.engaged[i].depth
        }
        for w in kept.words.indices { kept.words[w] |= o.kept.words[w] }
    }

    /// Adds a day's totals (no filters, the day wholly in the range).
    mutating func add(_ t: DayTotals, of b: FactBlock) {
        visitors += t.visitors; pageviews += t.pageviews; visitCount += t.visits; bounces += t.bounces; durationMs += t.durationMs
        pages.add(t.pages); named.add(t.named); entry.add(t.entry); exit.add(t.exit)
        for f in fieldOffsets.indices { fields.add(t.fields[f], offset: fieldOffsets[f]) }
        let day = Int(b.day - firstDay)
        if day >= 0 && day < daily.visitors.count {
            daily.visitors[day] += Int32(t.visitors); daily.count[day] += Int64(t.pageviews); dailyVisits.count[day] += Int64(t.visits)
        }
        // The day's own hours are counted from its start.
        let hour = Int((b.start - hourGrid.anchor) / 3_600_000 - hourGrid.first)
        hourly.add(t.hours, offset: hour)
        hourlyVisits.add(t.visitHours, offset: hour)
        for e in t.engaged where Int(e.path) < engaged.count {
            engaged[Int(e.path)].count += e.count; engaged[Int(e.path)].sum += e.sum
            engaged[Int(e.path)].scrolls += e.scrolls; engaged[Int(e.path)].depth += e.depth
        }
    }

    /// What keeps an event of day `b` in the scan: its time in the range, then the filters.
    func keep(_ b: FactBlock) -> KeptEvents {
        let (lo, hi) = view.bounds(b)
        return KeptEvents(lo: lo, hi: hi, profileOK: compiled.profilesMatching(b), page: compiled.paths.first, sent: sent)
    }

    /// Tallies the property pairs of the kept events named `event` (a code): distinct visitors per day, events.
    func properties(_ bi: Int, _ b: FactBlock, event: UInt32, into tally: inout Tally) {
        let keep = keep(b)
        let blockKey = UInt64(bi) << 32
        keep.profileOK.withUnsafeBufferPointer { ok in
            b.withColumns { c in
                for j in b.propEvent.indices {
                    let i = Int(b.propEvent[j])
                    guard c.name[i] == event, keep.keeps(c, i, ok) else { continue }
                    tally.add(Int(b.propPair[j]), visitor: blockKey | UInt64(c.visitor[i]), count: 1)
                }
            }
        }
    }

    /// Counts the goals of a whole day without filters (its other figures come from its totals).
    /// A day's goal counts are kept with the day's generation: a day is counted once per version.
    mutating func goals(_ bi: Int, _ b: FactBlock) {
        let key = GoalDayKey(site: view.site, day: b.day, generation: b.generation,
                             goals: (pageGoals + eventGoals).map { "\($0.kind.rawValue):\($0.match)" })
        let counts = view.goalDays?[key] ?? {
            var day = Tally(pageGoals.count + eventGoals.count)
            let path = b.path, visitor = b.visitor, name = b.name
            for i in 0..<b.events {
                let n = name[i]
                var mask = nameGoals[Int(n)] | (n == pageview ? pathGoals[Int(path[i])] : 0)
                while mask != 0 {
                    day.add(mask.trailingZeroBitCount, visitor: UInt64(visitor[i]), count: 1)
                    mask &= mask - 1
                }
            }
            view.goalDays?[key] = day
            return day
        }()
        for g in counts.visitors.indices { goalTally.visitors[g] += counts.visitors[g]; goalTally.count[g] += counts.count[g] }
    }

    /// Scans one day's events in the range that pass the filters.
    ///
    /// The inner loop runs once per stored event (10M for a month of a large site), so it works
    /// on raw pointers to the day's columns and to the tallies (``FactBlock/withColumns(_:)``,
    /// ``Tally/withPointers(_:)``): no copy-on-write or bounds checks per event. Every index it
    /// uses is a code of the site's codebooks, below the size of the tally it indexes.
    mutating func events(_ bi: Int, _ b: FactBlock) {
        let width = FactStore.profileDimensions.count
        let keep = keep(b)
        let profileCount = b.profiles.count / width
        var profileViews = [Int64](repeating: 0, count: profileCount)
        var profileSeen = [UInt64](repeating: .max, count: profileCount)
        let offsets = fieldOffsets
        let blockKey = UInt64(bi) << 32
        let filtered = !compiled.isEmpty
        let anyGoal = !pageGoals.isEmpty || !eventGoals.isEmpty
        let hours = hourBuckets.isEmpty ? 0 : hourly.visitors.count
        // Hour of an event: (start of the day − the grid's anchor + its offset) / 1 h − the grid's first hour.
        let hourBase = b.start - hourGrid.anchor, firstHour = hourGrid.first
        let pageview = self.pageview, engagement = self.engagement
        var dayVisitors = 0, dayViews = 0
        let keptBase = kept.base
        // Under field filters, runs of events with one profile that fails them are skipped whole.
        let skipping = !compiled.fields.isEmpty
        // Loop-invariant lookups as raw pointers too (they are read only).
        keep.profileOK.withUnsafeBufferPointer { ok in
        custom.withUnsafeBufferPointer { custom in
        nameGoals.withUnsafeBufferPointer { nameGoals in
        pathGoals.withUnsafeBufferPointer { pathGoals in
        profileViews.withUnsafeMutableBufferPointer { views in
        profileSeen.withUnsafeMutableBufferPointer { seen in
        engaged.withUnsafeMutableBufferPointer { engaged in
        kept.words.withUnsafeMutableBufferPointer { keptWords in
        pages.withPointers { pages in
        named.withPointers { named in
        fields.withPointers { fields in
        hourly.withPointers { hourly in
        goalTally.withPointers { goals in
        b.withColumns { c in
            var lastVisitor = UInt32.max
            var run = 0, i = 0
            while i < c.count {
                if skipping && run < c.runCount && Int(c.runs[run]) == i {
                    let next = run + 1 < c.runCount ? Int(c.runs[run + 1]) : c.count
                    run += 1
                    if !ok[Int(c.profile[i])] { i = next; continue }
                }
                defer { i += 1 }
                guard keep.keeps(c, i, ok) else { continue }
                let t = c.ts[i], p = Int(c.profile[i]), page = c.path[i], s = c.session[i]
                let v = c.visitor[i]
                let key = blockKey | UInt64(v)
                let n = c.name[i]
                let isView = n == pageview
                let viewCount: Int64 = isView ? 1 : 0
                if anyGoal {
                    var mask = nameGoals[Int(n)] | (isView ? pathGoals[Int(page)] : 0)
                    while mask != 0 {
                        goals.add(mask.trailingZeroBitCount, visitor: key, count: 1)
                        mask &= mask &- 1
                    }
                }
                if v != lastVisitor { dayVisitors &+= 1; lastVisitor = v }
                dayViews &+= Int(viewCount)
                pages.add(Int(page), visitor: key, count: viewCount)
                if custom[Int(n)] { named.add(Int(n), visitor: key, count: 1) }
                views[p] &+= viewCount
                if seen[p] != key {
                    seen[p] = key
                    let row = c.profiles + p * width
                    for f in 0..<width { fields.add(offsets[f] &+ Int(row[f]), visitor: key, count: 0) }
                }
                if hours > 0 {
                    let h = Int((hourBase + Int64(t)) / 3_600_000 - firstHour)
                    if h >= 0 && h < hours { hourly.add(h, visitor: key, count: viewCount) }
                }
                if n == engagement {
                    let e = c.engaged[i], depth = c.scroll[i]
                    if e >= 0 { engaged[Int(page)].count &+= 1; engaged[Int(page)].sum &+= Int64(e) }
                    if depth >= 0 { engaged[Int(page)].scrolls &+= 1; engaged[Int(page)].depth &+= Int64(depth) }
                }
                if s >= 0 && filtered { SessionBits.insert(s, base: keptBase, into: keptWords) }
            }
            // Pageviews of each field value: those of the profiles having it.
            for p in 0..<profileCount where views[p] > 0 {
                let row = c.profiles + p * width
                for f in 0..<width { fields.count[offsets[f] &+ Int(row[f])] &+= views[p] }
            }
        }}}}}}}}}}}}}}
        visitors += dayVisitors
        pageviews += dayViews
        // The day's point of the daily chart: its distinct visitors and pageviews.
        let d = Int(b.day - firstDay)
        if d >= 0 && d < daily.visitors.count { daily.visitors[d] += Int32(dayVisitors); daily.count[d] += Int64(dayViews) }
    }

    /// Counts one day's visits started in the range (under filters, those with a kept event:
    /// call after every day's events are scanned).
    mutating func visits(_ bi: Int, _ b: FactBlock) {
        let (lo, hi) = view.bounds(b)
        let blockKey = UInt64(bi) << 32
        let all = compiled.isEmpty, kept = self.kept
        var visits = 0, bounced = 0, duration: Int64 = 0
        // The visit's hour on the chart, as an event's (see ``events(_:_:)``).
        let hours = hourlyVisits.visitors.count, hourBase = b.start - hourGrid.anchor, firstHour = hourGrid.first
        entry.withPointers { entry in
            exit.withPointers { exit in
                hourlyVisits.withPointers { hourly in
                    for i in b.visitID.indices where b.visitStart[i] >= lo && b.visitStart[i] < hi {
                        guard all || kept.contains(b.visitID[i]) else { continue }
                        visits &+= 1
                        bounced &+= Int(b.visitBounce[i])
                        duration &+= b.visitDuration[i]
                        let key = blockKey | UInt64(b.visitVisitor[i])
                        entry.add(Int(b.visitEntry[i]), visitor: key, count: 1)
                        exit.add(Int(b.visitExit[i]), visitor: key, count: 1)
                        let h = Int((hourBase + Int64(b.visitStart[i])) / 3_600_000 - firstHour)
                        if h >= 0 && h < hours { hourly.add(h, visitor: key, count: 1) }
                    }
                }
            }
        }
        visitCount += visits; bounces += bounced; durationMs += duration
        let d = Int(b.day - firstDay)
        if d >= 0 && d < dailyVisits.count.count { dailyVisits.count[d] += Int64(visits) }
    }
}

extension FactView {
    /// Sessions that sent event `name` (a code) in the range.
    func sessions(sending name: UInt32, into bits: inout SessionBits) {
        let found = inParallel(start: bits) { bits, _, b in
            let (lo, hi) = bounds(b)
            let base = bits.base
            b.withColumns { c in
                bits.words.withUnsafeMutableBufferPointer { words in
                    for i in 0..<c.count where c.name[i] == name && c.session[i] >= 0 && c.ts[i] >= lo && c.ts[i] < hi {
                        SessionBits.insert(c.session[i], base: base, into: words)
                    }
                }
            }
        } merge: { $0.formUnion($1) }
        bits = found
    }

    /// Runs `body` over the blocks on every core (at most 8), each worker from its own copy of
    /// `start`, then merges the workers' results into the first.
    func inParallel<T: Sendable>(start: T, _ body: @Sendable (inout T, Int, FactBlock) -> Void, merge: (inout T, T) -> Void) -> T {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, blocks.count))
        let parts = Mutex<[T]>([])
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var part = start
            for bi in stride(from: w, to: blocks.count, by: workers) { body(&part, bi, blocks[bi]) }
            parts.withLock { $0.append(part) }
        }
        return parts.withLock { all in all.dropFirst().reduce(into: all.first ?? start) { merge(&$0, $1) } }
    }

    /// The block's part of the range, in ms after its start.
    func bounds(_ b: FactBlock) -> (Int32, Int32) {
        (Int32(max(0, from - b.start)), Int32(min(b.end - b.start, to - b.start)))
    }

    /// Whether the range holds all of the block (its events and visit starts).
    private func covers(_ b: FactBlock) -> Bool {
        let (lo, hi) = bounds(b)
        return lo <= 0 && hi > b.totals.lastOffset
    }

    /// Every figure under `filters`. Without filters, the days the range holds whole add their
    /// totals (computed when loaded) instead of being scanned again (goals still scan them).
    func figures(filters: Filters, goals: [Goal], hourly: Bool = true, limit: Int = AppDatabase.tableRowLimit) -> FactFigures {
        var out = FactFigures()
        out.lateDays = lateDays
        let start = Scan(view: self, filters: filters, goals: goals, hourly: hourly)
        let paths = codes.path.ranked, names = codes.name.ranked
        // The days are shared among the cores: each worker tallies its own days (distinct visitors
        // never span days), then the tallies are added up.
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, blocks.count))
        let parts = Mutex<[Scan]>([])
        DispatchQueue.concurrentPerform(iterations: start.compiled.empty ? 0 : workers) { w in
            var scan = start
            for bi in stride(from: w, to: blocks.count, by: workers) {
                let b = blocks[bi]
                if scan.compiled.isEmpty && covers(b) {
                    scan.add(b.totals, of: b)
                    if !scan.pageGoals.isEmpty || !scan.eventGoals.isEmpty { scan.goals(bi, b) }
                } else {
                    scan.events(bi, b)
                }
            }
            parts.withLock { $0.append(scan) }
        }
        var scan = parts.withLock { all in all.dropFirst().reduce(into: all.first ?? start) { $0.merge($1) } }
        if !scan.compiled.empty {
            for (bi, b) in blocks.enumerated() where !(scan.compiled.isEmpty && covers(b)) { scan.visits(bi, b) }
        }
        out.summary.visitors = scan.visitors; out.summary.pageviews = scan.pageviews; out.summary.visits = scan.visitCount
        out.summary.bounces = scan.bounces; out.summary.durationMs = scan.durationMs
        let pageCodes = scan.pages.visitors.count
        for d in Dimension.allCases {
            switch d {
            case .page: out.breakdowns[d] = scan.pages.rows(paths, count: pageCodes, limit: limit)
            case .event: out.breakdowns[d] = scan.named.rows(names, count: scan.named.visitors.count, limit: limit)
            default:
                let f = FactStore.profileDimensions.firstIndex(of: d)!
                let offset = scan.fieldOffsets[f]
                let end = f + 1 < scan.fieldOffsets.count ? scan.fieldOffsets[f + 1] : scan.fields.visitors.count
                out.breakdowns[d] = scan.fields.rows(codes.fields[f].ranked, offset: offset, count: end - offset, limit: limit)
            }
        }
        out.entry = scan.entry.rows(paths, count: pageCodes, limit: limit)
        out.exit = scan.exit.rows(paths, count: pageCodes, limit: limit)
        out.daily = scan.dayBuckets.enumerated().map {
            SeriesPoint(start: $1, visitors: Int(scan.daily.visitors[$0]), pageviews: Int(scan.daily.count[$0]), visits: Int(scan.dailyVisits.count[$0]))
        }
        if hourly {
            out.hourly = scan.hourBuckets.enumerated().map {
                SeriesPoint(start: $1, visitors: Int(scan.hourly.visitors[$0]), pageviews: Int(scan.hourly.count[$0]), visits: Int(scan.hourlyVisits.count[$0]))
            }
        }
        // Pages with their engagement: every page with a kept event, most pageviews first.
        let pages = scan.pages
        var withEvents = pages.visitors.indices.filter { pages.visitors[$0] > 0 && $0 < paths.values.count }
        withEvents.sort { a, b in
            pages.count[a] != pages.count[b] ? pages.count[a] > pages.count[b] : paths.ranks[a] < paths.ranks[b]
        }
        out.engagement = withEvents.prefix(50).map { c in
            let e = scan.engaged[c]
            return PageEngagement(path: paths.values[c], pageviews: Int(pages.count[c]),
                                  averageEngagedMs: e.count == 0 ? 0 : Int64((Double(e.sum) / Double(e.count)).rounded()),
                                  averageScroll: e.scrolls == 0 ? 0 : Int((Double(e.depth) / Double(e.scrolls)).rounded()))
        }
        for (g, goal) in (scan.pageGoals + scan.eventGoals).enumerated() {
            out.eventGoals[goal.id ?? -1] = GoalResult(goal: goal, visitors: Int(scan.goalTally.visitors[g]), completions: Int(scan.goalTally.count[g]))
        }
        return out
    }

    /// A day's figures without filters (kept with the day when it is loaded).
    static func totals(of block: FactBlock, codes: SiteCodes) -> DayTotals {
        var b = block
        b.totals.lastOffset = max(b.ts.max() ?? -1, b.visitStart.max() ?? -1)
        let view = FactView(codes: codes, blocks: [b], from: b.start, to: b.end, calendar: SiteCalendar(identifier: b.zone) ?? .utc)
        var scan = Scan(view: view, filters: Filters(), goals: [])
        scan.events(0, b)
        scan.visits(0, b)
        var t = DayTotals()
        t.lastOffset = b.totals.lastOffset
        t.visitors = scan.visitors; t.pageviews = scan.pageviews; t.visits = scan.visitCount; t.bounces = scan.bounces
        t.durationMs = scan.durationMs
        t.pages = scan.pages.sparse(); t.named = scan.named.sparse(); t.entry = scan.entry.sparse(); t.exit = scan.exit.sparse()
        t.fields = scan.fieldOffsets.indices.map { f in
            scan.fields.sparse(offset: scan.fieldOffsets[f], count: f + 1 < scan.fieldOffsets.count ? scan.fieldOffsets[f + 1] - scan.fieldOffsets[f]
                                                                                                  : scan.fields.visitors.count - scan.fieldOffsets[f])
        }
        t.hours = scan.hourly.sparse()
        t.visitHours = scan.hourlyVisits.sparse()
        t.engaged = scan.engaged.indices.filter { scan.engaged[$0] != (0, 0, 0, 0) }.map {
            let e = scan.engaged[$0]
            return (UInt32($0), e.count, e.sum, e.scrolls, e.depth)
        }
        return t
    }

    /// Sessions of these days that match the filters at any time (conversions count for the visit
    /// they are attributed to, wherever it lies): one event of the session has every field value,
    /// and the session sent every named event. Nil without filters (every session matches).
    /// Only the sessions in `among` are looked at (those the conversions are attributed to).
    func sessionsMatchingAnyTime(_ filters: Filters, among: SessionBits) -> SessionBits? {
        guard !filters.isEmpty else { return nil }
        let compiled = CompiledFilters(filters, codes: codes)
        var matching = SessionBits(blocks)
        if compiled.empty { return matching }
        let anyField = !compiled.fields.isEmpty || !compiled.paths.isEmpty
        // Per worker: the candidate sessions, those with an event having every field value, and
        // those that sent each named event.
        typealias Found = (candidates: SessionBits, fieldsOK: SessionBits, sent: [SessionBits])
        let empty = SessionBits(blocks)
        let found = inParallel(start: (empty, empty, compiled.names.map { _ in empty }) as Found) { f, _, b in
            let profileOK = compiled.profilesMatching(b)
            b.withColumns { c in
                for i in 0..<c.count {
                    let session = c.session[i]
                    guard session >= 0, among.contains(session) else { continue }
                    f.candidates.insert(session)
                    for (n, name) in compiled.names.enumerated() where c.name[i] == name { f.sent[n].insert(session) }
                    guard anyField else { continue }
                    if !profileOK[Int(c.profile[i])] { continue }
                    let path = c.path[i]
                    if !compiled.paths.allSatisfy({ $0 == path }) { continue }
                    f.fieldsOK.insert(session)
                }
            }
        } merge: { a, b in
            a.candidates.formUnion(b.candidates); a.fieldsOK.formUnion(b.fieldsOK)
            for n in a.sent.indices { a.sent[n].formUnion(b.sent[n]) }
        }
        let (candidates, fieldsOK, sent) = found
        for w in matching.words.indices {
            var word = anyField ? fieldsOK.words[w] : candidates.words[w]
            for s in sent { word &= s.words[w] }
            matching.words[w] = word
        }
        return matching
    }

    /// Whether a page goal matches a path, comparing bytes as SQLite does: the path equals `exactly`,
    /// or starts with `prefix` when there is one.
    static func matches(_ path: String, exactly: String, prefix: String?) -> Bool {
        guard let prefix else { return path.utf8.elementsEqual(exactly.utf8) }
        return path.utf8.starts(with: prefix.utf8)
    }

}

extension AppDatabase {
    /// Every figure of a view from the engine, or nil when it has not loaded (or no longer holds
    /// current copies of) every day of the range.
    public func factFigures(site: String, from: Int64, to: Int64, filters: Filters, hourly: Bool = true) throws -> FactFigures? {
        guard let view = facts.view(site: site, from: from, to: to) else { return nil }
        let goals = try goals(site: site)
        // Page and event goals are counted as bits of a 64-bit mask; more are left to the SQL.
        guard goals.filter({ $0.kind != .conversion }).count <= 64 else { return nil }
        var out = view.figures(filters: filters, goals: goals, hourly: hourly)
        let events = try writer.read { db in try Self.eventSpan(db, site: site) }
        out.summary.lastEvent = events?.last
        // Conversions in the range as columns, each with the visit it is attributed to (its
        // visitor looked up in memory); kinds and currencies as small codes.
        let kinds = ConversionRow.Kind.allCases.map(\.rawValue)
        var sales = SaleColumns()
        try writer.read { db in
            var statement = try RawStatement(db, """
                SELECT ts, kind, coalesce(currency, ''), value, coalesce(session_id, -1) FROM conversions
                WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts, id
                """)
            statement.start(); statement.bind(site); statement.bind(from); statement.bind(to)
            var currencyCodes: [[UInt8]: UInt16] = [:]
            try statement.forEachRow { r in
                let kind = r.textBytes(1).flatMap { k in kinds.firstIndex { $0.utf8.elementsEqual(k) } } ?? kinds.count
                let bytes = r.textBytes(2).map(Array.init) ?? []
                let currency = currencyCodes[bytes] ?? {
                    let c = UInt16(clamping: sales.currencies.count)
                    currencyCodes[bytes] = c
                    sales.currencies.append(String(decoding: bytes, as: UTF8.self))
                    return c
                }()
                sales.append(ts: r.int64(0), kind: UInt8(kind), currency: currency, value: r.double(3), session: r.int64(4))
            }
        }
        var matching: SessionBits?
        if let first = sales.session.filter({ $0 >= 0 }).min() {
            // The days from the earliest attributed visit on: the visits' visitors, and (under
            // filters) whether each visit matches, wherever it lies in time.
            let (oldest, last) = events ?? (from, to)
            let opened = try writer.read { db in
                try Int64.fetchOne(db, sql: "SELECT started_at FROM sessions WHERE id = ?", arguments: [first]) ?? from
            }
            // Visits are numbered as they are opened, but a visit opened later by a queued event
            // (up to 72 hours old) may start earlier: four days of margin cover it (no event lies
            // before the oldest one).
            let earliest = max(opened - 4 * SiteCalendar.dayMs, view.calendar.start(of: view.calendar.day(of: oldest)))
            guard let wide = facts.view(site: site, from: min(earliest, from), to: max(to, last + 1)) else { return nil }
            var attributed = SessionBits(wide.blocks)
            let span = attributed.base..<(attributed.base + Int64(attributed.words.count * 64))
            for s in sales.session where span.contains(s) { attributed.insert(s) }
            if goals.contains(where: { $0.kind == .conversion }) {
                // (visit, its visitor's key), sorted by visit for a binary search per conversion.
                var visitors: [(Int64, UInt64)] = []
                for (bi, b) in wide.blocks.enumerated() {
                    for i in b.visitID.indices where attributed.contains(b.visitID[i]) {
                        visitors.append((b.visitID[i], UInt64(bi) << 32 | UInt64(b.visitVisitor[i])))
                    }
                }
                visitors.sort { $0.0 < $1.0 }
                for i in sales.session.indices {
                    let s = sales.session[i]
                    guard s >= 0 else { continue }
                    var lo = 0, hi = visitors.count
                    while lo < hi { let mid = (lo + hi) / 2; if visitors[mid].0 < s { lo = mid + 1 } else { hi = mid } }
                    if lo < visitors.count && visitors[lo].0 == s { sales.visitor[i] = visitors[lo].1 }
                }
            }
            if !filters.isEmpty { matching = wide.sessionsMatchingAnyTime(filters, among: attributed) }
        } else if !filters.isEmpty {
            matching = SessionBits([])
        }
        // Which conversions the view counts: all without filters, else those of matching visits.
        let counted: [Bool] = sales.session.map { s in matching.map { m in s >= 0 && m.contains(s) } ?? true }
        let sale = UInt8(kinds.firstIndex(of: "sale")!), refund = UInt8(kinds.firstIndex(of: "refund")!)
        // Revenue per currency that had a sale or refund; the same per point of the chart.
        var sold = [Double?](repeating: nil, count: sales.currencies.count)
        let firstDay = view.calendar.day(of: from), grid = SeriesPoint.hourGrid(from: from, calendar: view.calendar)
        for i in sales.ts.indices where counted[i] {
            let k = sales.kind[i]
            let currency = sales.currencies[Int(sales.currency[i])]
            let d = Int(view.calendar.day(of: sales.ts[i]) - firstDay), h = Int((sales.ts[i] - grid.anchor) / 3_600_000 - grid.first)
            if k != refund {
                out.summary.conversions += 1
                if out.daily.indices.contains(d) { out.daily[d].conversions += 1 }
                if out.hourly?.indices.contains(h) == true { out.hourly?[h].conversions += 1 }
            }
            if k == sale || k == refund {
                sold[Int(sales.currency[i])] = (sold[Int(sales.currency[i])] ?? 0) + sales.value[i]
                if out.daily.indices.contains(d) { out.daily[d].revenue.byCurrency[currency, default: 0] += sales.value[i] }
                if out.hourly?.indices.contains(h) == true { out.hourly?[h].revenue.byCurrency[currency, default: 0] += sales.value[i] }
            }
        }
        out.summary.revenue = Revenue(Dictionary(uniqueKeysWithValues: sold.enumerated().compactMap { c, v in v.map { (sales.currencies[c], $0) } }))
        out.goals = goals.map { g in
            guard g.kind == .conversion else { return out.eventGoals[g.id ?? -1] ?? GoalResult(goal: g, visitors: 0, completions: 0) }
            guard let code = kinds.firstIndex(of: g.match).map(UInt8.init) else { return GoalResult(goal: g, visitors: 0, completions: 0) }
            var completions = 0
            var visitors: [(Int64, UInt64)] = []
            for i in sales.ts.indices where sales.kind[i] == code && counted[i] {
                completions += 1
                if sales.visitor[i] != .max { visitors.append((view.calendar.day(of: sales.ts[i]), sales.visitor[i])) }
            }
            // Distinct (day, visitor) pairs.
            visitors.sort { $0 < $1 }
            let distinct = visitors.indices.filter { $0 == 0 || visitors[$0] != visitors[$0 - 1] }.count
            return GoalResult(goal: g, visitors: distinct, completions: completions)
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
        let paths = codes.path.values, names = codes.name.values
        let pageview = codes.name.existing("pageview") ?? .max
        // Per page code and per event name code, the steps an event with it reaches.
        var pathSteps = [UInt32](repeating: 0, count: paths.count), nameSteps = [UInt32](repeating: 0, count: names.count)
        for (k, g) in steps.enumerated() {
            if g.kind == .page {
                let prefix = g.match.hasSuffix("*") ? String(g.match.dropLast()) : nil
                for c in paths.indices where c != 0 && FactView.matches(paths[c], exactly: g.match, prefix: prefix) { pathSteps[c] |= 1 << UInt32(k) }
            } else if let c = codes.name.existing(g.match) {
                nameSteps[Int(c)] |= 1 << UInt32(k)
            }
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
            let session = b.session, name = b.name, path = b.path
            for i in 0..<b.events {
                let n = name[i]
                let mask = nameSteps[Int(n)] | (n == pageview ? pathSteps[Int(path[i])] : 0)
                guard mask != 0 else { continue }
                let s = session[i]
                guard s >= 0, started.contains(s) else { continue }
                if s != current || b.ts[i] != groupTs { current = s; groupTs = b.ts[i]; groupMask = 0 }
                groupMask |= mask
                let slot = Int(s - started.base)
                while Int(stage[slot]) < steps.count && groupMask & (1 << UInt32(stage[slot])) != 0 { stage[slot] += 1 }
            }
        }
        // Distinct visitors per step: each visit's (day, visitor) key, sorted, counted once.
        var visits = [Int](repeating: 0, count: steps.count)
        var keys = [[UInt64]](repeating: [], count: steps.count)
        for slot in stage.indices where stage[slot] > 0 {
            for k in 0..<Int(stage[slot]) { visits[k] += 1; keys[k].append(visitor[slot]) }
        }
        return steps.indices.map { k in
            keys[k].sort()
            var distinct = 0, last = UInt64.max
            for key in keys[k] where key != last { distinct += 1; last = key }
            return (visits[k], distinct)
        }
    }
}

extension AppDatabase {
    /// A funnel from the engine, or nil when it does not hold the days needed (or a step is a
    /// conversion goal): then ``funnelResult(_:from:to:)`` answers.
    public func factFunnel(_ funnel: Funnel, from: Int64, to: Int64) throws -> FunnelResult? {
        let byID = Dictionary(uniqueKeysWithValues: try goals(site: funnel.siteID).compactMap { g in g.id.map { ($0, g) } })
        let steps = funnel.steps.compactMap { byID[$0] }
        let (oldest, last) = try writer.read { db in try Self.eventSpan(db, site: funnel.siteID) } ?? (from, to)
        // Late events may belong to a visit that started a little after them: one day before the
        // range too (no event lies before the oldest one).
        let calendar = try calendar(site: funnel.siteID)
        let start = min(from, max(from - SiteCalendar.dayMs, calendar.start(of: calendar.day(of: oldest))))
        guard let view = facts.view(site: funnel.siteID, from: start, to: max(to, last + 1)) else { return nil }
        // The same steps over the same days at the same generations give the same counts: kept
        // until a day changes (today's every minute), a range ending after the last visit start
        // being the same range as one ending right after it.
        let latest = view.blocks.map { $0.start + Int64($0.totals.lastOffset) }.max() ?? from
        let key = FunnelKey(site: funnel.siteID, steps: steps.map { "\($0.kind.rawValue):\($0.match)" }, from: from, to: min(to, latest + 1),
                            days: view.blocks.map { [$0.day, $0.generation] })
        let counts: [FunnelCounts]
        if let cached = facts.funnels[key] {
            counts = cached
        } else {
            guard let computed = view.funnel(steps, from: from, to: to) else { return nil }
            facts.funnels[key] = computed
            counts = computed
        }
        return FunnelResult(funnel: funnel, steps: zip(steps, counts).map { ($0, $1.visits, $1.visitors) })
    }
}

extension FactView {
    /// Properties of custom event `event` under the filters: each `key = value` with its distinct
    /// visitors per day summed and its events, as `AppDatabase.propertyBreakdown` counts them.
    func properties(filters: Filters, event: String, limit: Int = AppDatabase.tableRowLimit) -> [BreakdownRow] {
        let scan = Scan(view: self, filters: filters, goals: [])
        guard !scan.compiled.empty, let code = codes.name.existing(event) else { return [] }
        let texts = codes.propertyTexts
        var tally = Tally(texts.count)
        for (bi, b) in blocks.enumerated() { scan.properties(bi, b, event: code, into: &tally) }
        // Rows as the SQL shows them: the pair's text (NULL for a JSON null).
        return tally.rows(count: texts.count, limit: limit) { texts[$0] }
    }
}

extension AppDatabase {
    /// Properties of a custom event from the engine, or nil when it does not hold the range.
    public func factProperties(site: String, from: Int64, to: Int64, event: String, filters: Filters) -> [BreakdownRow]? {
        facts.view(site: site, from: from, to: to)?.properties(filters: filters, event: event)
    }
}

/// What a funnel's counts depend on: its steps, the range, and the days (with their generations) the engine read.
typealias FunnelCounts = (visits: Int, visitors: Int)

struct FunnelKey: Hashable, Sendable {
    let site: String
    let steps: [String]
    let from: Int64, to: Int64
    let days: [[Int64]]
}

/// A range's conversions as columns (kinds by their index in `ConversionRow.Kind.allCases`,
/// currencies by code; session -1 and visitor `.max` are none).
struct SaleColumns {
    var ts: [Int64] = [], kind: [UInt8] = [], currency: [UInt16] = [], value: [Double] = [], session: [Int64] = [], visitor: [UInt64] = []
    var currencies: [String] = []

    mutating func append(ts: Int64, kind: UInt8, currency: UInt16, value: Double, session: Int64) {
        self.ts.append(ts); self.kind.append(kind); self.currency.append(currency); self.value.append(value)
        self.session.append(session); visitor.append(.max)
    }
}

/// Results kept by what they depend on (the keys name the days' generations, so nothing is ever
/// stale); emptied when full.
final class Memo<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let state = Mutex<[Key: Value]>([:])
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(key: Key) -> Value? {
        get { state.withLock { $0[key] } }
        set {
            state.withLock { all in
                if all.count >= capacity { all.removeAll() }
                all[key] = newValue
            }
        }
    }
}
