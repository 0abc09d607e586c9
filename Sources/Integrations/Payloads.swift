public import Foundation
import Privacy
import Store

/// Reads each provider's payload into a ``WebhookEvent``. Only the fields listed here are read;
/// names, phone numbers, addresses and answers other than the e-mail are never kept.
extension Webhooks {
    /// The form field or metadata key that carries the pixel's subject id through a checkout or form.
    public static let subjectKey = "candor_subject"

    public static func parse(_ provider: Provider, body: [UInt8], header: (String) -> String?,
                             contentType: String?, now: Date) throws(WebhookError) -> WebhookOutcome {
        switch try read(provider, body: body, header: header, contentType: contentType) {
        case .event(let e): return .event(try e.checked(now: now))
        case .ignored(let why): return .ignored(why)
        }
    }

    static func read(_ provider: Provider, body: [UInt8], header: (String) -> String?,
                     contentType: String?) throws(WebhookError) -> WebhookOutcome {
        switch provider {
        case .stripe: return try stripe(json(body))
        case .shopify: return try shopify(json(body), topic: header("X-Shopify-Topic") ?? "")
        case .typeform: return try typeform(json(body))
        case .jotform: return try jotform(form(body, contentType: contentType))
        case .callrail: return try callrail(json(body))
        case .generic: return try generic(json(body))
        }
    }

    // MARK: Stripe

    static let zeroDecimal: Set<String> = ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                                           "VUV", "XAF", "XOF", "XPF"]

    static func stripeAmount(_ minor: Any?, _ currency: String?) -> Double {
        let n = (minor as? NSNumber)?.doubleValue ?? 0
        return zeroDecimal.contains(currency ?? "") ? n : n / 100
    }

    static func stripe(_ doc: [String: Any]) throws(WebhookError) -> WebhookOutcome {
        guard let type = doc["type"] as? String, let id = doc["id"] as? String,
              let object = (doc["data"] as? [String: Any])?["object"] as? [String: Any] else {
            throw .malformed("a Stripe event needs id, type and data.object")
        }
        let created = (doc["created"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) }
        let currency = (object["currency"] as? String)?.uppercased()
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        func common(_ e: inout WebhookEvent) {
            e.timestamp = created
            e.subjectID = string(metadata[subjectKey]) ?? string(object["client_reference_id"])
            e.userID = string(metadata["user_id"])
            e.utmSource = string(metadata["utm_source"]); e.utmMedium = string(metadata["utm_medium"])
            e.utmCampaign = string(metadata["utm_campaign"])
            e.detail = [("stripe_event", id), ("stripe_type", type)]
        }
        switch type {
        case "checkout.session.completed":
            guard (object["payment_status"] as? String).map({ $0 == "paid" || $0 == "no_payment_required" }) ?? true else {
                return .ignored("checkout session not paid yet")
            }
            // Keyed by the payment intent when there is one, so payment_intent.succeeded for the same payment is a redelivery.
            let key = string(object["payment_intent"]) ?? string(object["id"]) ?? id
            var e = WebhookEvent(externalID: key, kind: .sale, value: stripeAmount(object["amount_total"], currency), currency: currency)
            common(&e)
            e.email = string((object["customer_details"] as? [String: Any])?["email"]) ?? string(object["customer_email"])
            return .event(e)
        case "payment_intent.succeeded":
            guard let pi = string(object["id"]) else { throw .malformed("payment intent without id") }
            var e = WebhookEvent(externalID: pi, kind: .sale, value: stripeAmount(object["amount_received"] ?? object["amount"], currency),
                                 currency: currency)
            common(&e)
            e.email = string(object["receipt_email"])
            return .event(e)
        case "charge.refunded":
            // amount_refunded is cumulative; the attributor stores the part not refunded before.
            var e = WebhookEvent(externalID: id, kind: .refund, value: -stripeAmount(object["amount_refunded"], currency), currency: currency)
            common(&e)
            e.refersTo = string(object["payment_intent"]) ?? string(object["id"])
            e.detail.append(("cumulative", "true"))
            return .event(e)
        default:
            return .ignored("Stripe event type \(type.prefix(60)) is not a conversion")
        }
    }

    // MARK: Shopify

    static func shopify(_ doc: [String: Any], topic: String) throws(WebhookError) -> WebhookOutcome {
        switch topic {
        case "orders/create", "orders/paid":
            guard let id = string(doc["id"]) else { throw .malformed("a Shopify order needs an id") }
            // Shopify signs the body, not the X-Shopify-Topic header: the signed body decides
            // whether the order is paid, whatever topic the delivery claims.
            guard let status = doc["financial_status"] as? String else { throw .invalid("a Shopify order needs its financial_status") }
            guard status == "paid" else { return .ignored("order \(id) is \(status.prefix(30)); counted when paid") }
            let value = Double(string(doc["total_price"]) ?? "") ?? 0
            var e = WebhookEvent(externalID: "order:\(id)", kind: .sale, value: value, currency: (doc["currency"] as? String)?.uppercased())
            e.timestamp = date(doc["processed_at"]) ?? date(doc["created_at"])
            for attribute in doc["note_attributes"] as? [[String: Any]] ?? [] where (attribute["name"] as? String) == subjectKey {
                e.subjectID = string(attribute["value"])
            }
            e.email = string(doc["email"])
            e.userID = string((doc["customer"] as? [String: Any])?["id"])
            if let landing = string(doc["landing_site"]), let query = URLComponents(string: "https://x" + landing)?.queryItems {
                e.utmSource = query.first { $0.name == "utm_source" }?.value
                e.utmMedium = query.first { $0.name == "utm_medium" }?.value
                e.utmCampaign = query.first { $0.name == "utm_campaign" }?.value
            }
            e.detail = [("shopify_topic", topic)]
            return .event(e)
        case "refunds/create":
            guard let id = string(doc["id"]), let order = string(doc["order_id"]), doc["financial_status"] == nil else {
                throw .invalid("a Shopify refund needs id and order_id (the signed body is not a refund)")
            }
            var total = 0.0
            var currency: String?
            for t in doc["transactions"] as? [[String: Any]] ?? [] where (t["kind"] as? String) == "refund" && (t["status"] as? String ?? "success") == "success" {
                total += Double(string(t["amount"]) ?? "") ?? 0
                currency = currency ?? (t["currency"] as? String)?.uppercased()
            }
            var e = WebhookEvent(externalID: "refund:\(id)", kind: .refund, value: -total, currency: currency)
            e.refersTo = "order:\(order)"
            e.timestamp = date(doc["created_at"])
            e.detail = [("shopify_topic", topic)]
            return .event(e)
        default:
            return .ignored("Shopify topic \(topic.prefix(60)) is not a conversion")
        }
    }

    // MARK: Typeform

    static func typeform(_ doc: [String: Any]) throws(WebhookError) -> WebhookOutcome {
        guard let type = doc["event_type"] as? String else { throw .malformed("a Typeform delivery needs event_type") }
        guard type == "form_response" else { return .ignored("Typeform event \(type.prefix(60)) is not a response") }
        guard let response = doc["form_response"] as? [String: Any],
              let id = string(doc["event_id"]) ?? string(response["token"]) else {
            throw .malformed("a Typeform response needs event_id and form_response")
        }
        var e = WebhookEvent(externalID: id, kind: .lead)
        e.timestamp = date(response["submitted_at"])
        let hidden = response["hidden"] as? [String: Any] ?? [:]
        e.subjectID = string(hidden[subjectKey])
        e.userID = string(hidden["user_id"])
        e.utmSource = string(hidden["utm_source"]); e.utmMedium = string(hidden["utm_medium"]); e.utmCampaign = string(hidden["utm_campaign"])
        e.email = (response["answers"] as? [[String: Any]] ?? []).lazy.compactMap { string($0["email"]) }.first
        if let form = string(response["form_id"]) { e.detail = [("form", form)] }
        return .event(e)
    }

    // MARK: JotForm

    static func jotform(_ fields: [String: String]) throws(WebhookError) -> WebhookOutcome {
        guard let id = fields["submissionID"] else { throw .malformed("a JotForm submission needs submissionID") }
        var e = WebhookEvent(externalID: id, kind: .lead)
        var answers: [String: Any] = [:]
        if let raw = fields["rawRequest"], let parsed = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] {
            answers = parsed
        }
        for (k, v) in fields where answers[k] == nil { answers[k] = v }
        // JotForm prefixes field names with q<N>_; hidden fields keep the name given in the form builder.
        func field(_ name: String) -> String? {
            answers.first { $0.key == name || $0.key.hasSuffix("_" + name) }.flatMap { string($0.value) }
        }
        e.subjectID = field(subjectKey)
        e.userID = field("user_id")
        e.utmSource = field("utm_source"); e.utmMedium = field("utm_medium"); e.utmCampaign = field("utm_campaign")
        e.email = answers.values.lazy.compactMap { string($0) }.first { Minimize.looksLikeEmail(Substring($0)) }
        if let form = fields["formID"] { e.detail = [("form", form)] }
        return .event(e)
    }

    // MARK: CallRail

    static func callrail(_ doc: [String: Any]) throws(WebhookError) -> WebhookOutcome {
        guard let id = string(doc["resource_id"]) ?? string(doc["id"]) else { throw .malformed("a CallRail call needs resource_id or id") }
        if let answered = doc["answered"] as? Bool, !answered { return .ignored("call \(id.prefix(40)) was not answered") }
        var e = WebhookEvent(externalID: id, kind: .call)
        e.timestamp = date(doc["start_time"])
        e.utmSource = string(doc["utm_source"]); e.utmMedium = string(doc["utm_medium"]); e.utmCampaign = string(doc["utm_campaign"])
        e.detail = [("duration_s", string(doc["duration"]) ?? "0"),
                    ("first_time_caller", string(doc["first_call"]) ?? "unknown"),
                    ("tracking_source", String((string(doc["source"]) ?? string(doc["source_name"]) ?? "unknown").prefix(100)))]
        return .event(e)
    }

    // MARK: Generic

    static func generic(_ doc: [String: Any]) throws(WebhookError) -> WebhookOutcome {
        guard let type = doc["type"] as? String, let kind = ConversionRow.Kind(rawValue: type) else {
            throw .malformed("type must be lead, sale, refund or call")
        }
        guard let id = string(doc["id"]), id.count <= 200 else { throw .malformed("id (the event's own id, for idempotency) is required") }
        var value = (doc["value"] as? NSNumber)?.doubleValue ?? 0
        if kind == .refund { value = -abs(value) }
        guard value.isFinite, abs(value) < 1e12 else { throw .malformed("value out of range") }
        let currency = (doc["currency"] as? String)?.uppercased()
        if let c = currency, c.count != 3 || !c.allSatisfy(\.isLetter) { throw .malformed("currency must be an ISO 4217 code") }
        var e = WebhookEvent(externalID: id, kind: kind, value: value, currency: currency)
        e.refersTo = string(doc["refers_to"])
        e.subjectID = string(doc["subject"]); e.email = string(doc["email"]); e.userID = string(doc["user_id"])
        e.utmSource = string(doc["utm_source"]); e.utmMedium = string(doc["utm_medium"]); e.utmCampaign = string(doc["utm_campaign"])
        e.timestamp = date(doc["occurred_at"])
        return .event(e)
    }

    // MARK: Reading

    static func json(_ body: [UInt8]) throws(WebhookError) -> [String: Any] {
        guard let doc = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw .malformed("body is not a JSON object")
        }
        return doc
    }

    static func string(_ v: Any?) -> String? {
        switch v {
        case let s as String: return s.isEmpty ? nil : String(s.prefix(200))
        case let n as NSNumber: return n.stringValue
        default: return nil
        }
    }

    static func date(_ v: Any?) -> Date? {
        guard let s = v as? String else { return nil }
        return (try? Date(s, strategy: .iso8601)) ?? ISO8601DateFormatter().date(from: s)
    }

    /// application/x-www-form-urlencoded or multipart/form-data fields (JotForm posts the latter).
    static func form(_ body: [UInt8], contentType: String?) throws(WebhookError) -> [String: String] {
        guard contentType?.lowercased().hasPrefix("multipart/form-data") == true else { return FormFields.urlencoded(body) }
        guard let boundary = MultipartForm.boundary(contentType: contentType) else { throw .malformed("multipart body without boundary") }
        do {
            // A repeated name keeps its last value.
            return Dictionary(try MultipartForm.parts(body, boundary: boundary).map { ($0.name, String(decoding: $0.body, as: UTF8.self)) },
                              uniquingKeysWith: { $1 })
        } catch {
            throw .malformed("\(error)")
        }
    }
}

/// application/x-www-form-urlencoded fields (webhooks, dashboard forms). A repeated name keeps its last value.
public enum FormFields {
    public static func urlencoded(_ body: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if kv.count == 2 { fields[kv[0]] = kv[1] }
        }
        return fields
    }
}
