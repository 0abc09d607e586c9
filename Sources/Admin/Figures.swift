public import Foundation
public import Store
import Storage
import Synchronization

/// The figures of one site over a range, from the analytics engine when it holds every day of
/// the range (any filters; see Store's FactStore), else from the daily rollups when the view
/// allows it (no filters, a range of whole days of the site's time zone, every day of it rolled up), else from the
/// raw events. All give the same numbers for the same days; the engine and the rollups are at
/// most a minute behind. A range with days not rolled up yet (a bulk load, an upgrade that
/// rebuilds them) is read from the raw events, never summed from the days that are ready. Late
/// events (queued by an offline browser) wait for their day's rebuild, within a minute, when the
/// engine answers; the page says so (``lateDays``).
///
/// Days imported from another tool (``ImportedAggregates``; never a day with collected data)
/// add their totals, breakdowns and daily points to an unfiltered view's, for the whole days of
/// the range (``importedDays``). Goals, funnels, event properties, engagement and conversions
/// count collected data only; a filtered view, and the views a filtered one is compared with,
/// count collected data only.
struct Figures {
    let database: AppDatabase
    let site: String
    let from: Int64
    let to: Int64
    let filters: Filters
    let wholeDays: Bool
    /// The site's days.
    let calendar: SiteCalendar
    /// Whole-day ranges without filters use the rollups.
    let rollups: Bool

    /// Days of the range whose rollups are still being built and the engine does not answer (the
    /// figures come from the raw events).
    var backfilling: Bool { aligned && !ready && (try? facts()) == nil }
    /// Whether the server is still loading the engine after a start and it does not hold the
    /// view yet: counting it from the raw events meanwhile could take minutes on a large site.
    var waitsForEngine: Bool { database.facts.isLoading && (try? facts()) == nil }
    /// Days of the range whose late events are not counted yet (see ``FactFigures/lateDays``).
    var lateDays: Int { ((try? facts()) ?? nil)?.lateDays ?? 0 }
    /// A range of whole local days (compared with the same number of whole days before it).
    let aligned: Bool

    /// Whether every day of the range is rolled up (checked once per range, see ``narrowed(to:)``).
    private let ready: Bool

    /// The whole days of the range whose imported aggregates the figures include (looked up once
    /// per view); nil when none is imported, under filters, and for a view narrowed from a filtered one.
    let importedDays: ImportedSpan?

    /// The engine's figures of the view, computed on first use (nil when it does not hold the range).
    private let engine = EngineFigures()

    init(database: AppDatabase, site: String, from: Int64, to: Int64, filters: Filters, wholeDays: Bool, calendar: SiteCalendar) {
        let aligned = wholeDays && to > from && calendar.isDayStart(from)
        // A failed check counts as not ready: the raw events give the right figures, only slower.
        let ready = aligned && ((try? database.daysWithoutRollup(site: site, fromDay: calendar.day(of: from), toDay: calendar.day(of: to - 1),
                                                                  limit: 1).isEmpty) ?? false)
        // Whole days only: an imported day is a total, it cannot be cut.
        var imported: ImportedSpan?
        if filters.isEmpty && to > from {
            let first = calendar.day(of: from) + (calendar.isDayStart(from) ? 0 : 1)
            let last = calendar.day(of: to - 1) - (calendar.end(of: calendar.day(of: to - 1)) == to ? 0 : 1)
            // A failed lookup shows collected data only (the page cannot say it is complete then; see ``importedTotals()``).
            imported = (try? database.importedSpan(site: site, fromDay: first, toDay: last)) ?? nil
        }
        self.init(database: database, site: site, from: from, to: to, filters: filters, wholeDays: wholeDays, calendar: calendar,
                  aligned: aligned, ready: ready, imported: imported)
    }

    private init(database: AppDatabase, site: String, from: Int64, to: Int64, filters: Filters, wholeDays: Bool, calendar: SiteCalendar,
                 aligned: Bool, ready: Bool, imported: ImportedSpan?) {
        self.database = database; self.site = site; self.from = from; self.to = to; self.filters = filters
        self.wholeDays = wholeDays
        self.calendar = calendar
        self.aligned = aligned
        self.ready = ready
        importedDays = filters.isEmpty ? imported : nil
        rollups = ready && filters.isEmpty
    }

    /// The same range under other filters (the rollups' readiness is the range's, not looked up
    /// again). Imported days stay only when neither view has filters.
    func narrowed(to filters: Filters) -> Figures {
        Figures(database: database, site: site, from: from, to: to, filters: filters, wholeDays: wholeDays, calendar: calendar,
                aligned: aligned, ready: ready, imported: importedDays)
    }

    /// The same view counting collected data only.
    func collectedOnly() -> Figures {
        Figures(database: database, site: site, from: from, to: to, filters: filters, wholeDays: wholeDays, calendar: calendar,
                aligned: aligned, ready: ready, imported: nil)
    }

    /// Totals of the imported days the figures include (zero without any).
    func importedTotals() throws -> ImportedTotals {
        guard let span = importedDays else { return ImportedTotals() }
        return try database.importedTotals(span)
    }

    /// The imported days the figures include.
    func importedDayNumbers() throws -> Set<Int64> {
        guard let span = importedDays else { return [] }
        return Set(try database.importedDaily(span).keys)
    }

    /// Collected rows and imported rows of one breakdown added up by value, in the order of the rollups' breakdowns.
    private func withImported(_ rows: [BreakdownRow], key: String) throws -> [BreakdownRow] {
        guard let span = importedDays else { return rows }
        let imported = try database.importedBreakdown(span, key: key)
        guard !imported.isEmpty else { return rows }
        var sums: [String?: (Int, Int)] = [:]
        for r in rows + imported {
            let old = sums[r.value] ?? (0, 0)
            sums[r.value] = (old.0 + r.visitors, old.1 + r.pageviews)
        }
        return sums.map { BreakdownRow(value: $0.key, visitors: $0.value.0, pageviews: $0.value.1) }.sorted {
            ($0.visitors, $0.pageviews) != ($1.visitors, $1.pageviews) ? ($0.visitors, $0.pageviews) > ($1.visitors, $1.pageviews)
                : ($0.value ?? "") < ($1.value ?? "")
        }.prefix(AppDatabase.tableRowLimit).map { $0 }
    }

    var fromDay: Int64 { calendar.day(of: from) }
    var toDay: Int64 { calendar.day(of: to - 1) }

    /// The engine's figures of the view, when it holds every day of the range (else the rollups
    /// or the raw events answer).
    private func facts() throws -> FactFigures? {
        try engine.get { try database.factFigures(site: site, from: from, to: to, filters: filters, hourly: hourlyChart) }
    }

    func summary() throws -> SiteSummary {
        var s = try collectedSummary()
        let i = try importedTotals()
        s.visitors += i.visitors; s.pageviews += i.pageviews; s.visits += i.visits; s.bounces += i.bounces; s.durationMs += i.durationMs
        return s
    }

    /// The summary of collected data only (what goals and funnels are measured against).
    func collectedSummary() throws -> SiteSummary {
        if let f = try facts() { return f.summary }
        return rollups ? try database.rollupSiteSummary(site: site, fromDay: fromDay, toDay: toDay)
            : try database.summary(site: site, from: from, to: to, filters: filters)
    }

    /// The same view over the period of the same length just before.
    func previous() -> Figures {
        // Whole-day views compare with the same number of whole days before them; today so far
        // with yesterday up to the end of the current hour (hour for hour on the chart): the
        // window moves once an hour, so reloads cannot be told apart by less than an hourly bar,
        // which the k rule governs; any other span with the span of the same length just before.
        if !aligned && calendar.isDayStart(from) && fromDay == toDay {
            let start = calendar.start(of: fromDay - 1)
            let hours = (to - from + 3_599_999) / 3_600_000 * 3_600_000
            return Figures(database: database, site: site, from: start, to: min(from, start + hours), filters: filters, wholeDays: false,
                           calendar: calendar)
        }
        let start = aligned ? calendar.start(of: fromDay - (toDay - fromDay + 1)) : 2 * from - to
        return Figures(database: database, site: site, from: start, to: from, filters: filters, wholeDays: aligned, calendar: calendar)
    }

    /// Every goal of the site: from the engine, else from the raw events (goals are not rolled up).
    func goals() throws -> [GoalResult] {
        try facts()?.goals ?? database.goalResults(site: site, from: from, to: to, filters: filters)
    }

    /// Properties of a custom event (`key = value` rows) under the view's filters.
    func properties(event: String) throws -> [BreakdownRow] {
        try database.factProperties(site: site, from: from, to: to, event: event, filters: filters)
            ?? database.propertyBreakdown(site: site, from: from, to: to, event: event, filters: filters)
    }

    /// A funnel over the range (funnels ignore the filters): from the engine when it holds the days, else from the raw events.
    func funnel(_ f: Funnel) throws -> FunnelResult {
        try database.factFunnel(f, from: from, to: to) ?? database.funnelResult(f, from: from, to: to)
    }

    func breakdown(_ d: Store.Dimension) throws -> [BreakdownRow] {
        try withImported(try collectedBreakdown(d), key: d.rawValue)
    }

    private func collectedBreakdown(_ d: Store.Dimension) throws -> [BreakdownRow] {
        if let f = try facts() { return f.breakdowns[d] ?? [] }
        if rollups { return try database.rollupBreakdown(site: site, fromDay: fromDay, toDay: toDay, key: d.rawValue) }
        return try database.breakdown(site: site, from: from, to: to, dimension: d, filters: filters)
    }

    func sessionBreakdown(_ d: SessionDimension) throws -> [BreakdownRow] {
        let key = d == .entry ? RollupKey.entry : RollupKey.exit
        if let f = try facts() { return try withImported(d == .entry ? f.entry : f.exit, key: key) }
        return try withImported(rollups ? try database.rollupBreakdown(site: site, fromDay: fromDay, toDay: toDay, key: key)
            : try database.sessionBreakdown(site: site, from: from, to: to, dimension: d, filters: filters), key: key)
    }

    /// The chart has a bar per hour for ranges within two local days, per day beyond, and per
    /// day whenever imported days (daily totals) are part of it.
    var hourlyChart: Bool { toDay - fromDay < 2 && importedDays == nil }

    /// Points of the chart; imported days add to the daily points (an hourly chart has none).
    func series(hourly: Bool) throws -> [SeriesPoint] {
        let points = try collectedSeries(hourly: hourly)
        guard !hourly, let span = importedDays else { return points }
        return try Self.withImported(points, database: database, calendar: calendar, span: span)
    }

    /// Daily points with the imported days of `span` added (none: the points as they are).
    static func withImported(_ points: [SeriesPoint], database: AppDatabase, calendar: SiteCalendar, span: ImportedSpan?) throws -> [SeriesPoint] {
        guard let span else { return points }
        let imported = try database.importedDaily(span)
        guard !imported.isEmpty else { return points }
        var points = points
        for i in points.indices {
            guard let add = imported[calendar.day(of: points[i].start)] else { continue }
            points[i].visitors += add.visitors; points[i].pageviews += add.pageviews; points[i].visits += add.visits
        }
        return points
    }

    private func collectedSeries(hourly: Bool) throws -> [SeriesPoint] {
        if let f = try facts(), let points = hourly ? f.hourly : f.daily { return points }
        return rollups && !hourly ? try database.withConversions(database.rollupSeries(site: site, fromDay: fromDay, toDay: toDay), site: site)
            : try database.series(site: site, from: from, to: to, hourly: hourly, filters: filters)
    }

    func engagement(limit: Int = 50) throws -> [PageEngagement] {
        if let f = try facts() { return Array(f.engagement.prefix(limit)) }
        guard rollups else { return try database.pageEngagement(site: site, from: from, to: to, filters: filters, limit: limit) }
        let views = try database.rollupBreakdown(site: site, fromDay: fromDay, toDay: toDay, key: Store.Dimension.page.rawValue)
        let engaged = Dictionary(uniqueKeysWithValues: try database.rollupBreakdown(site: site, fromDay: fromDay, toDay: toDay,
                                                                                   key: RollupKey.engagedMs).map { ($0.value ?? "", $0) })
        let scroll = Dictionary(uniqueKeysWithValues: try database.rollupBreakdown(site: site, fromDay: fromDay, toDay: toDay,
                                                                                  key: RollupKey.scroll).map { ($0.value ?? "", $0) })
        func average(_ r: BreakdownRow?) -> Double { r.map { $0.visitors == 0 ? 0 : Double($0.pageviews) / Double($0.visitors) } ?? 0 }
        return views.sorted { ($0.pageviews, $1.value ?? "") > ($1.pageviews, $0.value ?? "") }.prefix(limit).map { v in
            let path = v.value ?? ""
            return PageEngagement(path: path, pageviews: v.pageviews, averageEngagedMs: Int64(average(engaged[path]).rounded()),
                                  averageScroll: Int(average(scroll[path]).rounded()))
        }
    }
}

/// Computes the engine's figures of one view once, for every table of the page that asks.
private final class EngineFigures: Sendable {
    private let state = Mutex<FactFigures??>(nil)

    func get(_ compute: () throws -> FactFigures?) throws -> FactFigures? {
        try state.withLock { cached in
            if let cached { return cached }
            let f = try compute()
            cached = .some(f)
            return f
        }
    }
}

/// Timings of the site view's queries (`make bench-dashboard`).
public enum DashboardTiming {
    /// Milliseconds per run of the 30-day view's figures (summary, every breakdown, entry/exit
    /// pages, engagement, the daily chart, goals): unfiltered, and where country = `country`.
    public static func run(database: AppDatabase, site: String, now: Date, samples: Int, country: String) throws -> (overview: [Double], filtered: [Double]) {
        let t = Int64(now.timeIntervalSince1970 * 1000)
        let calendar = try database.calendar(site: site)
        let from = calendar.start(of: calendar.day(of: t) - 29)
        var overview: [Double] = [], filtered: [Double] = []
        func time(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        func page(_ filters: Filters) throws {
            let f = Figures(database: database, site: site, from: from, to: t + 1, filters: filters, wholeDays: true, calendar: calendar)
            _ = try f.summary()
            for d in Dimension.allCases { _ = try f.breakdown(d) }
            for d in SessionDimension.allCases { _ = try f.sessionBreakdown(d) }
            _ = try f.engagement()
            _ = try f.series(hourly: false)
            _ = try f.goals()
        }
        for _ in 0..<samples {
            overview.append(try time { try page(Filters()) })
            filtered.append(try time { try page(Filters([(.country, country)])) })
        }
        return (overview.sorted(), filtered.sorted())
    }
}
