import Consent
import Foundation
import JSONOutput
public import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import Store

/// Request context carrying the peer address (needed for the visitor hash and geo; never logged).
public struct CandorRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: NIOCore.SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

extension HTTPField.Name {
    static let secGPC = Self("Sec-GPC")!
    static let dnt = Self("DNT")!
    static let secPurpose = Self("Sec-Purpose")!
    static let purpose = Self("Purpose")!
    static let xPurpose = Self("X-Purpose")!
    static let xMoz = Self("X-Moz")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}

/// Ingestion endpoints: POST /api/event, OPTIONS /api/event, GET /p.gif.
public struct CollectorRoutes<Context: RemoteAddressRequestContext>: Sendable {
    let collector: Collector

    public init(collector: Collector) { self.collector = collector }

    public func add(to router: Router<Context>) {
        router.post("/api/event") { request, context in await self.event(request, context) }
        router.on("/api/event", method: .options) { request, _ in self.preflight(request) }
        router.get("/p.gif") { request, context in await self.pixel(request, context) }
    }

    // MARK: POST /api/event

    func event(_ request: Request, _ context: Context) async -> Response {
        let mediaType = request.headers[.contentType].map { $0.split(separator: ";")[0].trimmingCharacters(" ").lowercased() }
        guard mediaType == "text/plain" || mediaType == "application/json" else {
            return reject(415, "send the body as text/plain or application/json", request)
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > WireLimits.maxBodyBytes {
            return reject(413, "body larger than \(WireLimits.maxBodyBytes) bytes", request)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: WireLimits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return reject(413, "body larger than \(WireLimits.maxBodyBytes) bytes", request)
        } catch {
            return reject(400, "could not read the request body", request)
        }
        let events: [IncomingEvent]
        do {
            events = try body.withUnsafeReadableBytes { (bytes) throws(WireError) -> [IncomingEvent] in
                try Wire.parseBatch(bytes)
            }
        } catch {
            return reject(400, error.description, request)
        }
        let siteID = events[0].site
        guard events.allSatisfy({ $0.site == siteID }) else {
            return reject(400, "all events of a request must name the same site", request)
        }
        return await ingest(events, siteID: siteID, request, context) { accepted, drops in
            var out = "{\"accepted\":\(accepted),\"dropped\":{"
            out += drops.sorted(by: { $0.key.rawValue < $1.key.rawValue })
                .map { "\"\($0.key.rawValue)\":\($0.value)" }.joined(separator: ",")
            out += "}}"
            return Response(status: .accepted, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: out)))
        }
    }

    // MARK: GET /p.gif (no-JS fallback)

    static var gif: [UInt8] { transparentGIF }

}

let transparentGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

extension CollectorRoutes {

    func pixel(_ request: Request, _ context: Context) async -> Response {
        let q = request.uri.queryParameters
        guard let site = q.get("site"), let url = q.get("url") else {
            return reject(400, "p.gif needs site and url query parameters", request)
        }
        let event: IncomingEvent
        do {
            var fields: [(String, JSONValue)] = [("site", .string(site)), ("url", .string(url))]
            if let ref = q.get("ref") ?? q.get("referrer"), !ref.isEmpty { fields.append(("referrer", .string(ref))) }
            event = try Wire.event(.object(fields))
        } catch {
            return reject(400, error.description, request)
        }
        return await ingest([event], siteID: event.site, request, context) { _, _ in
            Response(status: .ok, headers: [.contentType: "image/gif", .cacheControl: "no-store, max-age=0"],
                     body: .init(byteBuffer: ByteBuffer(bytes: Self.gif)))
        }
    }

    // MARK: OPTIONS /api/event

    func preflight(_ request: Request) -> Response {
        var headers: HTTPFields = [
            .accessControlAllowMethods: "POST, OPTIONS",
            .accessControlAllowHeaders: "Content-Type",
            .accessControlMaxAge: "86400",
            .vary: "Origin",
        ]
        // The preflight carries no site id; the origin is checked against the site on the POST.
        if let origin = request.headers[.origin] { headers[.accessControlAllowOrigin] = origin }
        return Response(status: .noContent, headers: headers)
    }

    // MARK: Shared

    func ingest(_ events: [IncomingEvent], siteID: String, _ request: Request, _ context: Context,
                respond: (Int, [DropReason: Int]) -> Response) async -> Response {
        collector.metrics.received.add(events.count)
        guard let (site, policy) = collector.site(siteID) else {
            return reject(404, "unknown site \(siteID)", request)
        }
        if let origin = request.headers[.origin] {
            guard originAllowed(origin, for: site) else {
                collector.metrics.drop(.originNotAllowed, count: events.count)
                // Readable by the page so the pixel can show the reason in the console.
                return withOrigin(reject(403, "origin \(origin.prefix(200)) is not registered for site \(siteID); add its domain with candor sites", request), request)
            }
        }
        let facts = RequestFacts(
            ip: collector.addresses.resolve(peer: context.remoteAddress?.ipAddress,
                                            forwardedFor: request.headers[.xForwardedFor]),
            userAgent: request.headers[.userAgent] ?? "",
            purpose: request.headers[.secPurpose] ?? request.headers[.purpose] ?? request.headers[.xPurpose] ?? request.headers[.xMoz],
            signals: .init(doNotTrack: request.headers[.dnt] == "1", globalPrivacyControl: request.headers[.secGPC] == "1"),
            now: collector.now())
        let result = collector.pipeline.run(events, site: site, policy: policy, facts: facts)
        for (reason, n) in result.drops { collector.metrics.drop(reason, count: n) }
        if let retryAfter = result.retryAfter {
            var response = reject(429, "rate limited; retry after \(retryAfter) s", request)
            response.headers[.retryAfter] = String(retryAfter)
            return withOrigin(response, request)
        }
        var drops = result.drops
        var accepted = 0
        do {
            let outcomes = try await collector.writer.write(result.rows)
            for outcome in outcomes {
                switch outcome {
                case .stored: accepted += 1
                case .duplicate: drops[.duplicate, default: 0] += 1
                }
            }
        } catch {
            var response = reject(503, "\(error)", request)
            response.headers[.retryAfter] = "5"
            return withOrigin(response, request)
        }
        collector.metrics.accepted.add(accepted)
        if let d = drops[.duplicate] { collector.metrics.drop(.duplicate, count: d) }
        return withOrigin(respond(accepted, drops), request)
    }

    /// A JSON error answer. Logged with the status and reason only: no address, no user agent, no body.
    func reject(_ status: Int, _ reason: String, _ request: Request) -> Response {
        collector.metrics.reject(status: status)
        collector.logger.debug("request refused", metadata: ["status": "\(status)", "reason": "\(reason)", "path": "\(request.uri.path)"])
        return jsonError(status, reason)
    }
}

/// Whether a browser `Origin` is one of the site's domains or a subdomain of one.
func originAllowed(_ origin: String, for site: Site) -> Bool {
    guard let host = LightURL(origin + "/")?.host else { return false }
    return hostMatches(host, domains: site.domains)
}

/// The answer readable by the calling page (CORS), when the request came from one.
func withOrigin(_ response: Response, _ request: Request) -> Response {
    guard let origin = request.headers[.origin] else { return response }
    var r = response
    r.headers[.accessControlAllowOrigin] = origin
    r.headers[.vary] = "Origin"
    return r
}

/// `{"error": reason}` with the given status.
public func jsonError(_ status: Int, _ reason: String) -> Response {
    Response(status: .init(code: status), headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\(JSONText.quoted(reason))}")))
}
