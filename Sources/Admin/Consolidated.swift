import Analytics
import Consent
import Foundation
import Hummingbird
import Store
import Storage

/// Every site a reader may see over one range, each in its own days, with the change against
/// the period before and the totals, each figure disclosed once by the site's rule. The
/// overview page, its CSV and JSON exports and the consolidated report render from here.
///
/// A total is the sum of the sites' figures, shown only when every site's figure is shown
/// exactly (a total next to a "< 5" would give that site's figure away by difference). Visitors
/// are counted per site (someone who visited two sites counts twice: the total says "sum of
/// sites"); revenue is summed per currency.
struct Consolidated {
    struct Line {
        let site: Site
        let cards: Disclosure.Cards
        let before: Disclosure.Cards
        /// Whether the site's rule restricts this reader (no last-event time then).
        let restricted: Bool
        let lastEvent: Int64?
        /// Visitors per day over the last 30 days of the site's days, as the rule shows them.
        let spark: [Disclosure.Point]
    }

    struct Totals: Equatable {
        var visitors: Shown<Int>
        var pageviews: Shown<Int>
        var conversions: Shown<Int>
        var revenue: Shown<Revenue>

        /// As cards of one line: those a sum of sites has no meaning for (visits, rates, durations) are withheld.
        var cards: Disclosure.Cards {
            Disclosure.Cards(visitors: visitors, visits: .withheld, pageviews: pageviews, viewsPerVisit: .withheld, bounceRate: .withheld,
                             averageDurationMs: .withheld, conversions: conversions, revenue: revenue)
        }

        /// Whether a figure is missing from the totals because a site's is not shown exactly.
        var partial: Bool { [visitors, pageviews, conversions].contains { $0.value == nil } || revenue.value == nil }
    }

    let lines: [Line]
    /// Sites listed apart: archived ones, which collect nothing.
    let archived: [Site]

    var totals: Totals { Self.sum(lines.map(\.cards)) }
    /// The name of the totals' line: "All sites (3)".
    var totalsLabel: String { "All sites (\(lines.count))" }
    var totalsBefore: Totals { Self.sum(lines.map(\.before)) }

    static func sum(_ cards: [Disclosure.Cards]) -> Totals {
        func add(_ parts: [Shown<Int>]) -> Shown<Int> {
            var total = 0
            for part in parts {
                guard let n = part.value else { return .withheld }
                total += n
            }
            return .value(total)
        }
        var revenue = Revenue()
        var revenueShown = true
        for c in cards {
            guard let r = c.revenue.value else { revenueShown = false; break }
            revenue.byCurrency.merge(r.byCurrency, uniquingKeysWith: +)
        }
        return Totals(visitors: add(cards.map(\.visitors)), pageviews: add(cards.map(\.pageviews)),
                      conversions: add(cards.map(\.conversions)), revenue: revenueShown ? .value(revenue) : .withheld)
    }

    /// "+12 %", "new", "±0 %", or "" when either figure is not shown.
    static func change(_ now: Shown<Int>, _ before: Shown<Int>) -> String {
        Format.change(now.value.map(Double.init), before.value.map(Double.init)) ?? ""
    }
}

extension Consolidated {
    /// The lines of `sites` (in their order), each disclosed by `disclosure` over `range` (the
    /// site's days); archived sites are set apart without figures. `sparklines`: read each site's
    /// last 30 days for its sparkline (the overview draws them, reports do not).
    static func make(database: AppDatabase, sites: [Site], at t: Int64, disclosure: (Site) -> Disclosure,
                     range: (Site) throws -> ViewRange, sparklines: Bool = true) throws -> Consolidated {
        var lines: [Line] = [], archived: [Site] = []
        for site in sites {
            if site.archivedAt != nil { archived.append(site); continue }
            let rule = disclosure(site)
            let r = try range(site)
            let view = Figures(database: database, site: site.id, from: r.from, to: r.to, filters: Filters(), wholeDays: r.wholeDays, calendar: r.calendar)
            let s = try view.summary()
            var spark: [Disclosure.Point] = []
            if sparklines {
                let today = site.calendar.day(of: t)
                let series = try Figures.withImported(try database.rollupSeries(site: site.id, fromDay: today - 29, toDay: today),
                                                      database: database, calendar: site.calendar,
                                                      span: try database.importedSpan(site: site.id, fromDay: today - 29, toDay: today))
                spark = rule.series(series, total: series.reduce(0) { $0 + $1.visitors }, days: true)
            }
            lines.append(Line(site: site, cards: rule.cards(s), before: rule.cards(try view.previous().summary()), restricted: rule.restricted,
                              lastEvent: s.lastEvent, spark: spark))
        }
        return Consolidated(lines: lines, archived: archived)
    }
}

extension DashboardRoutes {
    /// The sites `v` may see whose name or a domain contains `query` (lower case; empty: all),
    /// over the range the request names in each site's days.
    func consolidated(_ request: Request, _ v: Viewer, query: String = "") throws -> Consolidated {
        let sites = try database.sites().filter { site in
            v.may(see: site.id) && (query.isEmpty || site.name.lowercased().contains(query) || site.domains.contains { $0.contains(query) })
        }
        return try Consolidated.make(database: database, sites: sites, at: Int64(now().timeIntervalSince1970 * 1000),
                                     disclosure: { disclosure(v, policies[$0.policy] ?? .default) }, range: { try range(request, $0.calendar).get() })
    }
}
