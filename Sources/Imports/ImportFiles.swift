import CSV
public import Foundation
import Privacy
public import Store
public import Storage
public import Traffic

/// A file of an export: its name (which says what it holds, for Plausible) and its bytes, in
/// memory (an upload) or on disk (the command line).
public struct ImportFile: Sendable {
    public enum Content: Sendable { case data(Data), path(String) }
    public let name: String
    public let content: Content

    public init(name: String, data: Data) { self.name = name; content = .data(data) }
    public init(path: String) { name = (path as NSString).lastPathComponent; content = .path(path) }

    /// The files of a path: the path itself, or every `.csv` file of a directory (sorted by name).
    public static func files(at path: String) throws -> [ImportFile] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ImportError("no file \(path)") }
        guard isDirectory.boolValue else { return [ImportFile(path: path)] }
        return try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.lowercased().hasSuffix(".csv") }.sorted()
            .map { ImportFile(path: (path as NSString).appendingPathComponent($0)) }
    }
}

/// Why an export cannot be imported; the description says what to fix.
public struct ImportError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads exports of other analytics tools into daily aggregates of one site
/// (``Store/ImportedAggregates``). The mapping of each format is documented in README
/// ("Imports"). Values pass through the collector's own rules: paths through
/// ``Privacy/Minimize``, sources through ``Traffic/ReferrerList/acquisition(referrerHost:referrerPath:utmSource:utmMedium:clickIDKind:)``.
public struct Importer: Sendable {
    let referrers: ReferrerList
    let calendar: SiteCalendar

    /// Most distinct (day, value, session) triples an Umami import may hold while counting (its
    /// memory; the dashboard's uploads set it, the command line does not).
    let maxCells: Int

    public init(referrers: ReferrerList, calendar: SiteCalendar, maxCells: Int = Int(Int32.max)) {
        self.referrers = referrers; self.calendar = calendar; self.maxCells = maxCells
    }

    public func read(_ source: ImportSource, _ files: [ImportFile]) throws -> ImportedAggregates {
        guard !files.isEmpty else { throw ImportError("no file given") }
        let data = switch source {
        case .plausible: try plausible(files)
        case .umami: try umami(files)
        }
        guard !data.implausible else {
            throw ImportError("a day's figures go past \(ImportedAggregates.maxFigure) (or its visit durations past "
                              + "\(ImportedAggregates.maxDurationMs / 1000) s): not an export of one site")
        }
        return data
    }
}

/// One CSV file read row by row, fields looked up by header name.
struct CSVTable {
    let file: String
    private let reader: CSVReader
    private let columns: [String: Int]
    /// 1 for the header; the line of the current row after ``next()``.
    private(set) var row = 1
    private var fields: [String] = []

    init(_ file: ImportFile, required: [String]) throws {
        self.file = file.name
        do {
            switch file.content {
            case .data(let d): reader = try CSVReader(stream: InputStream(data: d), hasHeaderRow: true)
            case .path(let p):
                // Mapped, not read into memory (CSV.swift's file streams report an error at their end on Linux).
                let d: Data
                do { d = try Data(contentsOf: URL(fileURLWithPath: p), options: .alwaysMapped) } catch {
                    throw ImportError("\(file.name): cannot be read (\(error.localizedDescription))")
                }
                reader = try CSVReader(stream: InputStream(data: d), hasHeaderRow: true)
            }
        } catch let e as ImportError {
            throw e
        } catch {
            throw ImportError("\(file.name): not a CSV file with a header row (\(error))")
        }
        // A byte-order mark before the first header is not part of its name.
        let header = (reader.headerRow ?? []).enumerated().map { i, h in
            (i == 0 && h.hasPrefix("\u{FEFF}") ? String(h.dropFirst()) : h).trimmingCharacters(in: .whitespaces).lowercased()
        }
        columns = Dictionary(header.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let missing = required.filter { columns[$0] == nil }
        guard missing.isEmpty else {
            throw ImportError("\(file.name): missing column(s) \(missing.joined(separator: ", ")) (found: \(header.prefix(20).map { String($0.prefix(40)) }.joined(separator: ", ")))")
        }
    }

    func has(_ column: String) -> Bool { columns[column] != nil }

    /// The next row, false at the end; a malformed file throws.
    mutating func next() throws -> Bool {
        guard let r = reader.next() else {
            if let e = reader.error { throw ImportError("\(file): unreadable after line \(row) (\(e))") }
            return false
        }
        row += 1
        fields = r
        return true
    }

    /// A field's text, nil when the column is absent or the field is empty.
    func text(_ column: String) -> String? {
        guard let i = columns[column], fields.indices.contains(i) else { return nil }
        let t = fields[i].trimmingCharacters(in: .whitespaces)
        return t.isEmpty ? nil : t
    }

    /// A count (a whole number ≥ 0; empty is 0).
    func count(_ column: String) throws -> Int {
        guard let t = text(column) else { return 0 }
        guard let n = Int(t), n >= 0, n <= 1_000_000_000 else { throw fail("\(column) is not a count (0 to 1,000,000,000): \(t.prefix(40))") }
        return n
    }

    /// A date `YYYY-MM-DD` as a day number.
    func day(_ column: String) throws -> Int64 {
        guard let t = text(column), let d = SiteCalendar.day(parsing: String(t.prefix(10))), t.count == 10 else {
            throw fail("\(column) is not a date YYYY-MM-DD: \((text(column) ?? "").prefix(40))")
        }
        return d
    }

    func fail(_ what: String) -> ImportError { ImportError("\(file), line \(row): \(what)") }
}

extension Importer {
    /// A path as the collector stores it.
    static func path(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        var p = Substring(raw)
        if let cut = p.firstIndex(where: { $0 == "?" || $0 == "#" }) { p = p[..<cut] }
        return Minimize.path(p)
    }

    /// The host of a referrer given as a host, a host and path, or a URL (without `www.`).
    static func referrerHost(_ raw: String?) -> (host: String, path: Substring)? {
        guard var s = raw.map { Substring($0) }, !s.isEmpty else { return nil }
        if let scheme = s.range(of: "://") { s = s[scheme.upperBound...] }
        let slash = s.firstIndex(of: "/") ?? s.endIndex
        var host = s[..<slash].lowercased()
        if let colon = host.firstIndex(of: ":") { host = String(host[..<colon]) }
        if host.hasPrefix("www.") { host = String(host.dropFirst(4)) }
        guard !host.isEmpty, host.utf8.count <= 253 else { return nil }
        return (host, slash < s.endIndex ? s[slash...] : "/")
    }

    /// The acquisition fields of a visit (channel, source type and name, referrer, campaign), by
    /// the collector's rule; nil values are stored as the collector stores a missing value.
    func acquisition(referrer: String?, utmSource: String?, utmMedium: String?, utmCampaign: String?, utmTerm: String?,
                     utmContent: String?, sourceName: String? = nil) -> [(Store.Dimension, String?)] {
        let ref = Self.referrerHost(referrer)
        let source = Minimize.bounded(utmSource), medium = Minimize.bounded(utmMedium)?.lowercased()
        // A source named by the other tool (no referrer kept) decides as a campaign source would.
        let a = referrers.acquisition(referrerHost: ref?.host, referrerPath: ref?.path ?? "/", utmSource: source ?? (ref == nil ? sourceName : nil),
                                      utmMedium: medium, clickIDKind: nil)
        return [(.channel, a.channel.rawValue), (.source, a.sourceType), (.sourceName, a.source?.name), (.referrer, ref?.host),
                (.utmSource, source), (.utmMedium, medium), (.utmCampaign, Minimize.bounded(utmCampaign)), (.utmTerm, Minimize.bounded(utmTerm)),
                (.utmContent, Minimize.bounded(utmContent))]
    }

    /// A device class as the collector names it.
    static func device(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty, raw != "(not set)" else { return nil }
        switch raw.lowercased() {
        case "desktop", "laptop": return DeviceClass.desktop.rawValue
        case "mobile", "phone", "smartphone": return DeviceClass.mobile.rawValue
        case "tablet": return DeviceClass.tablet.rawValue
        case "tv", "smarttv": return DeviceClass.tv.rawValue
        case "console": return DeviceClass.console.rawValue
        default: return DeviceClass.other.rawValue
        }
    }

    /// A browser family under uap-core's name, where the other tool names it differently.
    static func browser(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty, raw != "(not set)" else { return nil }
        let names = ["chrome": "Chrome", "crios": "Chrome Mobile iOS", "chromium-webview": "Chrome Mobile WebView", "firefox": "Firefox",
                     "fxios": "Firefox iOS", "safari": "Safari", "ios": "Mobile Safari", "ios-webview": "Mobile Safari UI/WKWebView",
                     "edge-chromium": "Edge", "edge-ios": "Edge Mobile", "edge": "Edge", "microsoft edge": "Edge", "opera": "Opera",
                     "samsung": "Samsung Internet", "samsung browser": "Samsung Internet", "yandexbrowser": "Yandex Browser",
                     "facebook": "Facebook", "instagram": "Instagram", "android": "Android", "silk": "Amazon Silk", "ie": "IE",
                     "internet explorer": "IE", "brave": "Brave", "vivaldi": "Vivaldi", "duckduckgo": "DuckDuckGo Mobile"]
        return names[raw.lowercased()] ?? Minimize.bounded(raw)
    }

    /// An operating system family under uap-core's name, where the other tool names it differently.
    static func os(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty, raw != "(not set)" else { return nil }
        let lower = raw.lowercased()
        if lower.hasPrefix("windows") && !lower.contains("phone") && !lower.contains("mobile") { return "Windows" }
        let names = ["mac": "Mac OS X", "mac os": "Mac OS X", "macos": "Mac OS X", "gnu/linux": "Linux", "linux": "Linux",
                     "android os": "Android", "android": "Android", "ios": "iOS", "chrome os": "Chrome OS", "chromeos": "Chrome OS"]
        return names[lower] ?? Minimize.bounded(raw)
    }

    /// A country as an ISO 3166-1 alpha-2 code (unknown: nil).
    static func country(_ raw: String?) -> String? {
        guard let raw, raw.count == 2, raw.allSatisfy({ $0.isASCII && $0.isLetter }) else { return nil }
        let code = raw.uppercased()
        return ["ZZ", "XX", "T1", "A1", "A2", "O1"].contains(code) ? nil : code
    }
}
