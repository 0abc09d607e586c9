@testable import Collector
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Synchronization
import Testing

/// The real `candor` binary, started as a user would, on its own data directory and port.
final class ServerProcess: @unchecked Sendable {
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["CANDOR_BIN"] { return b }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/candor").path
    }

    let data: String
    let port: Int
    let logPath: String
    private var process: Process?
    /// The running server's process id (0 when stopped).
    var pid: Int32 { process?.processIdentifier ?? 0 }

    init(data: String, logPath: String) {
        self.data = data
        self.logPath = logPath
        // Below Linux's ephemeral range (32768–60999), which outgoing connections (the tests'
        // clients, the delivery service's) take their local ports from: one of those holding
        // the port would make the bind fail.
        self.port = Int.random(in: 20_000..<32_700)
    }

    /// Runs a CLI command to completion and returns its standard output.
    static func run(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CLIError(status: p.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }
    struct CLIError: Error, Equatable { let status: Int32 }

    func start(_ extra: [String] = []) async throws {
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["serve", "--data", data, "--port", String(port), "--policies", data + "/no-policies"] + extra
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        for _ in 0..<200 {
            if (try? await get("/healthz"))?.status == .ok { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Say why: the end of the server's log.
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        print("candor serve did not answer on port \(port) within 10 s; running: \(p.isRunning); log ends:\n"
              + text.split(separator: "\n").suffix(15).joined(separator: "\n"))
        throw CLIError(status: -1)
    }

    func get(_ path: String) async throws -> TestClient.Response {
        try await TestClient.withClient(host: "127.0.0.1", port: port) { try await $0.get(path) }
    }

    func terminate() {
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    deinit { kill9() }
}

extension LiveServerTests {
    @Suite struct ProcessTests {
        static let marker = "CandorUAMarker-7f3a9c"
        static let ips = ["81.2.69.142", "89.160.20.112", "216.160.83.56", "2001:218::1", "2600:7000::1", "175.16.199.0"]

        func post(_ client: TestClient, _ body: String, ip: String, ua: String, extra: HTTPFields = [:]) async throws -> TestClient.Response {
            var headers: HTTPFields = [.contentType: "text/plain", .userAgent: ua, .init("X-Forwarded-For")!: ip]
            headers.append(contentsOf: extra)
            return try await client.post("/api/event", headers: headers, body: ByteBuffer(string: body))
        }

        /// Posts events from distinctive addresses with a distinctive user-agent marker through the
        /// real server (trusted proxy, GeoIP, debug logging), then scans the SQLite file, its WAL and
        /// shm, and the server log: the addresses and the marker must appear nowhere.
        @Test func rawAddressesAndUserAgentsNeverReachDiskOrLogs() async throws {
            let dir = TempDir()
            let site = try ServerProcess.run(["sites", "add", "--data", dir.path, "--name", "Privacy", "--domain", "example.com",
                                              "--policies", dir.path + "/no-policies"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
            try await server.start(["--trusted-proxy", "127.0.0.1/32", "--geoip-city", Fixtures.cityDB, "--geoip-asn", Fixtures.asnDB,
                                    "--log-level", "trace", "--rate-client", "3"])
            let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \(Self.marker) Chrome/131.0 Safari/537.36"
            let accepted = try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                var accepted = 0
                var n = 0
                for ip in Self.ips {
                    for consent in ["\"unset\"", "\"denied\"", "{\"analytics\":true,\"marketing\":true}"] {
                        n += 1
                        let body = #"{"site":"\#(site)","url":"https://example.com/p\#(n)?gclid=g\#(n)","id":"ev\#(n)","consent":\#(consent),"subject":"subj-0123456789abcdef\#(n)","referrer":"https://news.ycombinator.com/item"}"#
                        let r = try await post(client, body, ip: ip, ua: ua)
                        if r.status == .accepted { accepted += 1 }
                        #expect(r.status == .accepted || r.status == .tooManyRequests)
                    }
                    // Refused requests must not leak either: malformed, unknown site, bot, rate limited, DNT.
                    _ = try await post(client, "{broken", ip: ip, ua: ua)
                    _ = try await post(client, #"{"site":"nosuchsite","url":"https://example.com/"}"#, ip: ip, ua: ua)
                    _ = try await post(client, #"{"site":"\#(site)","url":"https://example.com/"}"#, ip: ip, ua: "Googlebot \(Self.marker)")
                    let dnt = try await post(client, #"{"site":"\#(site)","url":"https://example.com/dnt"}"#, ip: ip, ua: ua, extra: [.init("DNT")!: "1"])
                    if dnt.body.map({ String(buffer: $0) })?.hasPrefix(#"{"accepted":1"#) == true { accepted += 1 }
                }
                _ = try await client.get("/p.gif?site=\(site)&url=https%3A%2F%2Fexample.com%2Fimg")
                return accepted
            }
            #expect(accepted >= Self.ips.count * 3)
            let files = ["candor.sqlite", "candor.sqlite-wal", "candor.sqlite-shm", "server.log"].map(dir.file)
            func scan(_ when: String) {
                for file in files {
                    for ip in Self.ips {
                        #expect(occurrences(of: ip, inFile: file) == 0, "\(ip) found in \(file) (\(when))")
                        // IPv6 addresses also in binary (16 bytes cannot match by chance; 4 could).
                        if ip.contains(":") {
                            #expect(occurrences(of: ipBytes(ip)!, inFile: file) == 0, "binary \(ip) in \(file) (\(when))")
                        }
                    }
                    #expect(occurrences(of: Self.marker, inFile: file) == 0, "user-agent marker found in \(file) (\(when))")
                }
            }
            scan("while running")
            server.terminate()
            scan("after shutdown")
            // The test is not vacuous: events with geo were stored and the log was written.
            let db = try AppDatabase(path: dir.file("candor.sqlite"))
            let rows = try db.events(site: site)
            #expect(rows.count == accepted)
            #expect(Set(rows.compactMap(\.country)).isSuperset(of: ["GB", "SE", "US", "JP", "CN"]))
            #expect(rows.contains { $0.asn == 6939 })
            #expect(rows.allSatisfy { $0.decision == .identified || $0.subject == nil })
            #expect((try? String(contentsOfFile: dir.file("server.log"), encoding: .utf8))?.contains("request refused") == true)
        }

        /// Load from concurrent clients, kill -9, restart: every event answered 202 is stored.
        @Test func acknowledgedEventsSurviveKillNine() async throws {
            let dir = TempDir()
            let site = try ServerProcess.run(["sites", "add", "--data", dir.path, "--name", "Crash", "--domain", "example.com",
                                              "--policies", dir.path + "/no-policies"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
            try await server.start(["--rate-client", "1000000", "--rate-site", "1000000"])
            let acknowledged = Acknowledged()
            let port = server.port
            let deadline = ContinuousClock.now + .seconds(3)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        try? await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                            var sequence = 0
                            while true {
                                let ids = (0..<5).map { i in "w\(worker)-\(sequence)-\(i)" }
                                sequence += 1
                                let body = "{\"events\":[" + ids.map { #"{"site":"\#(site)","url":"https://example.com/x","id":"\#($0)"}"# }.joined(separator: ",") + "]}"
                                let r = try await client.post("/api/event", headers: [.contentType: "text/plain", .userAgent: chromeUA],
                                                              body: ByteBuffer(string: body))
                                if r.status == .accepted { acknowledged.add(ids) }
                            }
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(until: deadline)
                    server.kill9()
                }
                try await group.waitForAll()
            }
            let acked = acknowledged.all
            #expect(acked.count > 100, "the load produced acknowledged events")
            try await server.start()
            #expect(try await server.get("/healthz").status == .ok)
            server.terminate()
            let db = try AppDatabase(path: dir.file("candor.sqlite"))
            #expect(try db.integrityCheck() == "ok")
            let stored = try db.clientIDs(site: site)
            #expect(acked.subtracting(stored).isEmpty, "\(acked.subtracting(stored).count) acknowledged events lost")
            print("crash test: \(acked.count) events acknowledged before kill -9, \(stored.count) stored")
        }

        /// The privacy officer's command line, end to end on a real data directory.
        @Test func privacyOfficeCommandLine() throws {
            let dir = TempDir()
            let data = ["--data", dir.path, "--policies", dir.path + "/no-policies"]
            let initOut = try ServerProcess.run(["init"] + data)
            let site = try #require(initOut.split(separator: "\n").first { $0.hasPrefix("Demo site id: ") }?
                .dropFirst("Demo site id: ".count).split(separator: " ").first.map(String.init))

            let key = try ServerProcess.run(["keys", "add", "--site", site, "--label", "dpo"] + data)
            #expect(key.hasPrefix("ck_"))
            #expect(try ServerProcess.run(["keys", "list", "--site", site] + data).contains("\tdpo\t"))

            let forget = try ServerProcess.run(["forget", "--site", site, "--email", "someone@example.org", "--now"] + data)
            #expect(forget.contains("\treceived\tdeadline "))
            #expect(forget.contains(#""subject_kind":"email""#) && forget.contains(#""filed_by":"cli""#))
            #expect(try ServerProcess.run(["requests", "list", "--site", site] + data).contains("\temail\tdone\t"))
            #expect(throws: ServerProcess.CLIError.self) {
                try ServerProcess.run(["forget", "--site", site, "--email", "a@b.example", "--subject", "x"] + data)
            }

            let plan = try ServerProcess.run(["purge", "--dry-run"] + data)
            #expect(plan.contains("\(site)\tevents\t0\tolder than 180 days"))
            #expect(plan.contains("*\t") == false)   // the default policy keeps the audit log
            #expect(try ServerProcess.run(["purge"] + data).contains("deleted or cleared 0 row(s)"))

            let out = dir.path + "/export"
            #expect(try ServerProcess.run(["export", "--site", site, "--subject", "abcdefabcdefabcdef", "--format", "csv", "--out", out] + data)
                .contains("events.csv"))
            #expect(FileManager.default.fileExists(atPath: out + "/consent_records.csv"))
            #expect(try ServerProcess.run(["record-of-processing"] + data).contains("# Record of processing"))

            let verified = try ServerProcess.run(["audit", "verify"] + data)
            #expect(verified.hasPrefix("ok: "))
            let actions = try ServerProcess.run(["audit", "list"] + data)
            for action in ["request_received", "request_done", "purge_ran", "export_made"] { #expect(actions.contains("\t\(action)\t")) }

            let sqlite = Process()
            sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            sqlite.arguments = [dir.path + "/candor.sqlite", "DROP TRIGGER audit_log_append_only; UPDATE audit_log SET actor = 'someone else' WHERE seq = 2"]
            try sqlite.run()
            sqlite.waitUntilExit()
            #expect(sqlite.terminationStatus == 0)
            #expect(throws: ServerProcess.CLIError(status: 1)) { try ServerProcess.run(["audit", "verify"] + data) }
        }
    }
}

final class Acknowledged: Sendable {
    private let ids = Mutex<Set<String>>([])
    func add(_ new: [String]) { ids.withLock { $0.formUnion(new) } }
    var all: Set<String> { ids.withLock { $0 } }
}
