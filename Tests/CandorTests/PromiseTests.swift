import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Storage
import Testing

extension LiveServerTests {
    /// Issue 12's promises, proven against the running `candor serve` (the real binary, its files on
    /// disk, its HTTP answers), under concurrent event load.
    @Suite struct PromiseTests {
        /// Posts a consented visit of the subject behind `key` (3 events in one visit) and its consent
        /// record (linked with the key); returns the subject id.
        func consentedVisit(_ install: LiveInstall, key: String, from ip: String) async throws -> String {
            let subject = try #require(PrivacyKey.subject(forKey: key))
            let consent = #"{"analytics":true,"marketing":true}"#
            let body = "{\"events\":[" + ["/welcome", "/pricing", "/signup"].enumerated().map { i, path in
                #"{"site":"\#(install.site)","url":"https://localhost\#(path)","id":"\#(subject)-\#(i)","consent":\#(consent),"subject":"\#(subject)"}"#
            }.joined(separator: ",") + "]}"
            let headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: ip, .origin: "http://localhost"]
            let r = try await install.request(.post, "/api/event", headers: headers, body: body)
            #expect(r.status == .accepted && r.body.hasPrefix(#"{"accepted":3"#), "\(r.body)")
            let record = try await install.request(.post, "/api/consent", headers: headers,
                                                   body: #"{"site":"\#(install.site)","banner":"1","analytics":true,"marketing":true,"key":"\#(key)"}"#)
            #expect(record.status == .created, "\(record.body)")
            return subject
        }

        /// What a done request's receipt says, checked against what was sent.
        func checkReceipt(_ text: String?, sourceLocation: SourceLocation = #_sourceLocation) {
            guard let text, let receipt = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                Issue.record("no receipt", sourceLocation: sourceLocation)
                return
            }
            #expect(receipt["deleted"] as? [String: Int] == ["events": 3, "sessions": 1, "conversions": 0, "consent_records": 0],
                    sourceLocation: sourceLocation)
            #expect(receipt["consent_records_kept_unlinked"] as? Int == 1, sourceLocation: sourceLocation)
            let verified = receipt["verified"] as? [String: Any]
            #expect(verified?["rows_linked_after_deletion"] as? Int == 0, sourceLocation: sourceLocation)
            #expect((verified?["write_ahead_log"] as? [String: Any])?["bytes_after"] as? Int == 0, sourceLocation: sourceLocation)
            // The free-space pass read every table and index page of the file (a few hundred here).
            let pass = (verified?["write_ahead_log"] as? [String: Any])?["free_space"] as? [String: Any]
            #expect((pass?["pages_read"] as? Int ?? 0) > 10 && (pass?["pages_zeroed"] as? Int ?? -1) >= 0, "\(pass ?? [:])", sourceLocation: sourceLocation)
            #expect(receipt["receipt_version"] as? Int == 4, sourceLocation: sourceLocation)
        }

        /// Issue 12, finding 1: 20 erasures through each path (CLI, officer API, self-service,
        /// dashboard), 5 purges and 5 salt destructions while three keep-alive clients post events.
        /// After each: no byte of the subject's hash (nor a purged row, nor an old salt) in the
        /// database file, its WAL or shm; every receipt true; every audit entry there; the chain intact.
        @Test func erasurePurgeAndSaltDestructionUnderLoadLeaveNothingBehind() async throws {
            let install = try await LiveInstall(serve: ["--requests-every", "0.1", "--purge-every", "0"])
            let load = EventLoad(port: install.server.port, site: install.site)
            var subjects: [String: [String]] = [:]   // path → subject ids
            var keys: [String: String] = [:]        // subject → key
            var n = 0
            for path in ["cli", "api", "self-service", "dashboard"] {
                for _ in 0..<20 {
                    n += 1
                    let key = randomPrivacyKey()
                    let subject = try await consentedVisit(install, key: key, from: "198.19.\(n / 250).\(n % 250)")
                    subjects[path, default: []].append(subject)
                    keys[subject] = key
                }
            }
            let database = try install.database()
            let hasher = try SubjectHasher(database: database)
            func leftovers(_ subject: String) -> [String: Int] {
                install.scan(sqliteIntegerBytes(hasher.hash(subject))).filter { $0.value > 0 }
            }
            #expect(!leftovers(subjects["cli"]![0]).isEmpty, "the scan finds a subject's hash while it is stored")

            // CLI: forget --now prints the receipt once the WAL truncation was verified; when it cannot
            // be verified in time (exit 3) the request stays erasing and the server completes it.
            var cliAttempts: [Int] = []
            var cliLeftErasing = 0
            for subject in subjects["cli"]! {
                do {
                    let out = try install.cli(["forget", "--site", install.site, "--subject", subject, "--now"])
                    let receipt = String(out.split(separator: "\n").last ?? "")
                    checkReceipt(receipt)
                    if let r = try? JSONSerialization.jsonObject(with: Data(receipt.utf8)) as? [String: Any],
                       let attempts = ((r["verified"] as? [String: Any])?["write_ahead_log"] as? [String: Any])?["attempts"] as? Int {
                        cliAttempts.append(attempts)
                    }
                    #expect(leftovers(subject).isEmpty, "CLI: \(leftovers(subject))")
                } catch let error as ServerProcess.CLIError where error.status == 3 {
                    cliLeftErasing += 1
                }
            }

            // Officer API: filed with the privacy-officer key, carried out by the server's scheduler.
            var filed: [String: String] = [:]   // request → subject
            let officer: HTTPFields = [.authorization: "Bearer \(install.officerKey)", .contentType: "application/json"]
            for subject in subjects["api"]! {
                let r = try await install.request(.post, "/api/v1/privacy/requests", headers: officer, body: #"{"subject":"\#(subject)"}"#)
                #expect(r.status == .accepted)
                let id = try #require((try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["request"] as? String)
                filed[id] = subject
            }
            // Self-service: the browser's key, its origin, each from its own address.
            for (i, subject) in subjects["self-service"]!.enumerated() {
                let r = try await install.request(.post, "/api/privacy/forget", headers: [
                    .contentType: "text/plain", .origin: "http://localhost", .init("X-Forwarded-For")!: "198.20.0.\(i + 1)",
                ], body: #"{"site":"\#(install.site)","key":"\#(keys[subject]!)"}"#)
                #expect(r.status == .accepted, "\(r.body)")
                let id = try #require((try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["request"] as? String)
                filed[id] = subject
            }
            // Dashboard: the owner files them in the privacy center and presses "carry out now".
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let form: HTTPFields = [.cookie: owner.cookie, .contentType: "application/x-www-form-urlencoded"]
            for subject in subjects["dashboard"]! {
                let r = try await install.request(.post, "/privacy/file", headers: form,
                                                  body: "csrf=\(owner.csrf)&site=\(install.site)&kind=subject&value=\(subject)")
                #expect(r.status == .seeOther && r.headers[.location]?.hasPrefix("/privacy?filed=") == true)
            }
            let pressed = try await install.request(.post, "/privacy/run", headers: form, body: "csrf=\(owner.csrf)")
            #expect(pressed.status == .ok && pressed.body.contains("request(s) done"), "\(pressed.body.prefix(300))")

            // Everything filed is done within a few scheduler runs, each with a true receipt.
            let done = try await eventually(180) {
                try database.privacyRequests(site: install.site).allSatisfy { $0.status == .done }
            }
            let notDone = try database.privacyRequests(site: install.site).filter { $0.status != .done }.map { "\($0.id) \($0.status)" }
            #expect(done, "\(notDone)")
            let requests = try database.privacyRequests(site: install.site)
            #expect(requests.count == 80)
            for r in requests {
                checkReceipt(r.receipt)
                #expect(r.subjectHash == nil)
            }
            for (path, list) in subjects {
                for subject in list { #expect(leftovers(subject).isEmpty, "\(path): \(leftovers(subject))") }
            }
            let audit = try database.auditEntries(limit: 100_000)
            for r in requests {
                for action in ["request_received", "request_erased", "request_done"] {
                    #expect(audit.contains { $0.action == action && $0.detail.contains(#""request":"\#(r.id)""#) }, "\(action) of \(r.id)")
                }
            }

            // Purges: rows older than the retention, written straight into the file, go with their bytes.
            // The marker is each row's client id (paths live on, aggregated, in the rollups, whose
            // retention is their own).
            let old = Int64(Date().timeIntervalSince1970 * 1000) - 400 * 86_400_000
            for p in 0..<5 {
                let marker = "purge-marker-\(p)-\(UUID().uuidString.prefix(8))"
                let values = (0..<50).map { i in
                    "('\(install.site)', '\(marker)-\(i)', \(old + Int64(i)), 'pageview', '/old', 'anonymous', \(Int64.random(in: 1...Int64.max)), 'direct')"
                }.joined(separator: ",")
                #expect(try sqlite3(install.databasePath,
                                    "INSERT INTO events (site_id, client_id, ts, name, path, decision, visitor, source_type) VALUES \(values);").status == 0)
                let before = install.scan(Array(marker.utf8))
                #expect(before.values.reduce(0, +) > 0 && before.values.allSatisfy { $0 >= 0 }, "marker \(p) before the purge: \(before)")
                // Exit 3: deleted, the truncation not verified in time; the server's next scrub verifies it.
                var verified = try install.cliAllowingRetry(["purge"]).contains("write-ahead log truncated at")
                if !verified { verified = try await eventually(150) { try database.unverifiedPurgeRuns().isEmpty } }
                #expect(verified)
                let after = install.scan(Array(marker.utf8))
                #expect(after.values.allSatisfy { $0 == 0 }, "purge \(p): \(after)")
            }
            let purges = try database.recentAuditEntries(limit: 100, action: "purge_ran")
            #expect(purges.count == 5 && purges.allSatisfy { $0.detail.contains("wal_truncated_at") })
            #expect(purges.filter { $0.detail.contains(#""\#(install.site):events":50"#) }.count == 5)

            // Salt destruction: expired salts (written into the file) are deleted and, once the WAL is
            // truncated, recorded destroyed; their bytes are nowhere.
            let today = Int64(Date().timeIntervalSince1970) / 86_400
            for s in 0..<5 {
                let salt = Sodium.randomBytes(32)
                #expect(try sqlite3(install.databasePath, "INSERT INTO salts (day, salt) VALUES (\(today - 10 - Int64(s)), X'\(Hex.encode(salt))');")
                    .status == 0)
                // The server's own rotation may destroy it first (it deletes every expired salt it finds).
                let before = install.scan(salt)
                let destroyedByServer = try database.recentAuditEntries(limit: 50, action: "salt_destroyed")
                    .contains { $0.detail.contains(#""day":\#(today - 10 - Int64(s))"#) }
                #expect((before.values.reduce(0, +) > 0 || destroyedByServer) && before.values.allSatisfy { $0 >= 0 }, "salt \(s) before: \(before)")
                let out = try install.cliAllowingRetry(["rotate-salt"])
                var verified = out.contains("destroyed: \(today - 10 - Int64(s))")
                if !verified { verified = try await eventually(150) { try database.pendingSaltDestructions().isEmpty } }
                #expect(verified, "\(out)")
                let after = install.scan(salt)
                #expect(after.values.allSatisfy { $0 == 0 }, "salt \(s): \(after)")
            }
            let destroyed = try database.recentAuditEntries(limit: 100, action: "salt_destroyed")
            #expect(destroyed.count >= 5)
            #expect(try database.pendingSaltDestructions().isEmpty)

            let figures = await load.stop()
            #expect(figures.accepted > 1000 && figures.failed == 0, "\(figures)")
            #expect(try install.cli(["audit", "verify"]).hasPrefix("ok: "))
            print("erasure under load: \(figures.accepted) events accepted at \(Int(figures.perSecond))/s meanwhile, \(figures.failed) refused; "
                  + "80 erasures, 5 purges, 5 salt destructions verified; CLI truncation attempts \(cliAttempts.min() ?? 0)-\(cliAttempts.max() ?? 0), "
                  + "\(cliLeftErasing) CLI erasure(s) left erasing and completed by the server")
            install.stop()
        }

        /// The analytics engine holds today in memory (the rollup job reloads it every half second
        /// here); an erasure, under event load, takes the subject out of every figure the server
        /// answers from the moment its rows are deleted: the site page's filtered view and the CSV
        /// export (as the owner, unfolded), and the engine's reloaded day afterwards.
        @Test func anErasureTakesTheSubjectOutOfTheEnginesFiguresAtOnce() async throws {
            let install = try await LiveInstall(serve: ["--requests-every", "0.1", "--purge-every", "0", "--rollups-every", "0.5"])
            let load = EventLoad(port: install.server.port, site: install.site, clients: 2, eventsPerSecond: 300)
            let consent = #"{"analytics":true,"marketing":true}"#
            var subjects: [(subject: String, path: String)] = []
            for i in 0..<3 {
                let subject = try #require(PrivacyKey.subject(forKey: randomPrivacyKey()))
                // Letters only: the collector minimizes runs of digits in paths.
                let path = "/only-" + String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! })
                let body = "{\"events\":[" + (0..<2).map { n in
                    #"{"site":"\#(install.site)","url":"https://localhost\#(path)","id":"\#(subject)-\#(n)","consent":\#(consent),"subject":"\#(subject)"}"#
                }.joined(separator: ",") + "]}"
                let r = try await install.request(.post, "/api/event", headers: [
                    .contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: "198.21.0.\(i + 1)", .origin: "http://localhost",
                ], body: body)
                #expect(r.status == .accepted, "\(r.body)")
                subjects.append((subject, path))
            }
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let site = install.site
            func export() async throws -> String {
                try await install.request(.get, "/sites/\(site)/export?range=today&dimension=path", headers: [.cookie: owner.cookie]).body
            }
            func filtered(_ path: String) async throws -> String {
                try await install.request(.get, "/sites/\(site)?range=today&f.path=\(path)", headers: [.cookie: owner.cookie]).body
            }
            func engineEvents() async throws -> Int {
                let m = try await install.request(.get, "/metrics", headers: [.authorization: "Bearer \(testMetricsToken)"]).body
                return m.split(separator: "\n").first { $0.hasPrefix("candor_engine_events_loaded ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            }
            // The engine has loaded the day with every subject's page.
            let held = try await eventually(60) {
                let text = try await export()
                return try await engineEvents() > 0 && subjects.allSatisfy { text.contains("\($0.path),1,2") }
            }
            let before = try await export()
            #expect(held, "\(before.prefix(400))")
            // The erasures happen while events keep arriving.
            #expect(try await eventually(30) { load.acceptedSoFar >= 300 })
            let first = try await filtered(subjects[0].path)
            #expect(first.contains("<span>Visitors</span><strong>1</strong>"))
            for (i, s) in subjects.enumerated() {
                // Erased through the CLI (a separate process): the server learns of it only from the database.
                do {
                    _ = try install.cli(["forget", "--site", site, "--subject", s.subject, "--now"])
                } catch let error as ServerProcess.CLIError where error.status == 3 {
                    // Rows deleted, WAL truncation pending: the figures must already be without them.
                }
                let text = try await export()
                #expect(!text.contains(s.path), "erased subject \(i) still in the export")
                for other in subjects[(i + 1)...] { #expect(text.contains("\(other.path),1,2"), "subject \(i): \(other.path) missing") }
                let page = try await filtered(s.path)
                #expect(page.contains("<span>Visitors</span><strong>0</strong>") && page.contains("<span>Pageviews</span><strong>0</strong>"),
                        "erased subject \(i) still counted on the filtered page")
            }
            // The engine reloads the day (the rollup job) and answers again, without them.
            let reloaded = try await eventually(30) { try await engineEvents() > 0 }
            #expect(reloaded)
            let after = try await export()
            #expect(subjects.allSatisfy { !after.contains($0.path) }, "\(after.prefix(400))")
            let figures = await load.stop()
            #expect(figures.accepted >= 300 && figures.failed == 0, "\(figures)")
            install.stop()
        }

        /// A reader holding an old snapshot keeps the WAL from being truncated: the request stays
        /// `erasing`, with no receipt and no `request_done`; once the reader is gone it completes.
        @Test func aHeldReadKeepsARequestErasingUntilTheWALCanBeTruncated() async throws {
            let install = try await LiveInstall(serve: ["--requests-every", "0.1", "--purge-every", "0"])
            let load = EventLoad(port: install.server.port, site: install.site, clients: 2, eventsPerSecond: 300)
            let key = randomPrivacyKey()
            let subject = try await consentedVisit(install, key: key, from: "198.19.9.9")
            let reader = try HeldRead(path: install.databasePath)
            let r = try await install.request(.post, "/api/v1/privacy/requests",
                                              headers: [.authorization: "Bearer \(install.officerKey)"], body: #"{"subject":"\#(subject)"}"#)
            let id = try #require((try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["request"] as? String)
            let database = try install.database()
            #expect(try await eventually(30) { try database.privacyRequest(id: id)?.status == .erasing })
            // Its rows are gone, but it is not done while the WAL may hold their pages.
            try await Task.sleep(for: .seconds(8))
            let waiting = try #require(try database.privacyRequest(id: id))
            #expect(waiting.status == .erasing && waiting.receipt == nil)
            #expect(!(try database.recentAuditEntries(limit: 50).contains { $0.action == "request_done" }))
            let status = try await install.request(.get, "/api/v1/privacy/requests/\(id)", headers: [.authorization: "Bearer \(install.officerKey)"])
            #expect(status.body.contains(#""status":"erasing""#))
            reader.release()
            #expect(try await eventually(60) { try database.privacyRequest(id: id)?.status == .done })
            checkReceipt(try database.privacyRequest(id: id)?.receipt)
            #expect(install.scan(sqliteIntegerBytes(try SubjectHasher(database: database).hash(subject))).values.allSatisfy { $0 == 0 })
            _ = await load.stop()
            install.stop()
        }

        /// "Carry out now" over 2,001 queued requests on an idle server: one press does them all.
        @Test func oneCarryOutNowPressHandlesAQueueOf2001Requests() async throws {
            let install = try await LiveInstall(serve: ["--requests-every", "600", "--purge-every", "0"])
            // Filed straight through the officer API.
            let officer: HTTPFields = [.authorization: "Bearer \(install.officerKey)"]
            try await TestClient.withClient(host: "127.0.0.1", port: install.server.port) { client in
                for i in 0..<2001 {
                    let r = try await client.post("/api/v1/privacy/requests", headers: officer, body: ByteBuffer(string: #"{"subject":"queued-subject-\#(i)"}"#))
                    #expect(r.status == .accepted)
                }
            }
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let started = ContinuousClock.now
            let pressed = try await install.request(.post, "/privacy/run", headers: [.cookie: owner.cookie, .contentType: "application/x-www-form-urlencoded"],
                                                    body: "csrf=\(owner.csrf)")
            let took = ContinuousClock.now - started
            #expect(pressed.status == .ok && pressed.body.contains("2001 request(s) done"), "\(pressed.body.prefix(400))")
            let database = try install.database()
            #expect(try database.privacyRequests(site: install.site, limit: 5000).allSatisfy { $0.status == .done })
            #expect(try database.recentAuditEntries(limit: 10_000, action: "request_done").count == 2001)
            #expect(try install.cli(["audit", "verify"]).hasPrefix("ok: "))
            print("carry out now: 2001 requests done in one press, \(took)")
            install.stop()
        }
    }
}
