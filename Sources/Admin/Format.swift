import Foundation
import Store

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
}
