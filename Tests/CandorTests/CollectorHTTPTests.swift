import Collector
import Consent
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Store
import Storage
import Testing

@Suite struct CollectorHTTPTests {
    static let json: HTTPFields = [.contentType: "text/plain;charset=UTF-8", .userAgent: chromeUA]

    /// The server as `candor serve` builds it (`POST /api/event` answered by the event-loop
    /// handler) tested live, or the router alone (its `/api/event` route shares the same steps).
    func app(_ t: TestCollector, _ transport: Transport) -> some ApplicationProtocol {
        Application(router: buildRouter(collector: t.collector,
                                        mayOperate: ObservabilityRoutes<CandorRequestContext>.operatorCheck(token: testMetricsToken)),
                    server: .http1(configuration: .init(additionalChannelHandlers: transport == .handler ? [EventIngestHandler(collector: t.collector)] : [])))
    }

    enum Transport: String, CaseIterable, Sendable { case handler, router }

    func setup(_ transport: Transport) -> TestingSetup { transport == .handler ? .live : .router }

    func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    @Test(arguments: Transport.allCases) func acceptedEventsAreCommittedBeforeTheAnswer(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
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

    @Test(arguments: Transport.allCases) func badRequestsGetAJSONReasonAndStoreNothing(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
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

    @Test(arguments: Transport.allCases) func rateLimitedRequestsGet429WithRetryAfter(_ transport: Transport) async throws {
        let t = try TestCollector(limits: .init(perSite: (1000, 1000), perClient: (1, 3)))
        try await app(t, transport).test(setup(transport)) { client in
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

    @Test(arguments: Transport.allCases) func botsArePassedOverAndCounted(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
            let r = try await client.execute(uri: "/api/event", method: .post,
                                             headers: [.contentType: "text/plain", .userAgent: "Googlebot/2.1 (+http://www.google.com/bot.html)"],
                                             body: body(#"{"site":"\#(t.site.id)","url":"https://example.com/"}"#))
            #expect(r.status == .accepted)
            #expect(String(buffer: r.body) == #"{"accepted":0,"dropped":{"bot":1}}"#)
            let m = try await client.execute(uri: "/metrics", method: .get, headers: operatorHeaders)
            #expect(String(buffer: m.body).contains(#"candor_events_dropped_total{reason="bot"} 1"#))
        }
    }

    @Test(arguments: Transport.allCases) func corsAllowsOnlyTheSitesDomains(_ transport: Transport) async throws {
        let t = try TestCollector(domains: ["example.com"])
        try await app(t, transport).test(setup(transport)) { client in
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

    @Test(arguments: Transport.allCases) func noScriptPixelIsAFortyThreeByteGIF(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
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

    @Test(arguments: Transport.allCases) func healthReportsStateAndGeo(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
            let r = try await client.execute(uri: "/health", method: .get, headers: operatorHeaders)
            #expect(r.status == .ok)
            let text = String(buffer: r.body)
            #expect(text.contains(#""status":"ok""#))
            #expect(text.contains("no database configured"))
        }
    }

    /// Issue 12, finding 7: /health and /metrics named GeoIP paths, salt days and traffic to
    /// anyone; /health said ok while every commit failed.
    @Test(arguments: Transport.allCases) func operationalEndpointsNeedAnOperatorAndHealthReportsFailingWrites(_ transport: Transport) async throws {
        let t = try TestCollector()
        try await app(t, transport).test(setup(transport)) { client in
            let live = try await client.execute(uri: "/healthz", method: .get)
            #expect(live.status == .ok && String(buffer: live.body) == #"{"status":"alive"}"#)
            for uri in ["/health", "/metrics"] {
                #expect(try await client.execute(uri: uri, method: .get).status == .unauthorized)
                #expect(try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer wrong-token-0123456789"]).status
                        == .unauthorized)
                #expect(try await client.execute(uri: uri, method: .get, headers: operatorHeaders).status == .ok)
            }
            // Every commit fails (a trigger refuses inserts): events get 503, /health says so with 503.
            try sqlite3(t.dir.file("candor.sqlite"), "CREATE TRIGGER broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;")
            let refused = try await client.execute(uri: "/api/event", method: .post, headers: Self.json,
                                                   body: body(#"{"site":"\#(t.site.id)","url":"https://example.com/"}"#))
            #expect(refused.status == .serviceUnavailable)
            let failing = try await client.execute(uri: "/health", method: .get, headers: operatorHeaders)
            #expect(failing.status == .serviceUnavailable)
            #expect(String(buffer: failing.body).contains(#""writes":"failing""#) && String(buffer: failing.body).contains("disk on fire"))
            try sqlite3(t.dir.file("candor.sqlite"), "DROP TRIGGER broken;")
            let again = try await client.execute(uri: "/api/event", method: .post, headers: Self.json,
                                                 body: body(#"{"site":"\#(t.site.id)","url":"https://example.com/"}"#))
            #expect(again.status == .accepted)
            #expect(try await client.execute(uri: "/health", method: .get, headers: operatorHeaders).status == .ok)
        }
    }

    /// Thousands of malformed, oversized and deeply nested bodies: only 4xx, nothing stored, still serving.
    @Test(arguments: Transport.allCases) func malformedBodiesOnlyEverGet4xx(_ transport: Transport) async throws {
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
        try await app(t, transport).test(setup(transport)) { client in
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
            let health = try await client.execute(uri: "/health", method: .get, headers: operatorHeaders)
            #expect(health.status == .ok)
        }
        #expect(try t.database.integrityCheck() == "ok")
    }

    /// The event-loop handler on a raw connection: pipelined requests (events and router routes
    /// mixed) are answered in order, `Connection: close` closes the connection, an oversized body is
    /// refused before it is read.
    @Test func handlerKeepsOrderAndClosesWhenAsked() async throws {
        let t = try TestCollector()
        @Sendable func post(_ body: String, type: String = "text/plain", extra: String = "") -> String {
            "POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: \(type)\r\nUser-Agent: \(chromeUA)\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        let event: @Sendable (String) -> String = { id in #"{"site":"\#(t.site.id)","url":"https://example.com/raw","id":"\#(id)"}"# }
        try await app(t, .handler).test(.live) { client in
            let port = try #require(client.port)
            let pipelined = post(event("p1")) + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post("{broken")
                + post("<a/>", type: "application/xml") + post(event("p2"))
            let first = try RawHTTP.exchange(port: port, pipelined, responses: 5)
            #expect(first.statuses == [202, 200, 400, 415, 202])
            #expect(!first.closed)
            let closing = try RawHTTP.exchange(port: port, post(event("p3"), extra: "Connection: close\r\n"), responses: 1, untilClosed: true)
            #expect(closing.statuses == [202])
            #expect(closing.text.lowercased().contains("connection: close"))
            #expect(closing.closed)
            let huge = "POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(WireLimits.maxBodyBytes + 1)\r\n\r\n{"
            let refused = try RawHTTP.exchange(port: port, huge, responses: 1)
            #expect(refused.statuses == [413])
        }
        #expect(try t.database.clientIDs(site: t.site.id) == ["p1", "p2", "p3"])
    }
}

/// A plain TCP client for what HTTP client libraries do not send: pipelined requests, raw headers.
enum RawHTTP {
    struct Exchange {
        var text: String
        var closed: Bool
        /// Status codes of the responses, in order.
        var statuses: [Int] {
            text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
        }
    }

    /// Sends `request` on a new connection and reads until `responses` answers arrived (and, with
    /// `untilClosed`, until the server closed the connection), or 5 s passed.
    static func exchange(port: Int, _ request: String, responses: Int, untilClosed: Bool = false) throws -> Exchange {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)  // generous: the suites run side by side on a busy machine
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            sent += n
        }
        var exchange = Exchange(text: "", closed: false)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { exchange.closed = true; break }
            if n < 0 { break }
            exchange.text += String(decoding: buffer[..<n], as: UTF8.self)
            if !untilClosed && exchange.statuses.count >= responses { break }
        }
        return exchange
    }
}
