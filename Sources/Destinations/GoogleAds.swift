import Foundation
import Privacy
import Store
import Storage

/// Google Ads offline click conversions (ConversionUploadService.UploadClickConversions): the
/// visit's gclid, gbraid or wbraid with the conversion action, time, value and currency, and the
/// consent Candor holds (ad_user_data granted). OAuth: the refresh token is exchanged for an
/// access token (kept in memory until it expires), sent with the developer token.
enum GoogleAds {
    /// The credential: developer token and OAuth client and refresh token, as a JSON object.
    static let credentialKeys = ["developer_token", "client_id", "client_secret", "refresh_token"]

    static func credential(_ text: String) -> [String: String]? {
        guard let doc = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return nil }
        var out: [String: String] = [:]
        for key in credentialKeys {
            guard let value = doc[key] as? String, !value.isEmpty else { return nil }
            out[key] = value
        }
        return out
    }

    static let tokens = TokenCache()

    /// The token endpoint refused the refresh token.
    struct TokenRefused: Error { let answer: Answer }

    static func deliver(_ job: Job, _ exchange: Exchange) async throws -> Delivered {
        guard let kind = job.facts.clickKind, ["gclid", "gbraid", "wbraid"].contains(kind), let click = job.facts.clickID else {
            return .skipped("no Google click id (gclid, gbraid, wbraid) on the visit")
        }
        guard let c = credential(job.credential) else { return .skipped("the credential is not the JSON object Google Ads needs") }
        guard let customer = job.settings["customer_id"], let action = job.settings["conversion_action_id"] else {
            return .skipped("customer_id and conversion_action_id are needed")
        }
        let key = Hex.encode(Sodium.sha256(Array(c["refresh_token"]!.utf8)))
        let access: String
        do {
            access = try await tokens.token(key, now: job.now) {
                let form = ["grant_type": "refresh_token", "client_id": c["client_id"]!, "client_secret": c["client_secret"]!,
                        "refresh_token": c["refresh_token"]!].sorted { $0.key < $1.key }.map { "\($0.key)=\(query($0.value))" }.joined(separator: "&")
                let answer = try await exchange(OutboundRequest(url: job.settings["token_url"] ?? "https://oauth2.googleapis.com/token",
                                                                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8)))
                guard answer.ok, let doc = answer.json as? [String: Any], let token = doc["access_token"] as? String else { throw TokenRefused(answer: answer) }
                let lifetime = (doc["expires_in"] as? NSNumber)?.int64Value ?? 3600
                return (token, job.now + lifetime * 1000)
            }
        } catch let refused as TokenRefused {
            return .refused(refused.answer)
        }
        let f = job.facts
        var conversion: [String: Any] = [
            kind: click, "conversionAction": "customers/\(customer)/conversionActions/\(action)",
            "conversionDateTime": dateTime(f.ts), "orderId": job.eventID,
            "consent": ["adUserData": "GRANTED", "adPersonalization": "DENIED"],
        ]
        if f.kind == "sale", let value = f.value { conversion["conversionValue"] = value; conversion["currencyCode"] = f.currency ?? "USD" }
        var headers = [("Authorization", "Bearer \(access)"), ("developer-token", c["developer_token"]!), ("Content-Type", "application/json")]
        if let login = job.settings["login_customer_id"] { headers.append(("login-customer-id", login)) }
        let base = DestinationKind.googleads.base(job.settings)
        let answer = try await exchange(OutboundRequest(url: "\(base)/\(job.settings["api_version"] ?? "v21")/customers/\(customer):uploadClickConversions",
                                                        headers: headers, body: json(["conversions": [conversion], "partialFailure": true])))
        if answer.status == 401 { await tokens.forget(key) }
        guard answer.ok else { return .refused(answer) }
        // With partialFailure, a refused conversion comes back as 200 with partialFailureError.
        if let error = (answer.json as? [String: Any])?["partialFailureError"] as? [String: Any] {
            return .refused(Answer(status: 400, retryAfter: nil, body: json(error)))
        }
        return .done(status: answer.status)
    }

    /// "yyyy-mm-dd hh:mm:ss+00:00" in UTC.
    static func dateTime(_ ms: Int64) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(ms) / 1000))
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d+00:00", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }
}

/// OAuth access tokens by key (a digest of the refresh token) until they expire, fetched once
/// however many deliveries ask at the same time.
actor TokenCache {
    private var entries: [String: (token: String, expires: Int64)] = [:]
    private var inflight: [String: Task<(token: String, expires: Int64), any Error>] = [:]

    func token(_ key: String, now: Int64, fetch: @escaping @Sendable () async throws -> (token: String, expires: Int64)) async throws -> String {
        if let e = entries[key], e.expires > now + 60_000 { return e.token }
        if let running = inflight[key] { return try await running.value.token }
        let task = Task { try await fetch() }
        inflight[key] = task
        defer { inflight[key] = nil }
        let fetched = try await task.value
        entries[key] = fetched
        return fetched.token
    }

    func forget(_ key: String) { entries[key] = nil }
}
