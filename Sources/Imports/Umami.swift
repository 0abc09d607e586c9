import Foundation
import Privacy
import Store
import Storage

/// Umami's event export (Website → Settings → Data → Export, or the `website_event` table joined
/// with its sessions): one row per event with its session, visit, time and page, and the
/// session's browser, system, device and location. Candor counts the daily aggregates itself and
/// keeps nothing per event or per session: visitors are distinct sessions of the day, visits
/// distinct visits (Umami's `visit_id`; the session's day without one), a visit's duration runs
/// from its first to its last event, and a bounce is a visit with one pageview and no other event.
extension Importer {
    static let umamiRequired = ["created_at", "session_id", "url_path", "event_type"]

    /// A visit being counted.
    private struct Visit {
        var day: Int64
        var session: Int32
        var first: Int64, last: Int64
        var pageviews = 0, events = 0
        var entry: (ts: Int64, path: Int32)?, exit: (ts: Int64, path: Int32)?
        var acquisition: [Int32] = []
        var acquisitionTs: Int64 = .max
    }

    /// A value of a breakdown, interned: (dimension, value) → code.
    private struct CellKey: Hashable { let key: String, value: String? }
    /// A session seen with a value on a day (16 bytes: what the memory of an import grows with).
    private struct Seen: Hashable { let day: Int64, cell: Int32, session: Int32 }
    private struct DaySession: Hashable { let day: Int64, session: Int32 }
    private struct DayCell: Hashable { let day: Int64, cell: Int32 }

    /// Longest a visit may last (a visit spanning days in Umami's export is not one visit).
    static let maxVisitMs: Int64 = 86_400_000

    func umami(_ files: [ImportFile]) throws -> ImportedAggregates {
        var sessions: [String: Int32] = [:]
        var visits: [String: Visit] = [:]
        var cells: [CellKey: Int32] = [:], cellKeys: [CellKey] = []
        // Distinct sessions per day and value, and the count each value adds up.
        var seen = Set<Seen>()
        var counts: [DayCell: Int] = [:]
        var pageviews: [Int64: Int] = [:]
        var daySessions = Set<DaySession>()
        func cell(_ key: String, _ value: String?) -> Int32 {
            let k = CellKey(key: key, value: value)
            if let c = cells[k] { return c }
            let c = Int32(clamping: cellKeys.count)
            cells[k] = c
            cellKeys.append(k)
            return c
        }
        func note(_ day: Int64, _ cell: Int32, _ session: Int32, count: Int) {
            seen.insert(Seen(day: day, cell: cell, session: session))
            counts[DayCell(day: day, cell: cell), default: 0] += count
        }
        for file in files {
            var csv = try CSVTable(file, required: Self.umamiRequired)
            while try csv.next() {
                guard let rawSession = csv.text("session_id") else { throw csv.fail("session_id is empty") }
                guard seen.count < maxCells, visits.count < maxCells, cellKeys.count < maxCells, sessions.count < maxCells else {
                    throw csv.fail("more distinct sessions, visits and values than one upload may count (\(maxCells)): import it with candor import on the server")
                }
                let ts = try Self.instant(csv)
                let day = calendar.day(of: ts)
                let sessionKey = String(rawSession.prefix(200))
                let session = sessions[sessionKey] ?? {
                    let s = Int32(clamping: sessions.count)
                    sessions[sessionKey] = s
                    return s
                }()
                daySessions.insert(DaySession(day: day, session: session))
                let type = try csv.count("event_type")
                let key = csv.text("visit_id").map { "v" + $0.prefix(200) } ?? "s\(session)-\(day)"
                var visit = visits[key] ?? Visit(day: day, session: session, first: ts, last: ts)
                if ts < visit.first { visit.first = ts; visit.day = day }
                visit.last = max(visit.last, ts)
                guard visit.last - visit.first <= Self.maxVisitMs else { throw csv.fail("visit \(key.dropFirst().prefix(40)) lasts more than a day") }
                // The session's fields (the same on every row of it).
                let fields: [Int32] = [
                    cell(Store.Dimension.country.rawValue, Self.country(csv.text("country"))),
                    cell(Store.Dimension.region.rawValue, Minimize.bounded(csv.text("subdivision1") ?? csv.text("region"))),
                    cell(Store.Dimension.city.rawValue, Minimize.bounded(csv.text("city"))),
                    cell(Store.Dimension.browser.rawValue, Self.browser(csv.text("browser"))),
                    cell(Store.Dimension.os.rawValue, Self.os(csv.text("os"))),
                    cell(Store.Dimension.device.rawValue, Self.device(csv.text("device"))),
                ]
                switch type {
                case 1:
                    let path = Self.path(csv.text("url_path")) ?? "/"
                    visit.pageviews += 1
                    pageviews[day, default: 0] += 1
                    note(day, cell(Store.Dimension.page.rawValue, path), session, count: 1)
                    for f in fields { note(day, f, session, count: 1) }
                    if visit.entry.map({ ts < $0.ts }) ?? true { visit.entry = (ts, cell(RollupKey.entry, path)) }
                    if visit.exit.map({ ts >= $0.ts }) ?? true { visit.exit = (ts, cell(RollupKey.exit, path)) }
                case 2:
                    visit.events += 1
                    for f in fields { note(day, f, session, count: 0) }
                    if let name = Minimize.bounded(csv.text("event_name")) { note(day, cell(Store.Dimension.event.rawValue, name), session, count: 1) }
                default:
                    // Other kinds (Umami's later additions) count as activity of the visit only.
                    break
                }
                // The visit's acquisition is that of its first event.
                if ts < visit.acquisitionTs {
                    visit.acquisitionTs = ts
                    let query = csv.text("url_query").map(Self.query) ?? [:]
                    visit.acquisition = acquisition(referrer: csv.text("referrer_domain").map { $0 + (csv.text("referrer_path") ?? "") },
                                                    utmSource: csv.text("utm_source") ?? query["utm_source"],
                                                    utmMedium: csv.text("utm_medium") ?? query["utm_medium"],
                                                    utmCampaign: csv.text("utm_campaign") ?? query["utm_campaign"],
                                                    utmTerm: csv.text("utm_term") ?? query["utm_term"],
                                                    utmContent: csv.text("utm_content") ?? query["utm_content"]).map { cell($0.0.rawValue, $0.1) }
                }
                visits[key] = visit
            }
        }
        var out = ImportedAggregates()
        var visitors: [Int64: Int] = [:]
        for ds in daySessions { visitors[ds.day, default: 0] += 1 }
        var totals: [Int64: ImportedAggregates.Totals] = [:]
        for (d, n) in visitors { totals[d] = ImportedAggregates.Totals(visitors: n, pageviews: pageviews[d] ?? 0) }
        for v in visits.values {
            // A visit counts on the day it started (as the collector's sessions do).
            var t = totals[v.day] ?? ImportedAggregates.Totals()
            t.visits += 1
            if v.pageviews == 1 && v.events == 0 { t.bounces += 1 }
            t.durationMs += v.last - v.first
            totals[v.day] = t
            if let e = v.entry { note(v.day, e.path, v.session, count: 1) }
            if let e = v.exit { note(v.day, e.path, v.session, count: 1) }
            for c in v.acquisition { note(v.day, c, v.session, count: v.pageviews) }
        }
        guard seen.count <= maxCells else {
            throw ImportError("more distinct sessions, visits and values than one upload may count (\(maxCells)): import it with candor import on the server")
        }
        for (d, t) in totals { out.add(day: d, t) }
        var distinct: [DayCell: Int] = [:]
        for s in seen { distinct[DayCell(day: s.day, cell: s.cell), default: 0] += 1 }
        for (c, n) in distinct {
            let k = cellKeys[Int(c.cell)]
            out.add(day: c.day, k.key, k.value, visitors: n, count: counts[c] ?? 0)
        }
        return out
    }

    /// `created_at` as ms: `YYYY-MM-DD HH:MM:SS[.fff]` or ISO 8601 with `T`, in UTC unless an offset is given.
    static func instant(_ csv: CSVTable) throws -> Int64 {
        guard let t = csv.text("created_at"), let ms = instant(t) else {
            throw csv.fail("created_at is not a time YYYY-MM-DD HH:MM:SS: \((csv.text("created_at") ?? "").prefix(40))")
        }
        return ms
    }

    static func instant(_ text: String) -> Int64? {
        let s = Array(text.utf8)
        guard s.count >= 19, let day = SiteCalendar.day(parsing: String(decoding: s[0..<10], as: UTF8.self)),
              s[10] == UInt8(ascii: " ") || s[10] == UInt8(ascii: "T"), s[13] == UInt8(ascii: ":"), s[16] == UInt8(ascii: ":") else { return nil }
        func number(_ r: Range<Int>) -> Int64? { Int64(String(decoding: s[r], as: UTF8.self)) }
        guard let h = number(11..<13), let m = number(14..<16), let sec = number(17..<19), h < 24, m < 60, sec < 61 else { return nil }
        var i = 19, fraction: Int64 = 0
        if i < s.count && s[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < s.count, (48...57).contains(s[i]) {
                if digits < 3 { fraction = fraction * 10 + Int64(s[i] - 48) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            for _ in 0..<max(0, 3 - digits) { fraction *= 10 }
        }
        var offset: Int64 = 0
        if i < s.count {
            let rest = String(decoding: s[i...], as: UTF8.self)
            if rest == "Z" || rest == "z" || rest == " UTC" {
            } else if rest.count == 6, let sign = rest.first, sign == "+" || sign == "-",
                      let oh = Int64(rest.dropFirst().prefix(2)), let om = Int64(rest.suffix(2)), rest.dropFirst(3).first == ":" {
                offset = (oh * 60 + om) * 60_000 * (sign == "-" ? -1 : 1)
            } else {
                return nil
            }
        }
        return day * 86_400_000 + ((h * 60 + m) * 60 + sec) * 1000 + fraction - offset
    }

    /// Query parameters of `a=1&b=2` (first value of each, percent-decoded).
    static func query(_ q: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in q.drop(while: { $0 == "?" }).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = kv.first.map(String.init), out[k] == nil else { continue }
            let v = kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ") : ""
            out[k] = v.removingPercentEncoding ?? v
        }
        return out
    }
}
