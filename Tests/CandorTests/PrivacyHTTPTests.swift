import Collector
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Privacy
import Store
import Testing

@Suite struct PrivacyHTTPTests {
    static let browser: HTTPFields = [.contentType: "text/plain;charset=UTF-8", .userAgent: chromeUA, .origin: "https://www.example.com"]

    func app(_ t: TestCollector) throws -> some ApplicationProtocol {
        Application(router: buildRouter(collector: t.collector, office: try t.office,
                                        mayOperate: ObservabilityRoutes<CandorRequestContext>.operatorCheck(token: testMetricsToken)))
    }

    func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    @Test func selfServiceExportAndForgetWorkOnlyWithTheStoredSubjectId() async throws {
        let t = try TestCollector()
        try await t.consentedVisit(subjectA, ip: "81.2.69.160")
        try await t.consentedVisit(subjectB, ip: "81.2.69.192")
        try await app(t).test(.router) { client in
            let export = try await client.execute(uri: "/api/privacy/export", method: .post, headers: Self.browser,
                                                  body: body(#"{"site":"\#(t.site.id)","subject":"\#(subjectA)"}"#))
            #expect(export.status == .ok)
            #expect(export.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(export.headers[.accessControlAllowOrigin] == "https://www.example.com")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: export.body).utf8)) as? [String: Any])
            #expect((doc["events"] as? [Any])?.count == 2)

            // No subject (a visitor who never agreed): a reason, not somebody else's data.
            let none = try await client.execute(uri: "/api/privacy/export", method: .post, headers: Self.browser,
                                                body: body(#"{"site":"\#(t.site.id)"}"#))
            #expect(none.status == .badRequest)
            var foreign = Self.browser
            foreign[.origin] = "https://evil.test"
            let cross = try await client.execute(uri: "/api/privacy/export", method: .post, headers: foreign,
                                                 body: body(#"{"site":"\#(t.site.id)","subject":"\#(subjectA)"}"#))
            #expect(cross.status == .forbidden)

            let forget = try await client.execute(uri: "/api/privacy/forget", method: .post, headers: Self.browser,
                                                  body: body(#"{"site":"\#(t.site.id)","subject":"\#(subjectA)"}"#))
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

    @Test func selfServiceExportsAreRateLimitedPerSubject() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<4 {
                statuses.append(try await client.execute(uri: "/api/privacy/export", method: .post, headers: Self.browser,
                                                         body: body(#"{"site":"\#(t.site.id)","subject":"\#(subjectA)"}"#)).status)
            }
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests])
        }
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
