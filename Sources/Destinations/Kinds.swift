import Foundation
import Integrations
import Privacy
import Store
public import Storage

/// What a delivery turns into.
public enum Mapped: Sendable, Equatable {
    case send(OutboundRequest)
    /// The destination cannot use this conversion (no match key it accepts, …): not sent.
    case skip(String)
}

/// A kind of destination: its settings, its credential and its field mapping. Each kind's
/// `fields` list is what leaves the appliance, shown on the settings page and in README.
public enum DestinationKind: String, Sendable, CaseIterable {
    case webhook, meta, ga4, googleads, linkedin, pipedrive, hubspot

    /// CRMs find a person by e-mail (and name): their deliveries carry the sealed contact.
    public var wantsContact: Bool { self == .pipedrive || self == .hubspot }

    public var title: String {
        switch self {
        case .webhook: "Signed webhook"
        case .meta: "Meta Conversions API"
        case .ga4: "Google Analytics 4 (Measurement Protocol)"
        case .linkedin: "LinkedIn Conversions API"
        case .googleads: "Google Ads (offline click conversions)"
        case .pipedrive: "Pipedrive (update the person)"
        case .hubspot: "HubSpot (update the contact)"
        }
    }

    /// Settings a destination of this kind takes (name, required, help).
    public var settings: [(name: String, required: Bool, help: String)] {
        let base = ("base_url", false, "Endpoint base URL, for a gateway or tests (default: the provider's)")
        let delay = ("delay_seconds", false, "Seconds to wait before sending (0–86400, default 0)")
        switch self {
        case .webhook: return [("url", true, "https URL that receives the POST"), delay]
        case .meta: return [("pixel_id", true, "Meta pixel (dataset) id"), ("api_version", false, "Graph API version (default v21.0)"),
                            ("test_event_code", false, "Events Manager test code"), base, delay]
        case .ga4: return [("measurement_id", true, "G-XXXXXXX"), base, delay]
        case .linkedin: return [("conversion_id", true, "LinkedIn conversion rule id"), ("api_version", false, "LinkedIn-Version (default 202411)"), base, delay]
        case .googleads:
            return [("customer_id", true, "Google Ads customer id (digits, no dashes)"), ("conversion_action_id", true, "Conversion action id"),
                    ("login_customer_id", false, "Manager account id, when uploading through one"), ("api_version", false, "Google Ads API version (default v21)"),
                    ("token_url", false, "OAuth token endpoint (default https://oauth2.googleapis.com/token)"), base, delay]
        case .pipedrive, .hubspot:
            let crmDelay = ("delay_seconds", false, "Seconds to wait so the form's own integration creates the person first (default 420)")
            var out = CRM.facts.map { ($0.setting, false, "\(self == .pipedrive ? "Custom field key" : "Property name") for the \($0.help)") }
            if self == .hubspot { out.append(("create", false, "true: create the contact when none has the e-mail (default: never create)")) }
            return out + [base, crmDelay]
        }
    }

    /// What the credential is.
    public var credentialName: String {
        switch self {
        case .webhook: "signing secret"
        case .meta: "access token"
        case .ga4: "Measurement Protocol API secret"
        case .linkedin: "access token"
        case .googleads: "JSON {developer_token, client_id, client_secret, refresh_token}"
        case .pipedrive: "API token"
        case .hubspot: "private app access token"
        }
    }

    /// The fields that leave the appliance.
    public var fields: [String] {
        switch self {
        case .webhook:
            return ["delivery id", "conversion kind and name", "time", "value and currency", "page URL (site domain + minimised path)",
                    "source type and UTM source/medium/campaign of the visit", "click id kind and value",
                    "SHA-256 of an e-mail address the visitor entered", "HMAC-SHA256 signature over timestamp.body (X-Candor-Signature)"]
        case .meta:
            return ["event_name (Purchase, Lead, Contact)", "event_time", "event_id", "action_source=website", "event_source_url",
                    "custom_data value and currency", "user_data.em: SHA-256 of the e-mail address",
                    "user_data.ph: SHA-256 of a phone number entered in international form (digits only)",
                    "user_data.fbc built from the fbclid", "never IP address or user agent"]
        case .ga4:
            return ["client_id: a random-looking id derived from the delivery id (no visitor id)", "event name (purchase, generate_lead)",
                    "value, currency, transaction_id", "consent block: ad_user_data GRANTED, ad_personalization DENIED"]
        case .linkedin:
            return ["conversion rule URN", "conversionHappenedAt", "eventId", "conversionValue", "user ids: SHA256_EMAIL and li_fat_id",
                    "never IP address or user agent"]
        case .googleads:
            return ["gclid, gbraid or wbraid of the visit", "conversion action, conversionDateTime, orderId (the event id)",
                    "conversionValue and currencyCode", "consent: adUserData GRANTED, adPersonalization DENIED", "never IP address or user agent"]
        case .pipedrive:
            return ["the e-mail address (search, exact) and, when no single person has it, the name entered (search, exact)",
                    "the mapped custom fields: source type, UTM source/medium/campaign, click id kind, landing page",
                    "never creates a person; never a click id value, IP address or user agent"]
        case .hubspot:
            return ["the e-mail address (contact search)", "the mapped properties: source type, UTM source/medium/campaign, click id kind, landing page",
                    "creates a contact only when set to; never a click id value, IP address or user agent"]
        }
    }

    var defaultBase: String {
        switch self {
        case .webhook: ""
        case .meta: "https://graph.facebook.com"
        case .ga4: "https://www.google-analytics.com"
        case .linkedin: "https://api.linkedin.com"
        case .googleads: "https://googleads.googleapis.com"
        case .pipedrive: "https://api.pipedrive.com"
        case .hubspot: "https://api.hubapi.com"
        }
    }

    /// The endpoint base: the destination's `base_url` (a gateway, a test's stand-in), else the
    /// provider's; without a trailing slash.
    func base(_ settings: [String: String]) -> String {
        (settings["base_url"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultBase).trimmingSuffix("/")
    }

    /// The request that forwards `facts` (one-request kinds), or why none is made.
    public func map(_ facts: DeliveryFacts, eventID: String, settings: [String: String], credential: String, siteDomain: String?,
                    now: Int64) -> Mapped {
        let base = base(settings)
        let url = siteDomain.map { "https://\($0)\(facts.path ?? "/")" }
        let value = facts.kind == "sale" ? facts.value : nil
        switch self {
        case .webhook:
            var doc: [String: Any] = ["id": eventID, "kind": facts.kind, "name": facts.name, "time": ISO.string(facts.ts)]
            doc["value"] = value; doc["currency"] = value == nil ? nil : facts.currency; doc["url"] = url
            var source: [String: Any] = [:]
            source["type"] = facts.sourceType; source["utm_source"] = facts.utmSource; source["utm_medium"] = facts.utmMedium
            source["utm_campaign"] = facts.utmCampaign
            doc["source"] = source
            if let id = facts.clickID { doc["click_id"] = ["kind": facts.clickKind ?? "", "value": id] }
            doc["email_sha256"] = facts.emailSHA256
            let body = json(doc)
            guard let target = settings["url"] else { return .skip("no url set") }
            // Signed as Candor's inbound generic webhooks are, so one Candor can receive another's.
            let signature = Webhooks.sign(.generic, body: body, secret: credential, timestamp: Int(now / 1000))
            return .send(OutboundRequest(url: target, headers: [("Content-Type", "application/json")] + signature, body: body))
        case .meta:
            var user: [String: Any] = [:]
            if let em = facts.emailSHA256 { user["em"] = [em] }
            if let ph = facts.phoneSHA256 { user["ph"] = [ph] }
            if facts.clickKind == "fbclid", let id = facts.clickID { user["fbc"] = "fb.1.\(facts.clickTS ?? facts.ts).\(id)" }
            guard !user.isEmpty else { return .skip("no match key Meta accepts (fbclid, e-mail or phone) under consent") }
            var event: [String: Any] = ["event_name": ["sale": "Purchase", "lead": "Lead", "call": "Contact"][facts.kind] ?? "Lead",
                                        "event_time": facts.ts / 1000, "event_id": eventID, "action_source": "website", "user_data": user]
            event["event_source_url"] = url
            if let value { event["custom_data"] = ["value": value, "currency": facts.currency ?? "USD"] }
            var doc: [String: Any] = ["data": [event], "access_token": credential]
            doc["test_event_code"] = settings["test_event_code"]
            guard let pixel = settings["pixel_id"] else { return .skip("no pixel_id set") }
            return .send(OutboundRequest(url: "\(base)/\(settings["api_version"] ?? "v21.0")/\(pixel)/events",
                                         headers: [("Content-Type", "application/json")], body: json(doc)))
        case .ga4:
            guard let measurement = settings["measurement_id"] else { return .skip("no measurement_id set") }
            var params: [String: Any] = ["transaction_id": eventID, "engagement_time_msec": 1]
            if let value { params["value"] = value; params["currency"] = facts.currency ?? "USD" }
            let client = Hex.encode(Sodium.sha256(Array(eventID.utf8))).prefix(16)
            let doc: [String: Any] = [
                "client_id": "\(client).\(facts.ts / 1000)",
                "timestamp_micros": facts.ts * 1000,
                "events": [["name": facts.kind == "sale" ? "purchase" : "generate_lead", "params": params]],
                "consent": ["ad_user_data": "GRANTED", "ad_personalization": "DENIED"],
            ]
            return .send(OutboundRequest(url: "\(base)/mp/collect?measurement_id=\(query(measurement))&api_secret=\(query(credential))",
                                         headers: [("Content-Type", "application/json")], body: json(doc)))
        case .linkedin:
            var ids: [[String: Any]] = []
            if let em = facts.emailSHA256 { ids.append(["idType": "SHA256_EMAIL", "idValue": em]) }
            if facts.clickKind == "li_fat_id", let id = facts.clickID { ids.append(["idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": id]) }
            guard !ids.isEmpty else { return .skip("no match key LinkedIn accepts (li_fat_id or e-mail) under consent") }
            guard let rule = settings["conversion_id"] else { return .skip("no conversion_id set") }
            var doc: [String: Any] = ["conversion": "urn:lla:llaPartnerConversion:\(rule)", "conversionHappenedAt": facts.ts,
                                      "eventId": eventID, "user": ["userIds": ids]]
            if let value { doc["conversionValue"] = ["currencyCode": facts.currency ?? "USD", "amount": String(format: "%.2f", value)] }
            return .send(OutboundRequest(url: "\(base)/rest/conversionEvents",
                                         headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(credential)"),
                                                   ("LinkedIn-Version", settings["api_version"] ?? "202411"),
                                                   ("X-Restli-Protocol-Version", "2.0.0")], body: json(doc)))
        case .pipedrive, .hubspot, .googleads:
            return .skip("delivered in several requests (CRM, GoogleAds)")
        }
    }
}

func json(_ object: Any) -> [UInt8] {
    Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
}

func query(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var s = self
        while s.hasSuffix(suffix) { s.removeLast(suffix.count) }
        return s
    }
}
