import Foundation
import HTTPTypes
import HummingbirdTesting
@testable import Integrations
import NIOCore
import Privacy
import Store
import Testing

extension LiveServerTests {
    /// Hostile clients against the running `candor serve`: slow connections, odd transfer codings, a
    /// stream outliving its session, and a seeded fuzz run over every endpoint that takes a body.
    @Suite struct AbuseTests {
        /// Issue 12, finding 9: no header or idle timeout; `Transfer-Encoding: gzip, chunked` accepted.
        @Test func slowClientsAreCutOffAndUnknownTransferCodingsRefused() async throws {
            let install = try await LiveInstall(serve: ["--idle-timeout", "2", "--body-timeout", "2"])
            let port = install.server.port
            // A head that never completes (one header line every 500 ms): closed after ~2 s.
            let slowHead = try RawConnection(port: port)
            slowHead.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
            let started = Date()
            var closed = false
            for i in 0..<20 where !closed {
                closed = !slowHead.send("X-Slow-\(i): 1\r\n") || slowHead.read(for: 0.5).closed
            }
            #expect(closed && Date().timeIntervalSince(started) < 5, "a trickled head was closed after \(Date().timeIntervalSince(started)) s")
            // A body that trickles: closed ~2 s after its head, whatever arrives.
            let slowBody = try RawConnection(port: port)
            slowBody.send("POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n{")
            let bodyStarted = Date()
            closed = false
            for _ in 0..<20 where !closed { closed = !slowBody.send(" ") || slowBody.read(for: 0.5).closed }
            #expect(closed && Date().timeIntervalSince(bodyStarted) < 5)
            // An idle kept-alive connection after an answer: closed too.
            let idle = try RawConnection(port: port)
            idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let answered = idle.read(for: 1, until: { $0.contains("alive") })
            #expect(answered.text.hasPrefix("HTTP/1.1 200"))
            #expect(idle.read(for: 4).closed)
            // Answered before its body ended (a 404 after 4 of 5 bytes): the rest of the body, then the
            // idle deadline applies again; the connection does not stay open for ever.
            let early = try RawConnection(port: port)
            early.send("POST /no-such-route HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcd")
            #expect(early.read(for: 1, until: { $0.contains("\r\n\r\n") }).text.hasPrefix("HTTP/1.1 404"))
            early.send("e")
            #expect(early.read(for: 4).closed, "a connection answered before its body ended stays open")
            // gzip, chunked: 400 and closed, nothing read further.
            let coded = try RawConnection(port: port)
            coded.send("POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            let refused = coded.read(for: 2)
            #expect(refused.text.hasPrefix("HTTP/1.1 400") && refused.text.contains("Transfer-Encoding"), "\(refused.text)")
            #expect(refused.closed)
            #expect(try await install.request(.get, "/healthz").status == .ok)
            #expect(try install.database().eventCount() == 0)
            install.stop()
        }

        /// Issue 12, finding 9: a live stream opened before sign-out kept delivering after it.
        @Test func aLiveStreamEndsWhenItsSessionEnds() async throws {
            let install = try await LiveInstall()
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let stream = try RawConnection(port: install.server.port)
            stream.send("GET /sites/\(install.site)/live HTTP/1.1\r\nHost: x\r\nCookie: \(owner.cookie)\r\n\r\n")
            let opened = stream.read(for: 3, until: { $0.contains("retry: 3000") })
            #expect(opened.text.hasPrefix("HTTP/1.1 200") && opened.text.contains("text/event-stream"))
            // Still streaming (idle comments) while signed in.
            let streaming = stream.read(for: 1.5)
            #expect(!streaming.closed && !streaming.text.contains("\r\n0\r\n\r\n"))
            let out = try await install.request(.post, "/logout", headers: [.cookie: owner.cookie, .contentType: "application/x-www-form-urlencoded"],
                                                body: "csrf=\(owner.csrf)")
            #expect(out.status == .seeOther)
            // The stream's body ends (the last chunk) within a couple of seconds.
            let ended = { (t: String) in t.hasPrefix("0\r\n\r\n") || t.contains("\r\n0\r\n\r\n") }
            let after = stream.read(for: 4, until: ended)
            #expect(after.closed || ended(after.text), "stream still open after sign-out: \(after.text.suffix(80))")
            install.stop()
        }

        /// ≥ 20,000 seeded malformed bodies over /api/event, /api/consent, /api/privacy/*, every
        /// webhook (validly signed, so the payload is parsed) and /login, under a seed printed for
        /// replay: the process stays up, nothing but 4xx (and 2xx for what is valid), memory bounded.
        @Test func twentyThousandMalformedBodiesNeverCrashWedgeOrGrowTheServer() async throws {
            let install = try await LiveInstall(serve: ["--log-level", "error"])
            let secret = "fuzz-secret-0123456789abcdef"
            for p in Provider.allCases { _ = try install.cli(["hooks", "set", "--site", install.site, "--provider", p.rawValue, "--secret", secret]) }
            let seed = UInt64(ProcessInfo.processInfo.environment["CANDOR_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
            let pid = install.server.pid
            let rssBefore = residentMB(pid)
            let site = install.site
            let key = randomPrivacyKey()
            let extremes = ["1e308", "-1e308", "1e400", "-0", "9223372036854775807", "-9223372036854775809", "18446744073709551616",
                            "0.0000000000000000000000000001", "1e-400", "NaN", "Infinity", "\"\\ud800\"", "[]", "{}", "null", "true",
                            String(repeating: "9", count: 400), "\"" + String(repeating: "x", count: 5000) + "\""]
            let seeds: [(path: String, provider: Provider?, body: String)] = [
                ("/api/event", nil, #"{"events":[{"site":"\#(site)","url":"https://localhost/p","props":{"a":"b","n":1},"value":5,"currency":"EUR","screen":800,"engaged_ms":100,"scroll":50,"consent":{"analytics":true},"subject":"abcdefabcdefabcdef"}]}"#),
                ("/api/consent", nil, #"{"site":"\#(site)","banner":"1","analytics":true,"marketing":false,"key":"\#(key)"}"#),
                ("/api/privacy/export", nil, #"{"site":"\#(site)","key":"\#(key)"}"#),
                ("/api/privacy/forget", nil, #"{"site":"\#(site)","key":"\#(key)"}"#),
                ("/login", nil, "email=admin%40localhost&password=wrong"),
                ("/hooks/stripe/\(site)", .stripe, #"{"id":"evt_1","type":"checkout.session.completed","created":1773144000,"data":{"object":{"id":"cs_1","payment_intent":"pi_1","payment_status":"paid","amount_total":4900,"currency":"eur","client_reference_id":"abcdefabcdefabcdef"}}}"#),
                ("/hooks/stripe/\(site)", .stripe, #"{"id":"evt_2","type":"charge.refunded","created":1773144000,"data":{"object":{"id":"ch_1","payment_intent":"pi_1","amount_refunded":100,"currency":"usd"}}}"#),
                ("/hooks/shopify/\(site)", .shopify, #"{"id":820982911946154500,"financial_status":"paid","total_price":"199.00","currency":"USD","processed_at":"2026-03-10T11:00:00Z","note_attributes":[{"name":"candor_subject","value":"x"}],"landing_site":"/?utm_source=a"}"#),
                ("/hooks/typeform/\(site)", .typeform, #"{"event_id":"01HXYZ","event_type":"form_response","form_response":{"form_id":"abc","token":"t1","submitted_at":"2026-03-10T11:00:00Z","hidden":{"utm_source":"n"},"answers":[{"type":"email","email":"a@b.example"}]}}"#),
                ("/hooks/callrail/\(site)", .callrail, #"{"resource_id":"CAL1","answered":true,"duration":"187","first_call":true,"source":"Google Ads","start_time":"2026-03-10T11:00:00Z"}"#),
                ("/hooks/generic/\(site)", .generic, #"{"type":"sale","id":"order-77","value":120.5,"currency":"usd","occurred_at":"2026-03-10T11:00:00Z","refers_to":"x"}"#),
                ("/hooks/jotform/\(site)?token=\(secret)", .jotform, "submissionID=5512&formID=2211&rawRequest=%7B%22q3_email%22%3A%22lead%40example.org%22%7D"),
            ]
            var rng = SplitMix(seed: seed)
            var cases: [(String, Provider?, [UInt8])] = []
            for i in 0..<20_400 {
                let s = seeds[i % seeds.count]
                var b = Array(s.body.utf8)
                switch Int.random(in: 0..<7, using: &rng) {
                case 0: b = Array(b.prefix(Int.random(in: 0..<max(1, b.count), using: &rng)))
                case 1: for _ in 0..<Int.random(in: 1...6, using: &rng) where !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                case 2: b.insert(contentsOf: Array(repeating: UInt8(ascii: "["), count: Int.random(in: 1...3000, using: &rng)), at: Int.random(in: 0...b.count, using: &rng))
                case 3, 4:
                    // An extreme value in place of a number or string of the seed.
                    let text = String(decoding: b, as: UTF8.self)
                    let pattern = #":(-?[0-9.]+|"[^"]*")"#
                    let matches = (try? NSRegularExpression(pattern: pattern).matches(in: text, range: NSRange(text.startIndex..., in: text))) ?? []
                    if let m = matches.randomElement(using: &rng), let r = Range(m.range(at: 1), in: text) {
                        b = Array(text.replacingCharacters(in: r, with: extremes.randomElement(using: &rng)!).utf8)
                    }
                case 5: b += Array(repeating: UInt8.random(in: 0...255, using: &rng), count: Int.random(in: 1...70_000, using: &rng))
                default: b.removeSubrange(Int.random(in: 0..<max(1, b.count / 2), using: &rng)..<max(1, b.count / 2 + Int.random(in: 0..<max(1, b.count / 2), using: &rng)))
                }
                cases.append((s.path, s.provider, b))
            }
            let statuses = StatusCounts()
            let port = install.server.port
            let started = ContinuousClock.now
            let allCases = cases
            try await spread(allCases, over: 4, port: port, configuration: .init(timeout: .seconds(60))) { client, i, c in
                var headers: HTTPFields = [.userAgent: chromeUA, .origin: "http://localhost", .init("X-Forwarded-For")!: "198.51.\(i / 250 % 250).\(i % 250)"]
                headers[.contentType] = c.0 == "/login" ? "application/x-www-form-urlencoded"
                    : c.1 == .jotform ? "application/x-www-form-urlencoded" : "text/plain"
                if let p = c.1 {
                    for (name, value) in Webhooks.sign(p, body: c.2, secret: secret, timestamp: Int(Date().timeIntervalSince1970)) {
                        headers[HTTPField.Name(name)!] = value
                    }
                    if p == .shopify { headers[.init("X-Shopify-Topic")!] = ["orders/paid", "refunds/create", "orders/create"][i % 3] }
                }
                do {
                    let r = try await client.post(c.0, headers: headers, body: ByteBuffer(bytes: c.2))
                    statuses.add(r.status.code, path: c.0)
                } catch {
                    statuses.add(0, path: c.0)
                    throw error
                }
            }
            let took = ContinuousClock.now - started
            let rssAfter = residentMB(pid)
            let counts = statuses.all
            print("fuzz seed \(seed): \(cases.count) bodies in \(took), statuses \(counts.sorted { $0.key < $1.key }), RSS \(rssBefore) -> \(rssAfter) MB")
            #expect(try await install.request(.get, "/healthz").status == .ok, "the server answers after the run")
            #expect(counts.keys.allSatisfy { (200..<500).contains($0) }, "only 2xx/4xx: \(counts) (seed \(seed))")
            #expect(statuses.fiveHundreds.isEmpty, "5xx at \(statuses.fiveHundreds) (seed \(seed))")
            #expect(rssAfter - rssBefore < 64, "RSS grew \(rssAfter - rssBefore) MB (seed \(seed))")
            #expect(try install.database().integrityCheck() == "ok")
            install.stop()
        }
    }
}

final class StatusCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [Int: Int] = [:]
    private(set) var fiveHundreds: [String: Int] = [:]
    func add(_ status: Int, path: String) {
        lock.lock(); defer { lock.unlock() }
        counts[status, default: 0] += 1
        if status >= 500 || status == 0 { fiveHundreds[String(path.prefix(30)), default: 0] += 1 }
    }
    var all: [Int: Int] { lock.lock(); defer { lock.unlock() }; return counts }
}

extension LiveServerTests {
    /// Issue 12, finding 5 and the proof's matrix: every route × role × key scope against the running
    /// server, each cell's expected status. Printed as a table.
    @Suite struct AccessMatrixTests {
        @Test func routeRoleAndKeyScopeMatrix() async throws {
            let install = try await LiveInstall()
            let a = install.site
            let b = try install.cli(["sites", "add", "--name", "Site B", "--domain", "b.example"]).trimmingCharacters(in: .whitespacesAndNewlines)
            var passwords: [String: String] = ["owner": install.ownerPassword]
            for (role, sites) in [("admin", [String]()), ("manager", [a]), ("viewer", [a])] {
                let out = try install.cli(["users", "add", "--email", "\(role)@example.org", "--role", role] + sites.flatMap { ["--site", $0] })
                passwords[role] = String(out.split(separator: " ")[2])
            }
            var sessions: [String: (cookie: String, csrf: String)] = [:]
            sessions["owner"] = try await install.signIn(install.ownerEmail, install.ownerPassword)
            for role in ["admin", "manager", "viewer"] { sessions[role] = try await install.signIn("\(role)@example.org", passwords[role]!) }
            let roles = ["anonymous", "viewer", "manager", "admin", "owner"]

            // Dashboard and operational routes: (method, path, form or nil, expected per role).
            var n = 0
            func unique() -> String { n += 1; return "u\(n)" }
            let dashboard: [(HTTPRequest.Method, String, (() -> String)?, [Int])] = [
                (.get, "/", nil, [303, 200, 200, 200, 200]),
                (.get, "/sites/\(a)", nil, [303, 200, 200, 200, 200]),
                (.get, "/sites/\(b)", nil, [303, 404, 404, 200, 200]),
                (.get, "/sites/\(a)/export?dimension=path", nil, [303, 200, 200, 200, 200]),
                (.get, "/sites/\(b)/export?dimension=path", nil, [303, 404, 404, 200, 200]),
                (.get, "/sites/\(a)/realtime", nil, [303, 200, 200, 200, 200]),
                (.get, "/sites/\(a)/settings", nil, [303, 404, 200, 200, 200]),
                (.get, "/sites/\(b)/settings", nil, [303, 404, 404, 200, 200]),
                (.get, "/clients", nil, [303, 404, 200, 200, 200]),
                (.get, "/privacy", nil, [303, 404, 404, 200, 200]),
                (.get, "/privacy/record.md", nil, [303, 404, 404, 200, 200]),
                (.get, "/health/pipeline", nil, [303, 404, 404, 200, 200]),
                (.get, "/users", nil, [303, 404, 404, 200, 200]),
                (.get, "/account", nil, [303, 200, 200, 200, 200]),
                (.post, "/privacy/file", { "site=\(a)&kind=subject&value=matrix-subject-0001" }, [303, 404, 404, 303, 303]),
                (.post, "/privacy/export", { "site=\(a)&kind=subject&value=matrix-subject-0001" }, [303, 404, 404, 200, 200]),
                (.post, "/sites", { let u = unique(); return "name=Added+\(u)&domains=\(u).example&policy=default" }, [303, 404, 404, 303, 303]),
                (.post, "/sites/\(a)/settings/key", { "label=k&scope=stats%3Aread" }, [303, 404, 200, 200, 200]),
                (.post, "/sites/\(a)/settings/key", { "label=k&scope=privacy%3Aofficer" }, [303, 404, 400, 200, 200]),
                // Archiving, bringing back and deleting: owners and admins (a site that is not archived is not deleted).
                (.post, "/sites/\(a)/settings/archive", { "" }, [303, 404, 400, 303, 303]),
                (.post, "/sites/\(a)/settings/restore", { "" }, [303, 404, 400, 303, 303]),
                (.post, "/sites/\(a)/settings/delete", { "confirm=x" }, [303, 404, 400, 400, 400]),
                (.post, "/users/add", { "email=\(unique())%40example.org&role=viewer" }, [303, 404, 404, 200, 200]),
                (.post, "/users/add", { "email=\(unique())%40example.org&role=owner" }, [303, 404, 404, 403, 200]),
                // Shared links: made by those who configure the site; an unknown link is a 404 for anyone.
                (.post, "/sites/\(a)/settings/share", { "label=m&filters=" }, [303, 404, 200, 200, 200]),
                (.post, "/sites/\(b)/settings/share", { "label=m&filters=" }, [303, 404, 404, 200, 200]),
                (.get, "/share/" + String(repeating: "ab", count: 32), nil, [404, 404, 404, 404, 404]),
                // Imports: owners and admins (a form that is not multipart is a 415 to them; no such import a 400).
                (.post, "/sites/\(a)/imports", { "source=plausible" }, [303, 404, 403, 415, 415]),
                (.post, "/sites/\(a)/settings/remove-import", { "import=999" }, [303, 404, 400, 400, 400]),
                // Alerts: a site's rules by those who configure it, the install's by owners and admins.
                (.get, "/alerts", nil, [303, 404, 200, 200, 200]),
                (.post, "/alerts/add-rule", { "site=\(a)&kind=silent&threshold=24&cooldown=60" }, [303, 404, 303, 303, 303]),
                (.post, "/alerts/add-rule", { "site=\(b)&kind=silent&threshold=24&cooldown=60" }, [303, 404, 404, 303, 303]),
                (.post, "/alerts/add-rule", { "site=&kind=disk&threshold=5&cooldown=60" }, [303, 404, 403, 303, 303]),
                (.post, "/account/alerts", { "on=1" }, [303, 200, 200, 200, 200]),
                (.post, "/account/reports/add", { "site=\(a)&period=week" }, [303, 200, 200, 200, 200]),
                (.post, "/account/reports/add", { "site=\(b)&period=week" }, [303, 400, 400, 200, 200]),
                // The second factor: everyone's own enrolment, sessions and second factor; the
                // install's rule for owners; others' resets for owners and admins (the viewer has none: 400).
                (.get, "/account/two-factor", nil, [303, 200, 200, 200, 200]),
                (.post, "/account/two-factor/enable", { "code=abcdef" }, [303, 400, 400, 400, 400]),
                (.post, "/account/two-factor/disable", { "password=wrong&code=000000" }, [303, 400, 400, 400, 400]),
                (.post, "/account/sessions/revoke", { "session=" + String(repeating: "0", count: 64) }, [303, 200, 200, 200, 200]),
                (.post, "/users/reset-2fa", { "email=viewer%40example.org" }, [303, 404, 404, 400, 400]),
                (.post, "/users/require-2fa", { "" }, [303, 404, 404, 403, 200]),
                (.get, "/health", nil, [401, 401, 401, 200, 200]),
                (.get, "/metrics", nil, [401, 401, 401, 200, 200]),
                (.get, "/healthz", nil, [200, 200, 200, 200, 200]),
            ]
            var table = ["route".padding(toLength: 52, withPad: " ", startingAt: 0) + roles.map { $0.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined()]
            for (method, path, form, expected) in dashboard {
                var got: [Int] = []
                for role in roles {
                    var headers: HTTPFields = [:]
                    var body: String?
                    if let session = sessions[role] { headers[.cookie] = session.cookie }
                    if let form {
                        headers[.contentType] = "application/x-www-form-urlencoded"
                        body = "csrf=\(sessions[role]?.csrf ?? "")&" + form()
                    }
                    got.append(try await install.request(method, path, headers: headers, body: body).status.code)
                }
                #expect(got == expected, "\(method) \(path): \(got) expected \(expected)")
                table.append("\(method) \(path)".padding(toLength: 52, withPad: " ", startingAt: 0)
                             + got.map { String($0).padding(toLength: 10, withPad: " ", startingAt: 0) }.joined())
            }
            #expect(try await install.request(.get, "/metrics", headers: operatorHeaders).status == .ok)

            // API routes by key scope and site.
            let statsA = try install.cli(["keys", "add", "--site", a, "--scope", "stats:read"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let statsB = try install.cli(["keys", "add", "--site", b, "--scope", "stats:read"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let officerB = try install.cli(["keys", "add", "--site", b, "--scope", "privacy:officer"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let keys: [(String, String?)] = [("none", nil), ("stats A", statsA), ("officer A", install.officerKey), ("stats B", statsB), ("officer B", officerB)]
            let filed = try await install.request(.post, "/api/v1/privacy/requests", headers: [.authorization: "Bearer \(install.officerKey)"],
                                                  body: #"{"subject":"matrix-subject-0002"}"#)
            let requestA = try #require((try JSONSerialization.jsonObject(with: Data(filed.body.utf8)) as? [String: Any])?["request"] as? String)
            let api: [(HTTPRequest.Method, String, String?, [Int])] = [
                (.get, "/api/v1/sites/\(a)/stats", nil, [401, 200, 403, 404, 403]),
                (.get, "/api/v1/sites/\(a)/stats?dimension=path", nil, [401, 200, 403, 404, 403]),
                (.get, "/api/v1/sites/\(a)/commission", nil, [401, 200, 403, 404, 403]),
                (.post, "/api/v1/privacy/requests", #"{"subject":"matrix-subject-0003"}"#, [401, 403, 202, 403, 202]),
                (.get, "/api/v1/privacy/requests/\(requestA)", nil, [401, 403, 200, 403, 404]),
                (.get, "/api/v1/privacy/requests/\(requestA)/receipt", nil, [401, 403, 409, 403, 404]),
                (.post, "/api/v1/privacy/export", #"{"subject":"matrix-subject-0003"}"#, [401, 403, 200, 403, 200]),
            ]
            table.append("route".padding(toLength: 52, withPad: " ", startingAt: 0) + keys.map { $0.0.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined())
            for (method, path, body, expected) in api {
                var got: [Int] = []
                for (_, key) in keys {
                    got.append(try await install.request(method, path, headers: key.map { [.authorization: "Bearer \($0)"] } ?? [:], body: body).status.code)
                }
                #expect(got == expected, "\(method) \(path): \(got) expected \(expected)")
                table.append("\(method) \(path.replacingOccurrences(of: requestA, with: "ID"))".padding(toLength: 52, withPad: " ", startingAt: 0)
                             + got.map { String($0).padding(toLength: 10, withPad: " ", startingAt: 0) }.joined())
            }
            // A revoked key stops working at once; the revocation is audited.
            let id = String(statsA.split(separator: "_")[1])
            _ = try install.cli(["keys", "revoke", id])
            #expect(try await install.request(.get, "/api/v1/sites/\(a)/stats", headers: [.authorization: "Bearer \(statsA)"]).status == .unauthorized)
            let audit = try install.cli(["audit", "list", "--limit", "200"])
            for action in ["\tcli\tsite_added\t", "\tcli\tuser_added\t", "\tcli\tapi_key_issued\t", "\tcli\tapi_key_revoked\t",
                           "\tuser:admin@example.org\tsite_added\t", "\tuser:manager@example.org\tapi_key_issued\t"] {
                #expect(audit.contains(action), "\(action)")
            }
            print("access matrix (A: the site viewer and manager are assigned to; B: another):\n"
                  + table.joined(separator: "\n").replacingOccurrences(of: a, with: "A").replacingOccurrences(of: b, with: "B"))
            install.stop()
        }
    }
}
