@testable import Admin
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Synchronization
import Testing

extension LiveServerTests {
    /// Issue 12, finding 4, proven against the running server: 200 random datasets (one site each)
    /// and random filter sets, read as a viewer through the HTML page, CSV and JSON exports and the
    /// stats API. Every number shown is checked against a straightforward count over the stored
    /// events: it is right, it comes from at least k visitors, and it differs from the view's total
    /// and from the same figure in every view with fewer of the filters by 0 or at least k.
    @Suite struct DisclosureProofTests {
        static let k = 5
        static let userAgents = [
            chromeUA,
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ]
        static let referrers: [String?] = [nil, nil, "https://www.google.com/search?q=x", "https://www.facebook.com/", "https://news.example.org/a"]
        static let tableDimensions: [(label: String, dimension: Store.Dimension)] = [
            ("Pages", .page), ("Channels", .channel), ("Source names", .sourceName), ("Sources", .source), ("Referrers", .referrer), ("UTM source", .utmSource), ("UTM medium", .utmMedium),
            ("UTM campaign", .utmCampaign), ("Countries", .country), ("Browsers", .browser), ("Operating systems", .os),
            ("Devices", .device), ("Screen sizes", .screen), ("Events", .event),
        ]
        static let filterDimensions: [Store.Dimension] = [.page, .channel, .sourceName, .source, .referrer, .utmSource, .browser, .os, .device, .event]

        static func value(_ e: EventRow, _ d: Store.Dimension) -> String? {
            switch d {
            case .page: e.path
            case .source: e.sourceType
            case .referrer: e.referrerHost
            case .utmSource: e.utmSource
            case .utmMedium: e.utmMedium
            case .utmCampaign: e.utmCampaign
            case .utmTerm: e.utmTerm
            case .utmContent: e.utmContent
            case .country: e.country
            case .region: e.region
            case .city: e.city
            case .asnOrg: e.asnOrg
            case .browser: e.browser
            case .os: e.os
            case .device: e.device
            case .screen: e.screen
            case .event: e.name
            case .channel: e.channel
            case .sourceName: e.sourceName
            }
        }

        /// A condition on an event: a filter, a row's value, an hour, a goal.
        struct Term: @unchecked Sendable {
            let name: String
            let test: (EventRow) -> Bool
            static func equals(_ d: Store.Dimension, _ v: String?) -> Term {
                Term(name: "\(d.rawValue)=\(v ?? "(none)")") { DisclosureProofTests.value($0, d) == v }
            }
            /// A view's filter: on an event name it keeps the visits that sent the event (every
            /// event of them); on any other dimension, the events with the value.
            static func filter(_ d: Store.Dimension, _ v: String, _ ref: Reference) -> Term {
                guard d == .event else { return equals(d, v) }
                let visits = Set(ref.events.filter { $0.name == v }.compactMap(\.sessionID))
                return Term(name: "visits with \(v)") { $0.sessionID.map(visits.contains) ?? false }
            }
        }

        /// Straightforward counts over the stored events of one site (all of today).
        struct Reference: @unchecked Sendable {
            let events: [EventRow]
            func matching(_ terms: [Term]) -> [EventRow] { events.filter { e in terms.allSatisfy { $0.test(e) } } }
            func visitors(_ terms: [Term]) -> Int { Set(matching(terms).map(\.visitor)).count }
            func pageviews(_ terms: [Term]) -> Int { matching(terms).filter { $0.name == "pageview" }.count }
            /// The second count of a table's row: events sent for the events table, pageviews for the others.
            func count(_ terms: [Term], table d: Store.Dimension) -> Int { d == .event ? matching(terms).count : pageviews(terms) }
        }

        /// A figure as read: a number, "< k", or "–" / null.
        enum Read: Equatable { case number(Int), belowK, withheld }

        static func read(_ text: String) -> Read {
            let t = text.trimmingCharacters(in: .whitespaces)
            if let n = Int(t) { return .number(n) }
            if t.hasPrefix("< ") || t.hasPrefix("&lt; ") { return .belowK }
            return .withheld
        }

        /// Checks one shown visitor count of the group `terms` (a view's filters, plus a row's value,
        /// an hour or a goal). Every coarser group — any subset of its terms — is a figure a reader
        /// can see elsewhere (a total or a row of a view with fewer filters), so the difference to
        /// each must be 0 or at least k. Returns the problems found.
        static func check(_ shown: Read, group terms: [Term], pageviews: Read? = nil, table: Store.Dimension? = nil, ref: Reference,
                          what: String) -> [String] {
            let v = ref.visitors(terms)
            var problems: [String] = []
            switch shown {
            case .number(let n):
                if n != v { problems.append("\(what): shows \(n), the events hold \(v)") }
                if n > 0 && n < k { problems.append("\(what): shows \(n), fewer than k") }
                if n > 0 {
                    for mask in 0..<(1 << terms.count) - 1 {
                        let coarser = terms.indices.filter { mask & (1 << $0) != 0 }.map { terms[$0] }
                        let wider = ref.visitors(coarser)
                        if wider - n > 0 && wider - n < k {
                            problems.append("\(what): \(wider) for [\(coarser.map(\.name).joined(separator: ","))] - \(n) isolates \(wider - n)")
                        }
                    }
                }
                let expected = table.map { ref.count(terms, table: $0) } ?? ref.pageviews(terms)
                if case .number(let p)? = pageviews, p != expected { problems.append("\(what): second count \(p) ≠ \(expected)") }
            case .belowK:
                if !(v > 0 && v < k) { problems.append("\(what): shows < k, the events hold \(v)") }
                if case .number? = pageviews { problems.append("\(what): pageviews shown while the visitors are not") }
            case .withheld:
                if case .number? = pageviews { problems.append("\(what): pageviews shown while the visitors are not") }
            }
            return problems
        }

        @Test func noShownNumberComesFromOrIsolatesFewerThanKVisitors() async throws {
            let install = try await LiveInstall()
            let seed = UInt64(ProcessInfo.processInfo.environment["CANDOR_DISCLOSURE_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
            var rng = SplitMix(seed: seed)
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let form: HTTPFields = [.cookie: owner.cookie, .contentType: "application/x-www-form-urlencoded"]
            // 200 sites, each with a goal and a statistics key, and random visitors.
            // Each site also gets a shared link, whose page must show exactly the viewer's figures.
            var sites: [(id: String, key: String, goal: String, share: String)] = []
            for i in 0..<200 {
                let added = try await install.request(.post, "/sites", headers: form, body: "csrf=\(owner.csrf)&name=Dataset+\(i)&domains=d\(i).example&policy=default")
                let id = try #require(added.headers[.location]?.split(separator: "/").dropFirst().first.map(String.init))
                let goal = "/p\(Int.random(in: 0..<4, using: &rng))"
                _ = try await install.request(.post, "/sites/\(id)/settings/goal", headers: form,
                                              body: "csrf=\(owner.csrf)&name=G&kind=page&match=\(goal.replacingOccurrences(of: "/", with: "%2F"))")
                let page = try await install.request(.post, "/sites/\(id)/settings/key", headers: form, body: "csrf=\(owner.csrf)&label=p&scope=stats%3Aread").body
                let key = try #require(page.range(of: #"<code id="new-key">"#).map { String(page[$0.upperBound...].prefix { $0 != "<" }) })
                let shared = try await install.request(.post, "/sites/\(id)/settings/share", headers: form, body: "csrf=\(owner.csrf)&label=proof&filters=").body
                let share = try #require(shared.firstMatch(of: /id="new-link">[^<]*\/share\/([0-9a-f]{64})</).map { String($0.1) })
                sites.append((id, key, goal, share))
            }
            let added = try install.cli(["users", "add", "--email", "viewer@example.org", "--role", "viewer"] + sites.flatMap { ["--site", $0.id] })
            let viewer = try await install.signIn("viewer@example.org", String(added.split(separator: " ")[2]))

            // Visitors: small and large datasets, skewed pages, a few sources and campaigns, browsers.
            var posts: [(HTTPFields, String)] = []
            for (s, site) in sites.enumerated() {
                let visitors = Bool.random(using: &rng) ? Int.random(in: 1...9, using: &rng) : Int.random(in: 10...40, using: &rng)
                for v in 0..<visitors {
                    let ua = Self.userAgents[Int.random(in: 0..<Self.userAgents.count, using: &rng)]
                    let referrer = Self.referrers[Int.random(in: 0..<Self.referrers.count, using: &rng)]
                    let campaign = Int.random(in: 0..<4, using: &rng) == 0 ? "?utm_source=letter&utm_medium=email&utm_campaign=c\(v % 2)" : ""
                    var events: [String] = []
                    for n in 0..<Int.random(in: 1...4, using: &rng) {
                        let path = "/p\(min(Int.random(in: 0..<3, using: &rng) + Int.random(in: 0..<3, using: &rng), 5))"
                        var e = #"{"site":"\#(site.id)","url":"https://d\#(s).example\#(path)\#(n == 0 ? campaign : "")","screen":\#([390, 1280, 1920][v % 3])"#
                        if n == 0, let referrer { e += #","referrer":"\#(referrer)""# }
                        events.append(e + "}")
                    }
                    if Int.random(in: 0..<5, using: &rng) == 0 { events.append(#"{"site":"\#(site.id)","name":"signup","url":"https://d\#(s).example/p1"}"#) }
                    posts.append(([.contentType: "text/plain", .userAgent: ua, .init("X-Forwarded-For")!: "10.\(s / 100).\(s % 100).\(v + 1)"],
                                  "{\"events\":[" + events.joined(separator: ",") + "]}"))
                }
            }
            let port = install.server.port
            let allPosts = posts
            let allSites = sites
            try await spread(allPosts, over: 4, port: port) { client, _, post in
                let r = try await client.post("/api/event", headers: post.0, body: ByteBuffer(string: post.1))
                #expect(r.status == .accepted)
            }

            let database = try install.database()
            let findings = Findings()
            let note: @Sendable ([String]) -> Void = { findings.add($0) }
            let count: @Sendable ([Read]) -> Void = { findings.count($0) }
            let viewerHeaders: HTTPFields = [.cookie: viewer.cookie]
            var plans: [(Int, [(Store.Dimension, String)], Store.Dimension, Store.Dimension)] = []
            var references: [Reference] = []
            for (i, site) in sites.enumerated() {
                let ref = Reference(events: try database.events(site: site.id))
                references.append(ref)
                var views: [[(Store.Dimension, String)]] = [[]]
                for _ in 0..<2 {
                    var terms: [(Store.Dimension, String)] = []
                    for d in Self.filterDimensions.shuffled(using: &rng).prefix(Int.random(in: 1...3, using: &rng)) {
                        // A value some events have, usually one of the first event's (so filters combine into non-empty views).
                        let pool = Bool.random(using: &rng) ? Array(ref.events.prefix(1)) : ref.events
                        if let v = pool.compactMap({ Self.value($0, d) }).randomElement(using: &rng) { terms.append((d, v)) }
                    }
                    views.append(terms)
                }
                for v in views {
                    plans.append((i, v, Self.tableDimensions.randomElement(using: &rng)!.dimension, Self.tableDimensions.randomElement(using: &rng)!.dimension))
                }
            }
            let allPlans = plans
            let allReferences = references
            try await spread(allPlans, over: 3, port: port, configuration: .init(timeout: .seconds(60))) { client, _, plan in
                let (i, terms, csvDimension, jsonDimension) = plan
                let site = allSites[i], ref = allReferences[i]
                let enc = { (s: String) in s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
                let query = "range=today" + terms.map { "&f.\($0.0.rawValue)=\(enc($0.1))" }.joined()
                let label = "site \(i) [\(terms.map { "\($0.0.rawValue)=\($0.1)" }.joined(separator: ","))]"
                // HTML
                let html = String(buffer: try await client.get("/sites/\(site.id)?\(query)", headers: viewerHeaders).body ?? ByteBuffer())
                // The same view through the site's shared link: the same figures, so every check below holds for it too.
                let viaLink = String(buffer: try await client.get("/share/\(site.share)?\(query)", headers: [:]).body ?? ByteBuffer())
                    .replacingOccurrences(of: "/share/\(site.share)", with: "/sites/\(site.id)")
                if Self.cards(viaLink).isEmpty || !Self.sameFigures(html, viaLink) {
                    note(["\(label): the shared link's page shows other figures than the viewer's"])
                }
                findings.countShared()
                let view = terms.map { Term.filter($0.0, $0.1, ref) }
                let cards = Self.cards(html)
                let visitorsCard = Self.read(cards["Visitors"] ?? "?")
                note(Self.check(visitorsCard, group: view, pageviews: Self.read(cards["Pageviews"] ?? "–"),
                                ref: ref, what: "\(label) Visitors card"))
                var reads = [visitorsCard]
                for (title, rows) in Self.tables(html) {
                    guard let d = Self.tableDimensions.first(where: { $0.label == title })?.dimension else { continue }
                    var shownSum = 0, other: Read?
                    for row in rows {
                        let r = Self.read(row.visitors)
                        reads.append(r)
                        if row.value == "Other (suppressed)" { other = r; continue }
                        if case .number(let n) = r { shownSum += n }
                        let value: String? = row.value == TableKind.events(d).noValueLabel ? nil : row.value
                        note(Self.check(r, group: view + [Term.equals(d, value)], pageviews: Self.read(row.pageviews), table: d,
                                        ref: ref, what: "\(label) \(title)=\(row.value)"))
                    }
                    let total = ref.visitors(view)
                    // Only a total that is shown can be subtracted from.
                    if case .number = visitorsCard, [.browser, .os, .device, .country].contains(d) {
                        // Rows of a partition add up: what is not shown is 0 or at least k.
                        if case .number(let o)? = other {
                            if o != total - shownSum { note(["\(label) \(title): Other \(o) ≠ \(total) - \(shownSum)"]) }
                        } else if total - shownSum > 0 && total - shownSum < Self.k {
                            note(["\(label) \(title): the total minus the shown rows isolates \(total - shownSum)"])
                        }
                    }
                    if case .number(let o)? = other {
                        if o < Self.k { note(["\(label) \(title): Other shows \(o)"]) }
                        // Other against the view's total and the totals of coarser views.
                        for mask in 0..<(1 << view.count) {
                            let coarser = view.indices.filter { mask & (1 << $0) != 0 }.map { view[$0] }
                            let whole = ref.visitors(coarser)
                            if whole - o > 0 && whole - o < Self.k { note(["\(label) \(title): Other \(o) vs \(whole) isolates \(whole - o)"]) }
                        }
                    }
                }
                // Chart (hourly): each bar against the events of its hour.
                let bars = Self.bars(html)
                findings.countBars(bars.count)
                for bar in bars {
                    let r = Self.read(bar.visitors)
                    reads.append(r)
                    let hour = Term(name: "hour=\(bar.hour)") { $0.timestamp / 3_600_000 == bar.hour }
                    note(Self.check(r, group: view + [hour], ref: ref, what: "\(label) chart \(bar.hour)"))
                }
                // Goal (a page goal): its visitors are part of the view's.
                if let goal = Self.goal(html) {
                    let r = Self.read(goal)
                    reads.append(r)
                    let completed = Term(name: "goal \(site.goal)") { $0.name == "pageview" && $0.path == site.goal }
                    note(Self.check(r, group: view + [completed], ref: ref, what: "\(label) goal"))
                }
                // CSV and JSON exports, the stats API.
                let csv = String(buffer: try await client.get("/sites/\(site.id)/export?\(query)&dimension=\(csvDimension.rawValue)",
                                                                headers: viewerHeaders).body ?? ByteBuffer())
                for line in csv.split(separator: "\r\n").dropFirst() {
                    let cells = Self.csvCells(String(line))
                    guard cells.count == 3 else { continue }
                    let r = Self.read(cells[1])
                    reads.append(r)
                    if cells[0] == "Other (suppressed)" {
                        if case .number(let o) = r, o < Self.k { note(["\(label) CSV Other \(o)"]) }
                        continue
                    }
                    guard !cells[0].isEmpty else { continue }
                    note(Self.check(r, group: view + [Term.equals(csvDimension, cells[0])],
                                    pageviews: Self.read(cells[2]), table: csvDimension, ref: ref,
                                    what: "\(label) CSV \(csvDimension.rawValue)=\(cells[0])"))
                }
                let json = try await client.get("/sites/\(site.id)/export?\(query)&dimension=\(jsonDimension.rawValue)&format=json", headers: viewerHeaders)
                let apiFilters = terms.map { "\($0.0.rawValue)==\($0.1)" }.joined(separator: ";")
                let apiQuery = "range=today" + (terms.isEmpty ? "" : "&filters=\(enc(apiFilters))")
                let bearer: HTTPFields = [.authorization: "Bearer \(site.key)"]
                let totals = try await client.get("/api/v1/sites/\(site.id)/stats?\(apiQuery)", headers: bearer)
                let breakdown = try await client.get("/api/v1/sites/\(site.id)/stats?\(apiQuery)&dimension=\(jsonDimension.rawValue)", headers: bearer)
                for (source, body, rowsKey) in [("JSON", json, "rows"), ("API", breakdown, "results")] {
                    let doc = (try? JSONSerialization.jsonObject(with: Data(String(buffer: body.body ?? ByteBuffer()).utf8))) as? [String: Any]
                    for row in doc?[rowsKey] as? [[String: Any]] ?? [] {
                        let r = Self.read(json: row["visitors"])
                        reads.append(r)
                        guard let value = row["value"] as? String else { continue }
                        if value == "Other (suppressed)" {
                            if case .number(let o) = r, o < Self.k { note(["\(label) \(source) Other \(o)"]) }
                            continue
                        }
                        note(Self.check(r, group: view + [Term.equals(jsonDimension, value)],
                                        pageviews: Self.read(json: row[jsonDimension == .event ? "events" : "pageviews"]),
                                        table: jsonDimension, ref: ref, what: "\(label) \(source) \(jsonDimension.rawValue)=\(value)"))
                    }
                }
                let apiDoc = (try? JSONSerialization.jsonObject(with: Data(String(buffer: totals.body ?? ByteBuffer()).utf8))) as? [String: Any]
                let results = apiDoc?["results"] as? [String: Any]
                let apiVisitors = Self.read(json: results?["visitors"])
                reads.append(apiVisitors)
                note(Self.check(apiVisitors, group: view, pageviews: Self.read(json: results?["pageviews"]), ref: ref,
                                what: "\(label) API visitors"))
                if apiVisitors != visitorsCard { note(["\(label): API visitors \(apiVisitors) ≠ card \(visitorsCard)"]) }
                count(reads)
            }
            let (found, c) = findings.result
            print("disclosure proof seed \(seed): 200 datasets, \(c.views) views, \(c.figures) figures read as a viewer (\(c.hidden) shown as < k or –), "
                  + "\(findings.sharedPages) pages also read through shared links, \(found.count) problem(s)")
            #expect(findings.sharedPages == c.views, "every view's page is read through its site's shared link too")
            #expect(c.figures > 5000 && c.hidden > 100, "the run must read many figures and hide some (\(c))")
            #expect(findings.barsRead > 500, "the chart's bars must be read (\(findings.barsRead))")
            #expect(found.isEmpty, "seed \(seed): \(found.count) problems, e.g.\n\(found.prefix(20).joined(separator: "\n"))")
            install.stop()
        }

        // MARK: Reading the answers

        static func unescape(_ s: String) -> String {
            s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
                .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
        }

        static func matches(_ pattern: String, _ text: String) -> [[String]] {
            guard let re = try? NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]) else { return [] }
            return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
                (0..<m.numberOfRanges).map { Range(m.range(at: $0), in: text).map { String(text[$0]) } ?? "" }
            }
        }

        static func cards(_ html: String) -> [String: String] {
            Dictionary(matches(#"<div class="card"><span>([^<]*)</span><strong>([^<]*)</strong>"#, html).map { ($0[1], unescape($0[2])) },
                       uniquingKeysWith: { a, _ in a })
        }

        static func tables(_ html: String) -> [(String, [(value: String, visitors: String, pageviews: String)])] {
            // Tables sit in tab groups (`id="t-…"`): any attributes after the class.
            matches(#"<section class="breakdown"[^>]*><h2>([^<]*)</h2>(.*?)</section>"#, html).map { m in
                (m[1], matches(#"<tr[^>]*><td>(.*?)</td><td>([^<]*)</td><td>([^<]*)</td></tr>"#, m[2]).map { r in
                    let value = unescape(r[1].replacingOccurrences(of: #"<a [^>]*aria-label="Open">↗</a>"#, with: "", options: .regularExpression)
                        .replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)).trimmingCharacters(in: .whitespaces)
                    return (value, unescape(r[2]), unescape(r[3]))
                })
            }
        }

        /// Chart bars: the hour (ms / 3,600,000, from the bar's start) and the visitors figure of its title.
        static func bars(_ html: String) -> [(hour: Int64, visitors: String)] {
            matches(#"data-start="([0-9]+)"[^>]*><title>[^<]*?\): ([^<]*?) visitors, [^<]*</title>"#, html).compactMap { m in
                Int64(m[1]).map { ($0 / 3_600_000, unescape(m[2])) }
            }
        }

        /// Whether two site pages show the same cards, table rows, chart bars and goal.
        static func sameFigures(_ a: String, _ b: String) -> Bool {
            func rows(_ h: String) -> [String] { tables(h).map { "\($0.0): " + $0.1.map { "\($0.value)|\($0.visitors)|\($0.pageviews)" }.joined(separator: ";") } }
            func chart(_ h: String) -> [String] { bars(h).map { "\($0.hour)=\($0.visitors)" } }
            return cards(a) == cards(b) && rows(a) == rows(b) && chart(a) == chart(b) && goal(a) == goal(b)
        }

        static func goal(_ html: String) -> String? {
            matches(#"<tr><td>G <small>page [^<]*</small></td><td>([^<]*)</td>"#, html).first.map { unescape($0[1]) }
        }

        static func csvCells(_ line: String) -> [String] {
            var cells: [String] = [], cell = "", quoted = false
            for ch in line {
                if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { cells.append(cell); cell = "" } else { cell.append(ch) }
            }
            cells.append(cell)
            return cells
        }

        static func read(json value: Any?) -> Read {
            if let n = value as? Int { return .number(n) }
            if let s = value as? String, s.hasPrefix("< ") { return .belowK }
            return .withheld
        }
    }
}

/// What the disclosure proof found, gathered from concurrent readers.
final class Findings: @unchecked Sendable {
    private let lock = NSLock()
    private var problems: [String] = []
    private var figures = 0, views = 0, hidden = 0, bars = 0

    /// Chart bars read (a format change that no longer parses must fail the proof, not skip it).
    func countBars(_ n: Int) {
        lock.lock(); defer { lock.unlock() }
        bars += n
    }
    var barsRead: Int { lock.lock(); defer { lock.unlock() }; return bars }

    /// Pages also read through a shared link (and compared with the viewer's).
    private var shared = 0
    func countShared() { lock.lock(); defer { lock.unlock() }; shared += 1 }
    var sharedPages: Int { lock.lock(); defer { lock.unlock() }; return shared }

    func add(_ p: [String]) {
        guard !p.isEmpty else { return }
        lock.lock(); defer { lock.unlock() }
        problems += p
    }

    func count(_ reads: [LiveServerTests.DisclosureProofTests.Read]) {
        lock.lock(); defer { lock.unlock() }
        views += 1
        figures += reads.count
        hidden += reads.filter { if case .number = $0 { false } else { true } }.count
    }

    var result: ([String], (figures: Int, views: Int, hidden: Int)) {
        lock.lock(); defer { lock.unlock() }
        return (problems, (figures, views, hidden))
    }
}
