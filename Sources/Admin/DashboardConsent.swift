import Consent
import Foundation
import Hummingbird
import Store
import Storage

/// Consent analytics (owners and admins): per site over the last N days, what visitors chose
/// and how consent shaped what was collected, comparable across sites; one site's days below.
/// Figures are counts of events and of recorded choices, not of people, so no k-threshold
/// applies (the page is not shown to roles under it).
extension DashboardRoutes {
    /// One site's totals over the range, and the rates a reader compares.
    struct ConsentSummary {
        var choices = 0, acceptedAll = 0, rejectedAll = 0, customised = 0, analytics = 0, marketing = 0
        var bySource: [String: Int] = [:]
        var counts: [ConsentMetric: Int] = [:]

        mutating func add(choice analytics: Bool, _ marketing: Bool, source: String) {
            choices += 1
            bySource[source, default: 0] += 1
            if analytics { self.analytics += 1 }
            if marketing { self.marketing += 1 }
            if analytics && marketing { acceptedAll += 1 } else if !analytics && !marketing { rejectedAll += 1 } else { customised += 1 }
        }

        var shown: Int { counts[.bannerShown] ?? 0 }
        var stored: Int { (counts[.identified] ?? 0) + (counts[.anonymous] ?? 0) }
        var dropped: Int { (counts[.droppedDenied] ?? 0) + (counts[.droppedMissing] ?? 0) + (counts[.droppedSignal] ?? 0) }

        /// `part` of `whole` as a percentage with one decimal, or "–" when there is nothing to divide.
        static func rate(_ part: Int, _ whole: Int) -> String {
            whole > 0 ? Format.percent(Double(part) / Double(whole)) : "–"
        }

        var row: [String: Any] {
            let seen = stored + dropped
            return [
                "shown": shown, "choices": choices,
                "acceptedAll": Self.rate(acceptedAll, choices), "rejectedAll": Self.rate(rejectedAll, choices),
                "customised": Self.rate(customised, choices),
                "analytics": Self.rate(analytics, choices), "marketing": Self.rate(marketing, choices),
                "identified": Self.rate(counts[.identified] ?? 0, stored), "events": stored,
                "dnt": Self.rate(counts[.dnt] ?? 0, seen), "gpc": Self.rate(counts[.gpc] ?? 0, seen),
                "denied": counts[.droppedDenied] ?? 0, "missing": counts[.droppedMissing] ?? 0, "signal": counts[.droppedSignal] ?? 0,
                "sources": bySource.keys.sorted().map { "\($0) \(bySource[$0]!)" }.joined(separator: ", "),
            ]
        }
    }

    func consentPage(_ request: Request, _ v: Viewer) throws -> Response {
        guard v.isStaffAdmin else { return notFound() }
        let q = request.uri.queryParameters
        let days = q.get("days").flatMap(Int.init).flatMap { [7, 30, 90].contains($0) ? $0 : nil } ?? 30
        var c = base(v, title: "Consent")
        c["ranges"] = [7, 30, 90].map { ["days": $0, "selected": $0 == days] }
        c["days"] = days
        let chosen = q.get("site")
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            let calendar = site.calendar
            let today = calendar.day(of: Int64(now().timeIntervalSince1970 * 1000))
            let first = today - Int64(days) + 1
            var total = ConsentSummary()
            var perDay: [Int64: ConsentSummary] = [:]
            for d in try database.consentDays(site: site.id, from: first, to: today) {
                for (m, n) in d.counts {
                    total.counts[m, default: 0] += n
                    perDay[d.day, default: .init()].counts[m, default: 0] += n
                }
            }
            for choice in try database.consentChoices(site: site.id, from: calendar.start(of: first), to: calendar.end(of: today), calendar: calendar) {
                total.add(choice: choice.analytics, choice.marketing, source: choice.source)
                perDay[choice.day, default: .init()].add(choice: choice.analytics, choice.marketing, source: choice.source)
            }
            let policy = policies[site.policy] ?? .default
            var row = total.row
            row["id"] = site.id; row["name"] = site.name; row["mode"] = policy.mode.rawValue
            row["selected"] = site.id == chosen
            rows.append(row)
            if site.id == chosen {
                c["site"] = ["id": site.id, "name": site.name, "mode": policy.mode.rawValue,
                             "sources": policy.consentSources.map(\.rawValue).joined(separator: ", ")]
                let listed = (first...today).reversed().compactMap { day -> [String: Any]? in
                    guard let s = perDay[day] else { return nil }
                    var r = s.row
                    r["day"] = SiteCalendar.dateText(day)
                    return r
                }
                c["perDay"] = listed
                c["hasDays"] = !listed.isEmpty
            }
        }
        c["sites"] = rows.map { r in r.merging(["days": days]) { a, _ in a } }
        c["hasSites"] = !rows.isEmpty
        if chosen != nil && c["site"] == nil { return notFound() }
        return html("consent", c)
    }
}
