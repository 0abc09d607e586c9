import Actions
import Collector
import Consent
import Foundation
import Geo
import HTTPTypes
import Logging
import Privacy
import Store
import Storage
import Synchronization
import Testing

/// Every suite that starts `candor serve` (the real binary) is nested here, so they run one after
/// another: on two cores, servers under load, a fuzz run and timing checks in parallel would
/// measure each other. The other suites run alongside.
@Suite(.serialized) enum LiveServerTests {}

/// A wall clock tests move by hand.
final class TestClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func set(_ date: Date) { current.withLock { $0 = date } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var closure: @Sendable () -> Date { { self.now } }
}

/// The metrics token of test servers, and the headers that present it.
let testMetricsToken = "test-metrics-token-0123456789"
let operatorHeaders: HTTPFields = [.authorization: "Bearer \(testMetricsToken)"]

/// Runs the sqlite3 tool on a database file (another connection, as an operator would).
@discardableResult
func sqlite3(_ path: String, _ sql: String) throws -> (status: Int32, output: String) {
    // A busy timeout: the server may hold the write lock for a moment.
    try runTool("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", path, sql])
}

/// Runs a program to completion; returns its exit status and its output (stdout and stderr).
func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, output)
}

/// 2026-03-10 12:00:00 UTC
let noon = Date(timeIntervalSince1970: 1_773_144_000)

let chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

/// A temporary directory removed at deinit.
final class TempDir: @unchecked Sendable {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "candor-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

enum Fixtures {
    static var directory: String {
        Bundle.module.resourcePath! + "/Fixtures"
    }
    static var cityDB: String { directory + "/candor-city-test.mmdb" }
    static var asnDB: String { directory + "/candor-asn-test.mmdb" }
    /// MaxMind's own test databases, present only beside the project's clone in this workplace.
    static var sharedGeoIP: String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/testdata/geoip").path
        return FileManager.default.fileExists(atPath: root) ? root : nil
    }
}

/// A collector over its own database (a file, so bytes can be scanned), with a seeded site.
struct TestCollector {
    let dir = TempDir()
    let database: AppDatabase
    let clock: TestClock
    let collector: Collector
    let salts: SaltKeeper
    let site: Site

    init(policy: Policy = .default, geo: any GeoLookup = NoGeo(), limits: RateLimiter.Limits = .init(perSite: (1e6, 1e6), perClient: (1e6, 1e6)),
         trusted: [CIDR] = [], start: Date = noon, domains: [String] = ["example.com"], calendar: SiteCalendar = .utc) throws {
        clock = TestClock(start)
        database = try AppDatabase(path: dir.file("candor.sqlite"))
        site = Site(id: "site-\(UUID().uuidString.prefix(8).lowercased())", name: "Test", domains: domains,
                    policy: policy.name, createdAt: start, calendar: calendar)
        try database.addSite(site)
        salts = try SaltKeeper(database: database)
        collector = Collector(database: database, policies: PolicyBook(policies: [policy, .default]), geo: geo,
                              salts: salts, subjects: try SubjectHasher(database: database),
                              limiter: RateLimiter(limits: limits), addresses: ClientAddressResolver(trustedProxies: trusted),
                              logger: Logger(label: "test"), now: clock.closure)
    }

    /// Runs events through the pipeline and the writer, as a request would.
    @discardableResult
    /// Runs `events` through the pipeline for this collector's site (or the site `into` names) and writes them.
    func ingest(_ events: [IncomingEvent], into siteID: String? = nil, ip: String = "81.2.69.142", ua: String = chromeUA,
                signals: PrivacySignals = .init()) async throws -> PipelineResult {
        let (site, policy) = collector.site(siteID ?? site.id)!
        let result = collector.pipeline.run(events, site: site, policy: policy,
                                            facts: RequestFacts(ip: ip, userAgent: ua, signals: signals, now: clock.now))
        _ = try await collector.writer.write(result.rows)
        return result
    }
}

/// Counts occurrences of `needle` in the file at `path`: 0 if the file does not exist, -1 if it
/// could not be read through (so a failed read never passes for "no occurrence"). Reads in 1 MiB
/// chunks overlapping by the needle's length, so files being written meanwhile are read as they are.
func occurrences(of needle: [UInt8], inFile path: String) -> Int {
    guard !needle.isEmpty else { return 0 }
    let fd = open(path, O_RDONLY)
    if fd < 0 { return errno == ENOENT ? 0 : -1 }
    defer { close(fd) }
    var count = 0
    var carry: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 { return -1 }
        if n == 0 { break }
        let bytes = carry + chunk[0..<n]
        var i = 0
        let first = needle[0]
        while i + needle.count <= bytes.count {
            if bytes[i] == first && bytes[i..<i + needle.count].elementsEqual(needle) { count += 1 }
            i += 1
        }
        carry = Array(bytes.suffix(needle.count - 1))
    }
    return count
}

func occurrences(of needle: String, inFile path: String) -> Int {
    occurrences(of: Array(needle.utf8), inFile: path)
}

/// A read transaction held open by another process (python3's sqlite3 module) on an old snapshot
/// of the database, until released: what makes a WAL truncation fail with SQLITE_BUSY.
final class HeldRead: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()

    init(path: String) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN')
            c.execute('SELECT count(*) FROM sqlite_master').fetchall()
            print('held', flush=True)
            sys.stdin.read()
            c.execute('COMMIT')
            """, path]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // Wait until the read transaction is open.
        let line = output.fileHandleForReading.availableLine()
        guard line == "held" else { throw HeldReadError(output: line) }
    }
    struct HeldReadError: Error { let output: String }

    func release() {
        guard process.isRunning else { return }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { if process.isRunning { process.terminate() } }
}

extension FileHandle {
    /// Reads up to the first newline (blocking).
    func availableLine() -> String {
        var bytes: [UInt8] = []
        while bytes.count < 1000, let b = try? read(upToCount: 1), let byte = b.first, byte != 10 { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension TestCollector {
    /// Staff actions as the operator.
    var administration: Administration { Administration(database: database, policies: collector.policies, now: clock.closure) }

    /// Issues an API key as the operator and returns its text.
    func issueKey(site: String? = nil, scope: APIKeyScope = .statsRead, label: String = "api") throws -> String {
        try administration.issueKey(site: site ?? self.site.id, label: label, scope: scope, by: .cli).key
    }
}
