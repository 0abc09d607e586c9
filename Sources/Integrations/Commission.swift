public import Foundation
import Privacy
public import JSONOutput
public import Store
public import Storage

/// A client's commission for one calendar month of the site's time zone, computed from the stored conversions and
/// the site's current terms, so it always reflects refunds and rule changes.
public struct CommissionReport: Sendable {
    public var siteID: String
    public var siteName: String
    /// "YYYY-MM".
    public var month: String
    /// The site's days (the month's bounds, the times of the lines).
    public var calendar: SiteCalendar
    public var terms: ClientTerms
    /// Sales minus refunds credited to "our" sources, in the terms' currency.
    public var attributedRevenue: Double
    public var totalRevenue: Double
    public var leads: Int
    public var calls: Int
    public var ourLeads: Int
    public var ourCalls: Int
    public var sales: Int
    public var unattributed: Int
    /// Conversions in another currency than the terms' (not converted, left out of the sums).
    public var otherCurrency: Int
    public var percentPart: Double
    public var leadPart: Double
    public var callPart: Double
    /// max(percent + per-lead + per-call parts, monthly minimum).
    public var commission: Double
    /// Every conversion of the month with whether it counted.
    public var lines: [(ConversionRow, counted: Bool)]

    public var json: JSON {
        func money(_ d: Double) -> JSON { .double((d * 100).rounded() / 100) }
        return [
            "site": .string(siteID), "client": .string(siteName), "month": .string(month), "timezone": .string(calendar.identifier),
            "currency": .string(terms.currency),
            "terms": ["percent": .double(terms.percent), "per_lead": .double(terms.perLead), "per_call": .double(terms.perCall),
                      "monthly_minimum": .double(terms.monthlyMinimum), "credit": .string(terms.credit.rawValue),
                      "our_sources": .array(terms.ourSources.map(JSON.string)), "lookback_days": JSON(terms.lookbackDays)],
            "sales": JSON(sales), "leads": JSON(leads), "calls": JSON(calls), "our_leads": JSON(ourLeads), "our_calls": JSON(ourCalls),
            "unattributed": JSON(unattributed), "other_currency": JSON(otherCurrency),
            "total_revenue": money(totalRevenue), "attributed_revenue": money(attributedRevenue),
            "percent_part": money(percentPart), "lead_part": money(leadPart), "call_part": money(callPart),
            "commission": money(commission),
        ]
    }

    /// One row per conversion (CSV export).
    public var table: ResultTable {
        func touch(_ t: Touch?) -> Cell {
            guard let t else { return .null }
            return .text([t.sourceType, t.utmSource, t.utmMedium, t.utmCampaign, t.referrerHost].compactMap { $0 }.joined(separator: " / "))
        }
        return ResultTable(name: "commission-\(siteID)-\(month)", columns: [
            "time", "provider", "external_id", "kind", "value", "currency", "attributed_via", "first_touch", "last_touch", "counted",
        ], rows: lines.map { c, counted in
            [.text(calendar.iso(c.timestamp)), .text(c.provider), .text(c.externalID), .text(c.kind.rawValue), .real(c.value),
             c.currency.map(Cell.text) ?? .null, .text(c.attributedVia), touch(c.firstTouch), touch(c.lastTouch),
             .text(counted ? "yes" : "no")]
        })
    }
}

public enum Commission {
    /// The month ("YYYY-MM") `date` falls in, in `calendar`'s zone.
    public static func month(of date: Date, in calendar: SiteCalendar = .utc) -> String {
        calendar.month(of: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    /// Whether a touch matches one of the terms' source matchers.
    static func matches(_ t: Touch, _ matcher: String) -> Bool {
        let m = matcher.lowercased().trimmingCharacters(in: .whitespaces)
        let parts = m.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return t.sourceType.lowercased() == m }
        let field: String? = switch parts[0] {
        case "utm_source": t.utmSource
        case "utm_medium": t.utmMedium
        case "utm_campaign": t.utmCampaign
        case "referrer": t.referrerHost
        case "source": t.sourceType
        default: nil
        }
        return field?.lowercased() == parts[1]
    }

    /// Whether a conversion counts as the agency's work under the terms.
    public static func counts(_ c: ConversionRow, _ terms: ClientTerms) -> Bool {
        guard c.attributedVia != "none" else { return false }
        if terms.ourSources.isEmpty { return true }
        let touches: [Touch?] = switch terms.credit {
        case .first: [c.firstTouch]
        case .last: [c.lastTouch]
        case .either: [c.firstTouch, c.lastTouch]
        }
        return touches.compactMap { $0 }.contains { t in terms.ourSources.contains { matches(t, $0) } }
    }

    public static func report(database: AppDatabase, site: Site, month: String) throws -> CommissionReport? {
        guard let (from, to) = site.calendar.bounds(month: month) else { return nil }
        let terms = try database.clientTerms(site: site.id)
        var r = CommissionReport(siteID: site.id, siteName: site.name, month: month, calendar: site.calendar, terms: terms, attributedRevenue: 0, totalRevenue: 0,
                                 leads: 0, calls: 0, ourLeads: 0, ourCalls: 0, sales: 0, unattributed: 0, otherCurrency: 0,
                                 percentPart: 0, leadPart: 0, callPart: 0, commission: 0, lines: [])
        // Billed work rests on the providers' signed reports: conversions the pixel tracked (sent by
        // browsers, unverifiable) count on the dashboard, not in commission.
        for c in try database.conversions(site: site.id, from: from, to: to) where c.provider != ConversionRow.pixelProvider {
            let money = c.kind == .sale || c.kind == .refund
            if money, let cur = c.currency, cur != terms.currency {
                r.otherCurrency += 1
                r.lines.append((c, false))
                continue
            }
            let ours = counts(c, terms)
            if c.attributedVia == "none" { r.unattributed += 1 }
            switch c.kind {
            case .sale, .refund:
                if c.kind == .sale { r.sales += 1 }
                r.totalRevenue += c.value
                if ours { r.attributedRevenue += c.value }
            case .lead:
                r.leads += 1
                if ours { r.ourLeads += 1 }
            case .call:
                r.calls += 1
                if ours { r.ourCalls += 1 }
            }
            r.lines.append((c, ours))
        }
        r.percentPart = max(0, r.attributedRevenue) * terms.percent / 100
        r.leadPart = Double(r.ourLeads) * terms.perLead
        r.callPart = Double(r.ourCalls) * terms.perCall
        r.commission = max(r.percentPart + r.leadPart + r.callPart, terms.monthlyMinimum)
        return r
    }
}

