import Foundation
import Logging
@testable import PostgresStore
import Privacy
import Retention
import Storage
import Store
import Synchronization
import Testing

/// The storage backends, each behaviour of ``StorageConformanceTests`` runs against both.
/// PostgreSQL is the throwaway server `make test` starts (scripts/pg-test-server), named by
/// CANDOR_TEST_DATABASE_URL; without it the PostgreSQL cases fail and say so, unless
/// CANDOR_TEST_SKIP_POSTGRES=1 leaves them out on purpose.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static var tested: [Backend] {
        ProcessInfo.processInfo.environment["CANDOR_TEST_SKIP_POSTGRES"] == "1" ? [.sqlite] : allCases
    }

    var testDescription: String { rawValue }

    /// A new, empty store: a SQLite file in a temporary directory, or a new PostgreSQL database.
    func makeStore() throws -> any TestStore {
        switch self {
        case .sqlite: try SQLiteTestStore()
        case .postgres: try PostgresTestStore()
        }
    }
}

/// What the conformance suite exercises: every storage protocol.
typealias StoreUnderTest = JobLedger & AuditChain & SaltVault & EventSink & EventReader

/// One test's store; `open()` opens it again, as another process (a node) would.
protocol TestStore: AnyObject, Sendable {
    func open() throws -> any StoreUnderTest
    /// Runs SQL on the store's tables from outside Candor, as an operator (or an intruder) with
    /// the database's credentials would.
    func operatorSQL(_ sql: String) throws -> String
    /// The rows of a query, each as its columns joined by "|" (NULL as ""), as an operator reads them.
    func select(_ sql: String) throws -> [String]
}

final class SQLiteTestStore: TestStore {
    let dir = TempDir()
    var path: String { dir.path + "/candor.sqlite" }
    init() throws { _ = try AppDatabase(path: path) }
    func open() throws -> any StoreUnderTest { try AppDatabase(path: path) }
    func operatorSQL(_ sql: String) throws -> String { try sqlite3(path, sql).output }
    func select(_ sql: String) throws -> [String] {
        let (status, output) = try sqlite3(path, sql)
        guard status == 0 else { throw PostgresError(message: output, sqlState: nil) }
        return output.split(separator: "\n").map(String.init)
    }
}

/// A database of its own on the test server, dropped at deinit.
final class PostgresTestStore: TestStore {
    let url: String
    let name: String
    private let serverURL: String

    init() throws {
        guard let server = ProcessInfo.processInfo.environment["CANDOR_TEST_DATABASE_URL"], !server.isEmpty else {
            throw PostgresError(message: "CANDOR_TEST_DATABASE_URL is not set: run the tests with `make test`, which starts a throwaway "
                                + "PostgreSQL server (or set CANDOR_TEST_SKIP_POSTGRES=1 to leave the PostgreSQL cases out)", sqlState: nil)
        }
        guard var parts = URLComponents(string: server) else { throw PostgresError(message: "bad CANDOR_TEST_DATABASE_URL", sqlState: nil) }
        serverURL = server
        name = "candor_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try PostgresConnection(url: server).query("CREATE DATABASE \(name)")
        parts.path = "/" + name
        url = parts.string!
    }

    deinit { _ = try? PostgresConnection(url: serverURL).query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }

    func open() throws -> any StoreUnderTest { try PostgresDatabase(url: url) }
    func operatorSQL(_ sql: String) throws -> String {
        do {
            try PostgresConnection(url: url).execute(script: sql)
            return ""
        } catch { return "\(error)" }
    }
    func select(_ sql: String) throws -> [String] {
        try PostgresConnection(url: url).query(sql).rows.map { $0.map { $0 ?? "" }.joined(separator: "|") }
    }
}

@Suite struct StorageConformanceTests {
    // MARK: Job ledger

    @Test(arguments: Backend.tested)
    func aClaimGoesToOneNodeUntilTheRunIsRecorded(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let a = try store.open(), b = try store.open()
        #expect(try a.lastRun(job: "purge") == nil)
        #expect(try a.claimRun(job: "purge", node: "a", lastRunAtMost: 1_000, now: 1_000, lease: 60_000))
        #expect(try !b.claimRun(job: "purge", node: "b", lastRunAtMost: 1_000, now: 1_500, lease: 60_000))
        // A node may claim again what it holds.
        #expect(try a.claimRun(job: "purge", node: "a", lastRunAtMost: 1_000, now: 2_000, lease: 60_000))
        try a.finishRun(job: "purge", node: "a", at: 1_000, detail: "3 row(s) deleted")
        #expect(try b.lastRun(job: "purge") == 1_000)
        // b saw the job due before a recorded its run: its claim, with the cutoff it computed then, is refused.
        #expect(try !b.claimRun(job: "purge", node: "b", lastRunAtMost: 999, now: 2_500, lease: 60_000))
        // One period later it is b's.
        #expect(try b.claimRun(job: "purge", node: "b", lastRunAtMost: 1_000, now: 3_601_000, lease: 60_000))
        #expect(try !a.claimRun(job: "purge", node: "a", lastRunAtMost: 1_000, now: 3_601_000, lease: 60_000))
        try b.finishRun(job: "purge", node: "b", ranAt: 3_601_000, dueFrom: 60_000, detail: "failed: disk full")
        #expect(try a.jobRuns() == [JobRun(name: "purge", lastRunAt: 60_000, detail: "failed: disk full")])
        #expect(try a.runLog(job: "purge", limit: 10) == [LoggedRun(job: "purge", node: "b", ranAt: 3_601_000, detail: "failed: disk full"),
                                                          LoggedRun(job: "purge", node: "a", ranAt: 1_000, detail: "3 row(s) deleted")])
        // A week later the log has let the first runs go.
        try a.finishRun(job: "purge", node: "a", at: 3_601_000 + runLogRetentionMilliseconds + 1, detail: "ok")
        #expect(try b.runLog(job: "purge", limit: 10).map(\.node) == ["a"])
        // A claim let go (a process shutting down) is free at once.
        #expect(try a.claimRun(job: "rollups", node: "a", lastRunAtMost: 0, now: 1, lease: 60_000))
        try a.releaseClaim(job: "rollups", node: "a")
        #expect(try b.claimRun(job: "rollups", node: "b", lastRunAtMost: 0, now: 2, lease: 60_000))
    }

    @Test(arguments: Backend.tested)
    func aDeadNodesClaimLapsesWithItsLease(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let a = try store.open(), b = try store.open()
        #expect(try a.claimRun(job: "rollups", node: "a", lastRunAtMost: 0, now: 10_000, lease: 5_000))
        #expect(try !b.claimRun(job: "rollups", node: "b", lastRunAtMost: 0, now: 14_999, lease: 5_000))
        #expect(try b.claimRun(job: "rollups", node: "b", lastRunAtMost: 0, now: 15_000, lease: 5_000))
        // a comes back and renews: b holds it now.
        #expect(try !a.claimRun(job: "rollups", node: "a", lastRunAtMost: 0, now: 15_001, lease: 5_000))
        // Claims of one job leave other jobs alone.
        #expect(try a.claimRun(job: "purge", node: "a", lastRunAtMost: 0, now: 15_001, lease: 5_000))
        #expect(try a.jobRuns().isEmpty)
    }

    @Test(arguments: Backend.tested)
    func nodesRacingForOneRunGetOneClaim(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let nodes = try (0..<6).map { _ in try store.open() }
        for round in 0..<20 {
            let t = Int64(round) * 60_000 + 60_000
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (i, ledger) in nodes.enumerated() {
                    group.addTask {
                        guard try ledger.claimRun(job: "requests", node: "n\(i)", lastRunAtMost: t - 60_000, now: t, lease: 30_000) else { return false }
                        try ledger.finishRun(job: "requests", node: "n\(i)", at: t, detail: "ok")
                        return true
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(granted == 1, "round \(round)")
        }
        #expect(try nodes[0].lastRun(job: "requests") == 20 * 60_000)
    }

    /// Two schedulers (two nodes) on one store for an hour of injected clock, ticking at the same
    /// moments: every job runs once per period, by one node or the other, never by both.
    @Test(arguments: Backend.tested)
    func twoSchedulersRunEachJobOncePerPeriod(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        let clock = TestClock(start)
        let runs = Mutex<[String: [Int64]]>([:])
        func jobs(_ node: String) -> [ScheduledJob] {
            [("minutely", 60, false), ("five-minutely", 300, false), ("hourly", 3600, false), ("engine", 600, true)].map { name, seconds, own in
                ScheduledJob(name: name, interval: .seconds(seconds), perProcess: own) {
                    let t = Int64(clock.now.timeIntervalSince1970 - start.timeIntervalSince1970)
                    runs.withLock { $0[own ? name + "@" + node : name, default: []].append(t) }
                    // Long enough for the other node's tick to look at the same job meanwhile.
                    try await Task.sleep(for: .milliseconds(2))
                    return "ran on \(node)"
                }
            }
        }
        let quiet = Logger(label: "scheduler", factory: { _ in SwiftLogNoOpLogHandler() })
        let a = JobScheduler(ledger: try store.open(), jobs: jobs("a"), logger: quiet, now: clock.closure, node: "a")
        let b = JobScheduler(ledger: try store.open(), jobs: jobs("b"), logger: quiet, now: clock.closure, node: "b")
        var ranOn: [String: Int] = [:]
        for step in 0..<360 {
            clock.set(start.addingTimeInterval(Double(step) * 10))
            async let ranA = a.tick()
            async let ranB = b.tick()
            let (x, y) = await (ranA, ranB)
            ranOn["a", default: 0] += x.count
            ranOn["b", default: 0] += y.count
        }
        let seen = runs.withLock { $0 }
        #expect(seen["minutely"] == Array(stride(from: 0, to: 3600, by: 60)))
        #expect(seen["five-minutely"] == Array(stride(from: 0, to: 3600, by: 300)))
        #expect(seen["hourly"] == [0])
        // A job of each process's own runs on both, each on its own period.
        #expect(seen["engine@a"] == Array(stride(from: 0, to: 3600, by: 600)) && seen["engine@b"] == seen["engine@a"])
        #expect((ranOn["a"] ?? 0) + (ranOn["b"] ?? 0) == 60 + 12 + 1 + 12)
        let log = try store.open().runLog(job: "minutely", limit: 100)
        #expect(log.count == 60 && Set(log.map(\.ranAt)).count == 60)
    }
}

extension StorageConformanceTests {
    // MARK: Audit chain

    @Test(arguments: Backend.tested)
    func nodesAppendingTogetherKeepOneChain(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let logs = try (0..<4).map { _ in AuditLog(chain: try store.open()) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, log) in logs.enumerated() {
                group.addTask {
                    for i in 0..<40 { try log.record(actor: "node-\(n)", action: "test_append", detail: ["i": .init(i)]) }
                }
            }
            try await group.waitForAll()
        }
        let verification = try logs[0].verify()
        #expect(verification.isIntact, "\(verification.problem ?? "")")
        #expect(verification.entries == 160 && verification.headSeq == 160)
        let entries = try logs[1].chain.auditEntries(after: 0, limit: 1000)
        #expect(entries.map(\.seq) == Array(1...160))
        #expect(Set(entries.map(\.actor)) == ["node-0", "node-1", "node-2", "node-3"])
        #expect(try logs[2].chain.recentAuditEntries(limit: 2, action: "test_append").map(\.seq) == [160, 159])
        #expect(try logs[2].chain.recentAuditEntries(limit: 1, action: "other").isEmpty)
    }

    @Test(arguments: Backend.tested)
    func anAppendThatRollsBackLeavesNoTrace(_ backend: Backend) throws {
        struct Abandoned: Error {}
        let store = try backend.makeStore()
        let log = AuditLog(chain: try store.open())
        #expect(throws: Abandoned.self) {
            try log.chain.appendingAudit { tx in
                try log.record(in: tx, actor: "cli", action: "site_removed", site: "s1")
                throw Abandoned()
            }
        }
        #expect(try log.chain.auditEntries(after: 0, limit: 10).isEmpty)
        let first = try log.record(actor: "cli", action: "site_added", site: "s1", detail: ["name": "Shop"])
        #expect(first.seq == 1 && first.prevHash == [UInt8](repeating: 0, count: 32))
        #expect(try log.chain.auditEntries(after: 0, limit: 10) == [first])
    }

    @Test(arguments: Backend.tested)
    func anEditFromOutsideIsFoundAtItsEntry(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let log = AuditLog(chain: try store.open())
        for i in 1...5 { try log.record(actor: "cli", action: "export", detail: ["n": .init(i)]) }
        #expect(try log.verify().isIntact)
        // The table refuses updates.
        let refused = try store.operatorSQL("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
        #expect(refused.contains("append-only"), "\(refused)")
        #expect(try log.verify().isIntact)
        // Whoever drops that guard first is still found out, at the entry edited.
        let disable = backend == .sqlite ? "DROP TRIGGER audit_log_append_only;" : "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;"
        _ = try store.operatorSQL(disable + " UPDATE audit_log SET detail = '{\"n\":33}' WHERE seq = 3")
        let verification = try log.verify()
        #expect(verification.firstBroken == 3 && verification.problem == "contents do not match the entry's hash")
    }
}

extension StorageConformanceTests {
    // MARK: Salts

    func keeper(_ store: any StoreUnderTest) throws -> SaltKeeper {
        try SaltKeeper(vault: store, ledger: store, zones: { [.utc] })
    }

    @Test(arguments: Backend.tested)
    func nodesHashWithOneSaltPerDay(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let stores = try (0..<4).map { _ in try store.open() }
        let keepers = try stores.map(keeper)
        let hashes = try await withThrowingTaskGroup(of: Int64.self) { group in
            for k in keepers { group.addTask { try k.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current } }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(hashes.count == 1)
        let day = utcDay(noon)
        #expect(try stores[0].saltDays() == [day])
        let rotated = try stores[1].recentAuditEntries(limit: 10, action: "salt_rotated")
        #expect(rotated.count == 1 && rotated[0].detail == "{\"day\":\(day)}")
        // A node started later reads the same salt.
        let late = try keeper(try store.open())
        #expect(try late.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == hashes.first)
        #expect(try late.visitorHashes(site: "s1", ip: "192.0.2.8", userAgent: chromeUA, now: noon).current != hashes.first)
    }

    @Test(arguments: Backend.tested)
    func aDeletedSaltIsGoneFromEveryNodeAndNeverMadeAgain(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let a = try store.open(), b = try store.open()
        let keeperA = try keeper(a), keeperB = try keeper(b)
        let day = utcDay(noon)
        let first = try keeperA.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current
        #expect(try keeperB.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == first)
        // Two days later, past the overlap: node a deletes the salt; node b drops its copy on its own pass.
        let later = noon.addingTimeInterval(2 * 86_400)
        #expect(try keeperA.deleteExpired(now: later) == [day])
        #expect(try keeperB.deleteExpired(now: later) == [])
        #expect(!keeperA.daysInMemory.contains(day) && !keeperB.daysInMemory.contains(day))
        #expect(try a.pendingSaltDestructions() == [day])
        #expect(try b.writingSalts { try $0.saltDeleted(day: day) })
        // A node asking for that day again (a site in a zone still on it) gets the next day's salt, never a new one of that day.
        let again = try keeper(try store.open())
        let (current, _) = try again.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon)
        #expect(current != first)
        #expect(try !b.saltDays().contains(day))
    }

    @Test(arguments: Backend.tested)
    func aNodeHoldingALostSaltTakesTheOneAnotherNodeMadeMeanwhile(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let a = try store.open()
        let keeperA = try keeper(a)
        let old = try keeperA.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current
        _ = try store.operatorSQL("DELETE FROM salts")
        // A node that never held the day makes a new salt before a's next pass.
        let keeperC = try keeper(try store.open())
        let new = try keeperC.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current
        #expect(new != old)
        #expect(try keeperA.restoreLost() == [])
        #expect(try keeperA.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == new)
    }

    @Test(arguments: Backend.tested)
    func aSaltTheStoreLostIsStoredAgainByANodeHoldingIt(_ backend: Backend) throws {
        let store = try backend.makeStore()
        let a = try store.open(), b = try store.open()
        let keeperA = try keeper(a), keeperB = try keeper(b)
        let first = try keeperA.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current
        #expect(try keeperB.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == first)
        _ = try store.operatorSQL("DELETE FROM salts")
        #expect(try a.saltDays().isEmpty)
        // Both nodes hold it; one stores it again, the other finds it stored.
        let restored = try keeperA.restoreLost() + keeperB.restoreLost()
        #expect(restored == [utcDay(noon)])
        #expect(try keeper(try store.open()).visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == first)
        #expect(try a.recentAuditEntries(limit: 5, action: "salt_restored").count == 1)
        // A salt deleted as expired is not brought back.
        _ = try keeperA.deleteExpired(now: noon.addingTimeInterval(2 * 86_400))
        #expect(try keeperB.restoreLost() == [])
        #expect(try a.saltDays().isEmpty && !keeperB.daysInMemory.contains(utcDay(noon)))
    }
}

/// A PostgreSQL server of one test's own (scripts/pg-test-server), for what a shared server cannot
/// show: the files at rest after a clean shutdown.
final class OwnPostgresServer: Sendable {
    let dir = TempDir()
    var cluster: String { dir.path + "/pg" }
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/pg-test-server").path

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.script) else {
            throw PostgresError(message: "\(Self.script) is missing", sqlState: nil)
        }
    }

    /// Starts the server (made at the first start) and returns its URL.
    func start() throws -> String {
        let (status, output) = try run("start")
        guard status == 0 else { throw PostgresError(message: "pg-test-server start: \(output)", sqlState: nil) }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A clean shutdown.
    func stop() { _ = try? run("stop") }

    /// Stops the server as a crash would (recovery at the next start).
    func crash() { _ = try? run("crash") }

    /// The data directory's files (relative paths) that hold `bytes`.
    func files(holding bytes: [UInt8]) -> [String] {
        let root = cluster + "/data"
        var found: [String] = []
        let walker = FileManager.default.enumerator(atPath: root)
        while let relative = walker?.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            // A file that cannot be read (-1) counts as holding them.
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  occurrences(of: bytes, inFile: path) != 0 else { continue }
            found.append(relative)
        }
        return found
    }

    private func run(_ command: String) throws -> (Int32, String) { try runTool(Self.script, [command, cluster]) }
}

/// What only the PostgreSQL backend has to prove: nodes starting together migrate once, and a
/// broken connection is replaced.
@Suite struct PostgresBackendTests {
    @Test func nodesStartingTogetherMigrateOnce() async throws {
        guard Backend.tested.contains(.postgres) else { return }
        let store = try PostgresTestStore()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try PostgresDatabase(url: store.url) } }
            try await group.waitForAll()
        }
        let database = try PostgresDatabase(url: store.url)
        let applied = try database.query("SELECT name, count(*) FROM schema_migrations GROUP BY name ORDER BY name")
        #expect(applied.rows.map { $0[0] ?? "" } == PostgresSchema.migrations.map(\.name).sorted())
        #expect(applied.rows.allSatisfy { $0[1] == "1" })
        #expect(try (Int(database.serverVersion().prefix { $0.isNumber }) ?? 0) >= 15)
    }

    /// The salts table is UNLOGGED: a salt reaches its table's file (at a clean shutdown) but
    /// never the WAL, where the bytes of a row of a logged table, the control, are found; once
    /// deleted and destroyed, its bytes are in no file of the data directory. On a server of its
    /// own, stopped to read its files at rest.
    @Test func aSaltNeverReachesTheWALAndLeavesNoFileOnceDestroyed() throws {
        guard Backend.tested.contains(.postgres) else { return }
        let server = try OwnPostgresServer()
        defer { server.stop() }
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let control = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let day: Int64 = 20_000
        do {
            let database = try PostgresDatabase(url: try server.start())
            #expect(try database.writingSalts { tx in try salt.withUnsafeBytes { try tx.insertSalt(day: day, bytes: $0) } })
            try database.query("CREATE TABLE logged_control (b bytea)")
            try database.query("INSERT INTO logged_control VALUES ($1)", [.bytes(control)])
        }
        server.stop()
        let controlFiles = server.files(holding: control)
        #expect(controlFiles.contains { $0.hasPrefix("pg_wal/") } && controlFiles.contains { $0.hasPrefix("base/") },
                "the scan finds a logged row in the WAL and in its table's file: \(controlFiles)")
        let saltFiles = server.files(holding: salt)
        #expect(saltFiles.contains { $0.hasPrefix("base/") }, "the salt is in its table's file: \(saltFiles)")
        #expect(!saltFiles.contains { $0.hasPrefix("pg_wal/") }, "an UNLOGGED table's rows never reach the WAL: \(saltFiles)")
        do {
            let database = try PostgresDatabase(url: try server.start())
            #expect(try database.saltDays() == [day])
            #expect(try database.writingSalts { try $0.deleteSalts(days: [day], at: 1) } == [day])
            #expect(try database.pendingSaltDestructions() == [day])
            #expect(try database.destroyDeletedSalts(at: 2) == [day])
            #expect(try database.pendingSaltDestructions().isEmpty)
        }
        server.stop()
        #expect(server.files(holding: salt).isEmpty)
    }

    /// A crash empties the UNLOGGED salts table: a node holding the day's salt stores it again,
    /// and a node started afterwards counts the same visitors as before the crash.
    @Test func aCrashLosesNoSaltWhileANodeHoldsIt() throws {
        guard Backend.tested.contains(.postgres) else { return }
        let server = try OwnPostgresServer()
        defer { server.stop() }
        let url = try server.start()
        let node = try PostgresDatabase(url: url)
        let keeper = try SaltKeeper(vault: node, ledger: node, zones: { [.utc] })
        let before = try keeper.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current
        server.crash()
        _ = try server.start()
        // The node's connection broke with the crash: its next statement says so, the one after reconnects.
        #expect(throws: PostgresError.self) { try node.saltDays() }
        #expect(try node.saltDays().isEmpty, "the crash emptied the UNLOGGED table")
        #expect(try keeper.restoreLost() == [utcDay(noon)])
        #expect(try keeper.restoreLost() == [])
        let later = try SaltKeeper(vault: try PostgresDatabase(url: url), ledger: node, zones: { [.utc] })
        #expect(try later.visitorHashes(site: "s1", ip: "192.0.2.7", userAgent: chromeUA, now: noon).current == before)
        let restored = try node.recentAuditEntries(limit: 5, action: "salt_restored")
        #expect(restored.map(\.detail) == ["{\"day\":\(utcDay(noon))}"])
        #expect(try AuditLog(chain: node).verify().isIntact)
    }

    /// A transaction whose snapshot predates a salt's deletion could still read it, so the table's
    /// rewrite copies it: the salt is not recorded destroyed until that transaction has ended.
    @Test func aSaltIsNotRecordedDestroyedWhileAnOlderSnapshotCanReadIt() async throws {
        guard Backend.tested.contains(.postgres) else { return }
        let store = try PostgresTestStore()
        let database = try PostgresDatabase(url: store.url)
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255) }
        #expect(try database.writingSalts { tx in try salt.withUnsafeBytes { try tx.insertSalt(day: 7, bytes: $0) } })
        let reader = try PostgresConnection(url: store.url)
        try reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        _ = try reader.query("SELECT count(*) FROM job_runs")
        #expect(try database.writingSalts { try $0.deleteSalts(days: [7], at: 1) } == [7])
        #expect(try database.destroyDeletedSalts(at: 2) == [])
        #expect(try database.pendingSaltDestructions() == [7])
        try reader.query("COMMIT")
        // Once it has ended, a later pass records it destroyed. (Other tests' connections to the
        // same server, not yet attached to a database, can hold the horizon back for a moment: a
        // pass then keeps the row and a later one takes it, as the rotation service's would.)
        var destroyed: [Int64] = []
        for _ in 0..<100 where destroyed.isEmpty {
            destroyed = try database.destroyDeletedSalts(at: 3)
            if destroyed.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(destroyed == [7])
        #expect(PostgresDatabase.deadRowsKept(["INFO:  \"public.salts\": found 1 removable, 0 nonremovable row versions in 1 pages\nDETAIL:  0 dead row versions cannot be removed yet.\n"]) == 0)
        #expect(PostgresDatabase.deadRowsKept(["DETAIL:  3 dead row versions cannot be removed yet.\n"]) == 3)
        #expect(PostgresDatabase.deadRowsKept(["INFO:  vacuuming \"public.salts\"\n"]) == nil)
    }

    @Test func aConnectionTheServerEndedIsReplaced() throws {
        guard Backend.tested.contains(.postgres) else { return }
        let store = try PostgresTestStore()
        let database = try PostgresDatabase(url: store.url, maxConnections: 1)
        try database.finishRun(job: "purge", node: "a", at: 5, detail: nil)
        let admin = try PostgresConnection(url: store.url)
        let ended = try admin.query("""
            SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend') t
            """)
        #expect(ended.int(0, 0) == 1)
        // The pool's one connection is gone: the next statement fails, saying so, and the one
        // after it runs on a new connection.
        #expect {
            _ = try database.lastRun(job: "purge")
        } throws: { ($0 as? PostgresError)?.connectionLost == true }
        #expect(try database.lastRun(job: "purge") == 5)
    }
}

extension LiveServerTests {
    /// Two `candor serve` processes on one data directory (one SQLite file), one of them under
    /// event load: the shared jobs run once per period across both, the per-process ones in each,
    /// and every acknowledged event is stored.
    @Suite struct SharedStoreProcessTests {
        @Test func twoServersOnOneStoreRunEachSharedJobOncePerPeriod() async throws {
            let fast = ["--requests-every", "0.1"]
            let install = try await LiveInstall(serve: fast)
            let second = ServerProcess(data: install.dir.path, logPath: install.dir.file("server-b.log"))
            try await second.start(fast)
            let load = EventLoad(port: install.server.port, site: install.site, clients: 2, eventsPerSecond: 200)
            try await Task.sleep(for: .seconds(26))
            let (accepted, failed, _) = await load.stop()
            second.terminate()
            install.stop()
            #expect(accepted > 1000 && failed == 0)
            #expect(try install.database().eventCount(site: install.site) == accepted)
            let rows = try sqlite3(install.databasePath, "SELECT name, node, ran_at FROM job_run_log ORDER BY name, ran_at").output
            var runs: [String: [(node: String, at: Int64)]] = [:]
            for line in rows.split(separator: "\n") {
                let f = line.split(separator: "|", omittingEmptySubsequences: false)
                guard f.count == 3, let at = Int64(f[2]) else { continue }
                runs[String(f[0]), default: []].append((String(f[1]), at))
            }
            // Shared jobs: never two runs closer than the job's period, whichever process ran them.
            for (job, period) in [("deletion_requests", Int64(6_000)), ("channel_backfill", 10_000), ("scrub", 60_000)] {
                let times = (runs[job] ?? []).map(\.at)
                #expect(!times.isEmpty, "\(job) never ran")
                #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 >= period }, "\(job): \(times)")
            }
            #expect((runs["deletion_requests"] ?? []).count >= 3)
            #expect((runs["scrub"] ?? []).count >= 1)
            // The rollups are each process's own: both processes ran them, each as itself.
            #expect(Set((runs["rollups"] ?? []).map(\.node)).count == 2, "\(runs["rollups"] ?? [])")
        }
    }
}
