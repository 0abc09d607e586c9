@testable import Consent
@testable import Destinations
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Integrations
import Logging
import NIOCore
import Privacy
@testable import Store
import Storage
import Synchronization
import Testing

/// A third-party API on loopback: records every request and answers as `script` says (status,
/// headers, delay) for the n-th request (0-based) to a path.
final class Receiver: @unchecked Sendable {
    struct Hit: Sendable {
        let method: String
        let path: String
        let query: String
        let headers: [String: String]
        let body: String
        let at: ContinuousClock.Instant
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }
    typealias Script = @Sendable (_ path: String, _ n: Int) -> (status: Int, headers: [(String, String)], delay: Duration)
    /// Answers with a body: (request, n) → (status, JSON body).
    typealias API = @Sendable (_ hit: Hit, _ n: Int) -> (status: Int, body: String)
    let hits = Mutex<[Hit]>([])
    /// Requests being answered now, by path.
    let inFlight = Mutex<[String: Int]>([:])
    let script: Mutex<Script>
    let api: API?
    private(set) var port = 0
    private var task: Task<Void, any Error>?

    init(_ script: @escaping Script = { _, _ in (200, [], .zero) }, api: API? = nil) async throws {
        self.script = Mutex(script)
        self.api = api
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { [self] request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let path = request.uri.path
            var headers: [String: String] = [:]
            for f in request.headers { headers[f.name.canonicalName.lowercased()] = f.value }
            let hit = Hit(method: request.method.rawValue, path: path, query: request.uri.query ?? "", headers: headers, body: String(buffer: body), at: .now)
            let n = hits.withLock { h in
                h.append(hit)
                return h.filter { $0.path == path }.count - 1
            }
            if let api = self.api {
                let (status, text) = api(hit, n)
                return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            let answer = self.script.withLock { $0 }(path, n)
            self.inFlight.withLock { $0[path, default: 0] += 1 }
            defer { self.inFlight.withLock { $0[path, default: 1] -= 1 } }
            if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
            var fields = HTTPFields()
            for (k, v) in answer.headers { fields[HTTPField.Name(k)!] = v }
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch] { router.on("**", method: method, use: handler) }
        let bound = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in bound.continuation.yield(channel.localAddress?.port ?? 0) },
                              logger: Logger(label: "receiver"))
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for await p in bound.stream { port = p; break }
    }

    var url: String { "http://127.0.0.1:\(port)" }
    func requests(_ path: String) -> [Hit] { hits.withLock { $0.filter { $0.path == path } } }
    func stop() { task?.cancel() }
}

@Suite struct ForwardingGateTests {
    /// The gate's matrix: an explicit marketing grant from a trusted source on an identified
    /// event is required; DNT, GPC and cnil-exempt always close it; an opt-out site's "no
    /// objection" is not a grant.
    @Test func onlyAnExplicitTrustedMarketingGrantWithoutObjectionForwards() throws {
        let optIn = try Policy(toml: "", name: "p")
        var exempt = optIn
        exempt.mode = .cnilExempt
        let none = PrivacySignals()
        let grant = ConsentState.granted(analytics: true, marketing: true)
        func allows(_ p: Policy, _ state: ConsentState, _ source: ConsentSource? = nil, _ signals: PrivacySignals = .init()) -> Bool {
            ForwardingGate.allows(policy: p, state: state, source: source,
                                  decision: ConsentDecider.decide(policy: p, state: state, source: source, signals: signals), signals: signals)
        }
        #expect(allows(optIn, grant))
        #expect(allows(optIn, grant, .tcf))
        #expect(!allows(optIn, .granted(analytics: true, marketing: false)))
        #expect(!allows(optIn, .granted(analytics: false, marketing: true)), "marketing without analytics is not identified")
        #expect(!allows(optIn, .unset))
        #expect(!allows(optIn, .denied))
        #expect(!allows(optIn, grant, nil, .init(doNotTrack: true)))
        #expect(!allows(optIn, grant, nil, .init(globalPrivacyControl: true)))
        #expect(!allows(exempt, grant))
        var optOut = optIn
        optOut.mode = .optOut
        #expect(ConsentDecider.decide(policy: optOut, state: .unset, signals: none) == .identified(marketing: true))
        #expect(!allows(optOut, .unset), "no objection is not a grant to share")
        #expect(allows(optOut, grant))
        var candorOnly = optIn
        candorOnly.consentSources = [.candor]
        #expect(!allows(candorOnly, grant, .gcm), "a grant from a source the policy does not trust")
        // A policy that does not honour GPC or DNT for counting still never forwards under them.
        var lax = optIn
        lax.honorGPC = false; lax.honorDNT = false
        #expect(!allows(lax, grant, nil, .init(doNotTrack: true)) && !allows(lax, grant, nil, .init(globalPrivacyControl: true)))
        #expect(ForwardingGate.withdraws(state: .denied, signals: none))
        #expect(ForwardingGate.withdraws(state: .granted(analytics: true, marketing: false), signals: none))
        #expect(ForwardingGate.withdraws(state: .unset, signals: .init(globalPrivacyControl: true)))
        #expect(!ForwardingGate.withdraws(state: .unset, signals: none))
        #expect(!ForwardingGate.policyAllows(exempt) && ForwardingGate.policyAllows(optIn))
    }

    @Test func settingsAreCheckedAgainstTheKind() throws {
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .meta, settings: [:]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .meta, settings: ["pixel_id": "12a"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .meta, settings: ["pixel_id": "1", "token": "x"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .webhook, settings: ["url": "javascript:alert(1)"]) }
        #expect(try DestinationSetup.validate(kind: .webhook, settings: ["url": " https://example.com/h ", "delay_seconds": ""]) == ["url": "https://example.com/h"])
        #expect(try DestinationSetup.validate(kind: .webhook, settings: ["url": "http://127.0.0.1:9/h"]) == ["url": "http://127.0.0.1:9/h"])
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .webhook, settings: ["url": "http://10.0.0.5/h"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .webhook, settings: ["url": "https://u:p@example.com/h"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .meta, settings: ["pixel_id": "١٢٣"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .meta, settings: ["pixel_id": "1", "api_version": "../x"]) }
        #expect(throws: DestinationSetupError.self) { try DestinationSetup.validate(kind: .pipedrive, settings: [:]) }
        #expect(try DestinationSetup.validate(kind: .pipedrive, settings: ["field_source": "abc"]) == ["field_source": "abc", "delay_seconds": "420"])
    }

    @Test func errorsNeverQuoteACredential() {
        let json = #"{"developer_token":"dev-tok-1","client_id":"cid","client_secret":"s3cr/et+x","refresh_token":"1//ref"}"#
        let text = DeliveryService.redact("POST https://x/?api_secret=s3cr%2Fet%2Bx failed: dev-tok-1, 1//ref and " + json, json)
        for secret in ["dev-tok-1", "s3cr", "1//ref", "refresh_token\":"] { #expect(!text.contains(secret), "\(text)") }
        #expect(DeliveryService.redact("token abc-123-secret in body", "abc-123-secret") == "token [credential] in body")
    }

    @Test func phoneNumbersAreHashedOnlyInInternationalForm() {
        let digest = { (s: String) in Hex.encode(Sodium.sha256(Array(s.utf8))) }
        #expect(Minimize.phoneSHA256("+33 6 12 34 56 78") == digest("33612345678"))
        #expect(Minimize.phoneSHA256("0033 (6) 12.34.56-78") == digest("33612345678"))
        #expect(Minimize.phoneSHA256("+1 (555) 010-9999") == digest("15550109999"))
        #expect(Minimize.phoneSHA256("06 12 34 56 78") == nil)
        #expect(Minimize.phoneSHA256("+33 6 12 34 56 78 ext 5") == nil)
        #expect(Minimize.phoneSHA256("+12") == nil)
    }

    /// The secret key that sealed the credentials is the only one accepted afterwards; a key with
    /// nothing sealed under it yet can take over.
    @Test func aDifferentSecretKeyIsRefusedOnceCredentialsAreSealed() throws {
        let dir = TempDir()
        let database = try AppDatabase(path: dir.file("candor.sqlite"))
        let a = ["CANDOR_SECRET_KEY": String(repeating: "ab", count: 32)], b = ["CANDOR_SECRET_KEY": String(repeating: "cd", count: 32)]
        let boxA = try SecretBox.load(directory: dir.path, database: database, environment: a)
        _ = try SecretBox.load(directory: dir.path, database: database, environment: b)   // nothing recorded yet
        try boxA.claim(database)
        // Nothing sealed under A is stored: another key may take over.
        let boxB = try SecretBox.load(directory: dir.path, database: database, environment: [:])   // secret.key, created 0600
        try boxB.claim(database)
        let site = Site(id: "sitesecret", name: "S", domains: ["s.example"], policy: "default", createdAt: Date())
        try database.addSite(site)
        _ = try database.transaction { tx in
            try tx.addDestination(site: site.id, kind: "webhook", label: "w", settings: [:], credential: boxB.seal([1, 2, 3]), at: 0)
        }
        #expect(throws: SecretBox.Failure.self) { try boxA.claim(database) }
        #expect(throws: SecretBox.Failure.self) { try SecretBox.load(directory: dir.path, database: database, environment: a) }
        #expect(throws: SecretBox.Failure.self) { try SecretBox.load(directory: dir.path, database: database, environment: b) }
        #expect(try boxB.open(try #require(try database.destinations(site: site.id).first?.credential)) == [1, 2, 3])
        chmod(dir.file("secret.key"), 0o644)
        #expect(throws: SecretBox.Failure.self) { try SecretBox.load(directory: dir.path, database: database, environment: [:]) }
    }

    @Test func longEventIDsStayDistinct() {
        let a = "generic:" + String(repeating: "x", count: 300) + "A", b = "generic:" + String(repeating: "x", count: 300) + "B"
        #expect(Outbox.eventID(a) != Outbox.eventID(b))
        #expect(Outbox.eventID(a).unicodeScalars.count <= 200)
        #expect(Outbox.eventID("pixel:abc") == "pixel:abc")
        let flags = String(repeating: "🇫🇷", count: 150)
        #expect(flags.prefix(codePoints: 200).unicodeScalars.count == 200)
    }

    @Test func retryAfterReadsSecondsAndDates() {
        #expect(DeliveryService.retryAfter("3", now: 1_000) == 4_000)
        #expect(DeliveryService.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: 0) == 1_445_412_480_000)
        #expect(DeliveryService.retryAfter("soon", now: 0) == nil)
    }
}

extension LiveServerTests {
    @Suite struct DestinationsServedTests {
        static let token = "EAAB-test-token-5d1f0c9a7b3e"
        static let secret = "whsec-outbound-4c2e9a"
        static let clientIP = "81.2.69.142"
        /// The demo site's policy keeps an e-mail entered in a lead form (under marketing consent).
        static let leadForms = ["default.toml": "[collect]\nform_field_allowlist = [\"email\", \"phone\"]\n"]

        /// Posts one visit: a landing pageview (with `query`) and a conversion, from `ip`.
        static func visit(_ install: LiveInstall, tag: String, ip: String, consent: String, query: String = "",
                          headers extra: HTTPFields = [:], value: Int = 49, phone: String? = nil) async throws {
            var headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: ip]
            headers.append(contentsOf: extra)
            let events = [
                #"{"site":"\#(install.site)","url":"https://localhost/landing\#(query)","id":"\#(tag)-pv","consent":\#(consent)}"#,
                #"{"site":"\#(install.site)","name":"conversion","url":"https://localhost/checkout/done","id":"\#(tag)-conv","value":\#(value),"currency":"EUR","consent":\#(consent),"props":{"field.email":" \#(tag)@Example.com "\#(phone.map { #","field.phone":"\#($0)""# } ?? "")}}"#,
            ]
            for e in events {
                let r = try await install.request(.post, "/api/event", headers: headers, body: e)
                #expect(r.status == .accepted, "\(r.body)")
            }
        }

        /// Issue 17's consent gate and field mapping against the running binary: five visits that
        /// convert, under load, with Meta and a signed webhook configured. Only visits with
        /// marketing consent and no DNT/GPC leave; Meta gets its match keys (fbc from the fbclid,
        /// SHA-256 of the e-mail) and never an address or user agent; the webhook's signature
        /// verifies; the tokens are never on disk in the clear nor in the log.
        @Test func onlyConsentedConversionsLeaveWithMinimisedFields() async throws {
            let receiver = try await Receiver()
            defer { receiver.stop() }
            let install = try await LiveInstall(serve: ["--log-level", "debug"], policyTexts: Self.leadForms)
            defer { install.stop() }
            setenv("CANDOR_TEST_TOKEN", Self.token, 1)
            setenv("CANDOR_TEST_SECRET", Self.secret, 1)
            let meta = try install.cli(["destinations", "add", "--site", install.site, "--kind", "meta", "--label", "Meta ads", "--setting", "pixel_id=1234567",
                                        "--setting", "base_url=\(receiver.url)/graph", "--credential-env", "CANDOR_TEST_TOKEN"])
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "webhook", "--setting", "url=\(receiver.url)/hook",
                                 "--credential-env", "CANDOR_TEST_SECRET"])
            setenv("CANDOR_TEST_GA", "ga4-api-secret-77", 1)
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "ga4", "--setting", "measurement_id=G-TEST123",
                                 "--setting", "base_url=\(receiver.url)/ga", "--credential-env", "CANDOR_TEST_GA"])
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "linkedin", "--setting", "conversion_id=9876",
                                 "--setting", "base_url=\(receiver.url)/li", "--credential-env", "CANDOR_TEST_TOKEN"])
            #expect(Int64(meta.trimmingCharacters(in: .whitespacesAndNewlines)) != nil)
            let load = EventLoad(port: install.server.port, site: install.site, eventsPerSecond: 200)
            let granted = #"{"analytics":true,"marketing":true}"#
            try await Self.visit(install, tag: "a", ip: "81.2.69.142", consent: granted, query: "?fbclid=FBCLICK123&utm_source=fb")
            try await Self.visit(install, tag: "b", ip: "81.2.69.143", consent: granted, query: "?fbclid=GPCCLICK", headers: [.init("Sec-GPC")!: "1"])
            try await Self.visit(install, tag: "c", ip: "81.2.69.144", consent: #"{"analytics":true,"marketing":false}"#, query: "?fbclid=NOMKT")
            try await Self.visit(install, tag: "d", ip: "81.2.69.145", consent: granted, query: "?fbclid=DNTCLICK", headers: [.init("DNT")!: "1"])
            try await Self.visit(install, tag: "e", ip: "81.2.69.146", consent: granted, phone: "+33 6 12-34-56.78")
            let database = try install.database()
            #expect(try await eventually(20) {
                receiver.requests("/hook").count >= 2 && receiver.requests("/graph/v21.0/1234567/events").count >= 2
                    && receiver.requests("/ga/mp/collect").count >= 2 && receiver.requests("/li/rest/conversionEvents").count >= 2
            })
            try await Task.sleep(for: .seconds(2))
            _ = await load.stop()

            // Webhook: a and e (each once), signed as Candor's inbound generic scheme.
            let hooks = receiver.requests("/hook")
            #expect(Set(hooks.map { $0.json["id"] as? String ?? "" }) == ["pixel:a-conv", "pixel:e-conv"])
            #expect(hooks.count == 2)
            for h in hooks {
                let t = h.headers["x-candor-timestamp"] ?? ""
                let expected = "sha256=" + Hex.encode(Sodium.hmacSHA256(key: Array(Self.secret.utf8), message: Array("\(t).\(h.body)".utf8)))
                #expect(h.headers["x-candor-signature"] == expected)
                #expect((h.json["value"] as? Double) == 49 && (h.json["currency"] as? String) == "EUR")
                #expect((h.json["url"] as? String) == "https://localhost/checkout/done")
            }
            let a = try #require(hooks.first { ($0.json["id"] as? String) == "pixel:a-conv" })
            #expect((a.json["click_id"] as? [String: String]) == ["kind": "fbclid", "value": "FBCLICK123"])
            #expect((a.json["source"] as? [String: String])?["utm_source"] == "fb")
            #expect((a.json["email_sha256"] as? String) == Minimize.emailSHA256("a@example.com"))

            // Meta: a (fbc and em) and e (em only): both have a match key.
            let metas = receiver.requests("/graph/v21.0/1234567/events")
            #expect(metas.count == 2)
            for m in metas {
                let event = try #require((m.json["data"] as? [[String: Any]])?.first)
                #expect(m.json["access_token"] as? String == Self.token)
                #expect(event["event_name"] as? String == "Purchase" && event["action_source"] as? String == "website")
                let user = try #require(event["user_data"] as? [String: Any])
                #expect(Set(user.keys).isSubset(of: ["em", "fbc", "ph"]), "only match keys: \(user.keys)")
                #expect(!m.body.contains(Self.clientIP) && !m.body.contains("81.2.69.") && !m.body.contains("Mozilla"))
                #expect((event["custom_data"] as? [String: Any])?["currency"] as? String == "EUR")
                if event["event_id"] as? String == "pixel:a-conv" {
                    #expect((user["fbc"] as? String)?.hasPrefix("fb.1.") == true && (user["fbc"] as? String)?.hasSuffix(".FBCLICK123") == true)
                    #expect(user["em"] as? [String] == [Minimize.emailSHA256("a@example.com")])
                } else {
                    #expect(event["event_id"] as? String == "pixel:e-conv" && user["fbc"] == nil)
                    #expect(user["ph"] as? [String] == [Minimize.phoneSHA256("+33612345678")!])
                }
            }
            let all = receiver.hits.withLock { $0.map(\.body).joined() }
            for refused in ["GPCCLICK", "NOMKT", "DNTCLICK", "b-conv", "c-conv", "d-conv"] { #expect(!all.contains(refused), "\(refused) left") }
            // GA4: a and e, with the consent block, no visitor id.
            let ga = receiver.requests("/ga/mp/collect")
            #expect(ga.count == 2 && ga.allSatisfy { $0.query == "measurement_id=G-TEST123&api_secret=ga4-api-secret-77" })
            for g in ga {
                #expect(g.json["consent"] as? [String: String] == ["ad_user_data": "GRANTED", "ad_personalization": "DENIED"])
                let event = try #require((g.json["events"] as? [[String: Any]])?.first)
                #expect(event["name"] as? String == "purchase")
                let params = try #require(event["params"] as? [String: Any])
                #expect(params["value"] as? Double == 49 && params["currency"] as? String == "EUR")
                #expect(["pixel:a-conv", "pixel:e-conv"].contains(params["transaction_id"] as? String ?? ""))
            }
            // LinkedIn: a and e by the hashed e-mail (no li_fat_id on these visits).
            let li = receiver.requests("/li/rest/conversionEvents")
            #expect(li.count == 2)
            for l in li {
                #expect(l.headers["authorization"] == "Bearer \(Self.token)" && l.headers["x-restli-protocol-version"] == "2.0.0")
                #expect(l.json["conversion"] as? String == "urn:lla:llaPartnerConversion:9876")
                #expect((l.json["conversionValue"] as? [String: String]) == ["currencyCode": "EUR", "amount": "49.00"])
                let ids = (l.json["user"] as? [String: Any])?["userIds"] as? [[String: String]]
                #expect(ids?.count == 1 && ids?.first?["idType"] == "SHA256_EMAIL")
            }
            #expect(try database.deliveryCounts(site: install.site) == ["sent": 8])
            let metrics = try await install.request(.get, "/metrics", headers: [.authorization: "Bearer \(testMetricsToken)"]).body
            for kind in ["meta", "webhook", "ga4", "linkedin"] {
                #expect(metrics.contains("candor_deliveries_total{kind=\"\(kind)\",outcome=\"sent\"} 2"), "\(kind)")
            }

            // The credentials: sealed in the database, never in the clear on disk or in the log.
            for secret in [Self.token, Self.secret, "ga4-api-secret-77"] {
                #expect(install.scan(Array(secret.utf8)).values.reduce(0, +) == 0, "\(secret) on disk")
                #expect(occurrences(of: secret, inFile: install.dir.file("server.log")) == 0)
                #expect(!(try sqlite3(install.databasePath, "SELECT detail FROM audit_log").output.contains(secret)))
            }
            let key = try #require(FileManager.default.attributesOfItem(atPath: install.dir.file("secret.key"))[.posixPermissions] as? Int)
            #expect(key == 0o600)
            // The dashboard: today's figures per destination for the owner; a manager of the site
            // gets nothing (not found); adding through the form seals the credential and answers
            // with a redirect (a refresh does not add twice).
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let page = try await install.request(.get, "/sites/\(install.site)/destinations", headers: [.cookie: owner.cookie])
            #expect(page.status == .ok)
            let metaRow = try #require(page.body.components(separatedBy: "<tr>").first { $0.contains("<small>Meta Conversions API</small>") })
            let cells = metaRow.components(separatedBy: "<td>").dropFirst().map { $0.components(separatedBy: "</td>")[0] }
            #expect(Array(cells[1...5]) == ["on", "2", "0", "100.0\u{00A0}%", "0"], "\(cells)")
            #expect(page.body.contains("user_data.fbc built from the fbclid") && !page.body.contains(Self.token))
            let out = try install.cli(["users", "add", "--email", "manager@example.org", "--role", "manager", "--site", install.site])
            let manager = try await install.signIn("manager@example.org", String(out.split(separator: " ")[2]))
            #expect(try await install.request(.get, "/sites/\(install.site)/destinations", headers: [.cookie: manager.cookie]).status == .notFound)
            let viewerOut = try install.cli(["users", "add", "--email", "viewer@example.org", "--role", "viewer", "--site", install.site])
            let viewer = try await install.signIn("viewer@example.org", String(viewerOut.split(separator: " ")[2]))
            #expect(try await install.request(.get, "/sites/\(install.site)/destinations", headers: [.cookie: viewer.cookie]).status == .notFound)
            for (who, session) in [("manager", manager), ("viewer", viewer)] {
                for action in ["disable", "remove", "replay"] {
                    let r = try await install.request(.post, "/sites/\(install.site)/destinations/\(action)",
                                                      headers: [.contentType: "application/x-www-form-urlencoded", .cookie: session.cookie],
                                                      body: "csrf=\(session.csrf)&destination=\(meta.trimmingCharacters(in: .whitespacesAndNewlines))")
                    #expect(r.status == .notFound, "\(who) \(action)")
                }
            }
            #expect(try database.destinations(site: install.site).allSatisfy(\.enabled))
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            var h = form; h[.cookie] = manager.cookie
            #expect(try await install.request(.post, "/sites/\(install.site)/destinations/add", headers: h,
                                              body: "csrf=\(manager.csrf)&kind=ga4&setting.measurement_id=G-TEST&credential=ga-secret-value-1").status == .notFound)
            h[.cookie] = owner.cookie
            let bad = try await install.request(.post, "/sites/\(install.site)/destinations/add", headers: h,
                                                body: "csrf=\(owner.csrf)&kind=ga4&credential=ga-secret-value-1")
            #expect(bad.status == .badRequest && bad.body.contains("ga4 needs measurement_id"))
            let added = try await install.request(.post, "/sites/\(install.site)/destinations/add", headers: h,
                                                  body: "csrf=\(owner.csrf)&kind=ga4&label=%3Cb%3EGA%3C%2Fb%3E&setting.measurement_id=G-TEST&credential=ga-secret-value-1")
            #expect(added.status == .seeOther && added.headers[.location] == "/sites/\(install.site)/destinations?done=added&n=0")
            let after = try await install.request(.get, added.headers[.location]!, headers: [.cookie: owner.cookie]).body
            #expect(after.contains("&lt;b&gt;GA&lt;/b&gt;") && !after.contains("<b>GA</b>") && after.contains("stored sealed"))
            #expect(install.scan(Array("ga-secret-value-1".utf8)).values.reduce(0, +) == 0)
            #expect(try sqlite3(install.databasePath, "SELECT count(*) FROM audit_log WHERE action = 'destination_added'").output
                .trimmingCharacters(in: .whitespacesAndNewlines) == "5")

            // Delivered facts are not kept.
            #expect(try sqlite3(install.databasePath, "SELECT count(*) FROM deliveries WHERE facts IS NOT NULL").output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        }

        /// A webhook conversion is forwarded by the same gate as the pixel's: a sale reported by the
        /// generic webhook with the e-mail a visitor entered under marketing consent is attributed
        /// to that visit and forwarded (value, SHA-256 of the e-mail, the visit's click id); one
        /// linked to a visit without marketing consent is stored but not forwarded. A deletion
        /// request reaches deliveries still queued (a destination with a one-hour delay): the rows
        /// and the click id they held are gone from the database file and its WAL.
        @Test func webhookConversionsPassTheSameGateAndErasureReachesTheQueue() async throws {
            let receiver = try await Receiver()
            defer { receiver.stop() }
            let install = try await LiveInstall(policyTexts: Self.leadForms)
            defer { install.stop() }
            setenv("CANDOR_TEST_SECRET", Self.secret, 1)
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "webhook", "--setting", "url=\(receiver.url)/now",
                                 "--credential-env", "CANDOR_TEST_SECRET"])
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "webhook", "--setting", "url=\(receiver.url)/later",
                                 "--setting", "delay_seconds=3600", "--credential-env", "CANDOR_TEST_SECRET"])
            let hookSecret = try install.cli(["hooks", "set", "--site", install.site, "--provider", "generic"])
                .split(separator: "\n").first { $0.hasPrefix("secret: ") }.map { String($0.dropFirst(8)) } ?? ""
            let granted = #"{"analytics":true,"marketing":true}"#
            // Identified visits that leave their e-mail in a lead form (the pixel's lead, value 0 → a "lead").
            for (tag, consent, ip) in [("wh", granted, "81.2.69.160"), ("nomkt", #"{"analytics":true,"marketing":false}"#, "81.2.69.161")] {
                var headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: ip]
                let events = [
                    #"{"site":"\#(install.site)","url":"https://localhost/offer?fbclid=CLICK\#(tag.uppercased())","id":"\#(tag)-pv","consent":\#(consent),"subject":"\#(tag)-subject-0123456789abcdef"}"#,
                    #"{"site":"\#(install.site)","name":"signup","url":"https://localhost/form","id":"\#(tag)-form","consent":\#(consent),"subject":"\#(tag)-subject-0123456789abcdef","props":{"field.email":"\#(tag)@example.org"}}"#,
                ]
                for e in events { #expect(try await install.request(.post, "/api/event", headers: headers, body: e).status == .accepted) }
            }
            let database = try install.database()
            #expect(try await eventually(10) { try database.eventCount(site: install.site) == 4 })
            for tag in ["wh", "nomkt"] {
                let body = #"{"type":"sale","id":"order-\#(tag)","value":120,"currency":"EUR","email":"\#(tag)@example.org"}"#
                let t = Int(Date().timeIntervalSince1970)
                var headers: HTTPFields = [.contentType: "application/json"]
                for (k, v) in Webhooks.sign(.generic, body: Array(body.utf8), secret: hookSecret, timestamp: t) { headers[.init(k)!] = v }
                let r = try await install.request(.post, "/hooks/generic/\(install.site)", headers: headers, body: body)
                #expect(r.status == .ok || r.status == .accepted, "\(r.status) \(r.body)")
            }
            #expect(try await eventually(15) { receiver.requests("/now").count >= 1 })
            try await Task.sleep(for: .seconds(2))
            let now = receiver.requests("/now")
            #expect(now.map { $0.json["id"] as? String } == ["generic:order-wh"])
            let sale = try #require(now.first).json
            #expect(sale["value"] as? Double == 120 && sale["kind"] as? String == "sale")
            #expect(sale["email_sha256"] as? String == Minimize.emailSHA256("wh@example.org"))
            #expect((sale["click_id"] as? [String: String]) == ["kind": "fbclid", "value": "CLICKWH"])
            #expect(!receiver.hits.withLock { $0.map(\.body).joined() }.contains("nomkt"))

            // The delayed copy waits in the queue with the click id; the subject's erasure removes it.
            #expect(try database.deliveryCounts(site: install.site)["pending"] == 1)
            #expect(install.scan(Array("CLICKWH".utf8)).values.reduce(0, +) > 0)
            _ = try install.cliAllowingRetry(["forget", "--site", install.site, "--subject", "wh-subject-0123456789abcdef", "--now"])
            #expect(try await eventually(30) {
                try database.deliveryCounts(site: install.site)["pending"] == nil && install.scan(Array("CLICKWH".utf8)).values.reduce(0, +) == 0
            }, "\(install.scan(Array("CLICKWH".utf8)))")
            #expect(receiver.requests("/later").isEmpty)
        }

        /// CRM hand-off against the running binary, with Pipedrive and HubSpot stand-ins on
        /// loopback: a lead's person is found by e-mail, else by first + last name, and exactly one
        /// match is updated with the mapped custom fields after the sync delay; none or several
        /// matches are "not found" and nothing is created; a lead without marketing consent is not
        /// looked up. The e-mail address is never in the database file or WAL in the clear (sealed
        /// in the queue, cleared once synced).
        @Test func crmLeadsAreMatchedUpdatedNeverCreated() async throws {
            let receiver = try await Receiver(api: { hit, _ in
                let q = Dictionary(uniqueKeysWithValues: hit.query.split(separator: "&").map {
                    let kv = $0.split(separator: "=", maxSplits: 1)
                    return (String(kv[0]), String(kv.count > 1 ? kv[1] : "").removingPercentEncoding ?? "")
                })
                switch (hit.method, hit.path) {
                case ("GET", "/api/v1/persons/search"):
                    let ids: [Int] = switch (q["fields"], q["term"]) {
                    case ("email", "ann@example.org"): [7]
                    case ("name", "Bob Stone"): [9]
                    case ("name", "Cat Lee"): [11, 12]
                    default: []
                    }
                    let items = ids.map { #"{"result_score":1,"item":{"id":\#($0),"type":"person"}}"# }.joined(separator: ",")
                    return (200, #"{"success":true,"data":{"items":[\#(items)]}}"#)
                case ("PUT", "/api/v1/persons/7"), ("PUT", "/api/v1/persons/9"): return (200, #"{"success":true}"#)
                case ("POST", "/hs/crm/v3/objects/contacts/search"):
                    let found = hit.body.contains("ann@example.org")
                    return (200, found ? #"{"total":1,"results":[{"id":"501"}]}"# : #"{"total":0,"results":[]}"#)
                case ("PATCH", "/hs/crm/v3/objects/contacts/501"): return (200, #"{"id":"501"}"#)
                default: return (404, #"{"error":"unexpected"}"#)
                }
            })
            defer { receiver.stop() }
            let install = try await LiveInstall(policyTexts: ["default.toml": "[collect]\nform_field_allowlist = [\"email\", \"first_name\", \"last_name\"]\n"])
            defer { install.stop() }
            setenv("CANDOR_TEST_TOKEN", Self.token, 1)
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "pipedrive", "--setting", "base_url=\(receiver.url)",
                                 "--setting", "field_utm_source=a1b2c3", "--setting", "field_landing_page=d4e5f6", "--setting", "field_source=src9",
                                 "--setting", "delay_seconds=1", "--credential-env", "CANDOR_TEST_TOKEN"])
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "hubspot", "--setting", "base_url=\(receiver.url)/hs",
                                 "--setting", "field_utm_campaign=utm_campaign", "--setting", "delay_seconds=0", "--credential-env", "CANDOR_TEST_TOKEN"])
            #expect(throws: ServerProcess.CLIError.self) {
                try install.cli(["destinations", "add", "--site", install.site, "--kind", "pipedrive", "--credential-env", "CANDOR_TEST_TOKEN"])
            }
            let granted = #"{"analytics":true,"marketing":true}"#
            let leads: [(String, String, String)] = [
                ("ann", granted, #""field.email":"ann@example.org""#),
                ("bob", granted, #""field.email":"bob@example.org","field.first_name":"Bob","field.last_name":"Stone""#),
                ("cat", granted, #""field.email":"cat@example.org","field.first_name":"Cat","field.last_name":"Lee""#),
                ("dan", #"{"analytics":true,"marketing":false}"#, #""field.email":"dan@example.org""#),
            ]
            let sentAt = ContinuousClock.now
            for (n, (tag, consent, fields)) in leads.enumerated() {
                let headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: "81.2.69.\(170 + n)"]
                let events = [
                    #"{"site":"\#(install.site)","url":"https://localhost/welcome?utm_source=newsletter&utm_campaign=spring","id":"\#(tag)-pv","consent":\#(consent)}"#,
                    #"{"site":"\#(install.site)","name":"conversion","url":"https://localhost/contact","id":"\#(tag)-lead","consent":\#(consent),"props":{\#(fields)}}"#,
                ]
                for e in events { #expect(try await install.request(.post, "/api/event", headers: headers, body: e).status == .accepted) }
            }
            let database = try install.database()
            #expect(try await eventually(20) {
                let c = try database.deliveryCounts(site: install.site)
                return c["pending"] == nil && c.values.reduce(0, +) == 6
            }, "\((try? database.deliveryCounts(site: install.site)) ?? [:])")
            // Pipedrive: ann by e-mail, bob by name (after his e-mail found no one), cat's name is ambiguous.
            let puts = receiver.hits.withLock { $0.filter { $0.method == "PUT" } }
            #expect(Set(puts.map(\.path)) == ["/api/v1/persons/7", "/api/v1/persons/9"] && puts.count == 2)
            for p in puts {
                #expect(p.json as NSDictionary == ["a1b2c3": "newsletter", "d4e5f6": "/welcome", "src9": "email"] as NSDictionary, "\(p.body)")
                #expect(p.headers["x-api-token"] == Self.token)
            }
            let searches = receiver.hits.withLock { $0.filter { $0.path == "/api/v1/persons/search" } }
            #expect(searches.allSatisfy { !$0.query.contains(Self.token) })
            #expect(searches.map { $0.query.contains("fields=name") }.filter { $0 }.count == 2, "bob and cat by name")
            #expect((searches.map(\.at).min() ?? sentAt) - sentAt >= .milliseconds(900), "the sync waits its delay")
            // HubSpot: ann's contact updated; the others not found, none created.
            let patches = receiver.hits.withLock { $0.filter { $0.method == "PATCH" } }
            #expect(patches.count == 1 && (patches.first?.json as? [String: Any])?["properties"] as? [String: String] == ["utm_campaign": "spring"])
            #expect(receiver.hits.withLock { $0.filter { $0.path.hasSuffix("/contacts") || ($0.method == "POST" && $0.path == "/api/v1/persons") } }.isEmpty)
            #expect(!receiver.hits.withLock { $0.map { $0.body + $0.query } }.joined().contains("dan"))
            #expect(try sqlite3(install.databasePath, "SELECT status, count(*) FROM deliveries GROUP BY status ORDER BY status").output
                .split(separator: "\n") == ["not_found|3", "sent|3"])
            #expect(try sqlite3(install.databasePath, "SELECT count(*) FROM deliveries WHERE contact IS NOT NULL OR facts IS NOT NULL").output
                .hasPrefix("0"))
            for email in ["ann@example.org", "bob@example.org", "dan@example.org"] {
                #expect(install.scan(Array(email.utf8)).values.reduce(0, +) == 0, "\(email) on disk")
            }
            let owner = try await install.signIn(install.ownerEmail, install.ownerPassword)
            let page = try await install.request(.get, "/sites/\(install.site)/destinations", headers: [.cookie: owner.cookie]).body
            #expect(page.contains("Pipedrive (update the person)") && page.contains("never creates a person"))
        }

        /// Google Ads offline click conversions against the running binary, with OAuth and the
        /// upload endpoint on loopback: the refresh token is exchanged once for an access token
        /// kept in memory; each visit's gclid or gbraid is uploaded with its conversion action,
        /// time, value and ad_user_data consent; a conversion the API refuses (partial failure)
        /// is dead-lettered with its reason; a visit without a Google click id is not sent.
        @Test func googleAdsUploadsClickConversions() async throws {
            let receiver = try await Receiver(api: { hit, _ in
                switch hit.path {
                case "/token": return (200, #"{"access_token":"ya29.loopback","expires_in":3599,"token_type":"Bearer"}"#)
                case "/ads/v21/customers/1234567890:uploadClickConversions":
                    return hit.body.contains("BADCLICK")
                        ? (200, #"{"partialFailureError":{"code":3,"message":"The click was not found."}}"#)
                        : (200, #"{"results":[{"conversionAction":"customers/1234567890/conversionActions/55"}]}"#)
                default: return (404, "{}")
                }
            })
            defer { receiver.stop() }
            let install = try await LiveInstall()
            defer { install.stop() }
            let credential = #"{"developer_token":"dev-token-1","client_id":"cid.apps","client_secret":"csecret-9","refresh_token":"1//refresh-xyz"}"#
            setenv("CANDOR_TEST_GADS", credential, 1)
            _ = try install.cli(["destinations", "add", "--site", install.site, "--kind", "googleads", "--setting", "customer_id=1234567890",
                                 "--setting", "conversion_action_id=55", "--setting", "base_url=\(receiver.url)/ads",
                                 "--setting", "token_url=\(receiver.url)/token", "--credential-env", "CANDOR_TEST_GADS"])
            setenv("CANDOR_TEST_GADS_BAD", "not json at all", 1)
            #expect(throws: ServerProcess.CLIError.self) {
                try install.cli(["destinations", "add", "--site", install.site, "--kind", "googleads", "--setting", "customer_id=1",
                                 "--setting", "conversion_action_id=2", "--credential-env", "CANDOR_TEST_GADS_BAD"])
            }
            let granted = #"{"analytics":true,"marketing":true}"#
            for (n, (tag, query)) in [("g1", "?gclid=GOODCLICK1"), ("g2", "?gbraid=GOODBRAID"), ("g3", "?gclid=BADCLICK"), ("g4", "")].enumerated() {
                try await Self.visit(install, tag: tag, ip: "81.2.69.\(180 + n)", consent: granted, query: query, value: 30)
            }
            let database = try install.database()
            #expect(try await eventually(20) {
                let c = try database.deliveryCounts(site: install.site)
                return c["pending"] == nil && c.values.reduce(0, +) == 4
            })
            #expect(try database.deliveryCounts(site: install.site) == ["sent": 2, "dead": 1, "skipped": 1])
            #expect(receiver.requests("/token").count == 1, "one token exchange for every upload")
            #expect(receiver.requests("/token").first?.body.contains("grant_type=refresh_token") == true)
            let uploads = receiver.requests("/ads/v21/customers/1234567890:uploadClickConversions")
            #expect(uploads.count == 3)
            for u in uploads {
                #expect(u.headers["authorization"] == "Bearer ya29.loopback" && u.headers["developer-token"] == "dev-token-1")
                let c = try #require((u.json["conversions"] as? [[String: Any]])?.first)
                #expect(c["conversionAction"] as? String == "customers/1234567890/conversionActions/55")
                #expect(c["conversionValue"] as? Double == 30 && c["currencyCode"] as? String == "EUR")
                #expect((c["consent"] as? [String: String])?["adUserData"] == "GRANTED")
                #expect((c["conversionDateTime"] as? String)?.hasSuffix("+00:00") == true)
                #expect(!u.body.contains("81.2.69") && !u.body.contains("Mozilla"))
            }
            #expect(uploads.contains { ($0.json["conversions"] as? [[String: Any]])?.first?["gbraid"] as? String == "GOODBRAID" })
            let dead = try #require(try database.deliveryErrors(site: install.site).first { $0.status == "dead" })
            #expect(dead.error.contains("The click was not found") && dead.attempts == 1)
            for secret in ["csecret-9", "1//refresh-xyz", "dev-token-1"] {
                #expect(install.scan(Array(secret.utf8)).values.reduce(0, +) == 0, "\(secret) on disk")
            }
        }

        /// Consent withdrawn after a conversion was queued stops it, against the running binary:
        /// on a site that counts anonymously, a later event with GPC (stored anonymously) takes the
        /// visit's forwarding away; on a site that does not, a later refusal (the event dropped)
        /// does the same; an older event still carrying the grant, arriving after, does not undo
        /// it. The queued deliveries (eight-second delay) are not sent but marked
        /// skipped with the reason; a visit that kept its grant is sent.
        @Test func consentWithdrawnAfterQueueingStopsTheDelivery() async throws {
            let receiver = try await Receiver()
            defer { receiver.stop() }
            let install = try await LiveInstall(policyTexts: ["strict.toml": "[consent]\nanonymous_counting = false\n"])
            defer { install.stop() }
            let strict = try install.cli(["sites", "add", "--name", "Strict", "--domain", "strict.example", "--policy", "strict"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            setenv("CANDOR_TEST_SECRET", Self.secret, 1)
            for site in [install.site, strict] {
                _ = try install.cli(["destinations", "add", "--site", site, "--kind", "webhook", "--setting", "url=\(receiver.url)/q",
                                     "--setting", "delay_seconds=8", "--credential-env", "CANDOR_TEST_SECRET"])
            }
            let granted = #"{"analytics":true,"marketing":true}"#
            func post(_ site: String, _ host: String, _ ip: String, _ id: String, _ consent: String, name: String = "pageview",
                      value: String = "", gpc: Bool = false) async throws -> String {
                var headers: HTTPFields = [.contentType: "text/plain", .userAgent: chromeUA, .init("X-Forwarded-For")!: ip]
                if gpc { headers[.init("Sec-GPC")!] = "1" }
                let body = #"{"site":"\#(site)","name":"\#(name)","url":"https://\#(host)/p","id":"\#(id)","consent":\#(consent)\#(value)}"#
                let r = try await install.request(.post, "/api/event", headers: headers, body: body)
                #expect(r.status == .accepted)
                return r.body
            }
            // keep: converts and keeps the grant. gpc: converts, then a GPC page view. refuse: converts on the strict site, then refuses.
            _ = try await post(install.site, "localhost", "81.2.69.190", "keep-conv", granted, name: "conversion", value: #","value":10,"currency":"EUR""#)
            _ = try await post(install.site, "localhost", "81.2.69.191", "gpc-conv", granted, name: "conversion", value: #","value":10,"currency":"EUR""#)
            _ = try await post(strict, "strict.example", "81.2.69.192", "refuse-conv", granted, name: "conversion", value: #","value":10,"currency":"EUR""#)
            #expect(try await post(install.site, "localhost", "81.2.69.191", "gpc-later", #""unset""#, gpc: true).contains(#""accepted":1"#))
            #expect(try await post(strict, "strict.example", "81.2.69.192", "refuse-later", #""denied""#).contains(#""consent_denied":1"#))
            // An older event still carrying the grant (queued by the browser, dated 30 s ago) arrives
            // after the objection: it does not give the visit its forwarding back.
            let past = Int64(Date().timeIntervalSince1970 * 1000) - 30_000
            _ = try await post(install.site, "localhost", "81.2.69.191", "gpc-queued", granted, value: #","ts":\#(past)"#)
            let database = try install.database()
            #expect(try await eventually(40) {
                let a = try database.deliveryCounts(site: install.site), b = try database.deliveryCounts(site: strict)
                return a["pending"] == nil && b["pending"] == nil
            })
            #expect(receiver.requests("/q").map { $0.json["id"] as? String } == ["pixel:keep-conv"])
            #expect(try database.deliveryCounts(site: install.site) == ["sent": 1, "skipped": 1])
            #expect(try database.deliveryCounts(site: strict) == ["skipped": 1])
            #expect(try database.deliveryErrors(site: strict).first?.error == "consent for this visit no longer allows forwarding")
        }

        /// Reliability against the running binary: a 429 with Retry-After is honoured; a failing
        /// endpoint is dead-lettered after the attempts allowed and replayed from the CLI; a 400 is
        /// dead at once; kill -9 while deliveries are in flight loses none (the receiver sees every
        /// event id, duplicates possible and counted).
        @Test func retriesDeadLettersReplayAndSurvivesKill9() async throws {
            let failing = Atomic<Bool>(true)
            let receiver = try await Receiver { path, n in
                switch path {
                case "/throttled": n < 2 ? (429, [("Retry-After", "1")], .zero) : (200, [], .zero)
                case "/down": failing.load(ordering: .relaxed) ? (503, [], .zero) : (200, [], .zero)
                case "/bad": (400, [], .zero)
                default: (200, [], .milliseconds(400))
                }
            }
            defer { receiver.stop() }
            let install = try await LiveInstall(serve: ["--delivery-retry-base", "0.2", "--delivery-attempts", "3"], policyTexts: Self.leadForms)
            defer { install.stop() }
            setenv("CANDOR_TEST_SECRET", Self.secret, 1)
            var ids: [String: String] = [:]
            for name in ["throttled", "down", "bad", "slow"] {
                ids[name] = try install.cli(["destinations", "add", "--site", install.site, "--kind", "webhook", "--label", name,
                                             "--setting", "url=\(receiver.url)/\(name)", "--credential-env", "CANDOR_TEST_SECRET"])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let granted = #"{"analytics":true,"marketing":true}"#
            try await Self.visit(install, tag: "first", ip: "81.2.69.150", consent: granted)
            #expect(try await eventually(20) { receiver.requests("/throttled").count == 3 && receiver.requests("/bad").count == 1 })
            let throttled = receiver.requests("/throttled")
            for (x, y) in zip(throttled, throttled.dropFirst()) {
                #expect((y.at - x.at) >= .milliseconds(950), "Retry-After: 1 honoured (\(y.at - x.at))")
            }
            let database = try install.database()
            #expect(try await eventually(20) { try database.deliveryErrors(site: install.site).contains { $0.status == "dead" && $0.attempts == 3 } })
            #expect(receiver.requests("/down").count == 3)
            let errors = try database.deliveryErrors(site: install.site)
            #expect(errors.contains { $0.status == "dead" && $0.httpStatus == 400 && $0.attempts == 1 })

            // Replay after the endpoint recovers: only the dead-lettered ones are queued again.
            failing.store(false, ordering: .relaxed)
            let replayed = try install.cli(["destinations", "replay", "--site", install.site, "--destination", ids["down"]!])
            #expect(replayed.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            #expect(try await eventually(20) { receiver.requests("/down").count == 4 })

            // kill -9 with deliveries in flight (the slow endpoint answers after 400 ms), under load.
            let load = EventLoad(port: install.server.port, site: install.site, eventsPerSecond: 200)
            for i in 0..<12 { try await Self.visit(install, tag: "k\(i)", ip: "81.2.70.\(i + 1)", consent: granted) }
            _ = await load.stop()
            // Killed while the slow endpoint is answering a delivery (it takes 400 ms per answer).
            #expect(try await eventually(20) { receiver.inFlight.withLock { $0["/slow"] ?? 0 } > 0 && receiver.requests("/slow").count >= 2 })
            install.server.kill9()
            try await install.server.start(["--trusted-proxy", "127.0.0.1/32", "--delivery-retry-base", "0.2", "--delivery-attempts", "3"])
            let expected = Set(["first"] + (0..<12).map { "k\($0)" }).map { "pixel:\($0)-conv" }
            #expect(try await eventually(40) { Set(receiver.requests("/slow").map { $0.json["id"] as? String ?? "" }) == Set(expected) })
            let slow = receiver.requests("/slow")
            print("kill -9: \(expected.count) conversions, \(slow.count) requests to the slow endpoint (\(slow.count - expected.count) resent)")
            #expect(slow.count > expected.count, "deliveries were in flight at the kill and were sent again")
            #expect(try await eventually(10) {
                try sqlite3(install.databasePath, "SELECT count(*) FROM deliveries WHERE destination_id = \(ids["slow"]!) AND status = 'sent'")
                    .output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(expected.count)"
            })
        }
    }
}
