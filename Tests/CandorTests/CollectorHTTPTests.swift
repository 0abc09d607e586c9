import Collector
import Consent
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import Testing

@Suite struct CollectorHTTPTests {
    static let json: HTTPFields = [.contentType: "text/plain;charset=UTF-8", .userAgent: chromeUA]

    func app(_ t: TestCollector) -> some ApplicationProtocol {
        Application(router: buildRouter(collector: t.collector))
    }

    func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    @Test func acceptedEventsAreCommittedBeforeTheAnswer() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            let r = try await client.execute(uri: "/api/event", method: .post, headers: Self.json, body: body(
                #"{"events":[{"site":"\#(t.site.id)","url":"https://example.com/a","id":"x1"},{"site":"\#(t.site.id)","url":"https://example.com/b","id":"x2"}]}"#))
            #expect(r.status == .accepted)
            #expect(String(buffer: r.body) == #"{"accepted":2,"dropped":{}}"#)
            // The answer came after the commit: the rows are readable now.
            #expect(try t.database.clientIDs(site: t.site.id) == ["x1", "x2"])
            let again = try await client.execute(uri: "/api/event", method: .post, headers: Self.json, body: body(
                #"{"site":"\#(t.site.id)","url":"https://example.com/a","id":"x1"}"#))
            #expect(String(buffer: again.body) == #"{"accepted":0,"dropped":{"duplicate":1}}"#)
        }
        #expect(try t.database.eventCount() == 2)
    }

    @Test func badRequestsGetAJSONReasonAndStoreNothing() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            func expectError(_ status: HTTPResponse.Status, headers: HTTPFields = Self.json, _ b: String, method: HTTPRequest.Method = .post,
                             uri: String = "/api/event", sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let r = try await client.execute(uri: uri, method: method, headers: headers, body: body(b))
                #expect(r.status == status, sourceLocation: sourceLocation)
                #expect(r.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
                #expect(String(buffer: r.body).hasPrefix(#"{"error":""#), sourceLocation: sourceLocation)
            }
            try await expectError(.badRequest, "{not json")
            try await expectError(.badRequest, #"{"events":[{"site":"\#(t.site.id)","url":"https://example.com/"},{"site":"\#(t.site.id)","url":"nope"}]}"#)
            try await expectError(.badRequest, #"{"events":[{"site":"\#(t.site.id)","url":"https://example.com/"},{"site":"other","url":"https://example.com/"}]}"#)
            try await expectError(.unsupportedMediaType, headers: [.contentType: "application/x-www-form-urlencoded"], "a=b")
            try await expectError(.unsupportedMediaType, headers: [:], "{}")
            try await expectError(.contentTooLarge, String(repeating: " ", count: WireLimits.maxBodyBytes + 1))
            try await expectError(.notFound, #"{"site":"unknownsite","url":"https://example.com/"}"#)
            try await expectError(.badRequest, "", method: .get, uri: "/p.gif?site=\(t.site.id)")
        }
        #expect(try t.database.eventCount() == 0)
        #expect(try t.database.sessions(site: t.site.id).isEmpty)
    }

    @Test func rateLimitedRequestsGet429WithRetryAfter() async throws {
        let t = try TestCollector(limits: .init(perSite: (1000, 1000), perClient: (1, 3)))
        try await app(t).test(.router) { client in
            let e = #"{"site":"\#(t.site.id)","url":"https://example.com/"}"#
            for _ in 0..<3 {
                #expect(try await client.execute(uri: "/api/event", method: .post, headers: Self.json, body: body(e)).status == .accepted)
            }
            let limited = try await client.execute(uri: "/api/event", method: .post, headers: Self.json, body: body(e))
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] == "1")
            #expect(String(buffer: limited.body).contains("rate limited"))
        }
        #expect(try t.database.eventCount() == 3)
        #expect(t.collector.metrics.droppedCount(.rateLimited) == 1)
    }

    @Test func botsArePassedOverAndCounted() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            let r = try await client.execute(uri: "/api/event", method: .post,
                                             headers: [.contentType: "text/plain", .userAgent: "Googlebot/2.1 (+http://www.google.com/bot.html)"],
                                             body: body(#"{"site":"\#(t.site.id)","url":"https://example.com/"}"#))
            #expect(r.status == .accepted)
            #expect(String(buffer: r.body) == #"{"accepted":0,"dropped":{"bot":1}}"#)
            let m = try await client.execute(uri: "/metrics", method: .get)
            #expect(String(buffer: m.body).contains(#"candor_events_dropped_total{reason="bot"} 1"#))
        }
    }

    @Test func corsAllowsOnlyTheSitesDomains() async throws {
        let t = try TestCollector(domains: ["example.com"])
        try await app(t).test(.router) { client in
            let e = body(#"{"site":"\#(t.site.id)","url":"https://shop.example.com/"}"#)
            var h = Self.json
            h[.origin] = "https://shop.example.com"
            let ok = try await client.execute(uri: "/api/event", method: .post, headers: h, body: e)
            #expect(ok.status == .accepted)
            #expect(ok.headers[.accessControlAllowOrigin] == "https://shop.example.com")
            h[.origin] = "https://evil-example.com"
            let refused = try await client.execute(uri: "/api/event", method: .post, headers: h, body: e)
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("is not registered for site"))
            let pre = try await client.execute(uri: "/api/event", method: .options,
                                               headers: [.origin: "https://example.com", .accessControlRequestMethod: "POST"])
            #expect(pre.status == .noContent)
            #expect(pre.headers[.accessControlAllowHeaders] == "Content-Type")
        }
        #expect(try t.database.eventCount() == 1)
    }

    @Test func noScriptPixelIsAFortyThreeByteGIF() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            let r = try await client.execute(uri: "/p.gif?site=\(t.site.id)&url=https%3A%2F%2Fexample.com%2Fnojs%3Futm_source%3Dx",
                                             method: .get, headers: [.userAgent: chromeUA])
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "image/gif")
            #expect(r.body.readableBytes == 43)
        }
        let events = try t.database.events(site: t.site.id)
        #expect(events.map(\.path) == ["/nojs"])
        #expect(events.first?.utmSource == "x")
    }

    @Test func healthReportsStateAndGeo() async throws {
        let t = try TestCollector()
        try await app(t).test(.router) { client in
            let r = try await client.execute(uri: "/health", method: .get)
            #expect(r.status == .ok)
            let text = String(buffer: r.body)
            #expect(text.contains(#""status":"ok""#))
            #expect(text.contains("no database configured"))
        }
    }

    /// Thousands of malformed, oversized and deeply nested bodies: only 4xx, nothing stored, still serving.
    @Test func malformedBodiesOnlyEverGet4xx() async throws {
        let t = try TestCollector()
        let valid = Array(#"{"events":[{"site":"\#(t.site.id)","url":"https://example.com/p","props":{"a":"b"},"consent":{"analytics":true}}]}"#.utf8)
        var rng = SystemRandomNumberGenerator()
        var bodies: [[UInt8]] = [
            Array(String(repeating: "[", count: 100_000).utf8),
            Array(String(repeating: "{\"a\":", count: 5000).utf8),
            Array("{\"site\":\"\(t.site.id)\",\"url\":\"https://example.com/\",\"props\":{\"x\":\"\\ud800\"}}".utf8),
            [0xFF, 0xFE, 0x00], [], Array("null".utf8), Array("\"str\"".utf8), Array("1e400".utf8),
        ]
        for _ in 0..<3000 {
            var b = valid
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            case 1: for _ in 0..<Int.random(in: 1...4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            case 2: b.insert(contentsOf: Array(repeating: UInt8(ascii: "["), count: Int.random(in: 1...50, using: &rng)), at: Int.random(in: 0..<b.count, using: &rng))
            default: b.removeSubrange(Int.random(in: 0..<b.count / 2, using: &rng)..<Int.random(in: b.count / 2..<b.count, using: &rng))
            }
            bodies.append(b)
        }
        let allBodies = bodies
        try await app(t).test(.router) { client in
            var statuses: [Int: Int] = [:]
            for b in allBodies {
                let r = try await client.execute(uri: "/api/event", method: .post, headers: Self.json, body: ByteBuffer(bytes: b))
                statuses[r.status.code, default: 0] += 1
                if r.status.code != 202 {
                    #expect((400..<500).contains(r.status.code))
                    #expect(String(buffer: r.body).hasPrefix(#"{"error":"#))
                }
            }
            let accepted = statuses[202] ?? 0
            #expect(statuses[400, default: 0] > 2000)
            #expect(try t.database.eventCount() <= accepted)
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
        }
        #expect(try t.database.integrityCheck() == "ok")
    }
}
