import GRDB
import GRDBSQLite

/// A cached statement of the ingestion hot path, bound and stepped through SQLite's C API.
///
/// GRDB's `StatementArguments` box every value in an existential and allocate per call; at
/// thousands of events per second that cost more than SQLite itself. The statement still comes
/// from (and is finalized by) GRDB's statement cache; it is reset after every use, so GRDB
/// finds it idle. Each use: ``start()``, one `bind` call per `?` in order, then run or fetch.
struct RawStatement {
    private let db: Database
    private let handle: OpaquePointer
    private var index: Int32 = 0

    init(_ db: Database, _ sql: String) throws {
        self.db = db
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        sqlite3_reset(handle)
    }

    /// Readies the statement for a new set of parameters.
    mutating func start() {
        sqlite3_reset(handle)
        index = 0
    }

    mutating func bind(_ value: String?) {
        index += 1
        guard let value else { sqlite3_bind_null(handle, index); return }
        var text = value
        text.withUTF8 { utf8 in
            let base: UnsafeRawPointer = utf8.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(emptyText)
            let bytes = base.assumingMemoryBound(to: CChar.self)
            _ = sqlite3_bind_text(handle, index, bytes, Int32(utf8.count), rawTransient)
        }
    }

    mutating func bind(_ value: Int64?) {
        index += 1
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    mutating func bind(_ value: Double?) {
        index += 1
        if let value { sqlite3_bind_double(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    /// Steps once and reads the first row, if any, with `read`; the statement is reset after,
    /// so it holds no read lock.
    mutating func fetchOne<T>(_ read: (borrowing Self) -> T) throws -> T? {
        switch sqlite3_step(handle) {
        case SQLITE_ROW:
            defer { sqlite3_reset(handle) }
            return read(self)
        case SQLITE_DONE:
            sqlite3_reset(handle)
            return nil
        case let code:
            throw failure(code)
        }
    }

    /// Runs a statement that returns no rows, then resets it.
    mutating func run() throws {
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw failure(code) }
        sqlite3_reset(handle)
    }

    /// Runs an INSERT, UPDATE or DELETE and returns the number of rows it changed.
    mutating func runCountingChanges() throws -> Int {
        try run()
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    /// Rowid of the last row inserted on the connection.
    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(db.sqliteConnection) }

    /// Steps through every row, calling `body` with the statement positioned on it; resets after.
    mutating func forEachRow(_ body: (RawStatement) throws -> Void) throws {
        defer { sqlite3_reset(handle) }
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: try body(self)
            case SQLITE_DONE: return
            case let code: throw failure(code)
            }
        }
    }

    /// The bytes of a text column (valid until the next step), nil when NULL.
    func textBytes(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        return UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column)))
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    /// A text column, nil when NULL.
    func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }

    private func failure(_ code: Int32) -> DatabaseError {
        sqlite3_reset(handle)
        let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: String(cString: sqlite3_sql(handle)))
    }
}

/// SQLite copies bound text at once (`SQLITE_TRANSIENT`), so Swift may free the buffer after.
private nonisolated(unsafe) let emptyText = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
private let rawTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
