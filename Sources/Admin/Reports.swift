import Actions
public import Analytics
public import Consent
public import Foundation
public import Notify
import Integrations
import Privacy
import ReportRender
public import Store
public import Storage

/// Reports of a site's period by e-mail: key figures with their change in the text, the chart as
/// a PNG, a PDF (executive summary, chart, top pages, sources, countries, goals) and, on request,
/// the top pages as CSV. The recipient's role decides what is disclosed (an address that is no
/// account reads as a client viewer); the site's time zone decides the period.
public struct ReportMaker: Sendable {
    public enum Period: String, Sendable, CaseIterable {
        case day, week, month
        public var adjective: String { self == .day ? "daily" : self == .week ? "weekly" : "monthly" }
    }

    let database: AppDatabase
    let policies: PolicyBook
    let now: @Sendable () -> Date

    public init(database: AppDatabase, policies: PolicyBook, now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database; self.policies = policies; self.now = now
    }

    /// The last whole period before `t` in the site's days: yesterday, last week (Monday to
    /// Sunday) or last month; its first and last day.
    public static func lastPeriod(_ p: Period, calendar: SiteCalendar, at t: Int64) -> (first: Int64, last: Int64) {
        let today = calendar.day(of: t)
        switch p {
        case .day: return (today - 1, today - 1)
        case .week:
            // Day 0 (1 January 1970) was a Thursday: Monday is (day + 3) % 7 == 0.
            let monday = today - (today + 3) % 7
            return (monday - 7, monday - 1)
        case .month:
            let c = SiteCalendar.civil(today)
            let first = c.month == 1 ? SiteCalendar.dayNumber(year: c.year - 1, month: 12, day: 1) : SiteCalendar.dayNumber(year: c.year, month: c.month - 1, day: 1)
            return (first, SiteCalendar.dayNumber(year: c.year, month: c.month, day: 1) - 1)
        }
    }

    public struct Made: Sendable {
        public var subject: String
        public var text: String
        public var attachments: [Mailer.Attachment]
        /// The first and last day of the period (the site's days).
        public var first: Int64, last: Int64
    }

    /// The report of `site` for the last whole `period`, as `reader` may read it (nil: as a client viewer).
    /// The last whole `period` before `t` in `calendar`'s days as a view range, with its first and last day.
    static func periodRange(_ period: Period, calendar: SiteCalendar, at t: Int64) -> (range: ViewRange, first: Int64, last: Int64) {
        let (first, last) = lastPeriod(period, calendar: calendar, at: t)
        let label = first == last ? SiteCalendar.dateText(first) : "\(SiteCalendar.dateText(first)) – \(SiteCalendar.dateText(last))"
        return (ViewRange(key: "custom", from: calendar.start(of: first), to: calendar.end(of: last), label: label, calendar: calendar), first, last)
    }

    /// The document's cards: each card of `now` with its change against `before`.
    static func documentCards(_ now: Disclosure.Cards, _ before: Disclosure.Cards) -> [ReportDocument.Card] {
        zip(Format.cards(now), Format.cards(before)).map { now, then in
            ReportDocument.Card(label: now.label, value: now.text, change: Format.change(now.number, then.number))
        }
    }

    /// The cards as the e-mail's text lists them: "Visitors: 3 (+50 %)".
    static func text(_ cards: [ReportDocument.Card]) -> String {
        cards.map { "\($0.label): \($0.value)\($0.change.map { " (\($0))" } ?? "")\n" }.joined()
    }

    public func make(site: Site, period: Period, reader: User?, csv: Bool = false) throws -> Made {
        let policy = policies[site.policy] ?? .default
        let disclosure = Disclosure.reading(as: reader?.role, policy)
        let restricted = disclosure.restricted
        let calendar = site.calendar
        let (range, first, last) = Self.periodRange(period, calendar: calendar, at: Int64(now().timeIntervalSince1970 * 1000))
        let label = range.label
        let report = SiteReport(database: database, site: site.id, range: range, filters: Filters(), disclosure: disclosure)
        let previous = report.previous()
        let summaries = try report.summaries(), before = try previous.summaries()
        let totals = report.totals(summaries)
        let docCards = Self.documentCards(report.cards(summaries), previous.cards(before))
        // Hourly for one day, unless the day is imported (a daily total).
        let hourly = first == last && report.figures.importedDays == nil
        let points = try report.chart(totals: totals, hourly: hourly)
        let bars = points.map { p in
            ReportDocument.Bar(label: hourly ? calendar.clock(p.start) : SiteCalendar.dateText(calendar.day(of: p.start)), value: p.visitors.value.map(Double.init))
        }
        func table(_ kind: TableKind, _ title: String) throws -> ReportDocument.Table {
            let t = try report.table(kind, totals: totals)
            return ReportDocument.Table(title: title, headers: [kind.label, "Visitors", kind.countLabel], rows: t.rows.prefix(10).map {
                [$0.value.map { v in if case .events(let d) = kind { return Format.shown(d, v) } else { return v } } ?? kind.noValueLabel,
                 $0.visitors.text(Format.grouped), $0.pageviews.text(Format.grouped)]
            })
        }
        var tables = [try table(.events(.page), "Top pages"), try table(.events(.sourceName), "Top sources"), try table(.events(.country), "Countries")]
        // Page goals are compared with the page rows the report shows (as on the site page);
        // goals and funnels count collected data only (see SiteReport.collected).
        let basis = try report.collected(summaries: summaries, pageTable: report.table(.events(.page), totals: totals))
        let goals = try basis.report.goals(summaries: basis.summaries, pageRows: basis.pageRows, alsoCompare: basis.alsoCompare)
        if !goals.isEmpty {
            tables.append(ReportDocument.Table(title: "Goals", headers: ["Goal", "Visitors", "Completions"], rows: goals.map { goal, shown in
                [goal.name, shown.visitors.text(Format.grouped), shown.completions.text(Format.grouped)]
            }))
        }
        // Funnels, disclosed as on the site page (they count the whole site's visits of the period).
        for (funnel, steps) in try basis.report.funnels(unfiltered: basis.summaries[0], alsoCompare: basis.alsoCompare) {
            tables.append(ReportDocument.Table(title: "Funnel: \(funnel.name)", headers: ["Step", "Visits", "Of step 1", "Drop-off"],
                                               rows: Format.funnelSteps(steps).map { [$0.name, $0.visits, $0.ofFirst, $0.dropOff] }))
        }
        // The month's commission, for the readers of the commission page (accounts other than viewers), when the site has terms.
        if period == .month, let reader, readsCommission(reader.role), try database.hasClientTerms(site: site.id),
           let commission = try Commission.report(database: database, site: site, month: SiteCalendar.dateText(first).prefix(7).description) {
            tables.append(ReportDocument.Table(title: "Commission \(commission.month)", headers: ["", ""],
                                               rows: Format.commissionFigures(commission).map { [$0.label, $0.value] }))
        }
        var notes = ["Figures of \(label) in the site's time zone (\(calendar.identifier)); changes against the period before of the same length."]
        if restricted {
            notes.append("Figures from fewer than \(policy.kThreshold) visitors show as “< \(policy.kThreshold)”, a figure that would reveal such a group by difference as “–”; small rows are folded into “Other (suppressed)”.")
        }
        let title = "\(site.name): \(period.adjective) report"
        let doc = ReportDocument(title: title, subtitle: label, cards: docCards, chartTitle: "Visitors per \(hourly ? "hour" : "day")",
                                 bars: bars, tables: tables, notes: notes)
        var text = "\(title), \(label)\n\n" + Self.text(docCards)
        text += "\nTop pages:\n" + tables[0].rows.prefix(5).map { "  \($0[0]): \($0[1]) visitors" }.joined(separator: "\n")
        text += "\n\nThe PDF attached has the chart, sources, countries, goals and funnels\(tables.contains { $0.title.hasPrefix("Commission") } ? ", and the month's commission" : "").\n"
            + notes.joined(separator: "\n") + "\n"
        let stem = "candor-\(site.id)-\(SiteCalendar.dateText(first))-\(period.rawValue)"
        var attachments = [Mailer.Attachment(name: stem + ".pdf", type: "application/pdf", bytes: ReportRenderer.pdf(doc)),
                           Mailer.Attachment(name: stem + "-chart.png", type: "image/png", bytes: ReportRenderer.chartPNG(bars))]
        if csv {
            let pages = ResultTable(name: "pages", columns: ["page", "visitors", "pageviews"], rows: tables[0].rows.map { $0.map { .text($0) } })
            attachments.append(Mailer.Attachment(name: stem + "-pages.csv", type: "text/csv", bytes: Array(try CSVRendering.text(pages).utf8)))
        }
        return Made(subject: "[Candor] \(title), \(label)", text: text, attachments: attachments, first: first, last: last)
    }
}

extension ReportMaker {
    /// The consolidated report of the last whole `period`: every site `reader` may read, each
    /// over its own days, with its figures, their change and the totals, disclosed as on the
    /// overview (``Consolidated``); the chart has a bar per site.
    public func makeConsolidated(period: Period, reader: User) throws -> Made {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let visible = try database.visibleSiteIDs(user: reader)
        let sites = try database.sites().filter { visible.contains($0.id) && $0.deletingAt == nil }
        let all = try Consolidated.make(database: database, sites: sites, at: t,
                                        disclosure: { Disclosure.reading(as: reader.role, policies[$0.policy] ?? .default) },
                                        range: { Self.periodRange(period, calendar: $0.calendar, at: t).range }, sparklines: false)
        let (whole, first, last) = Self.periodRange(period, calendar: .utc, at: t)
        let label = whole.label
        let totals = all.totals, before = all.totalsBefore
        // A sum of sites has no visits, rates or durations: their cards are left out.
        let docCards = Self.documentCards(totals.cards, before.cards).filter { ["Visitors", "Pageviews", "Conversions", "Revenue"].contains($0.label) }
        func row(_ name: String, _ c: Disclosure.Cards, _ b: Disclosure.Cards) -> [String] {
            [name, c.visitors.text(Format.grouped), Consolidated.change(c.visitors, b.visitors), c.pageviews.text(Format.grouped),
             c.conversions.text(Format.grouped), c.revenue.text { Format.money($0) }]
        }
        var rows = all.lines.map { row($0.site.name, $0.cards, $0.before) }
        rows.append(row(all.totalsLabel, totals.cards, before.cards))
        let table = ReportDocument.Table(title: "Sites", headers: ["Site", "Visitors", "Change", "Pageviews", "Conversions", "Revenue"], rows: rows)
        let bars = all.lines.map { ReportDocument.Bar(label: $0.site.name, value: $0.cards.visitors.value.map(Double.init)) }
        var notes = ["Each site's \(period == .day ? "day" : period.rawValue) in its own time zone; changes against the period before of the same length.",
                     "Visitors are counted per site: someone who visited two sites counts twice in the total."]
        if totals.partial {
            notes.append("A total is shown only when every site's figure is (“–”): next to a hidden figure it would give it away.")
        }
        if all.lines.contains(where: \.restricted) {
            notes.append("Figures from fewer visitors than a site's threshold show as “< k”, a figure that would reveal such a group by difference as “–”.")
        }
        let title = "All sites: \(period.adjective) report"
        let doc = ReportDocument(title: title, subtitle: label, cards: docCards, chartTitle: "Visitors per site", bars: bars, tables: [table], notes: notes)
        var text = "\(title), \(label)\n\n" + Self.text(docCards)
        text += "\nSites:\n" + rows.map { "  \($0[0]): \($0[1]) visitor\($0[1] == "1" ? "" : "s")\($0[2].isEmpty ? "" : " (\($0[2]))")" }.joined(separator: "\n")
        text += "\n\n" + notes.joined(separator: "\n") + "\n"
        let stem = "candor-all-sites-\(SiteCalendar.dateText(first))-\(period.rawValue)"
        return Made(subject: "[Candor] \(title), \(label)", text: text,
                    attachments: [Mailer.Attachment(name: stem + ".pdf", type: "application/pdf", bytes: ReportRenderer.pdf(doc))], first: first, last: last)
    }

    /// Sends every subscription whose last whole period was not sent yet (the recipient must
    /// still see the site); returns how many went. A failed sending is tried again next run.
    public func sendDue(mailer: Mailer) async throws -> (sent: Int, failures: [String]) {
        var sent = 0
        var failures: [String] = []
        for s in try database.reportSubscriptions() {
            guard let period = Period(rawValue: s.period), let user = try database.user(id: s.userID) else { continue }
            // A site's report: the site must still be there and readable by the account; the
            // consolidated one (no site) is of the last whole period in UTC days.
            var site: Site?
            if let id = s.siteID {
                guard let found = try database.site(id: id), found.deletingAt == nil, try database.visibleSiteIDs(user: user).contains(id) else { continue }
                site = found
            }
            let calendar = site?.calendar ?? .utc
            let (first, _) = Self.lastPeriod(period, calendar: calendar, at: Int64(now().timeIntervalSince1970 * 1000))
            let since = site?.createdAt ?? Date(timeIntervalSince1970: Double(s.createdAt) / 1000)
            guard s.lastFirstDay != first, first >= calendar.day(of: Int64(since.timeIntervalSince1970 * 1000)) else { continue }
            // One subscription that cannot be sent (a refused address, a mail server's error) holds up no other.
            do {
                let made = try site.map { try make(site: $0, period: period, reader: user, csv: s.csv) } ?? makeConsolidated(period: period, reader: user)
                try await mailer.send(to: [user.email], subject: made.subject, text: made.text, attachments: made.attachments)
                try database.markReportSent(id: s.id, firstDay: made.first)
                sent += 1
            } catch {
                failures.append("\(s.id): \(error)")
            }
        }
        return (sent, failures)
    }
}
