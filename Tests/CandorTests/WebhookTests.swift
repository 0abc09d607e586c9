import Collector
import Consent
import HTTPTypes
import JSONOutput
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Integrations
import NIOCore
import Privacy
import Store
import Testing

/// Signatures computed independently of the verifier (libsodium's HMAC, or published RFC vectors).
enum Sign {
    static func hmac(_ secret: String, _ message: String) -> [UInt8] { Sodium.hmacSHA256(key: Array(secret.utf8), message: Array(message.utf8)) }
    static func stripe(_ secret: String, _ body: String, t: Int) -> String { "t=\(t),v1=\(Hex.encode(hmac(secret, "\(t).\(body)")))" }
    static func shopify(_ secret: String, _ body: String) -> String { Data(hmac(secret, body)).base64EncodedString() }
    static func generic(_ secret: String, _ body: String, t: Int) -> String { "sha256=" + Hex.encode(hmac(secret, "\(t).\(body)")) }
}

func headers(_ pairs: [(String, String)]) -> (String) -> String? {
    { name in pairs.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

@Suite struct SignatureTests {
    let now = Date(timeIntervalSince1970: 1_767_000_000)
    let noQuery: (String) -> String? = { _ in nil }

    // RFC 4231 test case 2 (HMAC-SHA-256) and RFC 2202 test case 2 (HMAC-SHA-1): key "Jefe".
    let rfcData = Array("what do ya want for nothing?".utf8)
    let rfc4231 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    let rfc2202 = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"

    @Test func publishedHMACVectorsVerifyThroughEachBase64Scheme() throws {
        let sha256 = Data(Hex.decode(rfc4231)!).base64EncodedString()
        let sha1 = Data(Hex.decode(rfc2202)!).base64EncodedString()
        #expect(Hex.encode(Sodium.hmacSHA256(key: Array("Jefe".utf8), message: rfcData)) == rfc4231)
        try Webhooks.verify(.shopify, body: rfcData, secret: "Jefe", now: now, header: headers([("X-Shopify-Hmac-Sha256", sha256)]), query: noQuery)
        try Webhooks.verify(.typeform, body: rfcData, secret: "Jefe", now: now, header: headers([("Typeform-Signature", "sha256=" + sha256)]), query: noQuery)
        try Webhooks.verify(.callrail, body: rfcData, secret: "Jefe", now: now, header: headers([("Signature", sha1)]), query: noQuery)
        var tampered = rfcData
        tampered[0] ^= 1
        for (p, h) in [(Provider.shopify, ("X-Shopify-Hmac-Sha256", sha256)), (.typeform, ("Typeform-Signature", "sha256=" + sha256)),
                       (.callrail, ("Signature", sha1))] {
            #expect(throws: WebhookError.badSignature) { try Webhooks.verify(p, body: tampered, secret: "Jefe", now: self.now, header: headers([h]), query: self.noQuery) }
            #expect(throws: WebhookError.badSignature) { try Webhooks.verify(p, body: self.rfcData, secret: "Jeff", now: self.now, header: headers([h]), query: self.noQuery) }
            #expect(throws: WebhookError.self) { try Webhooks.verify(p, body: self.rfcData, secret: "Jefe", now: self.now, header: headers([]), query: self.noQuery) }
        }
    }

    @Test func stripeChecksTheTimestampAndAcceptsAnyMatchingV1() throws {
        let secret = "whsec_test_0123456789abcdef"
        let body = #"{"id":"evt_1","type":"payment_intent.succeeded"}"#
        let t = Int(now.timeIntervalSince1970)
        let good = Sign.stripe(secret, body, t: t)
        try Webhooks.verify(.stripe, body: Array(body.utf8), secret: secret, now: now, header: headers([("Stripe-Signature", good)]), query: noQuery)
        // During secret rotation Stripe sends one v1 per secret.
        let rotated = "t=\(t),v1=\(String(repeating: "0", count: 64)),v1=\(good.split(separator: "=").last!),v0=abc"
        try Webhooks.verify(.stripe, body: Array(body.utf8), secret: secret, now: now, header: headers([("Stripe-Signature", rotated)]), query: noQuery)
        #expect(throws: WebhookError.staleTimestamp) {
            try Webhooks.verify(.stripe, body: Array(body.utf8), secret: secret, now: self.now.addingTimeInterval(301),
                                header: headers([("Stripe-Signature", good)]), query: self.noQuery)
        }
        #expect(throws: WebhookError.badSignature) {
            try Webhooks.verify(.stripe, body: Array((body + " ").utf8), secret: secret, now: self.now,
                                header: headers([("Stripe-Signature", good)]), query: self.noQuery)
        }
        // A replayed signature with a forged fresh timestamp fails: the timestamp is signed.
        let forged = "t=\(t + 200),v1=\(good.split(separator: "=").last!)"
        #expect(throws: WebhookError.badSignature) {
            try Webhooks.verify(.stripe, body: Array(body.utf8), secret: secret, now: self.now.addingTimeInterval(200),
                                header: headers([("Stripe-Signature", forged)]), query: self.noQuery)
        }
    }

    @Test func genericSignsTheTimestampAndJotFormNeedsTheURLToken() throws {
        let secret = "generic-secret-0123456789"
        let body = #"{"type":"lead","id":"l1"}"#
        let t = Int(now.timeIntervalSince1970)
        let h = headers([("X-Candor-Timestamp", String(t)), ("X-Candor-Signature", Sign.generic(secret, body, t: t))])
        try Webhooks.verify(.generic, body: Array(body.utf8), secret: secret, now: now, header: h, query: noQuery)
        #expect(throws: WebhookError.staleTimestamp) {
            try Webhooks.verify(.generic, body: Array(body.utf8), secret: secret, now: self.now.addingTimeInterval(-400), header: h, query: self.noQuery)
        }
        let moved = headers([("X-Candor-Timestamp", String(t + 1)), ("X-Candor-Signature", Sign.generic(secret, body, t: t))])
        #expect(throws: WebhookError.badSignature) {
            try Webhooks.verify(.generic, body: Array(body.utf8), secret: secret, now: self.now, header: moved, query: self.noQuery)
        }
        try Webhooks.verify(.jotform, body: [], secret: "token-0123456789abcdef", now: now, header: headers([]),
                            query: { $0 == "token" ? "token-0123456789abcdef" : nil })
        #expect(throws: WebhookError.badSignature) {
            try Webhooks.verify(.jotform, body: [], secret: "token-0123456789abcdef", now: self.now, header: headers([]),
                                query: { _ in "token-0123456789abcdeX" })
        }
        #expect(throws: WebhookError.missingSignature("token in the URL")) {
            try Webhooks.verify(.jotform, body: [], secret: "token-0123456789abcdef", now: self.now, header: headers([]), query: self.noQuery)
        }
    }
}

/// A collector with webhook routes, a configured secret per provider, and a clock.
struct HookFixture {
    let t: TestCollector
    static let secret = "s3cret-for-webhooks-0123456789"

    init() throws {
        t = try TestCollector(policy: policyWith { $0.formFieldAllowlist = ["email"] })
        for p in Provider.allCases { try t.database.setWebhookSecret(site: t.site.id, provider: p.rawValue, secret: Self.secret, at: 0) }
    }

    var app: some ApplicationProtocol {
        get throws {
            Application(router: buildRouter(collector: t.collector,
                                            attributor: Attributor(database: t.database, subjects: try SubjectHasher(database: t.database))))
        }
    }

    var unix: Int { Int(t.clock.now.timeIntervalSince1970) }

    func signed(_ p: Provider, _ body: String, extra: [(String, String)] = []) -> HTTPFields {
        var h: HTTPFields = [.contentType: "application/json"]
        let pairs: [(String, String)] = switch p {
        case .stripe: [("Stripe-Signature", Sign.stripe(Self.secret, body, t: unix))]
        case .shopify: [("X-Shopify-Hmac-Sha256", Sign.shopify(Self.secret, body))]
        case .typeform: [("Typeform-Signature", "sha256=" + Sign.shopify(Self.secret, body))]
        case .generic: [("X-Candor-Timestamp", String(unix)), ("X-Candor-Signature", Sign.generic(Self.secret, body, t: unix))]
        case .callrail, .jotform: Webhooks.sign(p, body: Array(body.utf8), secret: Self.secret, timestamp: unix)
        }
        for (k, v) in pairs + extra { h[HTTPField.Name(k)!] = v }
        return h
    }
}

@Suite struct WebhookHTTPTests {
    func post(_ client: some TestClientProtocol, _ f: HookFixture, _ p: Provider, _ body: String, extra: [(String, String)] = [],
              headers: HTTPFields? = nil, query: String = "") async throws -> (HTTPResponse.Status, String) {
        let r = try await client.execute(uri: "/hooks/\(p.rawValue)/\(f.t.site.id)\(query)", method: .post,
                                         headers: headers ?? f.signed(p, body, extra: extra), body: ByteBuffer(string: body))
        return (r.status, String(buffer: r.body))
    }

    static let payloads: [(Provider, String, [(String, String)], String)] = [
        (.stripe, #"{"id":"evt_1","type":"checkout.session.completed","created":1773144000,"data":{"object":{"id":"cs_1","payment_intent":"pi_1","payment_status":"paid","amount_total":4900,"currency":"eur","client_reference_id":"nobodynobodynobody","customer_details":{"email":"buyer@example.org","name":"Not Kept"}}}}"#, [], ""),
        (.shopify, #"{"id":820982911946154500,"financial_status":"paid","total_price":"199.00","currency":"USD","email":"buyer@example.org","note_attributes":[],"created_at":"2026-03-10T11:00:00Z"}"#, [("X-Shopify-Topic", "orders/paid")], ""),
        (.typeform, #"{"event_id":"01HXYZ","event_type":"form_response","form_response":{"form_id":"abc","token":"t1","submitted_at":"2026-03-10T11:00:00Z","hidden":{"utm_source":"newsletter","utm_medium":"email"},"answers":[{"type":"email","email":"lead@example.org"},{"type":"text","text":"private answer"}]}}"#, [], ""),
        (.callrail, #"{"resource_id":"CAL8154748ae6bd4e278a7cddd38a662f4f","answered":true,"duration":"187","first_call":true,"source":"Google Ads","customer_phone_number":"+15555550100","utm_source":"google","utm_medium":"cpc"}"#, [], ""),
        (.generic, #"{"type":"sale","id":"order-77","value":120.5,"currency":"usd","utm_source":"partner","utm_medium":"referral"}"#, [], ""),
        (.jotform, "submissionID=5512&formID=2211&rawRequest=%7B%22q3_email%22%3A%22lead%40example.org%22%2C%22q4_phone%22%3A%22555%22%7D", [], "?token=" + HookFixture.secret),
    ]

    @Test(arguments: payloads.indices)
    func validDeliveriesAreStoredOnceAndTamperedOnesRefused(_ i: Int) async throws {
        let (provider, body, extra, query) = Self.payloads[i]
        let f = try HookFixture()
        let form: HTTPFields? = provider == .jotform ? [.contentType: "application/x-www-form-urlencoded"] : nil
        try await f.app.test(.router) { client in
            let (status, text) = try await post(client, f, provider, body, extra: extra, headers: form, query: query)
            #expect(status == .ok, "\(text)")
            #expect(text.contains(#""stored":true"#), "\(text)")
            let (again, second) = try await post(client, f, provider, body, extra: extra, headers: form, query: query)
            #expect(again == .ok && second.contains(#""duplicate":true"#), "\(second)")
            if provider != .jotform {
                let tampered = body.replacingOccurrences(of: "1", with: "2")
                let (bad, _) = try await post(client, f, provider, tampered, extra: extra,
                                              headers: f.signed(provider, body, extra: extra))
                #expect(bad == .unauthorized)
            } else {
                #expect(try await post(client, f, provider, body, headers: form, query: "?token=wrong").0 == .unauthorized)
            }
            let other = try await client.execute(uri: "/hooks/\(provider.rawValue)/nosuchsite", method: .post,
                                                 headers: f.signed(provider, body, extra: extra), body: ByteBuffer(string: body))
            #expect(other.status == .notFound)
        }
        let rows = try f.t.database.conversions(site: f.t.site.id)
        #expect(rows.count == 1)
        #expect(f.t.collector.metrics.webhookCount(provider: provider.rawValue, outcome: "duplicate") == 1)
        // Personal data in the payload is not stored: no e-mail, name, phone or free-text answer in the file.
        for needle in ["buyer@example.org", "lead@example.org", "Not Kept", "+15555550100", "private answer"] {
            #expect(occurrences(of: needle, inFile: f.t.dir.file("candor.sqlite")) + occurrences(of: needle, inFile: f.t.dir.file("candor.sqlite-wal")) == 0)
        }
    }

    @Test func parsedValuesPerProvider() async throws {
        let f = try HookFixture()
        try await f.app.test(.router) { client in
            for (p, body, extra, query) in Self.payloads {
                _ = try await post(client, f, p, body, extra: extra,
                                   headers: p == .jotform ? [.contentType: "application/x-www-form-urlencoded"] : nil, query: query)
            }
        }
        let byProvider = Dictionary(uniqueKeysWithValues: try f.t.database.conversions(site: f.t.site.id).map { ($0.provider, $0) })
        let stripe = try #require(byProvider["stripe"])
        #expect(stripe.externalID == "pi_1" && stripe.kind == .sale && stripe.value == 49 && stripe.currency == "EUR")
        let shopify = try #require(byProvider["shopify"])
        #expect(shopify.externalID == "order:820982911946154500" && shopify.value == 199 && shopify.currency == "USD")
        let typeform = try #require(byProvider["typeform"])
        #expect(typeform.kind == .lead && typeform.attributedVia == "payload" && typeform.lastTouch?.sourceType == "email")
        let callrail = try #require(byProvider["callrail"])
        #expect(callrail.kind == .call)
        #expect(callrail.detail == #"{"duration_s":"187","first_time_caller":"1","tracking_source":"Google Ads"}"#)
        let generic = try #require(byProvider["generic"])
        #expect(generic.value == 120.5 && generic.currency == "USD" && generic.lastTouch?.utmSource == "partner")
        let jotform = try #require(byProvider["jotform"])
        #expect(jotform.externalID == "5512" && jotform.emailHash != nil)
    }

    @Test func ignoredTypesAndMalformedBodiesAreAnsweredClearly() async throws {
        let f = try HookFixture()
        try await f.app.test(.router) { client in
            let ignored = try await post(client, f, .stripe, #"{"id":"evt_9","type":"customer.created","data":{"object":{}}}"#)
            #expect(ignored.0 == .ok && ignored.1.contains(#""ignored":"Stripe event type customer.created is not a conversion""#))
            let pending = try await post(client, f, .shopify, #"{"id":5,"financial_status":"pending","total_price":"10.00"}"#,
                                         extra: [("X-Shopify-Topic", "orders/create")])
            #expect(pending.1.contains("counted when paid"))
            #expect(try await post(client, f, .generic, "not json").0 == .badRequest)
            #expect(try await post(client, f, .generic, #"{"type":"gift","id":"x"}"#).0 == .badRequest)
            let unknown = try await client.execute(uri: "/hooks/paypal/\(f.t.site.id)", method: .post, body: ByteBuffer(string: "{}"))
            #expect(unknown.status == .notFound)
        }
        #expect(try f.t.database.conversions(site: f.t.site.id).isEmpty)
    }
}

/// Regression tests of issue 12, finding 2 and 8: signed deliveries the server once trapped on,
/// stored wrongly, or answered with "retry later".
@Suite struct WebhookHostileInputTests {
    func post(_ client: some TestClientProtocol, _ f: HookFixture, _ p: Provider, _ body: String,
              extra: [(String, String)] = []) async throws -> (HTTPResponse.Status, String) {
        let r = try await client.execute(uri: "/hooks/\(p.rawValue)/\(f.t.site.id)", method: .post,
                                         headers: f.signed(p, body, extra: extra), body: ByteBuffer(string: body))
        return (r.status, String(buffer: r.body))
    }

    @Test(arguments: ["1e16", "-1e300", "-9223372035000000", "-9223371000000000", "1e400", "9007199254740993"])
    func stripeCreatedOutOfRangeIsRefusedWith422(_ created: String) async throws {
        let f = try HookFixture()
        let body = #"{"id":"evt_x","type":"payment_intent.succeeded","created":\#(created),"data":{"object":{"id":"pi_x","amount_received":100,"currency":"usd"}}}"#
        try await f.app.test(.router) { client in
            let (status, text) = try await post(client, f, .stripe, body)
            #expect(status == .unprocessableContent || status == .badRequest, "\(created): \(status) \(text)")
            // The router still answers afterwards.
            #expect(try await post(client, f, .generic, #"{"type":"sale","id":"ok","value":1}"#).0 == .ok)
        }
        #expect(try f.t.database.conversions(site: f.t.site.id).map(\.externalID) == ["ok"])
    }

    @Test func amountsCurrenciesAndIdsTheTableCannotHoldGet422NotRetryLater() async throws {
        let f = try HookFixture()
        let longID = String(repeating: "🇩🇪", count: 150)   // 150 characters, 300 code points
        try await f.app.test(.router) { client in
            for (p, body, extra) in [
                (Provider.shopify, #"{"id":1,"financial_status":"paid","total_price":"inf","currency":"USD"}"#, [("X-Shopify-Topic", "orders/paid")]),
                (.shopify, #"{"id":2,"financial_status":"paid","total_price":"1e400","currency":"USD"}"#, [("X-Shopify-Topic", "orders/paid")]),
                (.shopify, #"{"id":3,"financial_status":"paid","total_price":"10","currency":"EURO"}"#, [("X-Shopify-Topic", "orders/paid")]),
                (.stripe, #"{"id":"evt_3","type":"payment_intent.succeeded","data":{"object":{"id":"pi_3","amount_received":1e300,"currency":"usd"}}}"#, []),
                (.generic, #"{"type":"sale","id":"\#(longID)","value":1}"#, []),
            ] as [(Provider, String, [(String, String)])] {
                let (status, text) = try await post(client, f, p, body, extra: extra)
                #expect(status == .unprocessableContent, "\(body): \(status) \(text)")
            }
        }
        #expect(try f.t.database.conversions(site: f.t.site.id).isEmpty)
    }

    /// Shopify signs the body, not X-Shopify-Topic: a pending order replayed as orders/paid is no sale.
    @Test func shopifyTopicCannotTurnAPendingOrderIntoASale() async throws {
        let f = try HookFixture()
        let pending = #"{"id":77,"financial_status":"pending","total_price":"500.00","currency":"USD"}"#
        let refund = #"{"id":9,"order_id":77,"transactions":[{"kind":"refund","status":"success","amount":"5.00","currency":"USD"}]}"#
        try await f.app.test(.router) { client in
            let replayed = try await post(client, f, .shopify, pending, extra: [("X-Shopify-Topic", "orders/paid")])
            #expect(replayed.0 == .ok && replayed.1.contains("counted when paid"), "\(replayed)")
            let orderAsRefund = try await post(client, f, .shopify, pending, extra: [("X-Shopify-Topic", "refunds/create")])
            #expect(orderAsRefund.0 == .unprocessableContent)
            let refundAsOrder = try await post(client, f, .shopify, refund, extra: [("X-Shopify-Topic", "orders/paid")])
            #expect(refundAsOrder.0 == .unprocessableContent)
        }
        #expect(try f.t.database.conversions(site: f.t.site.id).isEmpty)
    }

    /// A JotForm submission with a field left empty (its value is exactly CRLF) once trapped in
    /// `removeLast(2)`; values lost their last character too.
    @Test func jotformMultipartWithAnEmptyFieldIsReadWhole() async throws {
        let f = try HookFixture()
        let b = "----jotformboundary42"
        let body = ["submissionID": "5512345", "formID": "2211", "q5_phone": "", "q3_email": "lead@example.org"]
            .sorted { $0.key < $1.key }
            .map { "--\(b)\r\nContent-Disposition: form-data; name=\"\($0.key)\"\r\n\r\n\($0.value)\r\n" }.joined() + "--\(b)--\r\n"
        try await f.app.test(.router) { client in
            let r = try await client.execute(uri: "/hooks/jotform/\(f.t.site.id)?token=\(HookFixture.secret)", method: .post,
                                             headers: [.contentType: "multipart/form-data; boundary=\(b)"], body: ByteBuffer(string: body))
            #expect(r.status == .ok, "\(String(buffer: r.body))")
        }
        let lead = try #require(try f.t.database.conversions(site: f.t.site.id).first)
        let expected = try SubjectHasher(database: f.t.database).hash("lead@example.org", kind: .email)
        #expect(lead.externalID == "5512345" && lead.emailHash == expected)
        let parts = try MultipartForm.parts(Array(body.utf8), boundary: b)
        #expect(Dictionary(uniqueKeysWithValues: parts.map { ($0.name, String(decoding: $0.body, as: UTF8.self)) })
                    == ["submissionID": "5512345", "formID": "2211", "q5_phone": "", "q3_email": "lead@example.org"])
        #expect(parts.allSatisfy { $0.filename == nil })
        // A file part names its file; a body cut before its closing delimiter is refused.
        let file = "--\(b)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"imported_visitors.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--\(b)--\r\n"
        #expect(try MultipartForm.parts(Array(file.utf8), boundary: b) == [.init(name: "files", filename: "imported_visitors.csv", body: Array("a,b\r\n1,2".utf8))])
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"\(b)\"") == b && MultipartForm.boundary(contentType: "text/plain") == nil)
        let cut = Array(file.utf8.dropLast(8))
        #expect(throws: MultipartForm.Unreadable.self) { try MultipartForm.parts(cut, boundary: b) }
        // An epilogue after the closing delimiter is allowed (RFC 2046).
        #expect(try MultipartForm.parts(Array((file + "epilogue\r\n").utf8), boundary: b).count == 1)
    }
}

@Suite struct AttributionTests {
    /// A consented visitor: day 1 from Google search, day 3 from a paid campaign, day 5 direct.
    func journey(_ t: TestCollector, subject: String, ip: String) async throws {
        let visits: [(String, String?)] = [("https://example.com/", "https://www.google.com/search?q=x"),
                                           ("https://example.com/offer?utm_source=google&utm_medium=cpc&utm_campaign=spring", nil),
                                           ("https://example.com/pricing", nil)]
        for (i, (url, referrer)) in visits.enumerated() {
            if i > 0 { t.clock.advance(2 * day) }
            try await t.ingest([IncomingEvent(site: t.site.id, url: url, referrer: referrer,
                                              consent: .granted(analytics: true, marketing: false), subject: subject)], ip: ip)
        }
    }

    @Test func firstAndLastTouchAcrossAConsentedMultiDayJourney() async throws {
        let f = try HookFixture()
        try await journey(f.t, subject: subjectA, ip: "81.2.69.160")
        f.t.clock.advance(3600)
        let body = #"{"id":"evt_2","type":"checkout.session.completed","data":{"object":{"id":"cs_2","payment_intent":"pi_2","payment_status":"paid","amount_total":20000,"currency":"usd","client_reference_id":"\#(subjectA)"}}}"#
        try await f.app.test(.router) { client in
            let r = try await client.execute(uri: "/hooks/stripe/\(f.t.site.id)", method: .post, headers: f.signed(.stripe, body),
                                             body: ByteBuffer(string: body))
            #expect(r.status == .ok)
        }
        let c = try #require(try f.t.database.conversions(site: f.t.site.id).first)
        #expect(c.attributedVia == "subject")
        #expect(c.firstTouch?.sourceType == "organic" && c.firstTouch?.referrerHost == "google.com")
        #expect(c.lastTouch?.sourceType == "paid" && c.lastTouch?.utmCampaign == "spring")   // the later direct visit does not take the credit
        #expect(c.value == 200)
    }

    @Test func anonymousJourneysAreNotLinkedAndOldVisitsFallOutOfTheLookback() async throws {
        let f = try HookFixture()
        // Never consented: the same browser's visits carry no subject.
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/?utm_source=google&utm_medium=cpc", subject: subjectB)],
                             ip: "81.2.69.192")
        try await journey(f.t, subject: subjectA, ip: "81.2.69.160")
        try f.t.database.setClientTerms(ClientTerms(siteID: f.t.site.id, lookbackDays: 3), at: 0)
        let attributor = Attributor(database: f.t.database, subjects: try SubjectHasher(database: f.t.database))
        var anonymous = WebhookEvent(externalID: "x1", kind: .sale, value: 10, currency: "USD")
        anonymous.subjectID = subjectB
        #expect(try attributor.conversion(anonymous, site: f.t.site.id, provider: .generic, receivedAt: f.t.clock.now).attributedVia == "none")
        var known = WebhookEvent(externalID: "x2", kind: .sale, value: 10, currency: "USD")
        known.subjectID = subjectA
        let row = try attributor.conversion(known, site: f.t.site.id, provider: .generic, receivedAt: f.t.clock.now)
        // Only the visits of the last 3 days count: day 3 (paid) is first, day 5 (direct) is the only later one.
        #expect(row.firstTouch?.sourceType == "paid" && row.lastTouch?.sourceType == "paid")
    }

    @Test func aLeadsEmailLinksALaterOrderToTheJourney() async throws {
        let f = try HookFixture()
        try await f.t.ingest([IncomingEvent(site: f.t.site.id, url: "https://example.com/?utm_source=fb&utm_medium=social",
                                            consent: .granted(analytics: true, marketing: true), subject: subjectA),
                              IncomingEvent(site: f.t.site.id, name: "form_submit", url: "https://example.com/contact",
                                            props: [("field.email", .string("Lead@Example.org"))],
                                            consent: .granted(analytics: true, marketing: true), subject: subjectA)], ip: "81.2.69.160")
        f.t.clock.advance(4 * day)
        let attributor = Attributor(database: f.t.database, subjects: try SubjectHasher(database: f.t.database))
        var order = WebhookEvent(externalID: "order:1", kind: .sale, value: 80, currency: "USD")
        order.email = "lead@example.org"
        let row = try attributor.conversion(order, site: f.t.site.id, provider: .shopify, receivedAt: f.t.clock.now)
        #expect(row.attributedVia == "email")
        #expect(row.lastTouch?.sourceType == "social" && row.lastTouch?.utmSource == "fb")
    }
}

@Suite struct CommissionTests {
    func sale(_ id: String, _ kind: ConversionRow.Kind, _ value: Double, _ source: String?, day: Int, currency: String = "USD",
              refersTo: String? = nil) -> ConversionRow {
        let touch = source.map { Touch(sourceType: $0) }
        // 2026-03-01 + day, noon UTC
        return ConversionRow(siteID: "", provider: "generic", externalID: id, kind: kind, timestamp: 1_772_366_400_000 + Int64(day) * 86_400_000,
                             value: value, currency: currency, refersTo: refersTo, attributedVia: source == nil ? "none" : "subject",
                             firstTouch: touch, lastTouch: touch)
    }

    @Test func aSeededMonthMatchesHandComputedFigures() throws {
        let t = try TestCollector()
        try t.database.setClientTerms(ClientTerms(siteID: t.site.id, credit: .last, percent: 10, perLead: 25, perCall: 40, monthlyMinimum: 100,
                                                  currency: "USD", ourSources: ["paid", "utm_source:newsletter"]), at: 0)
        var rows = [
            sale("s1", .sale, 1000, "paid", day: 2),
            sale("s2", .sale, 500, "organic", day: 3),
            sale("r1", .refund, -200, "paid", day: 4, refersTo: "s1"),
            sale("l1", .lead, 0, "paid", day: 5),
            sale("l2", .lead, 0, "organic", day: 6),
            sale("l3", .lead, 0, nil, day: 7),
            sale("c1", .call, 0, "paid", day: 8),
            sale("e1", .sale, 300, "paid", day: 9, currency: "EUR"),
            sale("a1", .sale, 1000, "paid", day: 40),   // April
        ]
        var newsletter = sale("s3", .sale, 50, "email", day: 10)
        newsletter.lastTouch?.utmSource = "newsletter"
        rows.append(newsletter)
        for var r in rows { r.siteID = t.site.id; try t.database.insertConversion(r) }
        let march = try #require(try Commission.report(database: t.database, site: t.site, month: "2026-03"))
        // Ours: 1000 - 200 + 50 = 850 → 10 % = 85; 1 lead × 25; 1 call × 40 → 150 (above the 100 minimum).
        #expect(march.attributedRevenue == 850)
        #expect(march.totalRevenue == 1350)
        #expect((march.ourLeads, march.leads, march.ourCalls, march.unattributed, march.otherCurrency) == (1, 3, 1, 1, 1))
        #expect(march.percentPart == 85 && march.leadPart == 25 && march.callPart == 40)
        #expect(march.commission == 150)
        #expect(march.json.text.contains(#""commission":150"#))
        let csv = try CSVRendering.text(march.table)
        #expect(csv.split(separator: "\r\n").count == 1 + 9)
        // A refund in the report month lowers the commission; an empty month pays the minimum.
        var refund = sale("r2", .refund, -500, "paid", day: 12, refersTo: "s1")
        refund.siteID = t.site.id
        try t.database.insertConversion(refund)
        #expect(try Commission.report(database: t.database, site: t.site, month: "2026-03")?.commission == 100)   // 35 + 25 + 40
        #expect(try Commission.report(database: t.database, site: t.site, month: "2026-02")?.commission == 100)
        #expect(try Commission.report(database: t.database, site: t.site, month: "2026-13") == nil)
    }

    @Test func stripeRefundsAreCumulativeAndTakeTheSalesAttribution() async throws {
        let f = try HookFixture()
        try f.t.database.setClientTerms(ClientTerms(siteID: f.t.site.id, percent: 10, currency: "USD"), at: 0)
        try await AttributionTests().journey(f.t, subject: subjectA, ip: "81.2.69.160")
        let sale = #"{"id":"evt_s","type":"payment_intent.succeeded","data":{"object":{"id":"pi_9","amount_received":20000,"currency":"usd","metadata":{"candor_subject":"\#(subjectA)"}}}}"#
        let refund1 = #"{"id":"evt_r1","type":"charge.refunded","data":{"object":{"id":"ch_9","payment_intent":"pi_9","amount_refunded":5000,"currency":"usd"}}}"#
        let refund2 = #"{"id":"evt_r2","type":"charge.refunded","data":{"object":{"id":"ch_9","payment_intent":"pi_9","amount_refunded":8000,"currency":"usd"}}}"#
        try await f.app.test(.router) { client in
            for body in [sale, refund1, refund2, refund2] {
                let r = try await client.execute(uri: "/hooks/stripe/\(f.t.site.id)", method: .post, headers: f.signed(.stripe, body),
                                                 body: ByteBuffer(string: body))
                #expect(r.status == .ok)
            }
        }
        // Refunds of a payment Candor never saw are still counted once each, not cumulatively.
        let orphan1 = #"{"id":"evt_o1","type":"charge.refunded","data":{"object":{"id":"ch_x","payment_intent":"pi_x","amount_refunded":1000,"currency":"usd"}}}"#
        let orphan2 = #"{"id":"evt_o2","type":"charge.refunded","data":{"object":{"id":"ch_x","payment_intent":"pi_x","amount_refunded":2500,"currency":"usd"}}}"#
        try await f.app.test(.router) { client in
            for body in [orphan1, orphan2] {
                let r = try await client.execute(uri: "/hooks/stripe/\(f.t.site.id)", method: .post, headers: f.signed(.stripe, body),
                                                 body: ByteBuffer(string: body))
                #expect(r.status == .ok)
            }
        }
        #expect(try f.t.database.conversions(site: f.t.site.id).filter { $0.refersTo == "pi_x" }.map(\.value) == [-10, -15])
        let rows = try f.t.database.conversions(site: f.t.site.id).filter { $0.refersTo != "pi_x" }
        #expect(rows.map(\.value) == [200, -50, -30])
        #expect(rows.allSatisfy { $0.attributedVia == "subject" && $0.lastTouch?.sourceType == "paid" })
        let report = try #require(try Commission.report(database: f.t.database, site: f.t.site, month: Commission.month(of: f.t.clock.now)))
        #expect(report.attributedRevenue == 120 && report.commission == 12)   // the unattributed orphan refunds do not count
        #expect(report.totalRevenue == 95)
    }
}
