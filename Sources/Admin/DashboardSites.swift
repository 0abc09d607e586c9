import Actions
import Analytics
import Consent
import Foundation
import Geo
import Hummingbird
import HTTPTypes
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Store
import Storage

/// The overview, a site's figures and exports, adding sites, real time and the stats API.
extension DashboardRoutes {
    // MARK: Adding a site (owner, admin)

    func addSite(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.actor.may(.addSites) else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        do {
            let site = try administration.addSite(name: f["name"] ?? "", domains: Self.list(f["domains"]), policy: f["policy"] ?? "default",
                                                  timezone: f["timezone"] ?? "UTC", by: v.actor)
            return Response(status: .seeOther, headers: [.location: "/sites/\(site.id)/settings"])
        } catch let error as ActionError {
            var r = try overview(request, v, message: error.description)
            r.status = .badRequest
            return r
        }
    }

    /// Values of a form field separated by spaces, commas or new lines.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\r" }).map(String.init)
    }

    func exportOverview(_ request: Request, _ v: Viewer) throws -> Response {
        // Each site's range is in its own days.
        let r: Range
        switch range(request, .utc) {
        case .success(let range): r = range
        case .failure(let refusal): return refused(Refusal(status: .badRequest, reason: refusal.reason))
        }
        let all = try consolidated(request, v)
        func line(id: String, name: String, _ c: Disclosure.Cards, _ before: Disclosure.Cards, last: Cell) -> (csv: [Cell], json: JSON) {
            ([.text(id), .text(name), Self.cell(c.visitors), Self.cell(c.pageviews), Self.cell(c.conversions), .text(c.revenue.text { $0.text }),
              Self.cell(before.visitors), Self.cell(before.pageviews), last],
             .object([("site", .string(id)), ("name", .string(name)), ("visitors", Self.json(c.visitors) { JSON($0) }),
                      ("pageviews", Self.json(c.pageviews) { JSON($0) }), ("conversions", Self.json(c.conversions) { JSON($0) }),
                      ("revenue", Self.json(c.revenue, Self.json)), ("visitors_before", Self.json(before.visitors) { JSON($0) }),
                      ("pageviews_before", Self.json(before.pageviews) { JSON($0) }), ("last_event", last.json)]))
        }
        var rows: [[Cell]] = []
        var json: [JSON] = []
        for l in all.lines {
            // A restricted reader learns whether a site is active, not when its last visitor came.
            let last: Cell = l.restricted ? .null : l.lastEvent.map { .text(l.site.calendar.iso($0)) } ?? .null
            let (csv, object) = line(id: l.site.id, name: l.site.name, l.cards, l.before, last: last)
            rows.append(csv)
            json.append(object)
        }
        let total = line(id: "total", name: all.totalsLabel, all.totals.cards, all.totalsBefore.cards, last: .null)
        rows.append(total.csv)
        let table = ResultTable(name: "overview-\(r.key)", columns: ["site", "name", "visitors", "pageviews", "conversions", "revenue",
                                                                      "visitors_before", "pageviews_before", "last_event"], rows: rows)
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.object([("range", .object([("key", .string(r.key)), ("label", .string(r.label))])), ("sites", .array(json)),
                                    ("total", total.json)])
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"overview-\(r.key).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"overview-\(r.key).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
    }

    // MARK: Real time

    /// The live stream shows single events, so only owners and admins (who see unfolded figures) get it.
    func mayWatchLive(_ v: Viewer) -> Bool { v.isStaffAdmin }

    /// Visitors in the last 5 and 30 minutes and the top pages of the last 30, under the reader's
    /// disclosure rule: the page renders them, and `realtime.json` gives them to the page's
    /// script every 10 seconds.
    func realtimeFigures(_ v: Viewer, _ site: Site) throws -> (five: String, thirty: String, pages: [(value: String, visitors: String)]) {
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let rule = disclosure(v, policies[site.policy] ?? .default)
        let five = try database.activeVisitors(site: site.id, since: t - 5 * 60_000)
        let thirty = try database.activeVisitors(site: site.id, since: t - 30 * 60_000)
        let pages = rule.table(try database.breakdown(site: site.id, from: t - 30 * 60_000, to: t + 1, dimension: .page), total: thirty,
                               partition: false)
        return (rule.part(five, of: [thirty]).text(Format.grouped), rule.count(thirty).text(Format.grouped),
                pages.rows.prefix(10).map { ($0.value ?? "(none)", $0.visitors.text(Format.grouped)) })
    }

    func realtime(_ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        var c = base(v, title: "Real time — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name]
        let f = try realtimeFigures(v, site)
        c["five"] = f.five
        c["thirty"] = f.thirty
        c["pages"] = f.pages.map { ["value": $0.value, "visitors": $0.visitors] }
        c["hasPages"] = !f.pages.isEmpty
        c["live"] = mayWatchLive(v)
        return html("realtime", c)
    }

    func realtimeJSON(_ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let f = try realtimeFigures(v, site)
        let body = JSON.object([("five", .string(f.five)), ("thirty", .string(f.thirty)),
                                ("pages", .array(f.pages.map { .object([("value", .string($0.value)), ("visitors", .string($0.visitors))]) }))])
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: body.text)))
    }

    /// Server-Sent Events: the site's new events as JSON, polled from the database every second,
    /// for `liveDuration` (30 minutes; the browser then reconnects with Last-Event-ID).
    func live(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), mayWatchLive(v), let site = try database.site(id: id), let session = token(request) else { return notFound() }
        let calendar = site.calendar
        let database = self.database
        let auth = self.auth
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
        let ends = ContinuousClock.now + liveDuration
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store",
                                               .init("X-Accel-Buffering")!: "no"],
                        body: ResponseBody { writer in
            var last = resume
            try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
            while ContinuousClock.now < ends {
                // The stream lasts only as long as the session may watch it: sign-out, a password
                // change, removal or a new role end it within a second.
                guard let still = try? auth.viewer(token: session), still.may(see: id), still.isStaffAdmin else { break }
                let events = try database.liveEvents(site: id, after: last, limit: last == nil ? 20 : 200)
                var text = ""
                for e in events {
                    let data = JSON.object([("ts", .string(calendar.iso(e.timestamp))), ("name", .string(e.name)), ("path", .string(e.path)),
                                            ("source", .string(e.sourceType)), ("referrer", JSON(e.referrerHost)),
                                            ("country", JSON(e.country)), ("device", JSON(e.device))]).text
                    text += "id: \(e.id)\ndata: \(data)\n\n"
                    last = e.id
                }
                if last == nil { last = 0 }
                // A comment line keeps proxies from closing an idle stream.
                try await writer.write(ByteBuffer(string: text.isEmpty ? ": idle\n\n" : text))
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        })
    }

    // MARK: Stats API

    static func apiError(_ status: Int, _ reason: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: JSON.object([("error", .string(reason))]).text)))
    }

    /// `GET /api/v1/sites/:site/stats?range=…|from=YYYY-MM-DD&to=YYYY-MM-DD[&dimension=D][&filters=D==V;D==V]`
    /// with the site's key. Breakdowns are always k-anonymized (API callers are treated like client viewers).
    func statsAPI(_ request: Request, _ id: String) throws -> Response {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer "),
              let key = try APIKeys.authenticate(database: database, token: String(auth.dropFirst(7)), now: now()) else {
            var r = Self.apiError(401, "send the site's API key as Authorization: Bearer ck_…")
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        guard key.scope == .statsRead else {
            return Self.apiError(403, "this key's scope is \(key.scope.rawValue); the stats API needs a stats:read key")
        }
        guard key.siteID == id, let site = try database.site(id: id) else { return Self.apiError(404, "no such site") }
        let params = request.uri.queryParameters
        let calendar = site.calendar
        let asked = params.get("range") == nil && (params.get("from") != nil || params.get("to") != nil)
            ? Self.customRange(from: params.get("from"), to: params.get("to"), calendar) : range(request, calendar)
        let r: Range
        switch asked {
        case .success(let range): r = range
        case .failure(let refusal): return Self.apiError(400, refusal.reason)
        }
        var terms: [(Store.Dimension, String)] = []
        for part in (params.get("filters") ?? "").split(separator: ";") where !part.isEmpty {
            let kv = part.components(separatedBy: "==")
            guard kv.count == 2, let d = Store.Dimension(rawValue: kv[0]) else {
                return Self.apiError(400, "filters are DIMENSION==VALUE separated by ;, dimensions: \(Store.Dimension.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            terms.append((d, kv[1]))
        }
        let filters = Filters(terms)
        let policy = policies[site.policy] ?? .default
        // API keys read what client viewers read: the disclosure rule always applies.
        let rule = Disclosure(k: policy.kThreshold, restricted: true)
        guard filters.terms.count <= SiteReport.maxRestrictedFilters else {
            return Self.apiError(400, "combine at most \(SiteReport.maxRestrictedFilters) filters")
        }
        let report = SiteReport(database: database, site: id, range: r, filters: filters, disclosure: rule)
        if report.waitsForEngine {
            var busy = Self.apiError(503, Self.engineLoading.reason)
            busy.headers[.retryAfter] = String(Self.engineLoading.retryAfter ?? 5)
            return busy
        }
        let summaries = try report.summaries()
        var members: [(String, JSON)] = [("site", .string(id)), ("timezone", .string(calendar.identifier)),
                                         ("from", .string(calendar.iso(r.from))), ("to", .string(calendar.iso(r.to))),
                                         ("k", JSON(policy.kThreshold)), ("imported", Self.json(try report.figures.importedTotals()))]
        if let name = params.get("dimension") {
            guard let kind = TableKind(key: name) else { return Self.apiError(400, "unknown dimension \(name.prefix(40))") }
            let table = try report.table(kind, totals: report.totals(summaries))
            members.append(("dimension", .string(kind.key)))
            members.append(("folded", JSON(table.folded)))
            members.append(("results", Self.json(table, count: kind.countColumn)))
        } else {
            let c = report.cards(summaries)
            members.append(("results", .object([
                ("visitors", Self.json(c.visitors) { JSON($0) }), ("visits", Self.json(c.visits) { JSON($0) }),
                ("pageviews", Self.json(c.pageviews) { JSON($0) }),
                ("views_per_visit", Self.json(c.viewsPerVisit) { .double(($0 * 100).rounded() / 100) }),
                ("bounce_rate", Self.json(c.bounceRate) { .double(($0 * 1000).rounded() / 1000) }),
                ("visit_duration_s", Self.json(c.averageDurationMs) { .int($0 / 1000) }),
                ("conversions", Self.json(c.conversions) { JSON($0) }), ("revenue", Self.json(c.revenue, Self.json)),
            ])))
        }
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: JSON.object(members).text)))
    }

    // MARK: Pages

    func overview(_ request: Request, _ v: Viewer, message: String? = nil) throws -> Response {
        // Each site's range is in its own days.
        let r: Range
        switch range(request, .utc) {
        case .success(let range): r = range
        case .failure(let refusal): return refused(Refusal(status: .badRequest, reason: refusal.reason))
        }
        let q = (request.uri.queryParameters.get("q") ?? "").lowercased()
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let all = try consolidated(request, v, query: q)
        func figures(_ c: Disclosure.Cards, _ before: Disclosure.Cards) -> [String: Any] {
            ["visitors": c.visitors.text(Format.grouped), "change": Consolidated.change(c.visitors, before.visitors),
             "pageviews": c.pageviews.text(Format.grouped), "conversions": c.conversions.text(Format.grouped),
             "revenue": c.revenue.text { Format.money($0) }]
        }
        var rows: [[String: Any]] = []
        for l in all.lines {
            let status = l.lastEvent.map { t - $0 < 86_400_000 ? "active" : "no events in 24 h" } ?? "no events yet"
            // Sparkline: visitors per day over the last 30 days, from the rollups; days the reader
            // may not see break the line.
            let top = Double(max(l.spark.compactMap(\.visitors.value).max() ?? 1, 1))
            var segments: [[String]] = [[]]
            for (i, p) in l.spark.enumerated() {
                guard let n = p.visitors.value else { segments.append([]); continue }
                segments[segments.count - 1].append(String(format: "%.1f,%.1f", Double(i) * 100 / 29, 19 - Double(n) / top * 18))
            }
            rows.append(figures(l.cards, l.before).merging([
                "id": l.site.id, "name": l.site.name, "domains": l.site.domains.joined(separator: ", "),
                "last": l.restricted ? "" : l.lastEvent.map { Format.moment($0, l.site.calendar) } ?? "never", "status": status,
                "statusClass": status == "active" ? "ok" : "warn",
                "spark": segments.filter { $0.count > 1 }.map { ["points": $0.joined(separator: " ")] }]) { $1 })
        }
        let archived: [[String: Any]] = all.archived.map { site in
            ["id": site.id, "name": site.name, "at": site.archivedAt.map { Format.moment($0, site.calendar) } ?? "",
             "settings": v.actor.may(.removeSites)]
        }
        var c = base(v, title: "Sites")
        if let message { c["message"] = message }
        // New sites get the default policy, as on the command line.
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0, "selected": $0 == "default"] }
        c["zones"] = Self.zones(selected: "UTC")
        c["rangeKey"] = r.key
        if v.isStaffAdmin {
            let overdue = try database.privacyRequestCounts(now: t).overdue
            if overdue > 0 { c["overdue"] = overdue }
        }
        c["sites"] = rows
        if rows.count > 1 {
            var total = figures(all.totals.cards, all.totalsBefore.cards)
            total["count"] = rows.count
            total["partial"] = all.totals.partial
            c["total"] = total
        }
        c["archived"] = archived
        c["hasArchived"] = !archived.isEmpty
        if request.uri.queryParameters.get("done") == "site-deleted" {
            c["notice"] = "Site deleted. The audit log (privacy center) lists the rows removed, and the truncation of the write-ahead log that completed it."
        }
        c["empty"] = rows.isEmpty
        c["q"] = q
        c["range"] = r.label
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key] }
        return html("overview", c)
    }

    /// The site page's tables, in groups shown as tabs (every table under its heading without script).
    static var tableGroups: [(label: String, kinds: [TableKind])] {
        [("Acquisition", [.events(.channel), .events(.sourceName), .events(.source), .events(.referrer), .events(.utmSource), .events(.utmMedium),
                          .events(.utmCampaign), .events(.utmTerm), .events(.utmContent)]),
         ("Pages", [.events(.page), .sessions(.entry), .sessions(.exit)]),
         ("Locations", [.events(.country), .events(.region), .events(.city), .events(.asnOrg)]),
         ("Technology", [.events(.browser), .events(.os), .events(.device), .events(.screen)]),
         ("Events", [.events(.event)])]
    }

    /// One row of a table as the templates show it: the value (country names spelled out), its
    /// shown figures, a filter link, a link out for plain referrer host names, and its share of
    /// the view's visitors as a bar class (`s0`…`s100`, steps of 2; none for a hidden figure).
    /// `total` is the visitors figure the reader is shown (nil when withheld: a bar would then
    /// reveal the hidden total through a shown row).
    /// A table row's cells; `base`: the path its filter link leads to (the site page, or a shared link's).
    func rowContext(_ row: Disclosure.Row, _ kind: TableKind, _ request: Request, base: String, total: Int?) -> [String: Any] {
        let filterable: Store.Dimension? = if case .events(let d) = kind { d } else { nil }
        let shown = row.value.map { value in filterable.map { row.isOther ? value : Format.shown($0, value) } ?? value }
        var cell: [String: Any] = ["value": shown ?? kind.noValueLabel, "visitors": row.visitors.text(Format.grouped),
                                   "pageviews": row.pageviews.text(Format.grouped)]
        if let v = row.visitors.value, let total, total > 0 {
            let steps = min(50, Int((Double(v) / Double(total) * 50).rounded()))
            cell["share"] = "s\(steps * 2)"
        }
        if let d = filterable, let value = row.value, !row.isOther {
            cell["filter"] = base + Self.query(request, ["f.\(d.rawValue)": value, "dimension": nil, "q": nil, "sort": nil])
        }
        // Only plain host names become links, always https.
        if filterable == .referrer, let host = row.value, !row.isOther,
           host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
            cell["href"] = "https://" + host
        }
        return cell
    }

    /// `f.<dimension>=value` query parameters.
    func filters(_ request: Request) -> Filters {
        Filters(Store.Dimension.allCases.compactMap { d in
            request.uri.queryParameters.get("f.\(d.rawValue)").map { (d, String($0.prefix(500))) }
        })
    }

    /// A query string for this view with `change` applied (nil value removes the key).
    static func query(_ request: Request, _ change: [String: String?]) -> String {
        var items: [(String, String)] = []
        for (k, v) in request.uri.queryParameters where change[String(k)] == nil {
            items.append((String(k), String(v)))
        }
        for (k, v) in change { if let v = v { items.append((k, v)) } }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }
        return "?" + items.sorted { $0.0 < $1.0 }.map { "\(enc($0.0))=\(enc($0.1))" }.joined(separator: "&")
    }

    /// The k-anonymity rule for this reader on this site (``Analytics/Disclosure``): viewers, and
    /// managers unless the site's policy says otherwise.
    func disclosure(_ v: Viewer, _ policy: Policy) -> Disclosure {
        Disclosure.reading(as: v.user.role, policy)
    }

    /// A report of the view the request asks for, or the answer refusing it.
    func report(_ request: Request, site: Site, disclosure: Disclosure) -> Result<(SiteReport, Range), Refusal> {
        let r: Range
        switch range(request, site.calendar) {
        case .success(let range): r = range
        case .failure(let refusal): return .failure(Refusal(status: .badRequest, reason: refusal.reason))
        }
        let f = filters(request)
        if disclosure.restricted && f.terms.count > SiteReport.maxRestrictedFilters {
            return .failure(Refusal(status: .badRequest, reason: "Combine at most \(SiteReport.maxRestrictedFilters) filters."))
        }
        let report = SiteReport(database: database, site: site.id, range: r, filters: f, disclosure: disclosure)
        let comparing = request.uri.queryParameters.get("compare") == "1"
        if report.waitsForEngine || (comparing && report.previous().waitsForEngine) { return .failure(Self.engineLoading) }
        return .success((report, r))
    }

    struct Refusal: Error {
        let status: HTTPResponse.Status
        let reason: String
        /// Seconds after which asking again may succeed (a 503 while the engine loads).
        var retryAfter: Int? = nil
    }

    /// A view that cannot be answered: its reason, with the status and a retry hint.
    func refused(_ r: Refusal) -> Response {
        var c: [String: Any] = ["title": r.retryAfter == nil ? "This view cannot be shown" : "Still loading", "detail": r.reason]
        if let after = r.retryAfter { c["refresh"] = after }
        var response = html("refusal", c, status: r.status)
        if let after = r.retryAfter { response.headers[.retryAfter] = String(after) }
        return response
    }

    /// The refusal of a view whose figures wait for the analytics engine: after a start it loads
    /// every day (newest first, about a minute per 10M events); until it holds the view's days,
    /// the view would be counted from the raw events, which takes minutes on a large site.
    static var engineLoading: Refusal {
        Refusal(status: .serviceUnavailable,
                reason: "The analytics engine is loading this site's days after a restart (about a minute per 10 million events); "
                    + "this view is shown as soon as its days are in memory. The page reloads by itself.",
                retryAfter: 5)
    }

    /// The site page; through a shared link (`shared`) as a restricted reader would see it, with
    /// the link's filters fixed, no account, exports or settings.
    func site(_ request: Request, _ v: Viewer, _ id: String, shared: SharedView? = nil) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let policy = policies[site.policy] ?? .default
        let rule = disclosure(v, policy)
        let report: SiteReport, r: Range
        switch self.report(request, site: site, disclosure: rule) {
        case .failure(let refusal): return refused(refusal)
        case .success(let built): (report, r) = built
        }
        let f = report.filters
        let summaries = try report.summaries()
        let archivedNote = site.archivedAt.map { "Archived \(Format.moment($0, site.calendar)): this site collects nothing; its data stays until its policy's retention removes it." }
        let cards = report.cards(summaries)
        let compare = request.uri.queryParameters.get("compare") == "1"
        // The period before, when comparing: its cards' figures and its chart line.
        let before = compare ? try { let p = report.previous(); return (report: p, summaries: try p.summaries()) }() : nil
        let previous = before.map { $0.report.cards($0.summaries) }
        var c = base(v, title: site.name)
        c["site"] = ["id": site.id, "name": site.name]
        c["range"] = r.label
        c["rangeKey"] = r.key
        // The date inputs show the period on screen (its first and last day).
        c["rangeFrom"] = SiteCalendar.dateText(r.calendar.day(of: r.from))
        c["rangeTo"] = SiteCalendar.dateText(r.calendar.day(of: max(r.from, r.to - 1)))
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key,
                                         "href": Self.query(request, ["range": $0.0, "from": nil, "to": nil])] }
        c["compareHref"] = Self.query(request, ["compare": compare ? nil : "1"])
        c["compareLabel"] = compare ? "Stop comparing" : "Compare to the previous period"
        c["filters"] = f.terms.map { term in ["label": term.0.label, "value": Format.shown(term.0, term.1),
                                              "fixed": shared?.link.filters.contains { $0.0 == term.0 } ?? false,
                                      "remove": Self.query(request, ["f.\(term.0.rawValue)": nil])] }
        c["hasFilters"] = !f.isEmpty
        c["filterInputs"] = f.terms.map { ["name": "f.\($0.0.rawValue)", "value": $0.1] }
        c["conversionsFiltered"] = !f.isEmpty
        c["backfilling"] = report.figures.backfilling
        let late = report.figures.lateDays
        if late > 0 { c["lateDays"] = late == 1 ? "one day" : "\(late) days" }
        let imported = try report.figures.importedTotals()
        if imported.days > 0 {
            c["imported"] = ["days": imported.days == 1 ? "One day" : "\(imported.days) days", "verb": imported.days == 1 ? "is" : "are",
                             "sources": imported.sources.map(\.label).joined(separator: " and ")]
        }
        c["zoneNotes"] = try database.rollupZones(site: id, fromDay: report.figures.fromDay, toDay: report.figures.toDay).map {
            ["zone": $0.zone, "last": SiteCalendar.dateText($0.lastDay), "current": r.calendar.identifier]
        }
        c["summary"] = Format.cards(cards).enumerated().map { i, card -> [String: Any] in
            var m: [String: Any] = ["label": card.label, "value": card.text]
            if let previous, let change = Format.change(card.number, Format.cards(previous)[i].number) { m["delta"] = change }
            return m
        }
        c["empty"] = summaries[0].pageviews == 0 && summaries[0].visits == 0
        if let archivedNote { c["archivedNote"] = archivedNote }
        c["suppressed"] = rule.restricted
        c["k"] = policy.kThreshold
        let totals = report.totals(summaries)
        // Revenue is charted one currency at a time (never added across currencies): those of the
        // view, largest first; not offered to a reader the revenue card is withheld from (the
        // currencies alone would tell what a small group paid in).
        let currencies = cards.revenue.value.map { $0.entries.map(\.currency) }
        let metric = ChartMetric(request.uri.queryParameters.get("metric"), currency: request.uri.queryParameters.get("currency"),
                                 currencies: currencies)
        // Notes on the period's days (the site's and every site's), on the chart and listed under it.
        let notes = try database.annotations(site: site.id, first: SiteCalendar.dateText(r.calendar.day(of: r.from)),
                                             last: SiteCalendar.dateText(r.calendar.day(of: max(r.from, r.to - 1))))
        c["chart"] = try chart(report, r, totals: totals, previous: try before.map {
            try $0.report.chart(totals: $0.report.totals($0.summaries), hourly: report.figures.hourlyChart)
        }, metric: metric, notes: notes)
        c["notes"] = notes.map { n -> [String: Any] in
            ["id": n.id, "day": SiteCalendar.day(parsing: n.day).map(Format.day) ?? n.day, "text": n.text, "everySite": n.siteID == nil,
             "removable": shared == nil && v.actor.may(n.siteID.map { .configure(site: $0) } ?? .installAnnotations)]
        }
        c["metrics"] = ChartMetric.choices(currencies: currencies).map { m -> [String: Any] in
            ["label": m.label(currencies: currencies), "current": m == metric, "href": Self.query(request, m.query(currencies: currencies))]
        }
        func table(_ kind: TableKind) throws -> (Disclosure.Table, [String: Any]) {
            let t = try report.table(kind, totals: totals)
            let export = "/sites/\(site.id)/export"
            return (t, ["label": kind.label, "dimension": kind.key, "folded": t.folded, "hasFolded": t.folded > 0,
                        "csvHref": export + Self.query(request, ["dimension": kind.key, "format": nil]),
                        "jsonHref": export + Self.query(request, ["dimension": kind.key, "format": "json"]),
                        "detailsHref": "/sites/\(site.id)/details" + Self.query(request, ["dimension": kind.key, "compare": nil]),
                        "empty": t.rows.isEmpty, "countLabel": kind.countLabel,
                        "rows": t.rows.prefix(10).map { rowContext($0, kind, request, base: shared?.path ?? "/sites/\(site.id)", total: cards.visitors.value) }])
        }
        var groups: [[String: Any]] = []
        var pageTable: Disclosure.Table?
        for (label, kinds) in Self.tableGroups {
            var tables: [[String: Any]] = []
            for kind in kinds {
                var (t, context) = try table(kind)
                if kind == .events(.country), let map = countryMap(t) { context["map"] = map }
                tables.append(context)
                if kind == .events(.page) { pageTable = t }
            }
            groups.append(["label": label, "tables": tables])
        }
        c["groups"] = groups
        // Filtering by a custom event shows its properties.
        if let event = f.terms.first(where: { $0.0 == .event })?.1, event != "pageview" {
            let t = try report.properties(event: event, totals: totals)
            c["properties"] = ["event": event, "folded": t.folded, "hasFolded": t.folded > 0, "empty": t.rows.isEmpty,
                               "rows": t.rows.prefix(50).map { ["value": $0.value ?? "", "visitors": $0.visitors.text(Format.grouped),
                                                                "events": $0.pageviews.text(Format.grouped)] }]
        }
        c["mayConfigure"] = shared == nil && mayConfigure(v, id)
        // "Share this view": the settings page's form, filled with this view's filters.
        c["shareHref"] = "/sites/\(site.id)/settings?share=" + (SharedView.filterQuery(f.terms).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            + "#shared-links"
        if let shared {
            // No account on the page: the header shows no navigation.
            for key in ["user", "csrf", "staff", "manageUsers", "viewerOnly"] { c[key] = nil }
            c["shared"] = ["label": shared.link.label]
        }
        // Goals, funnels and engagement count collected data only (see SiteReport.collected).
        let basis = try report.collected(summaries: summaries, pageTable: pageTable ?? report.table(.events(.page), totals: totals))
        let goals = try basis.report.goals(summaries: basis.summaries, pageRows: basis.pageRows, alsoCompare: basis.alsoCompare)
        c["goals"] = goals.map { goal, shown -> [String: Any] in
            ["name": goal.name, "kind": goal.kind.rawValue, "match": goal.match, "visitors": shown.visitors.text(Format.grouped),
             "completions": shown.completions.text(Format.grouped), "rate": shown.rate.text { Format.percent($0) }]
        }
        c["hasGoals"] = !goals.isEmpty
        // The unfiltered view comes first among the ancestors (the empty subset of the filters).
        // Funnels count the whole site's visits, whatever the filters: not through a link limited to some.
        let funnels = shared.map { !$0.link.filters.isEmpty } == true ? [] : try basis.report.funnels(unfiltered: basis.summaries[basis.summaries.count > 1 ? 1 : 0], alsoCompare: basis.alsoCompare)
        c["funnels"] = funnels.map { funnel, steps -> [String: Any] in
            let first = steps.first?.1.value
            // The step chart: a bar per step, its length the step's share of step 1's visits.
            let rowHeight = 22.0
            let shown = Format.funnelSteps(steps)
            return ["name": funnel.name, "height": Int(rowHeight * Double(steps.count)), "steps": steps.enumerated().map { i, step -> [String: Any] in
                var bar: [String: Any] = ["y": String(format: "%.0f", rowHeight * Double(i) + 2), "ty": String(format: "%.0f", rowHeight * Double(i) + 15)]
                if let v = step.1.value, let f = first, f > 0 { bar["w"] = String(format: "%.1f", 360 * Double(v) / Double(f)) }
                return ["n": i + 1, "name": shown[i].name, "visits": shown[i].visits, "bar": bar, "ofFirst": shown[i].ofFirst, "dropOff": shown[i].dropOff]
            }]
        }
        // Engagement per page: only for pages the reader sees in the pages table.
        c["engagement"] = try basis.report.figures.engagement()
            .filter { !rule.restricted || basis.shownPages.contains($0.path) }.prefix(15).map {
                ["path": $0.path, "pageviews": Format.grouped($0.pageviews), "engaged": Format.duration($0.averageEngagedMs), "scroll": "\($0.averageScroll)\u{00A0}%"]
            }
        return html("site", c)
    }

    /// The countries table drawn on the world map (`/world.svg`): each country row the reader is
    /// shown, shaded in five steps of the largest shown figure, titled with its name and visitors.
    /// Rows the reader is not shown, and "Other", are not drawn (the map tells no more than the
    /// table). Nil without a map, or when no country is shown.
    func countryMap(_ table: Disclosure.Table) -> [String: Any]? {
        guard !mapCountries.isEmpty else { return nil }
        let shown = table.rows.compactMap { row -> (code: String, visitors: Int)? in
            guard !row.isOther, let code = row.value, mapCountries.contains(code), let v = row.visitors.value, v > 0 else { return nil }
            return (code, v)
        }
        guard let top = shown.map(\.visitors).max() else { return nil }
        return ["width": WorldMap.width, "height": WorldMap.height, "countries": shown.map { c -> [String: Any] in
            ["code": c.code.lowercased(), "shade": "m\(max(1, Int((Double(c.visitors) / Double(top) * 5).rounded(.up))))",
             "title": "\(Format.shown(.country, c.code)): \(Format.grouped(c.visitors)) visitor\(c.visitors == 1 ? "" : "s")"]
        }]
    }

    /// Bars of a metric per hour (ranges up to two days) or per day, as SVG geometry for the
    /// template: a value axis with gridlines at round steps, time ticks in the site's zone, the
    /// period still under way drawn apart ("so far"), each bar's values in its `<title>` (hover,
    /// screen readers) and in a table under the chart (touch, keyboard). A bar the reader may not
    /// see is drawn as a thin marker titled "< k" or "–".
    /// With `previous` (comparing), the period before is drawn over the bars as a dashed line,
    /// point for point (its hidden figures leave gaps), and listed in the values table.
    /// `metric` is what the bars draw (the metric switch); every metric is in the values table.
    func chart(_ report: SiteReport, _ r: Range, totals: SiteReport.Totals, previous: [Disclosure.Point]? = nil,
               metric: ChartMetric = .visitors, notes: [Annotation] = []) throws -> [String: Any] {
        let hourly = report.figures.hourlyChart
        let points = try report.chart(totals: totals, hourly: hourly)
        // The charted figure of a point, as shown to the reader.
        let figure = metric.figure
        let left = 40.0, plotWidth = 600.0, plotHeight = 120.0, above = 8.0
        // Today's chart spans the whole day: the hours still to come are laid out, without bars.
        var coming: [Int64] = []
        if hourly, !r.wholeDays, let last = points.last {
            let end = r.calendar.end(of: r.calendar.day(of: last.start))
            var h = last.start + 3_600_000
            while h < end && coming.count < 48 { coming.append(h); h += 3_600_000 }
        }
        let slots = points.map(\.start) + coming
        let w = plotWidth / Double(max(slots.count, 1))
        // The period before, point for point with the slots (a longer one is cut where the chart ends).
        let previous = previous.map { Array($0.prefix(slots.count)) }
        let highest = max(1, (points + (previous ?? [])).compactMap { figure($0).value }.max() ?? 1)
        let step = Self.niceStep(highest / 4)
        let top = step * (highest / step).rounded(.up)
        let nowMs = Int64(now().timeIntervalSince1970 * 1000)
        func day(_ start: Int64) -> String { Format.day(r.calendar.day(of: start)) }
        func label(_ start: Int64) -> String { hourly ? Format.hour(start, r.calendar) : day(start) }
        // An hour names its offset: the autumn day has two 02:00 hours.
        func when(_ start: Int64) -> String {
            hourly ? "\(day(start)) \(Format.hour(start, r.calendar)) (UTC\(r.calendar.iso(start).suffix(6)))" : day(start)
        }
        let every = max(1, Int((Double(slots.count) / 6).rounded(.up)))
        let imported = hourly ? [] : try report.figures.importedDayNumbers()
        let partial = { (i: Int) -> Bool in
            i == points.count - 1 && nowMs >= points[i].start && nowMs < (hourly ? points[i].start + 3_600_000 : r.calendar.end(of: r.calendar.day(of: points[i].start)))
        }
        // A bar's context: position, height, title and the values row.
        func barContext(_ i: Int, _ p: Disclosure.Point) -> [String: Any] {
            let v = figure(p).value ?? 0
            let h = max(figure(p).value == nil ? 1 : (v > 0 ? 1 : 0), plotHeight * v / top)
            let soFar = partial(i) ? " (so far)" : imported.contains(r.calendar.day(of: p.start)) ? " (imported)" : ""
            // Every metric of the point, as the title and the values table write them.
            let counts = ChartMetric.counts.map { $0.figure(p).text($0.text) }, revenue = p.revenue.text(Format.money)
            return ["x": String(format: "%.1f", left + Double(i) * w), "y": String(format: "%.1f", above + plotHeight - h),
                    "w": String(format: "%.1f", max(w - 1, 0.5)), "h": String(format: "%.1f", h), "partial": partial(i), "start": p.start,
                    "imported": imported.contains(r.calendar.day(of: p.start)),
                    "title": "\(when(p.start))\(soFar): " + zip(counts, ChartMetric.counts).map { "\($0) \($1.word)" }.joined(separator: ", ")
                        + ", revenue \(revenue)",
                    "when": when(p.start) + soFar, "values": (counts + [revenue]).map { ["text": $0] },
                    "before": previous.map { $0.indices.contains(i) ? figure($0[i]).text(metric.text) : "" } ?? ""]
        }
        var chart: [String: Any] = ["width": Int(left + plotWidth), "height": Int(above + plotHeight + 22), "max": Int(top),
                "grid": stride(from: 0.0, through: top, by: step).map { v -> [String: Any] in
                    let y = above + plotHeight - plotHeight * v / top
                    return ["y": String(format: "%.1f", y), "ly": String(format: "%.1f", y + 4), "x2": Int(left + plotWidth),
                            "lx": Int(left - 4), "label": Format.grouped(Int(v))]
                },
                "ticks": slots.enumerated().filter { $0.offset % every == 0 }.map { i, start -> [String: Any] in
                    ["x": String(format: "%.1f", left + (Double(i) + 0.5) * w), "y": Int(above + plotHeight + 16), "label": label(start)]
                },
                "bars": points.enumerated().map { i, p -> [String: Any] in
                    var bar = barContext(i, p)
                    // A day with notes gets a marker above its bar, the notes as its title.
                    let dayNotes = hourly ? [] : notes.filter { $0.day == SiteCalendar.dateText(r.calendar.day(of: p.start)) }
                    if !dayNotes.isEmpty {
                        bar["note"] = ["x": String(format: "%.1f", left + (Double(i) + 0.5) * w),
                                       "title": "\(day(p.start)): " + dayNotes.map(\.text).joined(separator: "; ")]
                    }
                    return bar
                },
                "first": slots.first.map(when) ?? "", "last": slots.last.map(when) ?? "",
                "hasPartial": points.indices.contains { partial($0) }, "metric": metric.title, "metricWord": metric.word,
                "timezone": r.calendar.identifier]
        if let previous {
            // One polyline per run of shown figures.
            var lines: [[String]] = [[]]
            for (i, p) in previous.enumerated() {
                guard let v = figure(p).value else { if !(lines.last ?? []).isEmpty { lines.append([]) }; continue }
                lines[lines.count - 1].append(String(format: "%.1f,%.1f", left + (Double(i) + 0.5) * w, above + plotHeight - plotHeight * v / top))
            }
            chart["previous"] = ["lines": lines.filter { !$0.isEmpty }.map { ["points": $0.joined(separator: " ")] },
                                 "first": previous.first.map { when($0.start) } ?? "", "last": previous.last.map { when($0.start) } ?? ""]
        }
        return chart
    }

    /// 1, 2 or 5 times a power of ten, at least `raw` (gridline steps).
    static func niceStep(_ raw: Double) -> Double {
        let power = pow(10, log10(max(raw, 1)).rounded(.down))
        return [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
    }

    /// One table in full (the rows the reader may see, up to 1,000): searched by the value as
    /// shown, sorted by any column, with its exports and filter links back to the site page.
    func details(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        guard let kind = TableKind(key: request.uri.queryParameters.get("dimension") ?? "") else { return notFound() }
        let report: SiteReport, r: Range
        switch self.report(request, site: site, disclosure: disclosure(v, policies[site.policy] ?? .default)) {
        case .failure(let refusal): return refused(refusal)
        case .success(let built): (report, r) = built
        }
        let summaries = try report.summaries()
        let totals = report.totals(summaries)
        let shownTotal = report.cards(summaries).visitors.value
        let table = try report.table(kind, totals: totals)
        let q = request.uri.queryParameters
        let search = String((q.get("q") ?? "").trimmingCharacters(in: .whitespaces).prefix(200))
        let sort = ["value", "count"].contains(q.get("sort") ?? "") ? q.get("sort")! : "visitors"
        // Hidden figures ("< k", "–") sort below every shown one; the table's own order breaks ties.
        var rows = table.rows.enumerated().map { ($0.offset, $0.element, rowContext($0.element, kind, request, base: "/sites/\(site.id)", total: shownTotal)) }
        if !search.isEmpty { rows = rows.filter { !$0.1.isOther && ($0.2["value"] as? String ?? "").localizedCaseInsensitiveContains(search) } }
        rows.sort { a, b in
            switch sort {
            case "value":
                let x = a.2["value"] as? String ?? "", y = b.2["value"] as? String ?? ""
                return x.localizedStandardCompare(y) == .orderedSame ? a.0 < b.0 : x.localizedStandardCompare(y) == .orderedAscending
            case "count":
                let x = a.1.pageviews.value ?? -1, y = b.1.pageviews.value ?? -1
                return x != y ? x > y : a.0 < b.0
            default: return a.0 < b.0
            }
        }
        var c = base(v, title: "\(kind.label) — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name]
        c["range"] = r.label
        c["kind"] = kind.label
        c["countLabel"] = kind.countLabel
        c["back"] = "/sites/\(site.id)" + Self.query(request, ["dimension": nil, "q": nil, "sort": nil])
        c["filters"] = report.filters.terms.map { ["label": $0.0.label, "value": Format.shown($0.0, $0.1)] }
        c["hasFilters"] = !report.filters.isEmpty
        c["keep"] = q.filter { $0.key != "q" }.map { ["name": String($0.key), "value": String($0.value)] }
        c["search"] = search
        c["rows"] = rows.map(\.2)
        c["empty"] = rows.isEmpty
        // A table keeps its rows with the most visitors, up to the row limit.
        let named = table.rows.filter { !$0.isOther }.count
        let limit = AppDatabase.tableRowLimit
        let capped = named + table.folded >= limit ? " (the \(Format.grouped(limit)) with the most visitors)" : ""
        c["shown"] = search.isEmpty ? "\(Format.grouped(rows.count)) row(s)\(capped)"
            : "\(Format.grouped(rows.count)) of \(Format.grouped(named)) row(s)\(capped) match “\(search)”"
        c["hasFolded"] = table.folded > 0
        c["folded"] = table.folded
        for (key, name) in [("visitors", "sortVisitors"), ("count", "sortCount"), ("value", "sortValue")] {
            c[name] = Self.query(request, ["sort": key == "visitors" ? nil : key])
            if key == sort { c[name + "Current"] = key == "value" ? "ascending" : "descending" }
        }
        let export = "/sites/\(site.id)/export"
        c["csvHref"] = export + Self.query(request, ["format": nil, "q": nil, "sort": nil])
        c["jsonHref"] = export + Self.query(request, ["format": "json", "q": nil, "sort": nil])
        return html("details", c)
    }

    func export(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        guard let kind = TableKind(key: request.uri.queryParameters.get("dimension") ?? "") else { return notFound() }
        let policy = policies[site.policy] ?? .default
        let report: SiteReport, r: Range
        switch self.report(request, site: site, disclosure: disclosure(v, policy)) {
        case .failure(let refusal): return refused(refusal)
        case .success(let built): (report, r) = built
        }
        let table = try report.table(kind, totals: report.totals(try report.summaries()))
        let name = "\(site.id)-\(kind.key)-\(r.key)"
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.object([("site", .string(site.id)), ("dimension", .string(kind.key)), ("range", .string(r.key)),
                                    ("imported", Self.json(try report.figures.importedTotals())),
                                    ("folded", JSON(table.folded)), ("rows", Self.json(table, count: kind.countColumn))])
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"\(name).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        let csv = ResultTable(name: name, columns: [kind.key, "visitors", kind.countColumn], rows: table.rows.map {
            [$0.value.map(Cell.text) ?? .null, Self.cell($0.visitors), Self.cell($0.pageviews)]
        })
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(csv))))
    }

    /// Which imported days a view includes: `{"days": N, "sources": [...]}` (0 and [] without any).
    static func json(_ imported: ImportedTotals) -> JSON {
        .object([("days", JSON(imported.days)), ("sources", .array(imported.sources.map { .string($0.rawValue) }))])
    }

    /// A shown count in a CSV cell: the number, "< k" or "–".
    static func cell(_ s: Shown<Int>) -> Cell {
        if let n = s.value { return .integer(Int64(n)) }
        return .text(s.text { String($0) })
    }

    /// A shown figure in JSON: the number, the string "< k", or null when withheld.
    static func json<V>(_ s: Shown<V>, _ number: (V) -> JSON) -> JSON {
        switch s {
        case .value(let v): number(v)
        case .belowK(let k): .string("< \(k)")
        case .withheld: .null
        }
    }

    /// Revenue in JSON: an object of amounts per currency code ("" for amounts sent without one).
    static func json(_ r: Revenue) -> JSON {
        .object(r.entries.map { ($0.currency, .double(($0.amount * 100).rounded() / 100)) })
    }

    static func json(_ table: Disclosure.Table, count: String) -> JSON {
        .array(table.rows.map { row in
            .object([("value", JSON(row.value)), ("visitors", json(row.visitors) { JSON($0) }), (count, json(row.pageviews) { JSON($0) })])
        })
    }
}
