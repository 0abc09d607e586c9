import Collector
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Storage
import Testing

@Suite struct PrivacyHTTPTests {
    static let browser: HTTPFields = [.contentType: "text/plain;charset=UTF-8", .userAgent: chromeUA, .origin: "https://www.example.com"]

    func app(_ t: TestCollector) throws -> some ApplicationProtocol {
        Application(router: buildRouter(collector: t.collector, office: try t.office,
                                        mayOperate: ObservabilityRoutes<CandorRequestContext>.operatorCheck(token: testMetricsToken)))
    }

    func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    /// Browser keys and the subject ids derived from them (what pixel.js does with crypto.subtle).
    static let keyA = String(repeating: "a1", count: 32)
    static let keyB = String(repeating: "b2", count: 32)
    static var keyedA: String { PrivacyKey.subject(forKey: keyA)! }
    static var keyedB: String { PrivacyKey.subject(forKey: keyB)! }

    @Test func theSubjectIdIsDerivedFromTheKeyAsBrowsersDoIt() {
        // SHA-256("a1a1…") computed by Python's hashlib, first 16 bytes.
        #expect(PrivacyKey.subject(forKey: Self.keyA) == "3490f80401886d12f3861ec190f5c164")
        #expect(PrivacyKey.subject(forKey: "short") == nil && PrivacyKey.subject(forKey: String(repeating: "x", count: 31) + "<") == nil)
    }

    @Test func selfServiceExportAndForgetNeedTheBrowsersKey() async throws {
        let t = try TestCollector()
        try await t.consentedVisit(Self.keyedA, ip: "81.2.69.160")
        try await t.consentedVisit(Self.keyedB, ip: "81.2.69.192")
        try await app(t).test(.router) { client in
            func post(_ path: String, _ json: String, headers: HTTPFields = Self.browser) async throws -> TestResponse {
                try await client.execute(uri: path, method: .post, headers: headers, body: body(json))
            }
            let export = try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#)
            #expect(export.status == .ok)
            #expect(export.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(export.headers[.accessControlAllowOrigin] == "https://www.example.com")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: export.body).utf8)) as? [String: Any])
            #expect((doc["events"] as? [Any])?.count == 2)

            // Issue 12, finding 6: the subject id (the attribution token sites put in checkout URLs) is no credential.
            for path in ["/api/privacy/export", "/api/privacy/forget"] {
                let byID = try await post(path, #"{"site":"\#(t.site.id)","subject":"\#(Self.keyedA)"}"#)
                #expect(byID.status == .badRequest && String(buffer: byID.body).contains("proves nothing"))
            }
            // No key (a visitor who never agreed): a reason, not somebody else's data.
            #expect(try await post("/api/privacy/export", #"{"site":"\#(t.site.id)"}"#).status == .badRequest)
            // A made-up key: nothing held, no work done.
            let madeUp = try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(String(repeating: "c3", count: 32))"}"#)
            #expect(madeUp.status == .notFound)
            // Browser endpoints need an Origin, and one of the site's.
            var noOrigin = Self.browser
            noOrigin[.origin] = nil
            #expect(try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#, headers: noOrigin).status == .forbidden)
            #expect(try await post("/api/privacy/forget", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#, headers: noOrigin).status == .forbidden)
            var foreign = Self.browser
            foreign[.origin] = "https://evil.test"
            #expect(try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#, headers: foreign).status == .forbidden)

            let forget = try await post("/api/privacy/forget", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#)
            #expect(forget.status == .accepted)
            let filed = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: forget.body).utf8)) as? [String: Any])
            #expect(filed["status"] as? String == "received")
            #expect(filed["filed_by"] == nil)
        }
        let requests = try t.database.privacyRequests(site: t.site.id)
        #expect(requests.count == 1 && requests[0].filedBy == "self-service")
        _ = await (try t.office).processOpenRequests(actor: "test")
        #expect(try t.database.eventCount() == 2)
    }

    /// Consent records are linked to a subject only with its key; a subject id alone (what banners
    /// before keys send, or a forger who saw it in a URL) leaves the record unlinked.
    @Test func consentRecordsLinkToASubjectOnlyWithItsKey() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            let forged = try await client.execute(uri: "/api/consent", method: .post, headers: Self.browser, body: body(
                #"{"site":"\#(t.site.id)","banner":"1","analytics":true,"marketing":true,"subject":"\#(Self.keyedA)"}"#))
            #expect(forged.status == .created && String(buffer: forged.body).contains(#""linked":false"#))
            let proven = try await client.execute(uri: "/api/consent", method: .post, headers: Self.browser, body: body(
                #"{"site":"\#(t.site.id)","banner":"1","analytics":true,"marketing":false,"key":"\#(Self.keyA)"}"#))
            #expect(proven.status == .created && String(buffer: proven.body).contains(#""linked":true"#))
            let unlinked = try await client.execute(uri: "/api/consent", method: .post, headers: Self.browser, body: body(
                #"{"site":"\#(t.site.id)","banner":"1","analytics":false,"marketing":false,"key":null,"subject":null}"#))
            #expect(unlinked.status == .created)
        }
        let records = try t.database.consentRecords(site: t.site.id)
        let hasher = try SubjectHasher(database: t.database)
        #expect(records.map(\.subject) == [nil, hasher.hash(Self.keyedA), nil])
    }

    @Test func abuseLimitsCountAnIPv6ClientByItsSlash64() {
        #expect(ClientAddressResolver.limitKey("2001:db8:1:2::1") == ClientAddressResolver.limitKey("2001:db8:1:2:ffff::9"))
        #expect(ClientAddressResolver.limitKey("2001:db8:1:2::1") != ClientAddressResolver.limitKey("2001:db8:1:3::1"))
        #expect(ClientAddressResolver.limitKey("81.2.69.142") == "81.2.69.142")
        #expect(ClientAddressResolver.limitKey("::ffff:81.2.69.142") == "::ffff:81.2.69.142")
    }

    /// Limits per client address and per subject: one client cannot flood the queue or the
    /// consent table, and made-up keys from one client leave a real visitor's allowance alone.
    @Test func selfServiceIsLimitedPerClientAndPerSubject() async throws {
        let t = try TestCollector(trusted: [CIDR("127.0.0.1/32")!])
        try await t.consentedVisit(Self.keyedA, ip: "81.2.69.160")
        let application = Application(router: buildRouter(collector: t.collector, office: try t.office))
        try await application.test(.live) { client in
            func post(_ path: String, _ json: String, from ip: String) async throws -> HTTPResponse.Status {
                var h = Self.browser
                h[.init("X-Forwarded-For")!] = ip
                return try await client.execute(uri: path, method: .post, headers: h, body: body(json)).status
            }
            var statuses: [HTTPResponse.Status: Int] = [:]
            for i in 0..<2000 {
                let path = i % 2 == 0 ? "/api/privacy/forget" : "/api/consent"
                let json = i % 2 == 0 ? #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#
                    : #"{"site":"\#(t.site.id)","banner":"1","analytics":true,"marketing":true,"key":"\#(Self.keyA)"}"#
                statuses[try await post(path, json, from: "198.51.100.1"), default: 0] += 1
            }
            #expect(statuses[.tooManyRequests, default: 0] >= 1970, "\(statuses)")
            // 400 exports with made-up keys from one client: 10 answered 404, the rest 429; the real visitor is not affected.
            for i in 0..<400 {
                _ = try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(String(format: "%064x", i))"}"#, from: "203.0.113.5")
            }
            #expect(try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#, from: "192.0.2.44") == .ok)
            // Per subject: 3 exports at once, then one a minute, from any address.
            var perSubject: [HTTPResponse.Status] = []
            for i in 0..<3 { perSubject.append(try await post("/api/privacy/export", #"{"site":"\#(t.site.id)","key":"\#(Self.keyA)"}"#, from: "192.0.2.\(50 + i)")) }
            #expect(perSubject == [.ok, .ok, .tooManyRequests])
        }
        #expect(try t.database.privacyRequests(site: t.site.id).count <= 2)
        #expect(try t.database.consentRecords(site: t.site.id).count <= 10)
    }

    @Test func officerAPINeedsTheSitesKeyAndSeesOnlyItsSite() async throws {
        let t = try TestCollector()
        let other = Site(id: "othersite1", name: "Other", domains: ["other.example"], policy: "default", createdAt: noon)
        try t.database.addSite(other)
        let key = try t.issueKey(scope: .privacyOfficer, label: "dpo")
        let otherKey = try t.issueKey(site: other.id, scope: .privacyOfficer, label: "dpo")
        #expect(try t.database.apiKeys(site: t.site.id).count == 1)
        #expect(occurrences(of: String(key.split(separator: "_")[2]), inFile: t.dir.file("candor.sqlite")) == 0)
        try await t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await app(t).test(.router) { client in
            func call(_ method: HTTPRequest.Method, _ uri: String, _ key: String?, _ json: String = "") async throws -> TestResponse {
                var h: HTTPFields = [.contentType: "application/json"]
                if let key { h[.authorization] = "Bearer \(key)" }
                return try await client.execute(uri: uri, method: method, headers: h, body: body(json))
            }
            #expect(try await call(.post, "/api/v1/privacy/requests", nil, #"{"subject":"\#(subjectA)"}"#).status == .unauthorized)
            #expect(try await call(.post, "/api/v1/privacy/requests", key + "x", #"{"subject":"\#(subjectA)"}"#).status == .unauthorized)
            #expect(try await call(.post, "/api/v1/privacy/requests", key, #"{"email":"nope"}"#).status == .badRequest)
            #expect(try await call(.post, "/api/v1/privacy/requests", key, #"{"who":"x"}"#).status == .badRequest)

            let exported = try await call(.post, "/api/v1/privacy/export", key, #"{"subject":"\#(subjectA)"}"#)
            #expect(exported.status == .ok)
            #expect(String(buffer: exported.body).contains(#""path":"/a/2""#))

            let filed = try await call(.post, "/api/v1/privacy/requests", key, #"{"subject":"\#(subjectA)"}"#)
            #expect(filed.status == .accepted)
            let id = try #require((try JSONSerialization.jsonObject(with: Data(String(buffer: filed.body).utf8)) as? [String: Any])?["request"] as? String)
            #expect(try await call(.get, "/api/v1/privacy/requests/\(id)", otherKey).status == .notFound)
            #expect(try await call(.get, "/api/v1/privacy/requests/\(id)/receipt", key).status == .conflict)
            _ = await (try t.office).processOpenRequests(actor: "test")
            let status = try await call(.get, "/api/v1/privacy/requests/\(id)", key)
            #expect(String(buffer: status.body).contains(#""status":"done""#))
            let receipt = try await call(.get, "/api/v1/privacy/requests/\(id)/receipt", key)
            #expect(receipt.status == .ok)
            #expect(String(buffer: receipt.body).contains(#""events":2"#))
        }
        #expect(try t.database.recentAuditEntries(limit: 10).contains { $0.actor.hasPrefix("api-key:") && $0.action == "request_received" })
    }

    @Test func metricsCountOpenAndOverdueRequests() async throws {
        let t = try TestCollector()
        _ = try t.office.file(site: t.site.id, identifier: .subject(subjectA), filedBy: "test")
        t.clock.advance(31 * day)
        _ = try t.office.file(site: t.site.id, identifier: .subject(subjectB), filedBy: "test")
        try await app(t).test(.router) { client in
            let text = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: operatorHeaders).body)
            #expect(text.contains("candor_privacy_requests_open 2\n"))
            #expect(text.contains("candor_privacy_requests_overdue 1\n"))
        }
    }
}
