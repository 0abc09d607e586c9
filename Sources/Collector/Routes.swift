import Consent
import Foundation
import JSONOutput
public import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import Store
import Storage

/// Request context carrying the peer address (needed for the visitor hash and geo; never logged).
public struct CandorRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: NIOCore.SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Ingestion endpoints: POST /api/event, OPTIONS /api/event, GET /p.gif.
public struct CollectorRoutes<Context: RemoteAddressRequestContext>: Sendable {
    let collector: Collector

    public init(collector: Collector) { self.collector = collector }

    public func add(to router: Router<Context>) {
        router.post(RouterPath(EventIngestHandler.path)) { request, context in await self.event(request, context) }
        router.on(RouterPath(EventIngestHandler.path), method: .options) { request, _ in self.preflight(request) }
        router.get("/p.gif") { request, context in await self.pixel(request, context) }
    }

    // MARK: POST /api/event

    func event(_ request: Request, _ context: Context) async -> Response {
        let path = request.uri.path
        if let refused = collector.checkEventHead(request.headers, path: path) { return Response(refused) }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: WireLimits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return Response(collector.tooLarge(path: path))
        } catch {
            return Response(collector.rejection(400, "could not read the request body", path: path))
        }
        return await complete(collector.admitEvents(body: body, headers: request.headers, peer: context.remoteAddress, path: path), path: path)
    }

    // MARK: GET /p.gif (no-JS fallback)

    func pixel(_ request: Request, _ context: Context) async -> Response {
        let path = request.uri.path
        let q = request.uri.queryParameters
        guard let site = q.get("site"), let url = q.get("url") else {
            return Response(collector.rejection(400, "p.gif needs site and url query parameters", path: path))
        }
        let event: IncomingEvent
        do {
            var fields: [(String, JSONValue)] = [("site", .string(site)), ("url", .string(url))]
            if let ref = q.get("ref") ?? q.get("referrer"), !ref.isEmpty { fields.append(("referrer", .string(ref))) }
            event = try Wire.event(.object(fields))
        } catch {
            return Response(collector.rejection(400, error.description, path: path))
        }
        let step = collector.admit([event], siteID: event.site, headers: request.headers, peer: context.remoteAddress, reply: .gif, path: path)
        return await complete(step, path: path)
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

    /// Commits the rows, if any, then answers.
    func complete(_ step: IngestStep, path: String) async -> Response {
        switch step {
        case .answer(let answer):
            return Response(answer)
        case .commit(let pending):
            let outcomes: Result<[InsertOutcome], any Error>
            do { outcomes = .success(try await collector.writer.write(pending.rows, tally: pending.tally)) } catch { outcomes = .failure(error) }
            return Response(collector.finish(pending, outcomes: outcomes, path: path))
        }
    }
}

extension Response {
    init(_ answer: IngestAnswer) {
        self.init(status: answer.status, headers: answer.headers, body: .init(byteBuffer: answer.body))
    }
}

/// The answer readable by the calling page (CORS), when the request came from one.
func withOrigin(_ response: Response, _ request: Request) -> Response {
    var r = response
    allowOrigin(request.headers[.origin], in: &r.headers)
    return r
}

/// `{"error": reason}` with the given status.
public func jsonError(_ status: Int, _ reason: String) -> Response {
    Response(IngestAnswer.error(status, reason))
}
