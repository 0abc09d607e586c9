import Traffic
public import Foundation
public import HTTPTypes
import JSONOutput
import Logging
public import Hummingbird
import NIOCore
import Store
import Storage
import Geo
public import Privacy
public import Integrations

/// Decides whether a request may read /health and /metrics (an owner or admin session, or the
/// metrics token).
public typealias OperatorCheck = @Sendable (_ headers: HTTPFields) async -> Bool

/// GET /healthz (public liveness, no details), GET /health (JSON) and GET /metrics (Prometheus
/// text); the last two only for operators (``OperatorCheck``): they name GeoIP files, salt days
/// and traffic figures.
public struct ObservabilityRoutes<Context: RequestContext>: Sendable {
    let collector: Collector
    let office: PrivacyOffice?
    let startedAt: Date
    let mayOperate: OperatorCheck

    public init(collector: Collector, office: PrivacyOffice? = nil, startedAt: Date = Date(), mayOperate: @escaping OperatorCheck) {
        self.collector = collector
        self.office = office
        self.startedAt = startedAt
        self.mayOperate = mayOperate
    }

    /// An operator check accepting `Authorization: Bearer TOKEN` with `token` (compared in
    /// constant time), or whatever `session` accepts (the dashboard's owner/admin sessions).
    public static func operatorCheck(token: String?, session: @escaping OperatorCheck = { _ in false }) -> OperatorCheck {
        { headers in
            if let token, !token.isEmpty, let auth = headers[.authorization], auth.hasPrefix("Bearer "),
               Sodium.equal(Sodium.hash(Array(auth.dropFirst(7).utf8)), Sodium.hash(Array(token.utf8))) {
                return true
            }
            return await session(headers)
        }
    }

    /// Gauges read from the database at scrape time: open and overdue deletion requests.
    func privacyMetrics() -> String {
        guard let office, let counts = try? office.database.privacyRequestCounts(now: Int64(collector.now().timeIntervalSince1970 * 1000))
        else { return "" }
        return """
            # HELP candor_privacy_requests_open Deletion requests received and not yet carried out.
            # TYPE candor_privacy_requests_open gauge
            candor_privacy_requests_open \(counts.open)
            # HELP candor_privacy_requests_overdue Open deletion requests past their deadline.
            # TYPE candor_privacy_requests_overdue gauge
            candor_privacy_requests_overdue \(counts.overdue)

            """
    }

    /// Gauges of the analytics engine: the days, events and visits it holds in memory.
    func engineMetrics() -> String {
        let loaded = collector.database.facts.loaded
        return """
            # HELP candor_classifier_match_errors_total Pattern matches that hit PCRE2's limits (counted as no match).
            # TYPE candor_classifier_match_errors_total counter
            candor_classifier_match_errors_total \(collector.pipeline.deps.traffic.matchErrorCount)
            # HELP candor_engine_days_loaded Site-days the analytics engine holds in memory.
            # TYPE candor_engine_days_loaded gauge
            candor_engine_days_loaded \(loaded.days)
            # HELP candor_engine_events_loaded Events the analytics engine holds in memory.
            # TYPE candor_engine_events_loaded gauge
            candor_engine_events_loaded \(loaded.events)
            # HELP candor_engine_bytes Approximate bytes of the engine's columns.
            # TYPE candor_engine_bytes gauge
            candor_engine_bytes \(loaded.bytes)

            """
    }

    public func add(to router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"status":"alive"}"#)))
        }
        router.get("/health") { request, _ in
            guard await self.mayOperate(request.headers) else { return Self.unauthorized() }
            return self.health()
        }
        router.get("/metrics") { request, _ in
            guard await self.mayOperate(request.headers) else { return Self.unauthorized() }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: self.collector.metrics.render(extra: self.privacyMetrics() + self.engineMetrics()))))
        }
    }

    static func unauthorized() -> Response {
        var r = jsonError(401, "sign in as an owner or admin, or send the metrics token as Authorization: Bearer …")
        r.headers[.wwwAuthenticate] = "Bearer"
        r.headers[.cacheControl] = "no-store"
        return r
    }

    func health() -> Response {
        let readable = (try? collector.database.eventCount(site: "")) != nil
        let writer = collector.writer.health
        let dbOK = readable && !writer.failing
        let geo = collector.pipeline.deps.geo.status
        let m = collector.metrics
        let p50 = m.commitSeconds.quantile(0.5).map { JSONText.number($0 * 1000) } ?? "null"
        let p99 = m.commitSeconds.quantile(0.99).map { JSONText.number($0 * 1000) } ?? "null"
        let datasets = collector.pipeline.deps.traffic.datasets.map {
            "{\"name\":\(JSONText.quoted($0.name)),\"package\":\(JSONText.quoted($0.package)),\"version\":\(JSONText.quoted($0.version)),"
                + "\"entries\":\($0.entries),\"rejected\":\($0.rejected),\"path\":\(JSONText.quoted($0.path))}"
        }.joined(separator: ",")
        let matchErrors = collector.pipeline.deps.traffic.matchErrorCount
        let botDrops = BotLayer.allCases.map { "\(JSONText.quoted($0.rawValue)):\(m.botDropCount($0))" }.joined(separator: ",")
        let saltDays = collector.pipeline.deps.salts.daysInMemory.map(String.init).joined(separator: ",")
        let body = """
            {"status":\(JSONText.quoted(dbOK ? "ok" : "degraded")),"database":\(JSONText.quoted(readable ? "ok" : "unreachable")),\
            "writes":\(JSONText.quoted(writer.failing ? "failing" : "ok")),\
            "last_commit":\(writer.lastCommit.map { JSONText.quoted(ISO.string(Int64($0.timeIntervalSince1970 * 1000))) } ?? "null"),\
            "last_write_error":\(writer.lastError.map(JSONText.quoted) ?? "null"),\
            "last_write_error_at":\(writer.lastFailure.map { JSONText.quoted(ISO.string(Int64($0.timeIntervalSince1970 * 1000))) } ?? "null"),\
            "uptime_s":\(Int(Date().timeIntervalSince(startedAt))),\
            "geo":{"city":\(JSONText.quoted(geo.city)),"asn":\(JSONText.quoted(geo.asn)),\
            "built":\(geo.buildEpoch.map { JSONText.quoted(ISO.string(Int64($0.timeIntervalSince1970 * 1000))) } ?? "null")},\
            "queue_depth":\(m.queueDepth.value),"accepted":\(m.accepted.value),\
            "commit_ms":{"p50_le":\(p50),"p99_le":\(p99)},"salt_days":[\(saltDays)],\
            "datasets":[\(datasets)],"bot_drops":{\(botDrops)},"classifier_match_errors":\(matchErrors),\
            "pipeline":[\(Pipeline.stepNames.map(JSONText.quoted).joined(separator: ","))]}
            """
        return Response(status: dbOK ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The router of the appliance's public endpoints.
public func buildRouter(collector: Collector, assets: PublicAssets? = nil, office: PrivacyOffice? = nil,
                        attributor: Attributor? = nil, mayOperate: @escaping OperatorCheck = { _ in false }) -> Router<CandorRequestContext> {
    let router = Router(context: CandorRequestContext.self)
    router.add(middleware: ErrorLoggingMiddleware(logger: collector.logger))
    CollectorRoutes<CandorRequestContext>(collector: collector).add(to: router)
    let gate = SelfServiceGate(collector: collector)
    ConsentRoutes<CandorRequestContext>(collector: collector, assets: assets, gate: gate).add(to: router)
    if let office { PrivacyRoutes<CandorRequestContext>(collector: collector, office: office, gate: gate).add(to: router) }
    if let attributor { HookRoutes<CandorRequestContext>(collector: collector, attributor: attributor).add(to: router) }
    assets?.add(to: router)
    ObservabilityRoutes<CandorRequestContext>(collector: collector, office: office, mayOperate: mayOperate).add(to: router)
    return router
}

/// Turns any error that escapes a handler into a logged JSON 500 (or the error's own status),
/// so no failure is silent and no answer is an empty body.
struct ErrorLoggingMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            if error.status == .notFound { return jsonError(404, "no such endpoint") }
            if error.status == .methodNotAllowed { return jsonError(405, "method not allowed") }
            logger.notice("request failed", metadata: ["status": "\(error.status.code)", "path": "\(request.uri.path)"])
            return jsonError(error.status.code, error.status.reasonPhrase)
        } catch {
            logger.error("unhandled error", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return jsonError(500, "internal error")
        }
    }
}
