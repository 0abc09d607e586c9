import CLibPQ
import Foundation

/// An error PostgreSQL or libpq reported: the server's message, and its SQLSTATE when it came from
/// the server (nil when the connection failed).
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let sqlState: String?
    public var description: String { sqlState.map { "PostgreSQL \($0): \(message)" } ?? "PostgreSQL: \(message)" }

    /// The connection is gone (server stopped, failed over, network): the statement may or may
    /// not have run.
    public var connectionLost: Bool {
        guard let sqlState else { return true }
        // 08: connection exceptions; 57P01, 57P02, 57P03, 57P05: the server ended the session
        // (shutdown, crash of another backend, starting up, idle timeout).
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03", "57P05"].contains(sqlState)
    }
}

/// A statement parameter, sent in PostgreSQL's text format.
public enum PostgresValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)
    case bytes([UInt8])

    var text: String? {
        switch self {
        case .null: nil
        case .int(let v): String(v)
        case .text(let s): s
        case .bytes(let b): "\\x" + b.map { String(format: "%02x", $0) }.joined()
        }
    }
}

extension PostgresValue {
    /// Text, or NULL for nil.
    init(_ text: String?) { self = text.map(PostgresValue.text) ?? .null }

    /// A `text[]` parameter: each element double-quoted, `"` and `\\` escaped, NULL for nil.
    static func array(_ items: [String?]) -> PostgresValue {
        var out = "{"
        for (i, item) in items.enumerated() {
            if i > 0 { out += "," }
            guard let item else { out += "NULL"; continue }
            out += "\""
            for c in item.unicodeScalars {
                if c == "\"" || c == "\\" { out.unicodeScalars.append("\\") }
                out.unicodeScalars.append(c)
            }
            out += "\""
        }
        return .text(out + "}")
    }

    /// A `bigint[]` parameter.
    static func array(_ items: [Int64?]) -> PostgresValue {
        .text("{" + items.map { $0.map { String($0) } ?? "NULL" }.joined(separator: ",") + "}")
    }
}

/// Rows for `COPY … FROM STDIN` in PostgreSQL's text format, built field by field: tabs between
/// fields, `\N` for NULL, and backslash, tab, newline and carriage return escaped, so no value
/// (visitor strings are hostile) can end a field or a row.
struct CopyRows {
    private(set) var bytes: [UInt8] = []
    private var fields = 0
    private(set) var count = 0

    /// A NUL character, which PostgreSQL's text cannot hold (the collector refuses it).
    struct NULCharacter: Error, CustomStringConvertible {
        var description: String { "a value holds a NUL character, which PostgreSQL text cannot store" }
    }

    private mutating func separate() {
        if fields > 0 { bytes.append(0x09) }
        fields += 1
    }

    mutating func add(_ text: String?) throws {
        separate()
        guard let text else { bytes.append(contentsOf: [0x5C, 0x4E]); return }
        for b in text.utf8 {
            switch b {
            case 0x00: throw NULCharacter()
            case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x09: bytes.append(contentsOf: [0x5C, 0x74])
            case 0x0A: bytes.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: bytes.append(contentsOf: [0x5C, 0x72])
            default: bytes.append(b)
            }
        }
    }

    mutating func add(_ value: Int64?) {
        separate()
        if let value { bytes.append(contentsOf: String(value).utf8) } else { bytes.append(contentsOf: [0x5C, 0x4E]) }
    }

    /// A finite double, written with the shortest text that reads back as the same value.
    mutating func add(_ value: Double?) {
        separate()
        if let value { bytes.append(contentsOf: "\(value)".utf8) } else { bytes.append(contentsOf: [0x5C, 0x4E]) }
    }

    mutating func endRow() {
        bytes.append(0x0A)
        fields = 0
        count += 1
    }
}

/// The rows a statement returned, as text (PostgreSQL's text output format).
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows the statement changed (INSERT, UPDATE, DELETE), 0 for others.
    public let changes: Int
    /// The command tag's first word ("COMMIT", "ROLLBACK", "INSERT", …).
    public let command: String

    public func int(_ row: Int, _ column: Int) -> Int64? { rows[row][column].flatMap { Int64($0) } }
    public func text(_ row: Int, _ column: Int) -> String? { rows[row][column] }
    /// A bytea column (hex output: `\x…`).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard let s = rows[row][column], s.hasPrefix("\\x") else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity((s.utf8.count - 2) / 2)
        var high: UInt8?
        for c in s.utf8.dropFirst(2) {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }
}

/// The notices of a connection while ``PostgresConnection/collectingNotices(_:)`` runs.
private final class NoticeBox {
    var messages: [String] = []
}

/// One libpq connection. Used by one caller at a time: ``PostgresDatabase`` hands them out.
final class PostgresConnection: @unchecked Sendable {
    private let raw: OpaquePointer

    /// Connects with a libpq connection string or URL (`postgres://user:pass@host:port/db`, several
    /// hosts with `target_session_attrs=read-write` for a failover pair).
    init(url: String) throws {
        // Defaults the URL may override (libpq takes the last value of a keyword, and the URL is
        // expanded where `dbname` stands): a dead peer or a silent network is noticed within
        // about a minute, not the system's two hours, so no caller waits on it forever.
        let defaults = [("connect_timeout", "10"), ("keepalives_idle", "15"), ("keepalives_interval", "5"),
                        ("keepalives_count", "4"), ("tcp_user_timeout", "60000"), ("dbname", url)]
        let made = withCStrings(defaults.map(\.0)) { keywords in
            withCStrings(defaults.map(\.1)) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let c = made else { throw PostgresError(message: "out of memory", sqlState: nil) }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(c)
            throw PostgresError(message: message, sqlState: nil)
        }
        raw = c
        // Notices (e.g. "relation already exists, skipping") are not errors; libpq prints them
        // to stderr by default.
        PQsetNoticeProcessor(raw, { _, _ in }, nil)
        // bytea comes back as hex, whatever the server's default (``PostgresRows/bytes(_:_:)``).
        try query("SET bytea_output = 'hex'")
    }

    /// Whether the connection is idle outside a transaction: fit to hand to the next caller.
    var isIdle: Bool { PQstatus(raw) == CONNECTION_OK && PQtransactionStatus(raw) == PQTRANS_IDLE }

    /// Runs `body`, returning with its result the notices the server sent meanwhile (INFO,
    /// NOTICE, WARNING: message and detail lines as libpq formats them).
    func collectingNotices<T>(_ body: () throws -> T) throws -> (T, [String]) {
        let box = NoticeBox()
        PQsetNoticeProcessor(raw, { arg, message in
            guard let arg, let message else { return }
            Unmanaged<NoticeBox>.fromOpaque(arg).takeUnretainedValue().messages.append(String(cString: message))
        }, Unmanaged.passUnretained(box).toOpaque())
        defer { PQsetNoticeProcessor(raw, { _, _ in }, nil) }
        let result = try withExtendedLifetime(box) { try body() }
        return (result, box.messages)
    }

    deinit { PQfinish(raw) }

    /// Runs one statement with `$1`, `$2`, … parameters.
    @discardableResult
    func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        let texts = parameters.map(\.text)
        // libpq takes parameters as C strings: a NUL would cut one short without a word.
        if texts.contains(where: { $0?.utf8.contains(0) == true }) { throw CopyRows.NULCharacter() }
        var pointers: [UnsafeMutablePointer<CChar>?] = texts.map { $0.map { strdup($0) } ?? nil }
        defer { for p in pointers { free(p) } }
        let result = pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) { values in
                PQexecParams(raw, sql, Int32(texts.count), nil, texts.isEmpty ? nil : values, nil, nil, 0)
            }
        }
        guard let result else { throw failure(nil) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            let columnCount = PQnfields(result)
            let rowCount = PQntuples(result)
            let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
            var rows: [[String?]] = []
            rows.reserveCapacity(Int(rowCount))
            for r in 0..<rowCount {
                rows.append((0..<columnCount).map { c in
                    PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
                })
            }
            let changes = Int(String(cString: PQcmdTuples(result))) ?? 0
            let command = String(cString: PQcmdStatus(result)).split(separator: " ").first.map(String.init) ?? ""
            return PostgresRows(columns: columns, rows: rows, changes: changes, command: command)
        default:
            throw failure(result)
        }
    }

    /// Runs `COPY table (columns) FROM STDIN` with `rows`; returns the rows copied.
    @discardableResult
    func copy(_ sql: String, _ rows: CopyRows) throws -> Int {
        guard let start = PQexec(raw, sql) else { throw failure(nil) }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            defer { PQclear(start) }
            throw failure(start)
        }
        PQclear(start)
        let sent = rows.bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { PQputCopyData(raw, $0, Int32(buffer.count)) }
            } ?? 1
        }
        guard sent == 1, PQputCopyEnd(raw, nil) == 1 else { throw failure(nil) }
        var error: PostgresError?
        var copied = 0
        // The COPY's result, then nil: every result must be read before the next statement.
        while let result = PQgetResult(raw) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if error == nil {
                error = failure(result)
            }
            PQclear(result)
        }
        if let error { throw error }
        return copied
    }

    /// Runs several statements without parameters (a migration), as PostgreSQL's simple query
    /// protocol does: in the caller's transaction when there is one.
    func execute(script sql: String) throws {
        guard let result = PQexec(raw, sql) else { throw failure(nil) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK: return
        default: throw failure(result)
        }
    }

    private func failure(_ result: OpaquePointer?) -> PostgresError {
        let fieldSQLState = Int32(UInt8(ascii: "C"))
        let state = result.flatMap { PQresultErrorField($0, fieldSQLState) }.map { String(cString: $0) }
        let message = result.map { String(cString: PQresultErrorMessage($0)) } ?? String(cString: PQerrorMessage(raw))
        return PostgresError(message: message.trimmingCharacters(in: .whitespacesAndNewlines), sqlState: state)
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in copies { free(p) } }
    return copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress!) }
}
