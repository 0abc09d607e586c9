import Actions
import Consent
import Foundation
import Hummingbird
import HTTPTypes
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Store

/// The overview, a site's figures and exports, adding sites, real time and the stats API.
extension DashboardRoutes {
    // MARK: Adding a site (owner, admin)

    func addSite(_ request: Request, _ v: Viewer) async throws -> Response {
        guard v.actor.may(.addSites) else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        do {
            let site = try administration.addSite(name: f["name"] ?? "", domains: Self.list(f["domains"]), policy: f["policy"] ?? "default",
                                                  by: v.actor)
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
        let r = range(request)
        var rows: [[Cell]] = []
        for site in try database.sites() where v.may(see: site.id) {
            let s = try figures(site.id, r).summary()
            rows.append([.text(site.id), .text(site.name), .integer(Int64(s.visitors)), .integer(Int64(s.pageviews)),
                         .integer(Int64(s.conversions)), .real((s.revenue * 100).rounded() / 100),
                         s.lastEvent.map { .text(ISO.string($0)) } ?? .null])
        }
        let table = ResultTable(name: "overview-\(r.key)", columns: ["site", "name", "visitors", "pageviews", "conversions", "revenue", "last_event"],
                                rows: rows)
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.array(rows.map { row in .object(zip(table.columns, row).map { ($0, $1.json) }) })
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"overview-\(r.key).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"overview-\(r.key).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
    }

    // MARK: Real time

    /// The live stream shows single events, so only owners and admins (who see unfolded figures) get it.
    func mayWatchLive(_ v: Viewer) -> Bool { v.isStaffAdmin }

    func realtime(_ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let t = Int64(now().timeIntervalSince1970 * 1000)
        let policy = policies[site.policy] ?? .default
        var c = base(v, title: "Real time — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name]
        let five = try database.activeVisitors(site: id, since: t - 5 * 60_000)
        let thirty = try database.activeVisitors(site: id, since: t - 30 * 60_000)
        func shown(_ n: Int) -> String { v.suppressesSmallGroups && n > 0 && n < policy.kThreshold ? "< \(policy.kThreshold)" : String(n) }
        c["five"] = shown(five)
        c["thirty"] = shown(thirty)
        let pages = KAnonymity.fold(try database.breakdown(site: id, from: t - 30 * 60_000, to: t + 1, dimension: .page),
                                    k: policy.kThreshold, suppress: v.suppressesSmallGroups)
        c["pages"] = pages.rows.prefix(10).map { ["value": $0.value ?? "(none)", "visitors": $0.visitors] }
        c["live"] = mayWatchLive(v)
        return html("realtime", c)
    }

    /// Server-Sent Events: the site's new events as JSON, polled from the database every second,
    /// for `liveDuration` (30 minutes; the browser then reconnects with Last-Event-ID).
    func live(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), mayWatchLive(v), try database.site(id: id) != nil, let session = token(request) else { return notFound() }
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
                    let data = JSON.object([("ts", .string(ISO.string(e.timestamp))), ("name", .string(e.name)), ("path", .string(e.path)),
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
        var r = range(request)
        if params.get("range") == nil, let f = params.get("from").flatMap(Self.day), let t = params.get("to").flatMap(Self.day) {
            guard f <= t else { return Self.apiError(400, "from must not be after to") }
            guard t - f <= 366 * 86_400_000 else { return Self.apiError(400, "a range spans at most 366 days") }
            r = Range(key: "custom", from: f, to: t + 86_400_000, label: "")
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
        var members: [(String, JSON)] = [("site", .string(id)), ("from", .string(ISO.string(r.from))), ("to", .string(ISO.string(r.to)))]
        if let name = params.get("dimension") {
            guard let d = Store.Dimension(rawValue: name) else { return Self.apiError(400, "unknown dimension \(name.prefix(40))") }
            let folded = KAnonymity.fold(try figures(id, r, filters).breakdown(d),
                                         k: policy.kThreshold, suppress: true)
            members.append(("dimension", .string(d.rawValue)))
            members.append(("folded", JSON(folded.folded)))
            members.append(("results", .array(folded.rows.map {
                .object([("value", JSON($0.value)), ("visitors", JSON($0.visitors)), ("pageviews", JSON($0.pageviews))])
            })))
        } else {
            let s = try figures(id, r, filters).summary()
            members.append(("results", .object([
                ("visitors", JSON(s.visitors)), ("visits", JSON(s.visits)), ("pageviews", JSON(s.pageviews)),
                ("views_per_visit", .double((s.viewsPerVisit * 100).rounded() / 100)),
                ("bounce_rate", .double((s.bounceRate * 1000).rounded() / 1000)), ("visit_duration_s", .int(s.averageDurationMs / 1000)),
                ("conversions", JSON(s.conversions)), ("revenue", .double((s.revenue * 100).rounded() / 100)),
            ])))
        }
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: JSON.object(members).text)))
    }

    // MARK: Pages

    func overview(_ request: Request, _ v: Viewer, message: String? = nil) throws -> Response {
        let r = range(request)
        let q = (request.uri.queryParameters.get("q") ?? "").lowercased()
        let t = Int64(now().timeIntervalSince1970 * 1000)
        var rows: [[String: Any]] = []
        for site in try database.sites() where v.may(see: site.id) {
            if !q.isEmpty && !site.name.lowercased().contains(q) && !site.domains.contains(where: { $0.contains(q) }) { continue }
            let s = try figures(site.id, r).summary()
            let status = s.lastEvent.map { t - $0 < 86_400_000 ? "active" : "no events in 24 h" } ?? "no events yet"
            // Sparkline: visitors per day over the last 30 days, from the rollups.
            let today = t / 86_400_000
            let series = try database.rollupSeries(site: site.id, fromDay: today - 29, toDay: today).map(\.visitors)
            let top = Double(max(series.max() ?? 1, 1))
            let spark = series.enumerated().map { String(format: "%.1f,%.1f", Double($0.offset) * 100 / 29, 19 - Double($0.element) / top * 18) }
                .joined(separator: " ")
            rows.append(["id": site.id, "name": site.name, "domains": site.domains.joined(separator: ", "), "visitors": s.visitors,
                         "pageviews": s.pageviews, "conversions": s.conversions, "revenue": String(format: "%.2f", s.revenue),
                         "last": s.lastEvent.map { ISO.string($0) } ?? "never", "status": status,
                         "statusClass": status == "active" ? "ok" : "warn", "spark": spark])
        }
        var c = base(v, title: "Sites")
        if let message { c["message"] = message }
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0] }
        c["rangeKey"] = r.key
        if v.isStaffAdmin {
            let overdue = try database.privacyRequestCounts(now: t).overdue
            if overdue > 0 { c["overdue"] = overdue }
        }
        c["sites"] = rows
        c["empty"] = rows.isEmpty
        c["q"] = q
        c["range"] = r.label
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key] }
        return html("overview", c)
    }

    static var siteDimensions: [Store.Dimension] {
        [.page, .source, .referrer, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent, .country, .region, .city, .asnOrg,
         .browser, .os, .device, .screen, .event]
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

    static func delta(_ now: Double, _ before: Double) -> String {
        guard before != 0 else { return now == 0 ? "±0 %" : "new" }
        let ratio = ((now - before) / before * 100).rounded()
        // Sums of refunds can leave a previous figure of nearly nothing: no percentage means anything then.
        guard ratio.isFinite, abs(ratio) < 1e6 else { return now > before ? "up" : "down" }
        let p = Int(ratio)
        return p > 0 ? "+\(p) %" : p == 0 ? "±0 %" : "−\(-p) %"
    }

    func site(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let r = range(request)
        let f = filters(request)
        let policy = policies[site.policy] ?? .default
        let figures = figures(id, r, f)
        let s = try figures.summary()
        let compare = request.uri.queryParameters.get("compare") == "1"
        let previous = compare ? try figures.previous().summary() : nil
        var c = base(v, title: site.name)
        c["site"] = ["id": site.id, "name": site.name]
        c["range"] = r.label
        c["rangeKey"] = r.key
        c["query"] = Self.query(request, [:])
        c["ranges"] = Self.ranges.map { ["key": $0.0, "label": $0.1, "current": $0.0 == r.key,
                                         "href": Self.query(request, ["range": $0.0, "from": nil, "to": nil])] }
        c["compareHref"] = Self.query(request, ["compare": compare ? nil : "1"])
        c["compareLabel"] = compare ? "Stop comparing" : "Compare to the previous period"
        c["filters"] = f.terms.map { ["label": $0.0.label, "value": $0.1, "remove": Self.query(request, ["f.\($0.0.rawValue)": nil])] }
        c["hasFilters"] = !f.isEmpty
        c["filterInputs"] = f.terms.map { ["name": "f.\($0.0.rawValue)", "value": $0.1] }
        c["conversionsUnfiltered"] = !f.isEmpty && !f.appliesToConversions
        let cards: [(String, Double, String)] = [
            ("Visitors", Double(s.visitors), String(s.visitors)), ("Visits", Double(s.visits), String(s.visits)),
            ("Pageviews", Double(s.pageviews), String(s.pageviews)),
            ("Views per visit", s.viewsPerVisit, String(format: "%.1f", s.viewsPerVisit)),
            ("Bounce rate", s.bounceRate, String(format: "%.0f %%", s.bounceRate * 100)),
            ("Visit duration", Double(s.averageDurationMs), "\(s.averageDurationMs / 1000) s"),
            ("Conversions", Double(s.conversions), String(s.conversions)), ("Revenue", s.revenue, String(format: "%.2f", s.revenue)),
        ]
        let before: [Double] = previous.map { p in
            [Double(p.visitors), Double(p.visits), Double(p.pageviews), p.viewsPerVisit, p.bounceRate, Double(p.averageDurationMs),
             Double(p.conversions), p.revenue]
        } ?? []
        c["summary"] = cards.enumerated().map { i, card -> [String: Any] in
            var m: [String: Any] = ["label": card.0, "value": card.2]
            if !before.isEmpty { m["delta"] = Self.delta(card.1, before[i]) }
            return m
        }
        c["empty"] = s.pageviews == 0 && s.visits == 0
        c["suppressed"] = v.suppressesSmallGroups
        c["k"] = policy.kThreshold
        c["chart"] = try chart(figures, r)
        func table(_ label: String, _ key: String, _ rows: [BreakdownRow], filterable: Store.Dimension?) -> [String: Any] {
            let folded = KAnonymity.fold(rows, k: policy.kThreshold, suppress: v.suppressesSmallGroups)
            return ["label": label, "dimension": key, "folded": folded.folded, "hasFolded": folded.folded > 0,
                    "empty": folded.rows.isEmpty, "events": filterable != nil,
                    "rows": folded.rows.prefix(10).map { row -> [String: Any] in
                        var cell: [String: Any] = ["value": row.value ?? "(none)", "visitors": row.visitors, "pageviews": row.pageviews]
                        if let d = filterable, let value = row.value, value != KAnonymity.otherLabel {
                            cell["filter"] = Self.query(request, ["f.\(d.rawValue)": value])
                        }
                        // Only plain host names become links, always https.
                        if filterable == .referrer, let host = row.value, host != KAnonymity.otherLabel,
                           host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) {
                            cell["href"] = "https://" + host
                        }
                        return cell
                    }]
        }
        var tables: [[String: Any]] = []
        for d in Self.siteDimensions {
            tables.append(table(d.label, d.rawValue, try figures.breakdown(d),
                                filterable: d))
            if d == .page {
                for sd in SessionDimension.allCases {
                    tables.append(table(sd.label, sd.rawValue,
                                        try figures.sessionBreakdown(sd),
                                        filterable: nil))
                }
            }
        }
        c["tables"] = tables
        // Filtering by a custom event shows its properties.
        if let event = f.terms.first(where: { $0.0 == .event })?.1, event != "pageview" {
            let folded = KAnonymity.fold(try database.propertyBreakdown(site: id, from: r.from, to: r.to, event: event, filters: f),
                                         k: policy.kThreshold, suppress: v.suppressesSmallGroups)
            c["properties"] = ["event": event, "folded": folded.folded, "hasFolded": folded.folded > 0, "empty": folded.rows.isEmpty,
                               "rows": folded.rows.prefix(50).map { ["value": $0.value ?? "", "visitors": $0.visitors, "events": $0.pageviews] }]
        }
        c["mayConfigure"] = mayConfigure(v, id)
        let goalResults = try database.goalResults(site: id, from: r.from, to: r.to, filters: f)
        c["goals"] = goalResults.map { g -> [String: Any] in
            let hide = v.suppressesSmallGroups && g.visitors > 0 && g.visitors < policy.kThreshold
            return ["name": g.goal.name, "kind": g.goal.kind.rawValue, "match": g.goal.match,
                    "visitors": hide ? "< \(policy.kThreshold)" : String(g.visitors), "completions": hide ? "–" : String(g.completions),
                    "rate": s.visitors == 0 || hide ? "–" : String(format: "%.1f %%", Double(g.visitors) / Double(s.visitors) * 100)]
        }
        c["hasGoals"] = !goalResults.isEmpty
        c["funnels"] = try database.funnels(site: id).map { funnel -> [String: Any] in
            let result = try database.funnelResult(funnel, from: r.from, to: r.to)
            let first = result.steps.first?.visits ?? 0
            return ["name": funnel.name, "steps": result.steps.enumerated().map { i, step -> [String: Any] in
                let previous = i == 0 ? first : result.steps[i - 1].visits
                // Counts under k are hidden from roles that get folded figures.
                let hide = v.suppressesSmallGroups && step.visits > 0 && step.visits < policy.kThreshold
                return ["n": i + 1, "name": step.goal.name, "visits": hide ? "< \(policy.kThreshold)" : String(step.visits),
                        "ofFirst": first == 0 || hide ? "–" : String(format: "%.1f %%", Double(step.visits) / Double(first) * 100),
                        "dropOff": i == 0 || previous == 0 || hide ? "–" : String(format: "%.1f %%", Double(previous - step.visits) / Double(previous) * 100)]
            }]
        }
        // Engagement per page: only pages that reach k pageviews are shown to roles that get folded figures.
        c["engagement"] = try figures.engagement()
            .filter { !v.suppressesSmallGroups || $0.pageviews >= policy.kThreshold }.prefix(15).map {
                ["path": $0.path, "pageviews": $0.pageviews, "engaged": "\($0.averageEngagedMs / 1000) s", "scroll": "\($0.averageScroll) %"]
            }
        return html("site", c)
    }

    /// Bars of visitors per hour (ranges up to two days) or per day, as SVG geometry for the template;
    /// each bar's `<title>` holds its values (shown on hover, read by screen readers).
    func chart(_ figures: Figures, _ r: Range) throws -> [String: Any] {
        let hourly = r.to - r.from <= 2 * 86_400_000
        let points = try figures.series(hourly: hourly)
        let top = max(1, points.map(\.visitors).max() ?? 1)
        let width = 600.0, height = 120.0
        let w = width / Double(max(points.count, 1))
        return ["width": Int(width), "height": Int(height) + 20, "max": top,
                "bars": points.enumerated().map { i, p -> [String: Any] in
                    let h = max(p.visitors > 0 ? 1 : 0, height * Double(p.visitors) / Double(top))
                    let when = hourly ? ISO.string(p.start) : ISO.day(p.start)
                    return ["x": String(format: "%.1f", Double(i) * w), "y": String(format: "%.1f", height - h),
                            "w": String(format: "%.1f", max(w - 1, 0.5)), "h": String(format: "%.1f", h),
                            "title": "\(when): \(p.visitors) visitors, \(p.pageviews) pageviews"]
                },
                "first": points.first.map { hourly ? ISO.string($0.start) : ISO.day($0.start) } ?? "",
                "last": points.last.map { hourly ? ISO.string($0.start) : ISO.day($0.start) } ?? ""]
    }

    func export(_ request: Request, _ v: Viewer, _ id: String) throws -> Response {
        guard v.may(see: id), let site = try database.site(id: id) else { return notFound() }
        let key = request.uri.queryParameters.get("dimension") ?? ""
        let r = range(request)
        let figures = figures(id, r, filters(request))
        let rows: [BreakdownRow]
        // Event breakdowns, or entry/exit pages (sessions; the second column counts visits).
        if let d = Store.Dimension(rawValue: key) {
            rows = try figures.breakdown(d)
        } else if let d = SessionDimension(rawValue: key) {
            rows = try figures.sessionBreakdown(d)
        } else {
            return notFound()
        }
        let policy = policies[site.policy] ?? .default
        let folded = KAnonymity.fold(rows, k: policy.kThreshold, suppress: v.suppressesSmallGroups)
        let name = "\(site.id)-\(key)-\(r.key)"
        if request.uri.queryParameters.get("format") == "json" {
            let body = JSON.object([("site", .string(site.id)), ("dimension", .string(key)), ("range", .string(r.key)),
                                    ("folded", JSON(folded.folded)),
                                    ("rows", .array(folded.rows.map { .object([("value", JSON($0.value)), ("visitors", JSON($0.visitors)),
                                                                               ("pageviews", JSON($0.pageviews))]) }))])
            return Response(status: .ok, headers: [.contentType: "application/json", .contentDisposition: "attachment; filename=\"\(name).json\""],
                            body: .init(byteBuffer: ByteBuffer(string: body.text)))
        }
        let table = ResultTable(name: name, columns: [key, "visitors", "pageviews"], rows: folded.rows.map {
            [$0.value.map(Cell.text) ?? .null, .integer(Int64($0.visitors)), .integer(Int64($0.pageviews))]
        })
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name).csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(table))))
    }
}
