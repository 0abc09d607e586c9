import Foundation
import GRDB
import GRDBSQLite

/// Zeroes the free space inside the b-tree pages of the database file.
///
/// `secure_delete` zeroes a deleted cell where it lies, but SQLite's balancing sometimes
/// rebuilds a page from a copy of itself and leaves the old bytes in the page's unallocated
/// area (between the cell pointers and the cell content): copies of cells that moved to other
/// pages. When such a row is deleted later, its live copy is zeroed and the stale one stays.
/// Seen here: thousands of events with paths of varied lengths, 100 of them deleted, a
/// truncated WAL, and the deleted paths still in the file several times, in pages most of whose
/// unallocated areas held old bytes.
///
/// One pass, on a connection of its own, holds the write lock (no process can write), checks that
/// the WAL is still empty (so the file is the database), reads every page of the file and, on each
/// b-tree page, overwrites with zeros its unallocated area and the body of each of its freeblocks
/// where they are not zero already: bytes that no cell, header or pointer uses, so the database's
/// content is unchanged. It writes through SQLite's own file handle (a second
/// descriptor of this process on the file would drop SQLite's POSIX locks when closed), syncs,
/// and commits one row of `free_space_scrubs`: that commit changes the WAL's header, so every
/// connection of every process drops its cached pages (which may hold the old bytes) before
/// it next reads or writes. Freelist pages need no pass: `secure_delete` zeroes a page freed.
/// Fragments (at most 3 bytes each between cells) are not reached.
enum FreeSpace {
    struct Pass {
        var pagesRead = 0
        var pagesZeroed = 0
        var bytesZeroed = 0
        /// How long the write lock was held, in milliseconds.
        var lockedMs = 0.0
    }

    /// The b-tree pages as `dbstat` lists them (files of 2^24 pages or more, or with auto-vacuum).
    static func list(_ db: Database) throws -> [Int] {
        try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE pagetype IN ('internal', 'leaf') ORDER BY pageno")
    }

    /// Runs one pass; nil when the write lock was not had within `busyTimeout`, or the WAL was no
    /// longer empty once it was (another process wrote after the checkpoint: retry after the next one).
    static func zero(path: String, walPath: String, busyTimeout: Duration) throws -> Pass? {
        var config = Configuration()
        config.prepareDatabase(AppDatabase.prepare)
        config.busyMode = .timeout(Double(max(1, busyTimeout.milliseconds)) / 1000)
        let queue = try DatabaseQueue(path: path, configuration: config)
        defer { try? queue.close() }
        return try queue.inDatabase { db -> Pass? in
            let started = ContinuousClock.now
            do {
                try db.execute(sql: "BEGIN IMMEDIATE")
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return nil
            }
            var committed = false
            defer { if !committed { try? db.execute(sql: "ROLLBACK") } }
            guard AppDatabase.fileSize(walPath) == 0 else { return nil }
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            // Every page of the file is read, and only those whose header reads as a b-tree page's
            // are touched: below 2^24 pages an overflow or freelist-trunk page starts with the high
            // byte of a page number, 0, and a freelist leaf was zeroed when freed (secure_delete).
            // Past that, or with pointer-map pages (auto-vacuum), dbstat lists the b-tree pages.
            // (Listing them before taking the lock is not enough: when SQLite rebalances siblings it
            // renumbers whole page images, so old bytes can move to a page that was free then.)
            let pageCount = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let autoVacuum = try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0
            let lockBytePage = 0x4000_0000 / pageSize + 1
            let pages = pageCount < 1 << 24 && autoVacuum == 0 ? Array((1...max(1, pageCount)).filter { $0 != lockBytePage }) : try list(db)
            var pass = Pass()
            try withFile(db) { file in
                var page = [UInt8](repeating: 0, count: pageSize)
                // Bytes reserved at the end of each page (the file header's byte 20) are never touched.
                try io(page.withUnsafeMutableBytes { file.pointee.pMethods.pointee.xRead(file, $0.baseAddress, Int32(pageSize), 0) })
                let usable = pageSize - Int(page[20])
                var zeroed = false
                for number in pages where number <= pageCount {
                    let offset = Int64(number - 1) * Int64(pageSize)
                    try io(page.withUnsafeMutableBytes { file.pointee.pMethods.pointee.xRead(file, $0.baseAddress, Int32(pageSize), offset) })
                    pass.pagesRead += 1
                    let regions = freeRegions(page, headerAt: number == 1 ? 100 : 0, usable: usable)
                    var touched = false
                    for region in regions where page[region].contains(where: { $0 != 0 }) {
                        let zeros = [UInt8](repeating: 0, count: region.count)
                        try io(zeros.withUnsafeBytes {
                            file.pointee.pMethods.pointee.xWrite(file, $0.baseAddress, Int32(region.count), offset + Int64(region.lowerBound))
                        })
                        pass.bytesZeroed += region.count
                        touched = true
                    }
                    if touched { pass.pagesZeroed += 1; zeroed = true }
                }
                if zeroed { try io(file.pointee.pMethods.pointee.xSync(file, SQLITE_SYNC_NORMAL)) }
            }
            // This connection's cache may hold pages read before the pass (page 1, pinned by the
            // transaction, stays; the row below does not change it): the others are dropped, so the
            // row is written into a page read back from the file.
            sqlite3_db_release_memory(db.sqliteConnection)
            try db.execute(sql: """
                INSERT INTO free_space_scrubs (id, at, pages_read, pages_zeroed) VALUES (1, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET at = excluded.at, pages_read = excluded.pages_read, pages_zeroed = excluded.pages_zeroed
                """, arguments: [Int64(Date().timeIntervalSince1970 * 1000), pass.pagesRead, pass.pagesZeroed])
            try db.execute(sql: "COMMIT")
            committed = true
            let held = ContinuousClock.now - started
            pass.lockedMs = Double(held.components.seconds) * 1000 + Double(held.components.attoseconds) / 1e15
            return pass
        }
    }

    /// The byte ranges of a b-tree page that hold nothing: the unallocated area between the cell
    /// pointer array and the cell content area, and each freeblock after its 4-byte header.
    /// Empty when the header does not read as a b-tree page (nothing is then written).
    static func freeRegions(_ page: [UInt8], headerAt h: Int, usable: Int? = nil) -> [Range<Int>] {
        let end = min(usable ?? page.count, page.count)
        guard end >= h + 12 else { return [] }
        func u16(_ at: Int) -> Int { Int(page[at]) << 8 | Int(page[at + 1]) }
        let headerSize: Int
        switch page[h] {
        case 0x0A, 0x0D: headerSize = 8
        case 0x02, 0x05: headerSize = 12
        default: return []
        }
        let cells = u16(h + 3)
        let contentStart = u16(h + 5) == 0 ? 65536 : u16(h + 5)
        let pointersEnd = h + headerSize + 2 * cells
        guard pointersEnd <= contentStart, contentStart <= end else { return [] }
        var regions: [Range<Int>] = []
        if pointersEnd < contentStart { regions.append(pointersEnd..<contentStart) }
        // Freeblocks lie in the content area in increasing order; a chain that does not is not followed.
        var block = u16(h + 1)
        var floor = contentStart
        while block != 0 {
            guard block >= floor, block + 4 <= end else { return [] }
            let size = u16(block + 2)
            guard size >= 4, block + size <= end else { return [] }
            if size > 4 { regions.append((block + 4)..<(block + size)) }
            floor = block + size
            block = u16(block)
        }
        return regions
    }

    private static func withFile(_ db: Database, _ body: (UnsafeMutablePointer<sqlite3_file>) throws -> Void) throws {
        var pointer: UnsafeMutablePointer<sqlite3_file>?
        let rc = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_FILE_POINTER, &pointer)
        guard rc == SQLITE_OK, let file = pointer, file.pointee.pMethods != nil else {
            throw DatabaseError(resultCode: .SQLITE_ERROR, message: "the database file's handle is not available (\(rc))")
        }
        try body(file)
    }

    private static func io(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: "free-space pass: I/O error \(rc)") }
    }
}
