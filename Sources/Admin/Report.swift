import Actions
public import Analytics
import Consent
import Foundation
import Store
import Storage

/// A breakdown of the site view: by an event dimension, or entry/exit pages (sessions).
enum TableKind: Sendable, Equatable {
    case events(Store.Dimension)
    case sessions(SessionDimension)

    init?(key: String) {
        if let d = Store.Dimension(rawValue: key) { self = .events(d) } else if let d = SessionDimension(rawValue: key) { self = .sessions(d) } else { return nil }
    }

    var key: String {
        switch self {
        case .events(let d): d.rawValue
        case .sessions(let d): d.rawValue
        }
    }

    var label: String {
        switch self {
        case .events(let d): d.label
        case .sessions(let d): d.label
        }
    }

    /// What the table's second count is, in exports: visits (entry and exit pages), events
    /// (custom events sent), pageviews (every other table).
    var countColumn: String {
        switch self {
        case .sessions: "visits"
        case .events(.event): "events"
        case .events: "pageviews"
        }
    }

    /// What a row without a value means in the table on the page (exports leave it empty).
    var noValueLabel: String {
        switch self {
        case .events(.referrer), .events(.sourceName): "Direct / none"
        case .events(.utmSource), .events(.utmMedium), .events(.utmCampaign), .events(.utmTerm), .events(.utmContent): "(not set)"
        case .events(.country), .events(.region), .events(.city), .events(.asnOrg), .events(.screen): "Unknown"
        default: "(none)"
        }
    }

    /// The same as a column heading.
    var countLabel: String { countColumn.prefix(1).uppercased() + countColumn.dropFirst() }

    /// Every visitor-day has one value: geography comes from the address and the browser from the
    /// user agent, both part of the daily visitor hash. Pages, sources and events do not add up.
    var isPartition: Bool {
        switch self {
        case .events(let d): [.country, .region, .city, .asnOrg, .browser, .os, .device].contains(d)
        case .sessions: false
        }
    }
}

extension Disclosure {
    /// The rule for a reader of `role` on a site of `policy` (nil: an address without an account,
    /// read as a client viewer): exact for who ``Actions/readsExactFigures(_:policy:)`` says, k-anonymised otherwise.
    static func reading(as role: Role?, _ policy: Policy) -> Disclosure {
        Disclosure(k: policy.kThreshold, restricted: !(role.map { readsExactFigures($0, policy: policy) } ?? false))
    }
}

/// The figures of one site view (range and filters) as one reader may receive them: built from
/// ``Figures`` and passed once through the ``Analytics/Disclosure`` rule. The site page, its CSV
/// and JSON exports and the stats API all render from here; none of them sees an undisclosed
/// number.
struct SiteReport {
    let disclosure: Disclosure
    /// Figures of the view, then of each view with a proper subset of its filters (restricted
    /// readers only; the unfiltered view first among them).
    let views: [Figures]
    /// Whether the server is still loading the engine and it does not hold this view's days yet.
    var waitsForEngine: Bool { views.contains(where: \.waitsForEngine) }

    /// Most filters a restricted reader may combine (each combination is checked against all of
    /// its ancestor views).
    static let maxRestrictedFilters = 3

    var figures: Figures { views[0] }
    var ancestors: ArraySlice<Figures> { views.dropFirst() }
    var database: AppDatabase { figures.database }
    var site: String { figures.site }
    var from: Int64 { figures.from }
    var to: Int64 { figures.to }
    var filters: Filters { figures.filters }

    init(database: AppDatabase, site: String, range r: ViewRange, filters: Filters, disclosure: Disclosure) {
        self.init(database: database, site: site, from: r.from, to: r.to, filters: filters, wholeDays: r.wholeDays, calendar: r.calendar,
                  disclosure: disclosure)
    }

    init(database: AppDatabase, site: String, from: Int64, to: Int64, filters: Filters, wholeDays: Bool, calendar: SiteCalendar,
         disclosure: Disclosure) {
        self.disclosure = disclosure
        var subsets: [Filters] = [filters]
        if disclosure.restricted && !filters.isEmpty {
            let terms = filters.terms
            for mask in 0..<(1 << terms.count) - 1 {
                subsets.append(Filters(terms.indices.filter { mask & (1 << $0) != 0 }.map { terms[$0] }))
            }
        }
        let view = Figures(database: database, site: site, from: from, to: to, filters: filters, wholeDays: wholeDays, calendar: calendar)
        views = subsets.map(view.narrowed)
    }

    private init(views: [Figures], disclosure: Disclosure) {
        self.views = views; self.disclosure = disclosure
    }

    /// What goals, funnels and engagement (collected data only) are measured and disclosed
    /// against: the view's summaries and its shown page rows, or, when the view includes
    /// imported days, the same counted from collected data only (compared with totals that
    /// include imported days, a small group of collected visitors could show by difference).
    struct CollectedBasis {
        let report: SiteReport
        let summaries: [SiteSummary]
        /// Visitors of the page rows shown ("Other" included), and the paths of those shown.
        let pageRows: [Int]
        let shownPages: Set<String>
        /// With imported days: the visitor counts the reader is shown that include them (the
        /// cards, the page and event rows), which every goal and funnel step is also compared with.
        var alsoCompare: [Int] = []
    }

    func collected(summaries: [SiteSummary], pageTable: Disclosure.Table) throws -> CollectedBasis {
        func basis(_ r: SiteReport, _ s: [SiteSummary], _ t: Disclosure.Table) -> CollectedBasis {
            let shown = t.rows.filter { !$0.isOther && $0.visitors.value != nil }
            return CollectedBasis(report: r, summaries: s, pageRows: t.rows.compactMap(\.visitors.value), shownPages: Set(shown.compactMap(\.value)))
        }
        guard views.contains(where: { $0.importedDays != nil }) else { return basis(self, summaries, pageTable) }
        let own = SiteReport(views: views.map { $0.collectedOnly() }, disclosure: disclosure)
        let s = try own.summaries()
        var b = basis(own, s, try own.table(.events(.page), totals: own.totals(s)))
        let events = try table(.events(.event), totals: totals(summaries))
        b.alsoCompare = summaries.map(\.visitors) + (pageTable.rows + events.rows).compactMap(\.visitors.value)
        return b
    }

    func summaries() throws -> [SiteSummary] { try views.map { try $0.summary() } }

    func cards(_ summaries: [SiteSummary]) -> Disclosure.Cards {
        disclosure.cards(summaries[0], ancestors: Array(summaries.dropFirst()))
    }

    /// The same view over the period just before (comparison).
    func previous() -> SiteReport {
        let p = figures.previous()
        return SiteReport(database: p.database, site: p.site, from: p.from, to: p.to, filters: p.filters, wholeDays: p.wholeDays,
                          calendar: p.calendar, disclosure: disclosure)
    }

    func rows(_ kind: TableKind, _ f: Figures) throws -> [BreakdownRow] {
        switch kind {
        case .events(let d): try f.breakdown(d)
        case .sessions(let d): try f.sessionBreakdown(d)
        }
    }

    /// Visitors of the view and of each ancestor view (the totals rows and points are compared
    /// with), from ``summaries()``.
    struct Totals {
        let all: [Int]
        /// The view's pageviews.
        var pageviews = 0
        /// Conversions of the view and of each ancestor view (the chart's points are compared with).
        var conversions: [Int] = []
        /// Whether the reader is shown the view's revenue card (else no point's revenue either).
        var revenueShown = true
        var view: Int { all[0] }
        var ancestors: [Int] { Array(all.dropFirst()) }
    }

    func totals(_ summaries: [SiteSummary]) -> Totals {
        Totals(all: summaries.map(\.visitors), pageviews: summaries[0].pageviews, conversions: summaries.map(\.conversions),
               revenueShown: cards(summaries).revenue.value != nil)
    }

    func table(_ kind: TableKind, totals: Totals) throws -> Disclosure.Table {
        let kept = try rows(kind, figures)
        // A partition cut at the row limit: what its rows past the limit hold, for the rule to fold.
        let beyond = kind.isPartition && kept.count >= AppDatabase.tableRowLimit
            ? BreakdownRow(value: nil, visitors: max(0, totals.view - kept.reduce(0) { $0 + $1.visitors }),
                           pageviews: max(0, totals.pageviews - kept.reduce(0) { $0 + $1.pageviews }))
            : nil
        return disclosure.table(kept, total: totals.view, partition: kind.isPartition,
                                ancestors: try ancestors.map { try rows(kind, $0) }, ancestorTotals: totals.ancestors, beyond: beyond)
    }

    func chart(totals: Totals, hourly: Bool) throws -> [Disclosure.Point] {
        disclosure.series(try figures.series(hourly: hourly), total: totals.view, days: !hourly,
                          ancestors: try ancestors.map { try $0.series(hourly: hourly) }, ancestorTotals: totals.ancestors,
                          conversions: totals.conversions.first, ancestorConversions: Array(totals.conversions.dropFirst()),
                          revenueShown: totals.revenueShown)
    }

    /// Properties of a custom event (`key = value` rows): visitors who sent it, and events.
    func properties(event: String, totals: Totals) throws -> Disclosure.Table {
        func rows(_ f: Figures) throws -> [BreakdownRow] { try f.properties(event: event) }
        return disclosure.table(try rows(figures), total: totals.view, partition: false, ancestors: try ancestors.map(rows),
                                ancestorTotals: totals.ancestors)
    }

    /// Goals, compared with the view's total, the same goal and the totals of views with fewer
    /// filters, one another, and (page goals) the shown page rows they may overlap.
    func goals(summaries: [SiteSummary], pageRows: [Int], alsoCompare: [Int] = []) throws -> [(Goal, Disclosure.GoalFigures)] {
        let results = try views.map { try $0.goals() }
        // Conversion goals count conversions (a webhook conversion may carry no visitor).
        func support(_ g: GoalResult) -> Int { g.goal.kind == .conversion ? g.completions : g.visitors }
        let inputs = results[0].enumerated().map { i, g -> Disclosure.GoalInput in
            let same = results.dropFirst().compactMap { $0.indices.contains(i) ? support($0[i]) : nil }
            let totals = g.goal.kind == .conversion ? summaries.map(\.conversions) : summaries.map(\.visitors)
            return Disclosure.GoalInput(visitors: g.visitors, completions: g.completions, support: support(g),
                                        wholes: totals + same + (g.goal.kind == .page ? pageRows : [])
                                            + (g.goal.kind == .conversion ? [] : alsoCompare))
        }
        return zip(results[0].map(\.goal), disclosure.goals(inputs, total: summaries[0].visitors)).map { ($0, $1) }
    }

    /// Funnels (they count whole visits of the range, whatever the filters), each compared with
    /// the range's visits and visitors (`unfiltered`).
    func funnels(unfiltered: SiteSummary, alsoCompare: [Int] = []) throws -> [(Funnel, [(Goal, Shown<Int>)])] {
        try database.funnels(site: site).map { funnel in
            let result = try figures.funnel(funnel)
            let shown = disclosure.funnel(result.steps.map { ($0.visits, $0.visitors) }, whole: (unfiltered.visits, unfiltered.visitors),
                                          alsoCompare: alsoCompare)
            return (funnel, zip(result.steps, shown).map { ($0.goal, $1) })
        }
    }
}
