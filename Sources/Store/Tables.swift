public import Foundation
import GRDB
import Storage

/// A value of a result cell, independent of the database library.
public enum Cell: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let i): self = .integer(i)
        case .double(let d): self = .real(d)
        case .string(let s): self = .text(s)
        case .blob(let b): self = .blob(b)
        }
    }

    /// Text for CSV and display.
    public var text: String {
        switch self {
        case .null: ""
        case .integer(let i): String(i)
        case .real(let d): String(d)
        case .text(let s): s
        case .blob(let b): b.base64EncodedString()
        }
    }
}

/// Named columns and rows, as read: what exports and reports render to JSON or CSV.
public struct ResultTable: Sendable, Equatable {
    public var name: String
    public var columns: [String]
    public var rows: [[Cell]]

    public init(name: String, columns: [String], rows: [[Cell]]) {
        self.name = name; self.columns = columns; self.rows = rows
    }

    /// Columns holding instants (ms), exported as ISO 8601 local time with offset.
    static let timeColumns: Set<String> = ["ts", "started_at", "last_seen", "first_ts", "last_ts"]

    static func fetch(_ db: Database, name: String, sql: String, arguments: StatementArguments, calendar: SiteCalendar) throws -> ResultTable {
        let statement = try db.makeStatement(sql: sql)
        let columns = statement.columnNames
        let times = columns.map(timeColumns.contains)
        var rows: [[Cell]] = []
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try cursor.next() {
            rows.append((0..<row.count).map { i in
                let cell = Cell(row[i] as DatabaseValue)
                if times[i], case .integer(let ms) = cell { return .text(calendar.iso(ms)) }
                return cell
            })
        }
        return ResultTable(name: name, columns: columns, rows: rows)
    }
}

extension AppDatabase {
    /// Everything of one site linked to a subject: events, sessions, conversions and consent records, for an
    /// access / portability export. Hash columns (visitor, subject, email_hash) are left out:
    /// they mean nothing to the subject and would only help correlate exports.
    public func subjectRecords(site: String, kind: PrivacyRequest.SubjectKind, hash: Int64) throws -> [ResultTable] {
        try writer.read { db in
            let args: StatementArguments = ["site": site, "h": hash]
            let calendar = try Self.calendar(db, site: site)
            var tables: [ResultTable] = []
            let eventColumns = """
                id, client_id, ts, name, path, decision, session_id, country, region, city, asn, asn_org, browser,
                browser_version, os, device, screen, channel, source_name, source_type, referrer_host, referrer_path, utm_source, utm_medium,
                utm_campaign, utm_term, utm_content, click_id_kind, click_id, props, value, currency, engaged_ms, scroll
                """
            let sessionColumns = """
                id, decision, started_at, last_seen, entry_path, exit_path, pageviews, interactions, engaged_ms,
                duration_ms, bounce, channel, source_name, source_type, referrer_host, utm_source, utm_medium, utm_campaign, country, browser, os, device
                """
            if let scope = Self.subjectScope(kind: kind) {
                tables.append(try .fetch(db, name: "events",
                                         sql: "SELECT \(eventColumns) FROM events WHERE id IN (\(scope.events)) ORDER BY ts, id",
                                         arguments: args, calendar: calendar))
                tables.append(try .fetch(db, name: "sessions",
                                         sql: "SELECT \(sessionColumns) FROM sessions WHERE id IN (\(scope.sessions)) ORDER BY started_at, id",
                                         arguments: args, calendar: calendar))
            } else {
                tables.append(ResultTable(name: "events", columns: [], rows: []))
                tables.append(ResultTable(name: "sessions", columns: [], rows: []))
            }
            tables.append(try .fetch(db, name: "conversions", sql: """
                SELECT id, provider, external_id, kind, ts, value, currency, refers_to, attributed_via,
                  first_source_type, first_referrer_host, first_utm_source, first_utm_medium, first_utm_campaign, first_ts,
                  last_source_type, last_referrer_host, last_utm_source, last_utm_medium, last_utm_campaign, last_ts, detail
                FROM conversions WHERE id IN (\(Self.subjectConversions(kind: kind))) ORDER BY ts, id
                """, arguments: args, calendar: calendar))
            let consent = kind == .subject ? "site_id = :site AND subject = :h" : "site_id = :site AND :h IS NULL"
            tables.append(try .fetch(db, name: "consent_records", sql: """
                SELECT id, ts, source, banner_version, policy, policy_version, analytics, marketing, cmp_id, cmp_version,
                  tcf_policy_version, purposes, signals FROM consent_records
                WHERE \(consent) ORDER BY ts, id
                """, arguments: args, calendar: calendar))
            return tables
        }
    }
}
