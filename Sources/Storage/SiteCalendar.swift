import Foundation
import Synchronization

/// The days of a site: local calendar dates in the site's IANA time zone (the tz database that
/// ships with the system, through Foundation), DST included. The one place that decides which
/// day an instant belongs to and where a day, an hour or a month starts; rollups, the engine's
/// blocks, charts, ranges, visitor salts and commission months all ask it.
///
/// A day is numbered by its local date: days since 1970-01-01 (so in UTC it is `ms / 86_400_000`,
/// as the rollups of a UTC site always were). A day lasts 23, 24 or 25 hours where clocks change;
/// when midnight does not exist (a zone that springs forward at 00:00) the day starts at the
/// first instant after the gap.
public struct SiteCalendar: Sendable, Hashable, CustomStringConvertible {
    /// The IANA name ("Europe/Berlin"), or "UTC".
    public let identifier: String
    /// Nil for UTC (plain arithmetic).
    private let zone: TimeZone?
    private let lastDay: LastDay

    public static let dayMs: Int64 = 86_400_000
    public static let utc = SiteCalendar(utc: ())

    private init(utc: Void) { identifier = "UTC"; zone = nil; lastDay = LastDay() }

    /// The calendar of an IANA zone name the system's tz database knows (a zone or a link, as
    /// "Asia/Calcutta" for "Asia/Kolkata"; "UTC" included), nil otherwise.
    public init?(identifier: String) {
        if identifier == "UTC" { self = .utc; return }
        guard identifier.utf8.count <= 64, identifier.utf8.allSatisfy(Self.nameByte), Self.known.contains(identifier),
              let zone = TimeZone(identifier: identifier) else { return nil }
        self.identifier = identifier; self.zone = zone; lastDay = LastDay()
    }

    /// The tz database as Debian's `tzdata` installs it.
    static let zoneinfo = "/usr/share/zoneinfo/"

    /// Names of zones and links in the tz database (`tzdata.zi`), or ICU's list without it.
    private static let known: Set<String> = {
        guard let text = try? String(contentsOfFile: zoneinfo + "tzdata.zi", encoding: .utf8) else {
            return Set(TimeZone.knownTimeZoneIdentifiers + ["UTC"])
        }
        var names: Set<String> = ["UTC"]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 1 && f[0] == "Z" { names.insert(String(f[1])) }
            if f.count > 2 && f[0] == "L" { names.insert(String(f[2])) }
        }
        return names
    }()

    /// The zones settings offer: UTC, then those of `zone.tab` (one or more per country, the
    /// names people look for), sorted; every known name when the file is missing.
    public static let knownIdentifiers: [String] = {
        guard let text = try? String(contentsOfFile: zoneinfo + "zone.tab", encoding: .utf8) else { return ["UTC"] + known.subtracting(["UTC"]).sorted() }
        let names = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> String? in
            let f = line.split(separator: "\t")
            return f.count > 2 ? String(f[2]) : nil
        }.filter { known.contains($0) }
        return ["UTC"] + Set(names).sorted()
    }()

    /// Bytes of zone names: letters, digits, '/', '_', '-', '+'.
    private static func nameByte(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2F || b == 0x5F || b == 0x2D || b == 0x2B
    }

    public var description: String { identifier }
    public var isUTC: Bool { zone == nil }

    public static func == (a: Self, b: Self) -> Bool { a.identifier == b.identifier }
    public func hash(into h: inout Hasher) { h.combine(identifier) }

    /// Offset from UTC (ms) at the instant `ms`.
    public func offset(at ms: Int64) -> Int64 {
        guard let zone else { return 0 }
        return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(ms) / 1000))) * 1000
    }

    private func localDay(_ ms: Int64) -> Int64 { Self.floorDiv(ms + offset(at: ms), Self.dayMs) }

    /// The local day of the instant `ms`.
    public func day(of ms: Int64) -> Int64 {
        guard zone != nil else { return Self.floorDiv(ms, Self.dayMs) }
        if let d = lastDay.day(containing: ms) { return d }
        let d = localDay(ms)
        lastDay.remember(day: d, start: start(of: d), end: start(of: d + 1))
        return d
    }

    /// The first instant (ms) of local day `day`.
    public func start(of day: Int64) -> Int64 {
        let midnight = day * Self.dayMs
        guard zone != nil else { return midnight }
        var t = midnight - offset(at: midnight)
        t = midnight - offset(at: t)
        if localDay(t) == day && localDay(t - 1) < day { return t }
        // Midnight falls in a gap (or the guess straddled a change): the first instant whose
        // local day is `day`, by bisection within the ±26 h any offset allows.
        var lo = midnight - 26 * 3_600_000, hi = midnight + 26 * 3_600_000
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            if localDay(mid) >= day { hi = mid } else { lo = mid }
        }
        return hi
    }

    /// The instant (ms) local day `day` ends (the next day's start).
    public func end(of day: Int64) -> Int64 { start(of: day + 1) }

    /// Whether `ms` is the first instant of a local day.
    public func isDayStart(_ ms: Int64) -> Bool { start(of: day(of: ms)) == ms }

    // MARK: Dates and months

    /// (year, month, day) of a day number (proleptic Gregorian).
    public static func civil(_ day: Int64) -> (year: Int, month: Int, day: Int) {
        let z = day + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// The day number of a date (proleptic Gregorian).
    public static func dayNumber(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// "YYYY-MM-DD" of a day number.
    public static func dateText(_ day: Int64) -> String {
        let c = civil(day)
        return String(format: "%04d-%02d-%02d", c.year, c.month, c.day)
    }

    /// The day number of a strict "YYYY-MM-DD" (years 1970–9999), nil otherwise.
    public static func day(parsing text: String) -> Int64? {
        let p = text.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 3, p[0].count == 4, p[1].count == 2, p[2].count == 2,
              let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]), (1970...9999).contains(y), (1...12).contains(m), d >= 1 else { return nil }
        let n = dayNumber(year: y, month: m, day: d)
        return civil(n).month == m ? n : nil
    }

    /// "YYYY-MM-DD" of the local day of `ms`.
    public func dateText(of ms: Int64) -> String { Self.dateText(day(of: ms)) }

    /// The local month "YYYY-MM" of `ms`.
    public func month(of ms: Int64) -> String {
        let c = Self.civil(day(of: ms))
        return String(format: "%04d-%02d", c.year, c.month)
    }

    /// Bounds (ms) of a local "YYYY-MM" month (years 2000–2100), nil if malformed.
    public func bounds(month: String) -> (from: Int64, to: Int64)? {
        let p = month.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 2, p[0].count == 4, p[1].count == 2, let y = Int(p[0]), let m = Int(p[1]),
              (2000...2100).contains(y), (1...12).contains(m) else { return nil }
        let first = Self.dayNumber(year: y, month: m, day: 1)
        let next = m == 12 ? Self.dayNumber(year: y + 1, month: 1, day: 1) : Self.dayNumber(year: y, month: m + 1, day: 1)
        return (start(of: first), start(of: next))
    }

    /// ISO 8601 local time with its offset: "2026-03-29T03:00:00.000+02:00" ("+00:00" in UTC).
    public func iso(_ ms: Int64) -> String {
        let off = offset(at: ms)
        let local = ms + off
        let day = Self.floorDiv(local, Self.dayMs)
        let inDay = local - day * Self.dayMs
        let minutes = abs(off) / 60_000
        return Self.dateText(day) + String(format: "T%02d:%02d:%02d.%03d%@%02d:%02d", Int(inDay / 3_600_000), Int(inDay / 60_000 % 60),
                                           Int(inDay / 1000 % 60), Int(inDay % 1000), off < 0 ? "-" : "+", Int(minutes / 60), Int(minutes % 60))
    }

    /// "HH:mm" local time of `ms` (chart ticks).
    public func clock(_ ms: Int64) -> String {
        let local = ms + offset(at: ms)
        let inDay = local - Self.floorDiv(local, Self.dayMs) * Self.dayMs
        return String(format: "%02d:%02d", Int(inDay / 3_600_000), Int(inDay / 60_000 % 60))
    }

    /// SQL giving the local day of the integer column `column` (a UTC-only expression for UTC,
    /// else the `candor_day` function every connection registers).
    public func sqlDay(_ column: String) -> String {
        // The identifier is a known zone name of letters, digits, '/', '_', '-', '+' (see `init`).
        isUTC ? "(\(column) / 86400000)" : "candor_day(\(column), '\(identifier)')"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Calendars by name, for the SQL function (one per zone in use).
    public static func named(_ identifier: String) -> SiteCalendar? {
        if let c = registry.withLock({ $0[identifier] }) { return c }
        guard let c = SiteCalendar(identifier: identifier) else { return nil }
        registry.withLock { $0[identifier] = c }
        return c
    }
    private static let registry = Mutex<[String: SiteCalendar]>([:])
}

/// The last day looked up (ingestion asks about the same day over and over).
private final class LastDay: Sendable {
    private let span = Mutex<(start: Int64, end: Int64, day: Int64)>((0, 0, 0))

    func day(containing ms: Int64) -> Int64? {
        span.withLock { s in ms >= s.start && ms < s.end ? s.day : nil }
    }

    func remember(day: Int64, start: Int64, end: Int64) {
        span.withLock { $0 = (start, end, day) }
    }
}

/// Timestamps as machines read them (receipts, the audit log, the API, the CLI, requests to
/// destinations): ISO 8601 in UTC with milliseconds, "2026-03-29T01:00:00.000+00:00". Exports of a
/// site's data use the site's offset (``SiteCalendar/iso(_:)``); people read ``Format`` in the dashboard.
public enum ISO {
    public static func string(_ ms: Int64) -> String { SiteCalendar.utc.iso(ms) }
}
