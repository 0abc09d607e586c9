import Collector
import Foundation
import GRDB
import Logging
@testable import Store
import Storage
import Testing

/// The writer remembers each visitor's open session and updates it without a lookup; a
/// remembered id must never continue a session that is gone, closed or someone else's.
@Suite struct SessionHintTests {
    func row(_ id: String, visitor: Int64, at ms: Int64, path: String = "/") -> EventRow {
        EventRow(siteID: "site1", clientID: id, timestamp: ms, name: "pageview", path: path, decision: .anonymous,
                 visitor: visitor, sourceType: "direct")
    }

    func database() throws -> AppDatabase {
        let db = try AppDatabase()
        try db.writer.write { try $0.execute(sql: "INSERT INTO sites (id, name, domains, policy, created_at) VALUES ('site1', 'S', '[]', 'default', 0)") }
        return db
    }

    @Test func aRememberedSessionThatWasDeletedAndItsIdReusedIsNotContinued() throws {
        let db = try database()
        let visitorA: Int64 = 111, visitorB: Int64 = 222
        _ = try db.insertEvents([row("a1", visitor: visitorA, at: 1_000)])
        let first = try #require(db.sessions(site: "site1").first)
        // An erasure removes A's session; B's new session then gets the same rowid.
        try db.writer.write { try $0.execute(sql: "DELETE FROM events; DELETE FROM sessions") }
        _ = try db.insertEvents([row("b1", visitor: visitorB, at: 2_000)])
        let b = try #require(db.sessions(site: "site1").first)
        #expect(b.id == first.id, "the scenario needs the id reused")
        _ = try db.insertEvents([row("a2", visitor: visitorA, at: 3_000, path: "/again")])
        let sessions = try db.sessions(site: "site1")
        #expect(sessions.count == 2)
        #expect(sessions.first { $0.visitor == visitorB }?.pageviews == 1)
        let a = try #require(sessions.first { $0.visitor == visitorA })
        #expect(a.entryPath == "/again")
        #expect(try db.events(site: "site1").first { $0.clientID == "a2" }?.sessionID == a.id)
    }

    @Test func aRolledBackBatchLeavesNoUsableHint() throws {
        let db = try database()
        // The second row violates a constraint (an unknown site), so the whole batch rolls back.
        var bad = row("x2", visitor: 333, at: 1_000)
        bad.siteID = "nosuchsite"
        #expect(throws: (any Error).self) { try db.insertEvents([row("x1", visitor: 333, at: 1_000), bad]) }
        #expect(try db.sessions(site: "site1").isEmpty)
        _ = try db.insertEvents([row("y1", visitor: 444, at: 2_000)])
        _ = try db.insertEvents([row("x3", visitor: 333, at: 3_000)])
        let sessions = try db.sessions(site: "site1")
        #expect(sessions.count == 2)
        #expect(sessions.allSatisfy { $0.pageviews == 1 })
    }
}

@Suite struct CheckpointTests {
    /// The background checkpointer copies committed WAL pages into the database file while the
    /// writer's connection stays open, without blocking it.
    @Test func passiveCheckpointsCopyCommittedPagesIntoTheFile() throws {
        let dir = TempDir()
        let db = try AppDatabase(path: dir.file("c.sqlite"))
        try db.writer.write { try $0.execute(sql: "INSERT INTO sites (id, name, domains, policy, created_at) VALUES ('site1', 'S', '[]', 'default', 0)") }
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.file("c.sqlite"))).count
        let rows = (0..<2000).map { i in
            EventRow(siteID: "site1", clientID: "c\(i)", timestamp: Int64(i), name: "pageview", path: "/p\(i)",
                     decision: .anonymous, visitor: Int64(i % 50), sourceType: "direct")
        }
        _ = try db.insertEvents(rows)
        let checkpointer = try WALCheckpointer(database: db)
        #expect(try checkpointer.run() > 0, "the WAL held the batch")
        let after = try Data(contentsOf: URL(fileURLWithPath: dir.file("c.sqlite"))).count
        #expect(after > before, "pages reached the database file")
        _ = try db.insertEvents([EventRow(siteID: "site1", clientID: "late", timestamp: 5000, name: "pageview", path: "/",
                                          decision: .anonymous, visitor: 1, sourceType: "direct")])
        #expect(try db.eventCount(site: "site1") == 2001)
        #expect(try db.integrityCheck() == "ok")
    }

    func rows(_ n: Int, from start: Int) -> [EventRow] {
        (start..<start + n).map { i in
            EventRow(siteID: "site1", clientID: "c\(i)", timestamp: Int64(i), name: "pageview", path: "/p\(i % 40)",
                     decision: .anonymous, visitor: Int64(i % 300), sourceType: "direct")
        }
    }

    /// Once checkpoints are handed over, no commit checkpoints (SQLite's default would start the
    /// WAL over after ~1000 pages); the writer's finishing checkpoint, asked for between batches,
    /// is what starts it over.
    @Test func handedOverCheckpointsLeaveTheWALToTheBackgroundUntilTheWriterFinishesOne() async throws {
        let dir = TempDir()
        let db = try AppDatabase(path: dir.file("h.sqlite"))
        try await db.writer.write { try $0.execute(sql: "INSERT INTO sites (id, name, domains, policy, created_at) VALUES ('site1', 'S', '[]', 'default', 0)") }
        try db.handOverCheckpoints()
        let checkpointer = try WALCheckpointer(database: db)
        var written = 0
        for _ in 0..<80 {
            _ = try db.insertEvents(rows(250, from: written))
            written += 250
        }
        let grown = try checkpointer.run()
        // SQLite's own checkpoints would have left at most ~1000 frames plus one batch.
        #expect(grown > 2000, "no commit started the WAL over (\(grown) frames)")

        let metrics = CollectorMetrics()
        let writer = EventWriter(database: db, metrics: metrics, logger: Logger(label: "test"))
        writer.requestCheckpoint()
        _ = try await writer.write(rows(10, from: written))
        _ = try await writer.write(rows(10, from: written + 10))
        #expect(metrics.writerCheckpointSeconds.count == 1, "the writer finished one checkpoint between the batches")
        let restarted = try checkpointer.run()
        #expect(restarted >= 0 && restarted < 200, "the next batch started the WAL over (\(restarted) frames)")
        #expect(try db.eventCount(site: "site1") == written + 20)
        #expect(try db.integrityCheck() == "ok")
        await writer.shutdown()
    }
}
