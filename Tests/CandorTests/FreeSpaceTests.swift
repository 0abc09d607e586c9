import Foundation
import GRDB
@testable import Store
import Testing

/// The free space of the file's pages after deletions: `secure_delete` alone leaves copies of
/// deleted rows in the unallocated areas of pages SQLite rebuilt while balancing; the pass that
/// follows every verified WAL truncation zeroes them without changing a row.
@Suite struct FreeSpaceTests {
    /// Rows of two kinds with values of varied lengths, inserted in random key order (so pages
    /// split and merge), with deletions in between; then every "doomed" row is deleted.
    static func churn(_ database: AppDatabase, seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        try database.writer.write { db in
            try db.execute(sql: "CREATE TABLE scratch (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, body BLOB NOT NULL)")
            try db.execute(sql: "CREATE INDEX scratch_by_path ON scratch(path)")
        }
        for _ in 0..<300 {
            try database.writer.write { db in
                for n in 0..<33 {
                    let doomed = n % 11 == 0
                    let key = String(format: "/p%08d", Int(random.next() % 100_000_000))
                    let path = key + (doomed ? "DOOMEDPATH" + String(repeating: "y", count: Int(random.next() % 400))
                                             : String(repeating: "x", count: Int(random.next() % 400)))
                    let body = Data((0..<Int(random.next() % 300)).map { _ in UInt8.random(in: 0...255, using: &random) })
                    try db.execute(sql: "INSERT INTO scratch (kind, path, body) VALUES (?, ?, ?)",
                                   arguments: [doomed ? "doomed" : "kept", path, body])
                }
                try db.execute(sql: "DELETE FROM scratch WHERE id IN (SELECT id FROM scratch WHERE kind = 'kept' ORDER BY id % 7, id LIMIT 10)")
            }
        }
        try database.writer.write { db in try db.execute(sql: "DELETE FROM scratch WHERE kind = 'doomed'") }
    }

    static func kept(_ database: AppDatabase) throws -> [Row] {
        try database.writer.read { db in try Row.fetchAll(db, sql: "SELECT id, path, hex(body) AS body FROM scratch ORDER BY id") }
    }

    static func plainCheckpoint(_ database: AppDatabase) throws {
        try database.writer.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }

    static func int(_ database: AppDatabase, _ sql: String) throws -> Int {
        try database.writer.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
    }

    static func execute(_ database: AppDatabase, _ sql: String) throws {
        try database.writer.write { db in try db.execute(sql: sql) }
    }

    @Test func theFreeSpaceOfEveryPageIsZeroedAfterDeletionsAndNoRowChanges() async throws {
        let dir = TempDir()
        let file = dir.file("candor.sqlite")
        let database = try AppDatabase(path: file)
        try Self.churn(database, seed: 7)
        let before = try Self.kept(database)
        #expect(before.count > 5000)

        // The control: a plain truncating checkpoint leaves the deleted paths in the file. (This
        // is what SQLite 3.40 with secure_delete does; were it ever to stop, this line says so.)
        try Self.plainCheckpoint(database)
        let left = occurrences(of: "DOOMEDPATH", inFile: file)
        #expect(left > 0, "no copy of a deleted row was left by SQLite: the control shows nothing")

        let done = try await database.truncateWAL()
        #expect(done.outcome == .truncated && done.pagesZeroed > 0 && done.pagesRead >= done.pagesZeroed, "\(done)")
        for suffix in ["", "-wal", "-shm"] {
            #expect(occurrences(of: "DOOMEDPATH", inFile: file + suffix) == 0, "a deleted row in candor.sqlite\(suffix)")
        }
        #expect(AppDatabase.fileSize(file + "-wal") == 0)
        #expect(try database.integrityCheck() == "ok")
        #expect(try Self.kept(database) == before, "the rows kept are the same, byte for byte")
        // Every page of the file was read (the pass's own row may have added one since).
        #expect(try done.pagesRead > 1000 && done.pagesRead <= Self.int(database, "PRAGMA page_count"))
        #expect(try Self.int(database, "SELECT pages_zeroed FROM free_space_scrubs") == done.pagesZeroed)

        // Writes after the pass (by a connection that had cached the pages before it) bring no old
        // bytes back: every connection dropped its cache at the pass's commit.
        try Self.execute(database, "INSERT INTO scratch (kind, path, body) SELECT 'kept', path || 'z', body FROM scratch WHERE id % 5 = 0")
        let again = try await database.truncateWAL()
        #expect(occurrences(of: "DOOMEDPATH", inFile: file) == 0)
        #expect(again.pagesRead > 0 && again.pagesZeroed < done.pagesZeroed, "\(again)")
        #expect(try database.integrityCheck() == "ok")
    }

    /// Every page of the file is read; overflow pages (values larger than a page) start with a 0
    /// byte and are left alone: the values are the same after the pass.
    @Test func overflowPagesAreLeftAlone() async throws {
        let dir = TempDir()
        let database = try AppDatabase(path: dir.file("candor.sqlite"))
        try Self.execute(database, "CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        try Self.execute(database, "INSERT INTO scratch (body) SELECT randomblob(20000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4)")
        try Self.execute(database, "DELETE FROM scratch WHERE id = 2")
        let before = try Self.strings(database, "SELECT hex(body) FROM scratch ORDER BY id")
        #expect(try Self.int(database, "SELECT count(*) FROM dbstat WHERE pagetype = 'overflow'") >= 12)
        let done = try await database.truncateWAL()
        #expect(try done.pagesRead == Self.int(database, "PRAGMA page_count"))
        #expect(try database.integrityCheck() == "ok")
        #expect(try Self.strings(database, "SELECT hex(body) FROM scratch ORDER BY id") == before)
    }

    static func strings(_ database: AppDatabase, _ sql: String) throws -> [String] {
        try database.writer.read { db in try String.fetchAll(db, sql: sql) }
    }

    /// Only what reads as a b-tree page header is touched; a chain of freeblocks that goes
    /// backwards or past the page is not followed (nothing of that page is written).
    @Test func onlyWellFormedPagesHaveFreeRegions() {
        var leaf = [UInt8](repeating: 0, count: 4096)
        leaf[0] = 0x0D                       // table leaf
        leaf[3] = 0; leaf[4] = 2             // 2 cells
        leaf[5] = 0x0F; leaf[6] = 0x00       // content from 3840
        leaf[1] = 0x0F; leaf[2] = 0x80       // a freeblock at 3968
        leaf[3968 + 2] = 0; leaf[3968 + 3] = 20
        #expect(FreeSpace.freeRegions(leaf, headerAt: 0) == [12..<3840, 3972..<3988])
        var interior = leaf
        interior[0] = 0x05                   // table interior: 12-byte header
        #expect(FreeSpace.freeRegions(interior, headerAt: 0) == [16..<3840, 3972..<3988])
        var backwards = leaf
        backwards[3968] = 0x0F; backwards[3969] = 0x10   // next freeblock before this one
        #expect(FreeSpace.freeRegions(backwards, headerAt: 0).isEmpty)
        var overflow = leaf
        overflow[0] = 0x00                   // an overflow or freelist page's first byte
        #expect(FreeSpace.freeRegions(overflow, headerAt: 0).isEmpty)
        var crowded = leaf
        crowded[3] = 0x08                    // 2050 cell pointers cannot fit before 3840
        #expect(FreeSpace.freeRegions(crowded, headerAt: 0).isEmpty)
    }
}
