import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Synchronization

/// A data directory with an owner, the demo site, a privacy-officer key and a metrics token, and
/// `candor serve` on it (the real binary, as a user starts it).
final class LiveInstall: @unchecked Sendable {
    let dir = TempDir()
    let server: ServerProcess
    let site: String
    let ownerEmail = "admin@localhost"
    let ownerPassword: String
    let officerKey: String
    var data: [String] { ["--data", dir.path, "--policies", dir.path + "/no-policies"] }
    var databasePath: String { dir.file("candor.sqlite") }
    /// The WAL first: while the server writes, a page moves from the WAL into the database file
    /// (a checkpoint), never back; reading the WAL before the file cannot miss a page in flight.
    var files: [String] { ["candor.sqlite-wal", "candor.sqlite-shm", "candor.sqlite"].map(dir.file) }

    /// `policyFiles`: files of the repository's policies/ directory the install loads besides the
    /// built-in default (the shipped files themselves, as a user would copy them).
    /// `policyTexts`: more policy files, by file name.
    init(serve extra: [String] = [], policyFiles: [String] = [], policyTexts: [String: String] = [:]) async throws {
        let data = ["--data", dir.path, "--policies", dir.path + "/no-policies"]
        if !policyFiles.isEmpty || !policyTexts.isEmpty {
            try FileManager.default.createDirectory(atPath: dir.path + "/no-policies", withIntermediateDirectories: true)
            for f in policyFiles { try FileManager.default.copyItem(atPath: "policies/" + f, toPath: dir.path + "/no-policies/" + f) }
            for (f, text) in policyTexts { try text.write(toFile: dir.path + "/no-policies/" + f, atomically: true, encoding: .utf8) }
        }
        // These tests sign in with passwords alone; the second factor a new install requires of
        // owners and admins is proven in TwoFactorTests and the browser's test_two_factor.py.
        let out = try ServerProcess.run(["init", "--two-factor-roles", "none"] + data)
        site = try Self.field(out, "Demo site id: ").split(separator: " ").first.map(String.init) ?? ""
        let login = try Self.field(out, "Admin login: ").split(separator: " ")
        ownerPassword = String(login[2])
        officerKey = try ServerProcess.run(["keys", "add", "--site", site, "--label", "dpo", "--scope", "privacy:officer"] + data)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
        try await server.start(["--trusted-proxy", "127.0.0.1/32", "--rate-client", "1000000", "--rate-site", "1000000",
                                "--metrics-token", testMetricsToken] + extra)
    }

    static func field(_ text: String, _ prefix: String) throws -> String {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { throw ServerProcess.CLIError(status: -2) }
        return String(line.dropFirst(prefix.count))
    }

    func cli(_ arguments: [String]) throws -> String { try ServerProcess.run(arguments + data) }

    /// A command that exits 3 when its deletion is done but the WAL truncation could not be
    /// verified in time (the server retries it): its output, or "" for exit 3.
    func cliAllowingRetry(_ arguments: [String]) throws -> String {
        do { return try cli(arguments) } catch let error as ServerProcess.CLIError where error.status == 3 { return "" }
    }

    /// One request on a fresh connection.
    func request(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], body: String? = nil) async throws
        -> (status: HTTPResponse.Status, headers: HTTPFields, body: String) {
        try await TestClient.withClient(host: "127.0.0.1", port: server.port, configuration: .init(timeout: .seconds(120))) { client in
            let r = try await client.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
            return (r.status, r.headers, r.body.map { String(buffer: $0) } ?? "")
        }
    }

    /// Signs in through the form; returns the session cookie and the CSRF token of its forms.
    func signIn(_ email: String, _ password: String) async throws -> (cookie: String, csrf: String) {
        let r = try await request(.post, "/login", headers: [.contentType: "application/x-www-form-urlencoded"],
                                  body: "email=\(email.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&password=\(password)")
        guard let cookie = r.headers[values: .setCookie].first(where: { $0.hasPrefix("candor_session=") })?.split(separator: ";").first
        else { throw ServerProcess.CLIError(status: -3) }
        let page = try await request(.get, "/", headers: [.cookie: String(cookie)]).body
        let marker = #"name="csrf" value=""#
        let csrf = page.range(of: marker).map { String(page[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
        return (String(cookie), csrf)
    }

    /// Opens the database file from the test process (a second connection, as the sqlite3 tool would).
    func database() throws -> AppDatabase { try AppDatabase(path: databasePath) }

    /// Occurrences of `needle` in the database file, its WAL and shm, by file.
    func scan(_ needle: [UInt8]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: files.map { (URL(fileURLWithPath: $0).lastPathComponent, occurrences(of: needle, inFile: $0)) })
    }

    func stop() { server.terminate() }
}

/// Concurrent keep-alive clients posting anonymous events until stopped: the background load the
/// promises must hold under.
final class EventLoad: Sendable {
    final class Counters: Sendable {
        let stopped = Atomic<Bool>(false)
        let accepted = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let sequence = Atomic<Int>(0)
    }
    private let counters = Counters()
    private let task: Task<Void, Never>
    let started = ContinuousClock.now

    /// `clients` keep-alive connections, each posting batches of 4 events at a steady pace so that
    /// together they offer `eventsPerSecond` (the same load on a fast or a slow machine: the
    /// database grows with the test's duration, not with the machine's speed).
    init(port: Int, site: String, clients: Int = 3, eventsPerSecond: Int = 400) {
        let c = counters
        let interval = Duration.seconds(Double(4 * clients) / Double(max(1, eventsPerSecond)))
        task = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<clients {
                    group.addTask {
                        while !c.stopped.load(ordering: .relaxed) {
                            try? await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                                var next = ContinuousClock.now
                                while !c.stopped.load(ordering: .relaxed) {
                                    let n = c.sequence.add(1, ordering: .relaxed).newValue
                                    let body = "{\"events\":[" + (0..<4).map { i in
                                        #"{"site":"\#(site)","url":"https://localhost/load/\#(n % 50)","id":"load-\#(n)-\#(i)"}"#
                                    }.joined(separator: ",") + "]}"
                                    let r = try await client.post("/api/event", headers: [
                                        .contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: "198.18.\(worker).\(n % 250)",
                                    ], body: ByteBuffer(string: body))
                                    if r.status == .accepted { c.accepted.add(4, ordering: .relaxed) } else { c.failed.add(1, ordering: .relaxed) }
                                    // A slow answer is not made up for with a burst.
                                    next = max(next + interval, ContinuousClock.now)
                                    try await Task.sleep(until: next)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stops the clients; returns (events accepted, requests refused, events per second).
    func stop() async -> (accepted: Int, failed: Int, perSecond: Double) {
        counters.stopped.store(true, ordering: .relaxed)
        await task.value
        let seconds = (ContinuousClock.now - started).inSeconds
        let n = counters.accepted.load(ordering: .relaxed)
        return (n, counters.failed.load(ordering: .relaxed), Double(n) / max(seconds, 0.001))
    }

    var acceptedSoFar: Int { counters.accepted.load(ordering: .relaxed) }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Sends `items` over `connections` keep-alive connections to the server on `port`, all at once:
/// item i on connection i % `connections`, each connection's in order.
func spread<Item: Sendable>(_ items: [Item], over connections: Int, port: Int, configuration: TestClient.Configuration = .init(),
                            _ send: @escaping @Sendable (TestClient, _ index: Int, Item) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for connection in 0..<connections {
            group.addTask {
                try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: configuration) { client in
                    for (i, item) in items.enumerated() where i % connections == connection { try await send(client, i, item) }
                }
            }
        }
        try await group.waitForAll()
    }
}

/// Polls `condition` every 100 ms for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// A random privacy key as pixel.js draws it (64 hex digits).
func randomPrivacyKey() -> String { Hex.encode(Sodium.randomBytes(32)) }

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to the server, for what a well-behaved client never does: trickling
/// bytes, odd transfer codings, reading a stream while doing something else.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw ServerProcess.CLIError(status: -4) }
    }

    /// Sends bytes; false once the server has closed the connection.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads what arrives within `seconds`; `closed` when the server ended the connection.
    func read(for seconds: Double, until stop: (String) -> Bool = { _ in false }) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, min(200, deadline.timeIntervalSinceNow * 1000))))
            if ready <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<n]
            if stop(String(decoding: received, as: UTF8.self)) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    deinit { close(fd) }
}

/// Resident memory of a process, in MB (from /proc).
func residentMB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

