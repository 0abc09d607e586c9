import Consent
import Foundation
public import Hummingbird
import HTTPTypes
public import Integrations
import JSONOutput
import Logging
import NIOCore
import Privacy
import Store

/// `POST /hooks/:provider/:site`: payments, leads and calls from Stripe, Shopify, Typeform,
/// JotForm, CallRail and signed generic sources become attributed conversions. Every outcome is
/// counted in /metrics and logged with provider, site and outcome only, never the payload.
public struct HookRoutes<Context: RequestContext>: Sendable {
    let collector: Collector
    let attributor: Attributor
    public static var maxBodyBytes: Int { 1 << 20 }

    public init(collector: Collector, attributor: Attributor) {
        self.collector = collector
        self.attributor = attributor
    }

    public func add(to router: Router<Context>) {
        router.post("/hooks/:provider/:site") { request, context in
            await self.receive(request, provider: context.parameters.get("provider") ?? "", site: context.parameters.get("site") ?? "")
        }
        router.get("/api/v1/sites/:site/commission") { request, context in
            self.commission(request, site: context.parameters.get("site") ?? "")
        }
    }

    /// `GET /api/v1/sites/:site/commission?month=YYYY-MM[&format=csv]` with the site's API key.
    func commission(_ request: Request, site: String) -> Response {
        let key: APIKeyRecord
        switch apiKey(request, collector, scope: .statsRead) {
        case .failure(let refusal): return refusal.response
        case .success(let k): key = k
        }
        guard key.siteID == site, let (s, _) = collector.site(site) else { return jsonError(404, "no such site") }
        let month = request.uri.queryParameters.get("month") ?? Commission.month(of: collector.now(), in: s.calendar)
        do {
            guard let report = try Commission.report(database: collector.database, site: s, month: month) else {
                return jsonError(400, "month must be YYYY-MM")
            }
            if request.uri.queryParameters.get("format") == "csv" {
                return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                        .contentDisposition: "attachment; filename=\"commission-\(s.id)-\(month).csv\""],
                                body: .init(byteBuffer: ByteBuffer(string: try CSVRendering.text(report.table))))
            }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: report.json.text)))
        } catch {
            return jsonError(503, "storage unavailable; retry later")
        }
    }

    func receive(_ request: Request, provider name: String, site: String) async -> Response {
        guard let provider = Provider(rawValue: name) else {
            return answer(404, ["error": .string("unknown provider; use one of \(Provider.allCases.map(\.rawValue).joined(separator: ", "))")],
                          "unknown", site, "unknown_provider")
        }
        let p = provider.rawValue
        guard let (_, policy) = collector.site(site) else { return answer(404, ["error": "unknown site"], p, site, "unknown_site") }
        if policy.mode == .cnilExempt { return answer(409, ["error": .string(ConversionsRefusal.cnilExempt)], p, site, "not_configured") }
        let secret: String
        do {
            guard let s = try collector.database.webhookSecret(site: site, provider: p) else {
                return answer(404, ["error": .string("no \(p) webhook is configured for this site (candor hooks set)")], p, site, "not_configured")
            }
            secret = s
        } catch {
            return answer(503, ["error": "storage unavailable; retry later"], p, site, "error")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: Self.maxBodyBytes) } catch {
            return answer(413, ["error": .string("body larger than \(Self.maxBodyBytes) bytes")], p, site, "too_large")
        }
        let body = Array(buffer.readableBytesView)
        let header = { (name: String) -> String? in HTTPField.Name(name).flatMap { request.headers[$0] } }
        let now = collector.now()
        let outcome: WebhookOutcome
        do {
            try Webhooks.verify(provider, body: body, secret: secret, now: now, header: header,
                                query: { request.uri.queryParameters.get($0) })
            outcome = try Webhooks.parse(provider, body: body, header: header, contentType: request.headers[.contentType], now: now)
        } catch {
            let label = switch error {
            case .badSignature, .missingSignature: "bad_signature"
            case .staleTimestamp: "stale"
            case .malformed: "malformed"
            case .invalid: "invalid"
            }
            return answer(error.status, ["error": .string(error.description)], p, site, label)
        }
        switch outcome {
        case .ignored(let why):
            return answer(200, ["stored": false, "ignored": .string(why)], p, site, "ignored")
        case .event(let event):
            do {
                let row = try attributor.conversion(event, site: site, provider: provider, receivedAt: now)
                let stored = try collector.database.insertConversion(row)
                return answer(200, ["stored": .bool(stored), "duplicate": .bool(!stored), "kind": .string(row.kind.rawValue),
                                    "attributed_via": .string(row.attributedVia)],
                              p, site, stored ? "stored" : "duplicate")
            } catch let violation as ConstraintViolation {
                // A value the table refuses is the payload's fault: retrying would not help.
                return answer(422, ["error": .string("the conversion cannot be stored: \(violation.description)")], p, site, "invalid")
            } catch let error as AttributionError {
                return answer(422, ["error": .string(error.description)], p, site, "invalid")
            } catch {
                collector.logger.error("webhook not stored", metadata: ["provider": "\(p)", "error": "\(error)"])
                return answer(503, ["error": "storage unavailable; retry later"], p, site, "error")
            }
        }
    }

    func answer(_ status: Int, _ body: JSON, _ provider: String, _ site: String, _ outcome: String) -> Response {
        collector.metrics.webhook(provider: provider, outcome: outcome)
        let level: Logger.Level = status >= 400 ? .notice : .info
        collector.logger.log(level: level, "webhook", metadata: [
            "provider": "\(provider)", "site": "\(site.prefix(64))", "outcome": "\(outcome)", "status": "\(status)",
        ])
        return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: body.text)))
    }
}
