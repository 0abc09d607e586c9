import Analytics
import Store

/// What the site page's chart draws (`metric=` and, for revenue, `currency=`): a count of its
/// points, or their revenue in one currency (amounts in different currencies are never added).
enum ChartMetric: Equatable {
    case visitors, visits, pageviews, conversions
    /// Revenue in one currency ("" for amounts sent without one).
    case revenue(String)

    /// The counts, in the order of the metric switch and the values table.
    static let counts: [ChartMetric] = [.visitors, .visits, .pageviews, .conversions]

    /// The metric a request asks for; visitors unless it names another. Revenue is in `currency`
    /// when given (three capital letters, or `none` for amounts sent without one), else in the
    /// first of `currencies` (the view's, largest first); nil `currencies` (the reader may not
    /// see the view's revenue) offer no revenue.
    init(_ name: String?, currency: String?, currencies: [String]?) {
        switch name {
        case "visits": self = .visits
        case "pageviews": self = .pageviews
        case "conversions": self = .conversions
        case "revenue" where currencies != nil:
            if currency == Self.noCurrency { self = .revenue("") }
            else if let currency, currency.wholeMatch(of: /[A-Z]{3}/) != nil { self = .revenue(currency) }
            else { self = .revenue(currencies?.first ?? "") }
        default: self = .visitors
        }
    }

    /// `currency=none`: amounts sent without a currency.
    static let noCurrency = "none"

    /// The switch: every count, then revenue in each of the view's currencies (one entry when it
    /// has none).
    static func choices(currencies: [String]?) -> [ChartMetric] {
        guard let currencies else { return counts }
        return counts + (currencies.isEmpty ? [.revenue("")] : currencies.map { .revenue($0) })
    }

    /// The switch's label: the title, amounts sent without a currency named as such beside others.
    func label(currencies: [String]?) -> String {
        if case .revenue("") = self, (currencies?.count ?? 0) > 1 { return "Revenue without a currency" }
        return title
    }

    /// The query changes that select this metric (visitors is the default, without a parameter;
    /// revenue names its currency when the view has several).
    func query(currencies: [String]?) -> [String: String?] {
        switch self {
        case .visitors: ["metric": nil, "currency": nil]
        case .revenue(let c): ["metric": "revenue", "currency": (currencies?.count ?? 0) > 1 ? (c.isEmpty ? Self.noCurrency : c) : nil]
        default: ["metric": word, "currency": nil]
        }
    }

    var title: String {
        switch self {
        case .revenue(let c): c.isEmpty ? "Revenue" : "Revenue in \(c)"
        default: word.prefix(1).uppercased() + word.dropFirst()
        }
    }

    /// The figure's name in a sentence ("visitors of the period before").
    var word: String {
        switch self {
        case .visitors: "visitors"
        case .visits: "visits"
        case .pageviews: "pageviews"
        case .conversions: "conversions"
        case .revenue: "revenue"
        }
    }

    /// A point's figure as the reader is shown it.
    func figure(_ p: Disclosure.Point) -> Shown<Double> {
        switch self {
        case .visitors: p.visitors.map(Double.init)
        case .visits: p.visits.map(Double.init)
        case .pageviews: p.pageviews.map(Double.init)
        case .conversions: p.conversions.map(Double.init)
        case .revenue(let c): p.revenue.map { $0.byCurrency[c] ?? 0 }
        }
    }

    /// A figure as written: counts grouped ("12,345"), revenue with the currency's symbol.
    func text(_ v: Double) -> String {
        if case .revenue(let c) = self { return Format.amount(v, c) }
        return Format.grouped(Int(v))
    }
}
