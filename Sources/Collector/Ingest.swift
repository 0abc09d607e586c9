import Consent
import Foundation
public import HTTPTypes
import JSONOutput
import Logging
public import NIOCore
import Store
import Storage

/// An HTTP answer in transport-neutral form: the Hummingbird routes and the event-loop
/// handler (``EventIngestHandler``) both send these.
public struct IngestAnswer: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: ByteBuffer

    /// `{"error": reason}` with the given status.
    static func error(_ status: Int, _ reason: String) -> IngestAnswer {
        IngestAnswer(status: .init(code: status), headers: [.contentType: "application/json"],
                     body: ByteBuffer(string: "{\"error\":\(JSONText.quoted(reason))}"))
    }

    /// The answer readable by the calling page (CORS), when the request came from one.
    func readable(by origin: String?) -> IngestAnswer {
        var a = self
        allowOrigin(origin, in: &a.headers)
        return a
    }
}

/// Makes an answer readable by the page at `origin` (CORS), if the request came from a page.
func allowOrigin(_ origin: String?, in headers: inout HTTPFields) {
    guard let origin else { return }
    headers[.accessControlAllowOrigin] = origin
    headers[.vary] = "Origin"
}

/// What ingestion decided before the writer: answer at once, or commit rows and then answer.
enum IngestStep {
    case answer(IngestAnswer)
    case commit(PendingIngest)
}

/// Rows waiting for their transaction, and what the answer needs once it committed.
struct PendingIngest: Sendable {
    enum Reply: Sendable { case json, gif }
    var rows: [EventRow]
    var drops: [DropReason: Int]
    /// Consent counts of the events dropped for consent (stored ones are counted by the store).
    var tally: ConsentTally
    var origin: String?
    var reply: Reply
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

/// The ingestion steps around the pipeline, shared by both transports: wire checks, site and
/// origin, the pipeline, and the answer after the commit. Nothing here logs an address, a user
/// agent or a body.
extension Collector {
    /// Media type and declared length of a `POST /api/event`, checked before the body is read.
    func checkEventHead(_ headers: HTTPFields, path: String) -> IngestAnswer? {
        guard let type = headers[.contentType], Self.isEventMediaType(type) else {
            return rejection(415, "send the body as text/plain or application/json", path: path)
        }
        if let length = headers[.contentLength].flatMap({ Int($0) }), length > WireLimits.maxBodyBytes {
            return tooLarge(path: path)
        }
        return nil
    }

    /// `text/plain` or `application/json`, any case, with or without parameters.
    static func isEventMediaType(_ value: String) -> Bool {
        let u = value.utf8
        let end = u.firstIndex(of: UInt8(ascii: ";")) ?? u.endIndex
        var type = u[..<end]
        while type.first == UInt8(ascii: " ") || type.first == UInt8(ascii: "\t") { type = type.dropFirst() }
        while type.last == UInt8(ascii: " ") || type.last == UInt8(ascii: "\t") { type = type.dropLast() }
        func equalsIgnoringCase(_ expected: String) -> Bool {
            type.count == expected.utf8.count && zip(type, expected.utf8).allSatisfy { a, b in (a >= 65 && a <= 90 ? a + 32 : a) == b }
        }
        return equalsIgnoringCase("text/plain") || equalsIgnoringCase("application/json")
    }

    func tooLarge(path: String) -> IngestAnswer {
        rejection(413, "body larger than \(WireLimits.maxBodyBytes) bytes", path: path)
    }

    /// A `POST /api/event` body: parse, then the pipeline.
    func admitEvents(body: ByteBuffer, headers: HTTPFields, peer: SocketAddress?, path: String) -> IngestStep {
        let events: [IncomingEvent]
        do {
            events = try body.withUnsafeReadableBytes { (bytes) throws(WireError) -> [IncomingEvent] in
                try Wire.parseBatch(bytes)
            }
        } catch {
            return .answer(rejection(400, error.description, path: path))
        }
        let siteID = events[0].site
        guard events.allSatisfy({ $0.site == siteID }) else {
            return .answer(rejection(400, "all events of a request must name the same site", path: path))
        }
        return admit(events, siteID: siteID, headers: headers, peer: peer, reply: .json, path: path)
    }

    /// Validation, site and origin checks, then the pipeline; rows to commit, or the answer.
    func admit(_ events: [IncomingEvent], siteID: String, headers: HTTPFields, peer: SocketAddress?,
               reply: PendingIngest.Reply, path: String) -> IngestStep {
        metrics.received.add(events.count)
        let origin = headers[.origin]
        guard let (site, policy) = self.site(siteID) else {
            return .answer(rejection(404, "unknown site \(siteID)", path: path))
        }
        if let origin {
            guard originAllowed(origin, for: site) else {
                metrics.drop(.originNotAllowed, count: events.count)
                // Readable by the page so the pixel can show the reason in the console.
                return .answer(rejection(403, "origin \(origin.prefix(200)) is not registered for site \(siteID); add its domain with candor sites",
                                         path: path).readable(by: origin))
            }
        }
        let facts = RequestFacts(
            ip: addresses.resolve(peer: peer?.ipAddress, forwardedFor: headers[.xForwardedFor]),
            userAgent: headers[.userAgent] ?? "",
            purpose: headers[.secPurpose] ?? headers[.purpose] ?? headers[.xPurpose] ?? headers[.xMoz],
            signals: .init(doNotTrack: headers[.dnt] == "1", globalPrivacyControl: headers[.secGPC] == "1"),
            now: now())
        let nowMs = facts.nowMs
        for (i, e) in events.enumerated() {
            guard let t = e.clientTime else { continue }
            guard t >= nowMs - WireLimits.clientTimeWindow.behind, t <= nowMs + WireLimits.clientTimeWindow.ahead else {
                return .answer(rejection(400, "events[\(i)]: ts must lie within the last 72 hours and at most 5 minutes ahead of the server's clock "
                                              + "(milliseconds since 1970; the server's is \(nowMs))", path: path).readable(by: origin))
            }
        }
        let result = pipeline.run(events, site: site, policy: policy, facts: facts)
        for (reason, n) in result.drops { metrics.drop(reason, count: n) }
        if let layer = result.botLayer { metrics.botDrop(layer, count: result.drops[.bot] ?? 0) }
        if let retryAfter = result.retryAfter {
            var answer = rejection(429, "rate limited; retry after \(retryAfter) s", path: path)
            answer.headers[.retryAfter] = String(retryAfter)
            return .answer(answer.readable(by: origin))
        }
        var tally = ConsentTally(site: site.id)
        let today = site.calendar.day(of: nowMs)
        for (reason, metric) in [(DropReason.consentDenied, ConsentMetric.droppedDenied), (.consentMissing, .droppedMissing),
                                 (.optOutSignal, .droppedSignal)] {
            let n = result.drops[reason] ?? 0
            tally.add(metric, day: today, n)
            if facts.signals.doNotTrack { tally.add(.dnt, day: today, n) }
            if facts.signals.globalPrivacyControl { tally.add(.gpc, day: today, n) }
        }
        tally.withdrawn = result.withdrawn
        let pending = PendingIngest(rows: result.rows, drops: result.drops, tally: tally, origin: origin, reply: reply)
        if pending.rows.isEmpty && tally.isEmpty { return .answer(finish(pending, outcomes: .success([]), path: path)) }
        return .commit(pending)
    }

    /// The answer once the writer reported on the rows.
    func finish(_ pending: PendingIngest, outcomes: Result<[InsertOutcome], any Error>, path: String) -> IngestAnswer {
        var drops = pending.drops
        var accepted = 0
        switch outcomes {
        case .success(let outcomes):
            for outcome in outcomes {
                switch outcome {
                case .stored: accepted += 1
                case .duplicate: drops[.duplicate, default: 0] += 1
                }
            }
        case .failure(let error):
            var answer = rejection(503, "\(error)", path: path)
            answer.headers[.retryAfter] = "5"
            return answer.readable(by: pending.origin)
        }
        metrics.accepted.add(accepted)
        if let d = drops[.duplicate] { metrics.drop(.duplicate, count: d) }
        switch pending.reply {
        case .json:
            var out = "{\"accepted\":\(accepted),\"dropped\":{"
            var first = true
            for (reason, n) in drops.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                if !first { out += "," }
                first = false
                out += "\"\(reason.rawValue)\":\(n)"
            }
            out += "}}"
            return IngestAnswer(status: .accepted, headers: [.contentType: "application/json"], body: ByteBuffer(string: out))
                .readable(by: pending.origin)
        case .gif:
            return IngestAnswer(status: .ok, headers: [.contentType: "image/gif", .cacheControl: "no-store, max-age=0"],
                                body: ByteBuffer(bytes: transparentGIF)).readable(by: pending.origin)
        }
    }

    /// A JSON error answer, counted. Logged with the status and reason only: no address, no user
    /// agent, no body.
    func rejection(_ status: Int, _ reason: String, path: String) -> IngestAnswer {
        metrics.reject(status: status)
        logger.debug("request refused", metadata: ["status": "\(status)", "reason": "\(reason)", "path": "\(path)"])
        return .error(status, reason)
    }
}

let transparentGIF: [UInt8] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
]

/// Whether a browser `Origin` is one of the site's domains or a subdomain of one.
func originAllowed(_ origin: String, for site: Site) -> Bool {
    guard let host = LightURL(origin + "/")?.host else { return false }
    return hostMatches(host, domains: site.domains)
}
