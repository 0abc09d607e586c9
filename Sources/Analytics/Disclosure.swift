public import Store

/// A figure as a restricted reader receives it.
public enum Shown<Value: Sendable & Equatable>: Sendable, Equatable {
    /// The exact figure.
    case value(Value)
    /// Derived from fewer than k distinct visitors (shown as "< k").
    case belowK(Int)
    /// From k or more visitors, but showing it would let a difference with another shown figure
    /// reveal a group smaller than k (shown as "–").
    case withheld

    public var value: Value? {
        if case .value(let v) = self { return v }
        return nil
    }

    /// "12", "< 5" or "–".
    public func text(_ format: (Value) -> String) -> String {
        switch self {
        case .value(let v): format(v)
        case .belowK(let k): "< \(k)"
        case .withheld: "–"
        }
    }

    /// The same state with the shown value transformed.
    public func map<T: Sendable & Equatable>(_ transform: (Value) -> T) -> Shown<T> {
        switch self {
        case .value(let v): .value(transform(v))
        case .belowK(let k): .belowK(k)
        case .withheld: .withheld
        }
    }
}

/// The one rule every number a restricted reader receives passes through (viewers, managers
/// when the policy restricts them, API keys): cards, chart points, breakdown rows and their
/// "Other" row, goals, funnel steps, real-time counts — in HTML, CSV, JSON and the API.
///
/// 1. A figure derived from fewer than `k` distinct visitors is not shown: "< k".
/// 2. No difference of two shown figures may reveal a group of 1 … k-1 visitors:
///    - a part shown next to its whole (a row and the total, a goal and the visitors, a funnel
///      step and an earlier one, a chart point and the range) leaves 0 or at least k outside it;
///    - the rows folded into "Other (suppressed)" hold at least k visitors for certain (one of
///      them has k or more; or, where rows add up, their sum has): otherwise the next-smallest
///      row is folded too (complementary suppression), so the total minus the shown rows never
///      isolates a small group;
///    - a figure of a filtered view leaves 0 or at least k outside the same figure, and outside
///      the total, of every view with fewer of the same filters (its ancestors, down to the
///      unfiltered one), so adding a filter cannot single out the few who lack it.
/// A person counts once per day (the daily salt makes anything else impossible), so "visitors"
/// here are distinct daily visitors.
public struct Disclosure: Sendable {
    public let k: Int
    /// Whether the rule applies; owners and admins read exact figures.
    public let restricted: Bool

    public init(k: Int, restricted: Bool) {
        self.k = max(1, k)
        self.restricted = restricted
    }

    public static let exact = Disclosure(k: 1, restricted: false)

    /// A difference that isolates a small group: more than none, fewer than k.
    func isSmall(_ n: Int) -> Bool { n > 0 && n < k }

    /// A count on its own: "< k" below the threshold.
    public func count(_ n: Int) -> Shown<Int> {
        restricted && isSmall(n) ? .belowK(k) : .value(n)
    }

    /// A count shown next to counts it is part of (the last 5 minutes' visitors next to the last
    /// 30 minutes'): withheld when it leaves a small group outside one of them.
    public func part(_ n: Int, of wholes: [Int]) -> Shown<Int> {
        guard restricted else { return .value(n) }
        return state(n, wholes: wholes) ?? .value(n)
    }

    // MARK: Cards

    /// The summary cards of a view.
    public struct Cards: Sendable, Equatable {
        public var visitors: Shown<Int>
        public var visits: Shown<Int>
        public var pageviews: Shown<Int>
        public var viewsPerVisit: Shown<Double>
        public var bounceRate: Shown<Double>
        public var averageDurationMs: Shown<Int64>
        public var conversions: Shown<Int>
        public var revenue: Shown<Revenue>

        public init(visitors: Shown<Int>, visits: Shown<Int>, pageviews: Shown<Int>, viewsPerVisit: Shown<Double>, bounceRate: Shown<Double>,
                    averageDurationMs: Shown<Int64>, conversions: Shown<Int>, revenue: Shown<Revenue>) {
            self.visitors = visitors
            self.visits = visits
            self.pageviews = pageviews
            self.viewsPerVisit = viewsPerVisit
            self.bounceRate = bounceRate
            self.averageDurationMs = averageDurationMs
            self.conversions = conversions
            self.revenue = revenue
        }
    }

    /// Every card but conversions and revenue comes from the view's visitors; conversions and
    /// revenue from its conversions. `ancestors`: the same view with fewer of its filters.
    public func cards(_ s: SiteSummary, ancestors: [SiteSummary] = []) -> Cards {
        var cards = Cards(visitors: .value(s.visitors), visits: .value(s.visits), pageviews: .value(s.pageviews),
                          viewsPerVisit: .value(s.viewsPerVisit), bounceRate: .value(s.bounceRate),
                          averageDurationMs: .value(s.averageDurationMs), conversions: .value(s.conversions), revenue: .value(s.revenue))
        guard restricted else { return cards }
        // Only the count itself is "< k"; what the same few visitors did (their pageviews could
        // number more than k) is withheld.
        if let hidden = state(s.visitors, wholes: ancestors.map(\.visitors)) {
            cards.visitors = hidden
            cards.visits = .withheld
            cards.pageviews = .withheld
            cards.viewsPerVisit = .withheld
            cards.bounceRate = .withheld
            cards.averageDurationMs = .withheld
        }
        // Conversions are people too; the revenue of fewer than k of them is theirs alone.
        if let hidden = state(s.conversions, wholes: ancestors.map(\.conversions)) {
            cards.conversions = hidden
            cards.revenue = .withheld
        }
        cards.revenue = revenue(cards.revenue, conversions: s.conversions)
        return cards
    }

    /// Revenue as shown beside its conversions: a restricted reader gets none without a
    /// conversion (refunds alone: whose they are is not counted, so nothing says they come from k).
    func revenue(_ shown: Shown<Revenue>, conversions: Int) -> Shown<Revenue> {
        guard restricted, conversions == 0, let r = shown.value, !r.byCurrency.isEmpty else { return shown }
        return .withheld
    }

    /// nil when a count may be shown, else how it is shown: below k, or withheld because a whole
    /// it is part of differs from it by a small group.
    func state(_ n: Int, wholes: [Int]) -> Shown<Int>? {
        if isSmall(n) { return .belowK(k) }
        if wholes.contains(where: { isSmall($0 - n) }) { return .withheld }
        return nil
    }

    // MARK: Breakdowns

    /// A breakdown row as shown.
    public struct Row: Sendable, Equatable {
        public var value: String?
        public var visitors: Shown<Int>
        /// Pageviews, or visits for entry and exit pages, or events for properties.
        public var pageviews: Shown<Int>
        /// The "Other (suppressed)" row.
        public var isOther: Bool
    }

    public struct Table: Sendable, Equatable {
        public var rows: [Row]
        /// How many rows were folded into "Other (suppressed)".
        public var folded: Int
    }

    public static let otherLabel = "Other (suppressed)"

    /// A breakdown: rows under k, or leaving a small group outside them in the view or in an
    /// ancestor view, fold into "Other"; "Other" is shown only when it certainly holds k visitors,
    /// else the next-smallest row folds too. `total`: the view's visitors. `partition`: every
    /// visitor-day has one value (country, device…), so rows add up to the total; pages and
    /// events do not. `ancestors`: the same breakdown in views with fewer of the filters.
    /// `beyond`: what a partition's rows past the breakdown's row limit hold together (the
    /// totals less the rows kept); it always folds into "Other", or the total less the shown rows
    /// and "Other" would tell it.
    public func table(_ rows: [BreakdownRow], total: Int, partition: Bool, ancestors: [[BreakdownRow]] = [],
                      ancestorTotals: [Int] = [], beyond: BreakdownRow? = nil) -> Table {
        let exact = Table(rows: rows.map { Row(value: $0.value, visitors: .value($0.visitors), pageviews: .value($0.pageviews), isOther: false) },
                          folded: 0)
        guard restricted else { return exact }
        var rows = rows
        var hidden = Set<Int>()
        if let beyond, beyond.visitors > 0 {
            rows.append(beyond)
            hidden.insert(rows.count - 1)
        }
        let ancestorCounts = ancestors.map { Dictionary($0.map { ($0.value ?? "\u{0}none", $0.visitors) }, uniquingKeysWith: +) }
        // A row is a group of the view (its filters and its value); it is compared with every
        // coarser group a reader can see: the view's total, and in each view with fewer filters
        // the same row and the total.
        let wholes = [total] + ancestorTotals
        for (i, r) in rows.enumerated() {
            let key = r.value ?? "\u{0}none"
            if isSmall(r.visitors) || wholes.contains(where: { isSmall($0 - r.visitors) })
                || ancestorCounts.contains(where: { isSmall(($0[key] ?? 0) - r.visitors) }) {
                hidden.insert(i)
            }
        }
        // Complementary suppression: what is folded must certainly hold k visitors, and "Other"
        // (the sum of the folded rows) must itself leave 0 or at least k outside the totals, or it
        // would show what a folded row hides (a row of 99 in 100 folded alone shows as Other 99).
        func certified() -> Bool {
            let folded = hidden.map { rows[$0].visitors }
            let sum = folded.reduce(0, +)
            return (folded.contains { $0 >= k } || (partition && sum >= k)) && !wholes.contains { isSmall($0 - sum) }
        }
        while !hidden.isEmpty && !certified() {
            guard let next = rows.indices.filter({ !hidden.contains($0) }).min(by: { rows[$0].visitors < rows[$1].visitors }) else { break }
            hidden.insert(next)
        }
        var shown = rows.enumerated().filter { !hidden.contains($0.offset) }
            .map { Row(value: $0.element.value, visitors: .value($0.element.visitors), pageviews: .value($0.element.pageviews), isOther: false) }
        if !hidden.isEmpty {
            let sumVisitors = hidden.reduce(0) { $0 + rows[$1].visitors }
            let sumPageviews = hidden.reduce(0) { $0 + rows[$1].pageviews }
            shown.append(certified()
                ? Row(value: Self.otherLabel, visitors: .value(sumVisitors), pageviews: .value(sumPageviews), isOther: true)
                : Row(value: Self.otherLabel, visitors: .withheld, pageviews: .withheld, isOther: true))
        }
        return Table(rows: shown, folded: hidden.count - (rows.count - exact.rows.count))
    }

    // MARK: Chart

    public struct Point: Sendable, Equatable {
        public var start: Int64
        public var visitors: Shown<Int>
        public var pageviews: Shown<Int>
        public var visits: Shown<Int>
        public var conversions: Shown<Int>
        public var revenue: Shown<Revenue>
    }

    /// Chart points: each like a row of a partition when the points are whole days (a visitor-day
    /// falls in one day, so days add up to the range), like pages when they are hours; what the
    /// visitors of a point did (pageviews, visits) is shown with its visitors. Conversions are
    /// people too, and each lies in one point: the points' conversions are a partition of the
    /// view's (`conversions`, by default the points' sum; `ancestorConversions` those of the views
    /// with fewer filters), and a point's revenue is shown with its conversions, as on the cards;
    /// none where the view's revenue card is withheld (`revenueShown` false).
    /// A point's visits are shown with its visitors; under filters a point may hold visits
    /// without visitors (a visit begun in it whose matching event came later): withheld.
    public func series(_ points: [SeriesPoint], total: Int, days: Bool, ancestors: [[SeriesPoint]] = [], ancestorTotals: [Int] = [],
                       conversions: Int? = nil, ancestorConversions: [Int] = [], revenueShown: Bool = true) -> [Point] {
        func rows(_ points: [SeriesPoint], _ count: (SeriesPoint) -> Int) -> [BreakdownRow] {
            points.map { BreakdownRow(value: String($0.start), visitors: count($0), pageviews: $0.pageviews) }
        }
        func shown(_ table: Table) -> [String: Row] {
            var byStart: [String: Row] = [:]
            for r in table.rows where !r.isOther { byStart[r.value ?? ""] = r }
            return byStart
        }
        let people = shown(table(rows(points.filter { $0.visitors > 0 }, \.visitors), total: total, partition: days,
                                 ancestors: ancestors.map { rows($0, \.visitors) }, ancestorTotals: ancestorTotals))
        let sales = shown(table(rows(points.filter { $0.conversions > 0 }, \.conversions), total: conversions ?? points.reduce(0) { $0 + $1.conversions },
                                partition: true, ancestors: ancestors.map { rows($0, \.conversions) }, ancestorTotals: ancestorConversions))
        return points.map { p in
            var point = Point(start: p.start, visitors: .value(p.visitors), pageviews: .value(p.pageviews), visits: .value(p.visits),
                              conversions: .value(p.conversions), revenue: .value(p.revenue))
            // Nobody in this bucket: a 0 next to an ancestor's figure differs by that figure, which
            // its own view shows only from k visitors on (the same for conversions).
            if restricted && p.visitors == 0 && p.visits > 0 { point.visits = .withheld }
            if p.visitors > 0 {
                if let row = people[String(p.start)] {
                    point.visitors = row.visitors
                } else {
                    point.visitors = restricted && isSmall(p.visitors) ? .belowK(k) : .withheld
                    point.pageviews = .withheld
                    point.visits = .withheld
                }
            }
            if p.conversions > 0 && sales[String(p.start)] == nil {
                point.conversions = restricted && isSmall(p.conversions) ? .belowK(k) : .withheld
                point.revenue = .withheld
            }
            point.revenue = restricted && !revenueShown ? .withheld : revenue(point.revenue, conversions: p.conversions)
            return point
        }
    }

    // MARK: Goals and funnels

    public struct GoalFigures: Sendable, Equatable {
        public var visitors: Shown<Int>
        public var completions: Shown<Int>
        /// Share of the view's visitors.
        public var rate: Shown<Double>
    }

    /// One goal's result in a view.
    public struct GoalInput: Sendable {
        public var visitors: Int
        public var completions: Int
        /// The count its group is measured by: its visitors, or for conversion goals its conversions.
        public var support: Int
        /// Counts it is part of or comparable with: the view's visitors (or conversions), the same
        /// goal and the totals in views with fewer filters, the page rows it may overlap.
        public var wholes: [Int]
        public init(visitors: Int, completions: Int, support: Int, wholes: [Int]) {
            self.visitors = visitors; self.completions = completions; self.support = support; self.wholes = wholes
        }
    }

    /// Goals of a view. Each is a group of the view's visitors; goals overlap one another (a page
    /// prefix and a page under it), so each is also compared with every other goal shown: no two
    /// shown goals differ by 1 … k-1. `total`: the view's visitors, for the rate.
    public func goals(_ goals: [GoalInput], total: Int) -> [GoalFigures] {
        let exact = goals.map { g in
            GoalFigures(visitors: .value(g.visitors), completions: .value(g.completions),
                        rate: .value(total == 0 ? 0 : Double(g.visitors) / Double(total)))
        }
        guard restricted else { return exact }
        var result = exact
        var shown: [Int] = []
        // Largest first, so a goal is kept rather than the one nested in it.
        for i in goals.indices.sorted(by: { goals[$0].support > goals[$1].support }) {
            let g = goals[i]
            if let hidden = state(g.support, wholes: g.wholes + shown) ?? (isSmall(g.visitors) ? .belowK(k) : nil) {
                result[i] = GoalFigures(visitors: isSmall(g.visitors) ? .belowK(k) : hidden, completions: .withheld, rate: .withheld)
            } else {
                shown.append(g.support)
            }
        }
        return result
    }

    /// Funnel steps (visits reaching each one, and their distinct visitors): a step is shown when
    /// it has k visitors and leaves 0 or at least k behind every earlier step shown and the range.
    /// `whole`: the visits and visitors of the range the funnel's first step is part of.
    /// `alsoCompare`: other visitor counts shown beside it that a step's visitors may be part of.
    public func funnel(_ steps: [(visits: Int, visitors: Int)], whole: (visits: Int, visitors: Int)? = nil,
                       alsoCompare: [Int] = []) -> [Shown<Int>] {
        guard restricted else { return steps.map { .value($0.visits) } }
        var shown: [(visits: Int, visitors: Int)] = whole.map { [$0] } ?? []
        return steps.map { step in
            if isSmall(step.visitors) { return .belowK(k) }
            if alsoCompare.contains(where: { isSmall($0 - step.visitors) }) { return .withheld }
            // Neither the visitors nor the visits that stopped between two shown steps may be a small group.
            if shown.contains(where: { isSmall($0.visitors - step.visitors) || isSmall($0.visits - step.visits) }) { return .withheld }
            shown.append(step)
            return .value(step.visits)
        }
    }
}
