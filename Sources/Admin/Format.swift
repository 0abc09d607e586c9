import Foundation
import Analytics
import Integrations
import Store
import Storage

/// How the dashboard writes numbers, dates and amounts a reader sees (one place for each rule),
/// in the reader's locale (``locale``, set for each request by `DashboardRoutes.withViewer`).
/// Exports and the API keep machine forms (``ISO``, plain numbers).
enum Format {
    /// The locale of the page being rendered: the reader's (from Accept-Language).
    @TaskLocal static var locale = fallback

    /// "12.5 %" for 0.125 ("12,5 %" in German), with a no-break space: the sign never wraps away
    /// from its number.
    static func percent(_ fraction: Double, digits: Int = 1) -> String {
        decimal(fraction * 100, digits: digits) + "\u{00A0}%"
    }

    /// A number with `digits` decimals ("2.5", "2,5").
    static func decimal(_ x: Double, digits: Int = 1) -> String {
        x.formatted(.number.precision(.fractionLength(digits)).locale(locale))
    }

    /// 12,345 (12.345 in German): counts grouped by thousands (exports keep plain numbers).
    static func grouped(_ n: Int) -> String {
        n.formatted(.number.locale(locale))
    }

    // MARK: The reader's locale

    /// Without a usable Accept-Language: English with day-month-year dates ("1 Dec 2026").
    static let fallback = Locale(identifier: "en-GB")
    private static let known = Set(Locale.availableIdentifiers)

    /// The reader's locale from `Accept-Language`: the well-formed tag with the highest weight
    /// (the earlier one on a tie) whose language Foundation knows; ``fallback`` otherwise.
    static func locale(acceptLanguage header: String?) -> Locale {
        guard let header, header.utf8.count <= 512 else { return fallback }
        var best: (tag: String, q: Double)?
        for part in header.split(separator: ",").prefix(16) {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = fields.first, tag.wholeMatch(of: /[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}/) != nil else { continue }
            var q = 1.0
            for f in fields.dropFirst() where f.hasPrefix("q=") { q = Double(f.dropFirst(2)) ?? 0 }
            let language = String(tag.prefix { $0 != "-" }).lowercased()
            guard q > 0, known.contains(language), q > (best?.q ?? 0) else { continue }
            best = (tag, q)
        }
        return best.map { Locale(identifier: $0.tag) } ?? fallback
    }

    // MARK: Dates

    private static func style(_ locale: Locale, _ zone: String, date: Date.FormatStyle.DateStyle,
                              time: Date.FormatStyle.TimeStyle) -> Date.FormatStyle {
        Date.FormatStyle(date: date, time: time, locale: locale, calendar: Calendar(identifier: .gregorian),
                         timeZone: TimeZone(identifier: zone) ?? .gmt)
    }

    /// A local day ("1 Dec 2026", "Dec 1, 2026", "1. Dez. 2026").
    static func day(_ day: Int64) -> String {
        style(locale, "UTC", date: .abbreviated, time: .omitted)
            .format(Date(timeIntervalSince1970: Double(day) * 86_400 + 43_200))
    }

    /// An instant in the calendar's zone ("1 Dec 2026 at 10:25"); with `zone`, the offset is
    /// named ("… GMT+1"), for pages that are not about one site.
    static func moment(_ ms: Int64, _ calendar: SiteCalendar, zone: Bool = false) -> String {
        let s = style(locale, calendar.identifier, date: .abbreviated, time: .shortened)
        let date = Date(timeIntervalSince1970: Double(ms) / 1000)
        return zone ? s.timeZone(.localizedGMT(.short)).format(date) : s.format(date)
    }

    /// An hour of the chart in the calendar's zone: "14:00" where the reader's locale counts 24
    /// hours (always two digits, so a day's ticks line up), "2:00 PM" where it counts 12.
    static func hour(_ ms: Int64, _ calendar: SiteCalendar) -> String {
        switch locale.hourCycle {
        case .oneToTwelve, .zeroToEleven:
            style(locale, calendar.identifier, date: .omitted, time: .shortened).format(Date(timeIntervalSince1970: Double(ms) / 1000))
        default: calendar.clock(ms)
        }
    }

    // MARK: Amounts

    /// "€3,036.50", "3.036,50 €": an amount with its currency's symbol as the reader's locale
    /// writes it; an amount without a currency (or with a code that is not three letters) plain.
    static func amount(_ value: Double, _ currency: String) -> String {
        guard currency.wholeMatch(of: /[A-Z]{3}/) != nil else {
            return decimal(value, digits: 2) + (currency.isEmpty ? "" : " \(currency)")
        }
        return value.formatted(.currency(code: currency).locale(locale))
    }

    /// Revenue per currency, largest first ("€3,036.50 · $120.00"); never added across currencies.
    static func money(_ revenue: Revenue) -> String {
        guard !revenue.byCurrency.isEmpty else { return amount(0, "") }
        return revenue.entries.map { amount($0.amount, $0.currency) }.joined(separator: " · ")
    }

    // MARK: Figures as the pages and reports write them

    /// The change between two figures as ``delta(_:_:)`` writes it, nil when either is not shown.
    static func change(_ now: Double?, _ before: Double?) -> String? {
        guard let now, let before else { return nil }
        return delta(now, before)
    }

    static func delta(_ now: Double, _ before: Double) -> String {
        guard before != 0 else { return now == 0 ? "±0\u{00A0}%" : "new" }
        let ratio = ((now - before) / before * 100).rounded()
        // Sums of refunds can leave a previous figure of nearly nothing: no percentage means anything then.
        guard ratio.isFinite, abs(ratio) < 1e6 else { return now > before ? "up" : "down" }
        let p = Int(ratio)
        return p > 0 ? "+\(p)\u{00A0}%" : p == 0 ? "±0\u{00A0}%" : "−\(-p)\u{00A0}%"
    }

    /// A duration as people read it: "42 s", "1 min 55 s", "2 h 5 min" (whole seconds, rounded down).
    static func duration(_ ms: Int64) -> String {
        let s = max(0, ms) / 1000
        if s < 60 { return "\(s) s" }
        if s < 3600 { return s % 60 == 0 ? "\(s / 60) min" : "\(s / 60) min \(s % 60) s" }
        let minutes = s % 3600 / 60
        return minutes == 0 ? "\(s / 3600) h" : "\(s / 3600) h \(minutes) min"
    }

    /// A month's commission figures as the commission page and the monthly report show them.
    static func commissionFigures(_ r: CommissionReport) -> [(label: String, value: String)] {
        func money(_ d: Double) -> String { amount(d, r.terms.currency) }
        return [("Sales", String(r.sales)), ("Revenue", money(r.totalRevenue)), ("Attributed revenue", money(r.attributedRevenue)),
                ("Our leads / calls", "\(r.ourLeads) / \(r.ourCalls)"), ("Unattributed", String(r.unattributed)), ("Commission", money(r.commission))]
    }

    /// A funnel's steps as shown: name, visits, share of step 1's visits, drop-off from the step before ("–" when not shown).
    static func funnelSteps(_ steps: [(Goal, Shown<Int>)]) -> [(name: String, visits: String, ofFirst: String, dropOff: String)] {
        let first = steps.first?.1.value
        return steps.enumerated().map { i, step in
            let visits = step.1.value
            let previous = i == 0 ? nil : steps[i - 1].1.value
            return (step.0.name, step.1.text(grouped),
                    visits.flatMap { v in first.flatMap { $0 == 0 ? nil : percent(Double(v) / Double($0)) } } ?? "–",
                    i == 0 ? "–" : visits.flatMap { v in previous.flatMap { $0 == 0 ? nil : percent(Double($0 - v) / Double($0)) } } ?? "–")
        }
    }

    /// The cards in display order: label, text as shown, and the number when shown.
    static func cards(_ c: Disclosure.Cards) -> [(label: String, text: String, number: Double?)] {
        [("Visitors", c.visitors.text(Format.grouped), c.visitors.value.map(Double.init)),
         ("Visits", c.visits.text(Format.grouped), c.visits.value.map(Double.init)),
         ("Pageviews", c.pageviews.text(Format.grouped), c.pageviews.value.map(Double.init)),
         ("Views per visit", c.viewsPerVisit.text { Format.decimal($0) }, c.viewsPerVisit.value),
         ("Bounce rate", c.bounceRate.text { Format.percent($0, digits: 0) }, c.bounceRate.value),
         ("Visit duration", c.averageDurationMs.text(duration), c.averageDurationMs.value.map(Double.init)),
         ("Conversions", c.conversions.text(Format.grouped), c.conversions.value.map(Double.init)),
         ("Revenue", c.revenue.text { Format.money($0) }, c.revenue.value?.single)]
    }

    /// A dimension's value as the dashboard shows it: countries by name, everything else as stored.
    static func shown(_ d: Store.Dimension, _ value: String) -> String {
        d == .country ? CountryNames.installed.name(value) : value
    }
}
