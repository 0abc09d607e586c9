@testable import Collector
import Foundation
import Logging
@testable import Retention
import Traffic
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Store
import Testing

extension LiveServerTests {
    /// Issue 14, proven against the running binary: under concurrent posts from people and from
    /// bots of every layer, the people's events are stored with the families and classes the
    /// datasets give, no bot's is, the answers say "bot", and /metrics and /health count the drops
    /// per layer and name the datasets.
    @Suite struct BotLayerServedTests {
        static let people: [(ua: String, browser: String, os: String, device: String)] = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
             "Chrome", "Windows", "desktop"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
             "Mobile Safari", "iOS", "mobile"),
            ("Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1", "Nokia Services (WAP) Browser", "Other", "mobile"),
            ("Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
             "Chrome Mobile", "Android", "mobile"),
            ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.2.1 like Chrome/120.0.6099.230 Safari/537.36",
             "Amazon Silk", "Android", "tablet"),
        ]
        static let bots: [(ua: String, layer: String)] = [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "uap_spider"),
            ("python-requests/2.31.0", "crawler_list"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36", "crawler_list"),
            ("MyMonitor/1.0 (+https://monitor.example)", "contact"),
            ("l9tcpid/v1.0.0", "unidentified"),
            ("", "header"),
        ]

        @Test func peopleAreCountedAndEveryBotLayerDropsAndCounts() async throws {
            let dir = TempDir()
            let site = try ServerProcess.run(["sites", "add", "--data", dir.path, "--name", "Bots", "--domain", "example.com",
                                              "--policies", dir.path + "/no-policies"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
            let token = "bot-layers-token-0123456789"
            try await server.start(["--trusted-proxy", "127.0.0.1/32", "--metrics-token", token, "--rate-client", "1000", "--rate-site", "100000"])
            defer { server.terminate() }
            let rounds = 8
            // Each round posts every person and every bot (and a prefetch), from 4 tasks at once.
            let answers = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
                for task in 0..<4 {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                            var answers: [(String, String)] = []
                            for round in stride(from: task, to: rounds, by: 4) {
                                let ip = "81.2.\(round).\(task + 10)"
                                func post(_ ua: String, _ tag: String, purpose: String? = nil) async throws {
                                    var headers: HTTPFields = [.contentType: "text/plain", .init("X-Forwarded-For")!: ip]
                                    if !ua.isEmpty { headers[.userAgent] = ua }
                                    if let purpose { headers[.init("Sec-Purpose")!] = purpose }
                                    let body = #"{"site":"\#(site)","url":"https://example.com/\#(tag)","id":"\#(tag)-\#(round)"}"#
                                    let r = try await client.post("/api/event", headers: headers, body: ByteBuffer(string: body))
                                    answers.append((tag, "\(r.status.code) " + (r.body.map { String(buffer: $0) } ?? "")))
                                }
                                for (i, person) in Self.people.enumerated() { try await post(person.ua, "person\(i)") }
                                for (i, bot) in Self.bots.enumerated() { try await post(bot.ua, "bot\(i)") }
                                try await post(Self.people[0].ua, "prefetch", purpose: "prefetch")
                            }
                            return answers
                        }
                    }
                }
                var all: [(String, String)] = []
                for try await part in group { all += part }
                return all
            }
            #expect(answers.count == rounds * (Self.people.count + Self.bots.count + 1))
            for (tag, answer) in answers {
                if tag.hasPrefix("person") {
                    #expect(answer.hasPrefix("202 ") && answer.contains(#""accepted":1"#), "\(tag): \(answer)")
                } else {
                    #expect(answer.hasPrefix("202 ") && answer.contains(#""accepted":0"#) && answer.contains("bot"), "\(tag): \(answer)")
                }
            }
            // What is on disk: the people's events only, classified.
            let db = dir.file("candor.sqlite")
            let rows = try sqlite3(db, "SELECT path, browser, os, device, count(*) FROM events GROUP BY path, browser, os, device ORDER BY path")
                .output.split(separator: "\n").map(String.init)
            #expect(rows == Self.people.enumerated().map { i, p in "/person\(i)|\(p.browser)|\(p.os)|\(p.device)|\(rounds)" })
            // The counters, per layer, and the datasets.
            let (metrics, health) = try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                let auth: HTTPFields = [.authorization: "Bearer \(token)"]
                let m = try await client.execute(.init("/metrics", method: .get, headers: auth))
                let h = try await client.execute(.init("/health", method: .get, headers: auth))
                return (m.body.map { String(buffer: $0) } ?? "", h.body.map { String(buffer: $0) } ?? "")
            }
            var expected: [String: Int] = ["speculative": rounds]
            for bot in Self.bots { expected[bot.layer, default: 0] += rounds }
            for (layer, n) in expected {
                #expect(metrics.contains("candor_bot_drops_total{layer=\"\(layer)\"} \(n)\n"), "\(layer)")
                #expect(health.contains("\"\(layer)\":\(n)"), "\(layer)")
            }
            #expect(metrics.contains("candor_events_dropped_total{reason=\"bot\"} \(rounds * (Self.bots.count + 1))\n"))
            for package in ["uap-core", "crawler-user-agents", "ruby-referer-parser"] {
                #expect(health.contains("\"package\":\"\(package)\""), "\(package)")
            }
        }

        /// The data-centre layer is a policy's choice: a site whose policy drops data-centre
        /// networks counts nothing from the listed autonomous systems (IPv4 and IPv6), a site on
        /// another policy counts the same requests, and a server asked to apply the layer without
        /// its list or its ASN database refuses to start and says what is missing.
        @Test func dataCentreNetworksAreDroppedWhereThePolicySaysSo() async throws {
            let dir = TempDir()
            let policies = dir.path + "/no-policies"
            try FileManager.default.createDirectory(atPath: policies, withIntermediateDirectories: true)
            try "[bots]\ndrop_datacenter_networks = true\n".write(toFile: policies + "/strict.toml", atomically: true, encoding: .utf8)
            let list = dir.file("asn.txt")
            try "# data centres\nAS29518 # the fixture's Swedish network\n\n6939 # Hurricane Electric\n".write(toFile: list, atomically: true, encoding: .utf8)
            func add(_ name: String, _ policy: String) throws -> String {
                try ServerProcess.run(["sites", "add", "--data", dir.path, "--name", name, "--domain", "example.com", "--policy", policy,
                                       "--policies", policies]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let strict = try add("Strict", "strict"), open = try add("Open", "default")

            // Without the list (or without the ASN database) the server does not start.
            for extra in [["--geoip-asn", Fixtures.asnDB], ["--datacenter-asns", list]] {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: ServerProcess.binary)
                p.arguments = ["serve", "--data", dir.path, "--port", "0", "--policies", policies] + extra
                let err = Pipe()
                p.standardError = err
                p.standardOutput = FileHandle.nullDevice
                try p.run()
                let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                #expect(p.terminationStatus != 0)
                #expect(text.contains("policy strict drops data-centre networks") && text.contains("--datacenter-asns") && text.contains("--geoip-asn"), "\(text)")
            }

            let server = ServerProcess(data: dir.path, logPath: dir.file("server.log"))
            let token = "datacentre-token-0123456789"
            try await server.start(["--trusted-proxy", "127.0.0.1/32", "--metrics-token", token, "--rate-client", "1000", "--rate-site", "100000",
                                    "--geoip-asn", Fixtures.asnDB, "--datacenter-asns", list])
            defer { server.terminate() }
            // Listed: 89.160.20.112/28 (AS29518), 2600:7000::/24 (AS6939). Not listed: 12.81.92.0/22
            // (AS7018); 81.2.69.142 has no network in the fixture.
            let addresses: [(ip: String, listed: Bool)] = [("89.160.20.113", true), ("2600:7000::5", true), ("12.81.92.7", false), ("81.2.69.142", false)]
            let person = Self.people[0].ua
            let rounds = 6
            let answers = try await withThrowingTaskGroup(of: [(String, Bool, String)].self) { group in
                for task in 0..<3 {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                            var answers: [(String, Bool, String)] = []
                            for round in stride(from: task, to: rounds, by: 3) {
                                for (site, tag) in [(strict, "strict"), (open, "open")] {
                                    for (i, a) in addresses.enumerated() {
                                        let headers: HTTPFields = [.contentType: "text/plain", .userAgent: person, .init("X-Forwarded-For")!: a.ip]
                                        let body = #"{"site":"\#(site)","url":"https://example.com/\#(tag)/\#(i)","id":"\#(tag)-\#(i)-\#(round)"}"#
                                        let r = try await client.post("/api/event", headers: headers, body: ByteBuffer(string: body))
                                        answers.append((tag, tag == "strict" && a.listed, "\(r.status.code) " + (r.body.map { String(buffer: $0) } ?? "")))
                                    }
                                }
                            }
                            return answers
                        }
                    }
                }
                var all: [(String, Bool, String)] = []
                for try await part in group { all += part }
                return all
            }
            #expect(answers.count == rounds * 2 * addresses.count)
            for (tag, dropped, answer) in answers {
                if dropped {
                    #expect(answer.hasPrefix("202 ") && answer.contains(#""accepted":0"#) && answer.contains("bot"), "\(tag): \(answer)")
                } else {
                    #expect(answer.hasPrefix("202 ") && answer.contains(#""accepted":1"#), "\(tag): \(answer)")
                }
            }
            let rows = try sqlite3(dir.file("candor.sqlite"), "SELECT path, count(*) FROM events GROUP BY path ORDER BY path")
                .output.split(separator: "\n").map(String.init)
            #expect(rows == ["/open/0|\(rounds)", "/open/1|\(rounds)", "/open/2|\(rounds)", "/open/3|\(rounds)", "/strict/2|\(rounds)", "/strict/3|\(rounds)"])
            let (metrics, health) = try await TestClient.withClient(host: "127.0.0.1", port: server.port) { client in
                let auth: HTTPFields = [.authorization: "Bearer \(token)"]
                let m = try await client.execute(.init("/metrics", method: .get, headers: auth))
                let h = try await client.execute(.init("/health", method: .get, headers: auth))
                return (m.body.map { String(buffer: $0) } ?? "", h.body.map { String(buffer: $0) } ?? "")
            }
            #expect(metrics.contains("candor_bot_drops_total{layer=\"datacenter\"} \(rounds * 2)\n"))
            #expect(health.contains("\"datacenter\":\(rounds * 2)"))
            #expect(health.contains("\"data-centre networks\"") && health.contains("\"entries\":2"), "\(health)")
        }
    }
}

/// Review fixes: a list saved with Windows line ends keeps every entry; a job run at start is due
/// when the process starts, whenever it last ran; odd months in the address never crash.
@Suite struct ReviewFixTests {
    @Test func aDataCentreListWithCRLFLineEndsKeepsEveryEntry() throws {
        let dir = TempDir()
        let path = dir.file("asn.txt")
        try "AS16509 # Amazon\r\n# comment\r\n14061\r\n\r\nAS24940 # Hetzner\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try DatacenterNetworks(list: path).numbers == [16509, 14061, 24940])
        try "AS1\r\nnot-a-number\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: DatasetError.self) { try DatacenterNetworks(list: path) }
    }

    @Test func aJobRunAtStartIsDueAtStartWheneverItLastRan() throws {
        let dir = TempDir()
        let database = try AppDatabase(path: dir.file("candor.sqlite"))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let t = Int64(start.timeIntervalSince1970 * 1000)
        try database.recordRun(job: "rollups", at: t - 10_000, detail: nil)
        try database.recordRun(job: "purge", at: t - 10_000, detail: nil)
        let rollups = ScheduledJob(name: "rollups", interval: .seconds(60), atStart: true) { "" }
        let purge = ScheduledJob(name: "purge", interval: .seconds(60)) { "" }
        let scheduler = JobScheduler(ledger: database, jobs: [rollups, purge], logger: Logger(label: "test"), now: { start })
        #expect(try scheduler.nextDue(rollups, at: t) == t)
        #expect(try scheduler.nextDue(purge, at: t) == t + 50_000)
        try database.recordRun(job: "rollups", at: t + 1, detail: nil)
        #expect(try scheduler.nextDue(rollups, at: t + 2) == t + 60_001)
    }
}
