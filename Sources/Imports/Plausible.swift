import Foundation
import Privacy
import Store

/// Plausible's CSV export (Site settings → Imports & exports → Export to CSV): a zip of
/// `imported_<table>_<first>_<last>.csv` files with a header row, one row per date (in the
/// site's time zone) and value. Read after unzipping; `imported_visitors` is required, the other
/// tables are optional. Plausible sums its rows over days and values the same way.
extension Importer {
    /// The tables read, and the columns each must have (more may be present).
    static let plausibleTables: [String: [String]] = [
        "visitors": ["date", "visitors", "pageviews", "bounces", "visits", "visit_duration"],
        "pages": ["date", "page", "visitors", "pageviews"],
        "entry_pages": ["date", "entry_page", "visitors", "entrances"],
        "exit_pages": ["date", "exit_page", "visitors", "exits"],
        "sources": ["date", "visitors"],
        "locations": ["date", "country", "visitors"],
        "devices": ["date", "device", "visitors"],
        "browsers": ["date", "browser", "visitors"],
        "operating_systems": ["date", "operating_system", "visitors"],
        "custom_events": ["date", "name", "visitors", "events"],
    ]

    /// The table a file holds, from its name: `imported_pages_20240101_20241231.csv`,
    /// `pages_20240101_20241231.csv` or `imported_pages.csv`.
    static func plausibleTable(_ name: String) -> String? {
        guard name.lowercased().hasSuffix(".csv") else { return nil }
        var stem = String(name.dropLast(4)).lowercased()
        if stem.hasPrefix("imported_") { stem = String(stem.dropFirst(9)) }
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        if parts.count >= 3, parts.suffix(2).allSatisfy({ $0.count == 8 && $0.allSatisfy(\.isNumber) }) {
            stem = parts.dropLast(2).joined(separator: "_")
        }
        return plausibleTables[stem] == nil ? nil : stem
    }

    func plausible(_ files: [ImportFile]) throws -> ImportedAggregates {
        var byTable: [String: ImportFile] = [:]
        for f in files {
            guard let table = Self.plausibleTable(f.name) else {
                throw ImportError("\(f.name): not a file of Plausible's export (expected imported_TABLE_YYYYMMDD_YYYYMMDD.csv, TABLE one of \(Self.plausibleTables.keys.sorted().joined(separator: ", ")))")
            }
            guard byTable[table] == nil else { throw ImportError("two files hold Plausible's \(table) table: \(byTable[table]!.name) and \(f.name)") }
            byTable[table] = f
        }
        guard let visitors = byTable["visitors"] else { throw ImportError("Plausible's imported_visitors file is required (it holds the daily totals)") }
        var out = ImportedAggregates()
        var csv = try CSVTable(visitors, required: Self.plausibleTables["visitors"]!)
        while try csv.next() {
            let visits = try csv.count("visits"), bounces = try csv.count("bounces")
            guard bounces <= visits else { throw csv.fail("more bounces (\(bounces)) than visits (\(visits))") }
            out.add(day: try csv.day("date"), ImportedAggregates.Totals(visitors: try csv.count("visitors"), pageviews: try csv.count("pageviews"),
                                                                        visits: visits, bounces: bounces,
                                                                        durationMs: Int64(try csv.count("visit_duration")) * 1000))
        }
        for (table, file) in byTable.sorted(by: { $0.key < $1.key }) where table != "visitors" {
            var csv = try CSVTable(file, required: Self.plausibleTables[table]!)
            while try csv.next() {
                let day = try csv.day("date"), visitors = try csv.count("visitors")
                // Pageviews per value are in newer exports only.
                let pageviews = try csv.count("pageviews")
                func add(_ key: String, _ value: String?, _ count: Int) { out.add(day: day, key, value, visitors: visitors, count: count) }
                switch table {
                case "pages": add(Store.Dimension.page.rawValue, Self.path(csv.text("page")) ?? "/", pageviews)
                case "entry_pages": add(RollupKey.entry, Self.path(csv.text("entry_page")) ?? "/", try csv.count("entrances"))
                case "exit_pages": add(RollupKey.exit, Self.path(csv.text("exit_page")) ?? "/", try csv.count("exits"))
                case "sources":
                    for (d, v) in acquisition(referrer: csv.text("referrer"), utmSource: csv.text("utm_source"), utmMedium: csv.text("utm_medium"),
                                              utmCampaign: csv.text("utm_campaign"), utmTerm: csv.text("utm_term"),
                                              utmContent: csv.text("utm_content"), sourceName: csv.text("source")) {
                        add(d.rawValue, v, pageviews)
                    }
                case "locations":
                    add(Store.Dimension.country.rawValue, Self.country(csv.text("country")), pageviews)
                    // Regions are ISO 3166-2 codes; cities are GeoNames ids, which Candor cannot name: "Unknown".
                    add(Store.Dimension.region.rawValue, Minimize.bounded(csv.text("region")), pageviews)
                    add(Store.Dimension.city.rawValue, nil, pageviews)
                case "devices": add(Store.Dimension.device.rawValue, Self.device(csv.text("device")), pageviews)
                case "browsers": add(Store.Dimension.browser.rawValue, Self.browser(csv.text("browser")), pageviews)
                case "operating_systems": add(Store.Dimension.os.rawValue, Self.os(csv.text("operating_system")), pageviews)
                case "custom_events":
                    // Pageviews and engagement are not custom events.
                    guard let name = Minimize.bounded(csv.text("name")), !["pageview", "engagement"].contains(name) else { continue }
                    add(Store.Dimension.event.rawValue, name, try csv.count("events"))
                default: break
                }
            }
        }
        return out
    }
}
