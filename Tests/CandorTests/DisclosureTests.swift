@testable import Analytics
@testable import Store
import Testing

/// The disclosure rule on hand-made figures (k = 5); the seeded proof against the running server
/// is DisclosureProofTests.
@Suite struct DisclosureTests {
    let rule = Disclosure(k: 5, restricted: true)

    func rows(_ pairs: [(String, Int)]) -> [BreakdownRow] { pairs.map { BreakdownRow(value: $0.0, visitors: $0.1, pageviews: $0.1) } }

    /// 12 visitors; "/" has 11 of them (so 1 did not visit it), "/a" 6. "/" folds; alone in Other it
    /// would show 11 (12 - 11 = 1 again), so "/a" folds with it: Other = 17, a sum of the two rows.
    @Test func otherNeverShowsWhatAFoldedRowHides() {
        let t = rule.table(rows([("/", 11), ("/a", 6)]), total: 12, partition: false)
        #expect(t.rows == [.init(value: Disclosure.otherLabel, visitors: .value(17), pageviews: .value(17), isOther: true)])
        #expect(t.folded == 2)
        // The same against an ancestor view's total: filtered total 20, unfiltered 21.
        let filtered = rule.table(rows([("DE", 20)]), total: 20, partition: true, ancestorTotals: [21])
        #expect(filtered.rows.allSatisfy { $0.visitors.value == nil })
    }

    @Test func complementaryRowFoldsWhenOtherWouldIsolate() {
        // 17 visitors: 10, 6, 1 (a partition). The 1 folds; Other {1} is uncertified, so 6 folds too.
        let t = rule.table(rows([("a", 10), ("b", 6), ("c", 1)]), total: 17, partition: true)
        #expect(t.rows.map(\.visitors) == [.value(10), .value(7)] && t.folded == 2)
        // Everything under k: Other cannot be certified and shows "–".
        let small = rule.table(rows([("a", 2), ("b", 1)]), total: 3, partition: true)
        #expect(small.rows.map(\.visitors) == [.withheld])
        // Owners and admins read exact rows.
        #expect(Disclosure.exact.table(rows([("c", 1)]), total: 1, partition: true).rows.map(\.visitors) == [.value(1)])
    }

    /// A partition cut at the row limit: the total less the rows kept is what the rows past the
    /// limit hold. Shown as nothing, it would be told by difference (25 − 10 − 10 = 5 visitors in
    /// rows no reader sees); it folds into Other instead, with a row of its own when it is small.
    @Test func rowsPastTheLimitFoldIntoOther() {
        let beyond = BreakdownRow(value: nil, visitors: 5, pageviews: 7)
        let t = rule.table(rows([("a", 10), ("b", 10)]), total: 25, partition: true, beyond: beyond)
        #expect(t.rows == [.init(value: "a", visitors: .value(10), pageviews: .value(10), isOther: false),
                           .init(value: "b", visitors: .value(10), pageviews: .value(10), isOther: false),
                           .init(value: Disclosure.otherLabel, visitors: .value(5), pageviews: .value(7), isOther: true)])
        #expect(t.folded == 0)
        // 2 past the limit: Other {2} cannot be certified, so the smallest row folds with it.
        let small = rule.table(rows([("a", 10), ("b", 9)]), total: 21, partition: true, beyond: BreakdownRow(value: nil, visitors: 2, pageviews: 2))
        #expect(small.rows.map(\.visitors) == [.value(10), .value(11)] && small.folded == 1)
        // Without it the same rows would leave 5 (and 2) to subtraction; owners read exact rows, nothing folded.
        #expect(rule.table(rows([("a", 10), ("b", 10)]), total: 25, partition: true).rows.count == 2)
        #expect(Disclosure.exact.table(rows([("a", 10), ("b", 10)]), total: 25, partition: true, beyond: beyond).rows.count == 2)
    }

    @Test func goalsAreComparedWithOneAnotherAndTheirWholes() {
        // Page goals "/a*" (14) and "/a/b*" (13): 1 visitor of /a/c would be their difference.
        let shown = rule.goals([.init(visitors: 14, completions: 20, support: 14, wholes: [30]),
                                .init(visitors: 13, completions: 15, support: 13, wholes: [30])], total: 30)
        #expect(shown[0].visitors == .value(14) && shown[1].visitors == .withheld && shown[1].completions == .withheld)
        // A conversion goal with 8 sales from 2 identified buyers: the 2 are fewer than k.
        let sale = rule.goals([.init(visitors: 2, completions: 8, support: 8, wholes: [40])], total: 100)
        #expect(sale[0].visitors == .belowK(5) && sale[0].rate == .withheld)
        // A goal reached by 29 of 30 visitors would tell that one did not.
        #expect(rule.goals([.init(visitors: 29, completions: 29, support: 29, wholes: [30])], total: 30)[0].visitors == .withheld)
    }

    @Test func funnelStepsAreComparedWithTheRangeAndEarlierSteps() {
        // 20 visits in the range, 19 reached step 1: one visit did not.
        #expect(rule.funnel([(19, 19), (10, 10)], whole: (20, 20)) == [.withheld, .value(10)])
        #expect(rule.funnel([(20, 20), (17, 17), (3, 3)], whole: (20, 20)) == [.value(20), .withheld, .belowK(5)])
        #expect(rule.funnel([(20, 20), (15, 15), (3, 3)], whole: (20, 20)) == [.value(20), .value(15), .belowK(5)])
    }

    @Test func cardsOfAFilteredViewLeaveKOutsideEveryAncestor() {
        func summary(_ visitors: Int, conversions: Int = 0) -> SiteSummary {
            SiteSummary(visitors: visitors, visits: visitors, pageviews: visitors * 2, bounces: 0, durationMs: 0, conversions: conversions,
                        revenue: Revenue(["EUR": Double(conversions) * 10]), lastEvent: nil)
        }
        let hidden = rule.cards(summary(98), ancestors: [summary(100)])
        #expect(hidden.visitors == .withheld && hidden.pageviews == .withheld)
        let shown = rule.cards(summary(90, conversions: 3), ancestors: [summary(100, conversions: 3)])
        #expect(shown.visitors == .value(90) && shown.conversions == .belowK(5) && shown.revenue == .withheld)
        #expect(rule.cards(summary(1)).visitors == .belowK(5))
        #expect(rule.part(4, of: [10]) == .belowK(5) && rule.part(9, of: [10]) == .withheld && rule.part(5, of: [10]) == .value(5))
        // A refund alone (no conversion) is one person's, however large the view.
        let refunds = SiteSummary(visitors: 50, visits: 50, pageviews: 50, bounces: 0, durationMs: 0, conversions: 0,
                                  revenue: Revenue(["EUR": -49]), lastEvent: nil)
        #expect(rule.cards(refunds).revenue == .withheld && Disclosure.exact.cards(refunds).revenue == .value(Revenue(["EUR": -49])))
    }

    /// Chart points: conversions a partition of the view's, revenue with them; visits with visitors.
    @Test func chartPointsShowConversionsRevenueAndVisitsByTheCardsRule() {
        func point(_ start: Int64, visitors: Int, visits: Int, conversions: Int, euros: Double) -> SeriesPoint {
            SeriesPoint(start: start, visitors: visitors, pageviews: visitors, visits: visits, conversions: conversions,
                        revenue: euros == 0 && conversions == 0 ? Revenue() : Revenue(["EUR": euros]))
        }
        let points = [point(0, visitors: 20, visits: 20, conversions: 8, euros: 400),
                      point(1, visitors: 20, visits: 21, conversions: 2, euros: 100),
                      point(2, visitors: 0, visits: 1, conversions: 0, euros: -49),
                      point(3, visitors: 20, visits: 20, conversions: 10, euros: 500)]
        let shown = rule.series(points, total: 60, days: true, conversions: 20)
        // Day 1's 2 are folded with the next smallest (day 0's 8), or 20 - 8 - 10 would tell them.
        #expect(shown.map(\.conversions) == [.withheld, .belowK(5), .value(0), .value(10)])
        #expect(shown.map(\.revenue) == [.withheld, .withheld, .withheld, .value(Revenue(["EUR": 500]))])
        // A visit begun in a point without a visitor of the view (its matching event came later).
        #expect(shown.map(\.visits) == [.value(20), .value(21), .withheld, .value(20)])
        // The view's revenue card withheld: no point's revenue either.
        #expect(rule.series(points, total: 60, days: true, conversions: 20, revenueShown: false).allSatisfy { $0.revenue == .withheld })
        // An ancestor with 3 more conversions on day 3 would tell them apart.
        let ancestor = points.map { p in var p = p; if p.start == 3 { p.conversions = 13 }; return p }
        #expect(rule.series(points, total: 60, days: true, ancestors: [ancestor], ancestorTotals: [60], conversions: 20,
                            ancestorConversions: [23])[3].conversions == .withheld)
        #expect(Disclosure.exact.series(points, total: 60, days: true).map(\.revenue)[2] == .value(Revenue(["EUR": -49])))
    }
}
