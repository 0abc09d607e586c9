import Foundation
import Store
import Storage

/// CRM hand-off: find the person the lead is (never create one, unless a HubSpot destination is
/// told to), then write the visit's attribution into the fields the destination maps.
enum CRM {
    /// The mapped fields: setting `field_NAME` names the CRM's field for each attribution fact.
    static let facts: [(setting: String, help: String)] = [
        ("field_source", "source type of the visit (search, social, paid…)"), ("field_utm_source", "utm_source"),
        ("field_utm_medium", "utm_medium"), ("field_utm_campaign", "utm_campaign"), ("field_click_id_kind", "click id kind (gclid, fbclid…)"),
        ("field_landing_page", "landing page path"),
    ]

    static func values(_ job: Job) -> [String: String] {
        let f = job.facts
        let known: [String: String?] = ["field_source": f.sourceType, "field_utm_source": f.utmSource, "field_utm_medium": f.utmMedium,
                                        "field_utm_campaign": f.utmCampaign, "field_click_id_kind": f.clickKind, "field_landing_page": f.landing]
        var out: [String: String] = [:]
        for (setting, value) in known {
            if let field = job.settings[setting], !field.isEmpty, let value { out[field] = value }
        }
        return out
    }

    /// Pipedrive: persons/search by e-mail (exact), then, when no one has it, by name (exact);
    /// exactly one match is updated (PUT persons/ID with the mapped custom fields); none or
    /// several: not found.
    static func pipedrive(_ job: Job, _ exchange: Exchange) async throws -> Delivered {
        guard let email = job.contact["email"] else { return .skipped("no e-mail to find the person by") }
        let base = DestinationKind.pipedrive.base(job.settings)
        let auth = [("x-api-token", job.credential), ("Accept", "application/json")]
        func search(_ term: String, _ field: String) async throws -> (Answer, [Int64]) {
            let url = "\(base)/api/v1/persons/search?term=\(query(term))&fields=\(field)&exact_match=true&limit=2"
            let answer = try await exchange(OutboundRequest(method: "GET", url: url, headers: auth, body: nil))
            let items = (((answer.json as? [String: Any])?["data"] as? [String: Any])?["items"] as? [[String: Any]]) ?? []
            return (answer, items.compactMap { ($0["item"] as? [String: Any])?["id"] as? NSNumber }.map(\.int64Value))
        }
        var (answer, ids) = try await search(email, "email")
        guard answer.ok else { return .refused(answer) }
        let name = job.contact["name"] ?? [job.contact["first_name"], job.contact["last_name"]].compactMap { $0 }.joined(separator: " ")
        // The name only when no one has the e-mail: two people sharing it is ambiguous, not a miss.
        if ids.isEmpty, name.count >= 3 {
            (answer, ids) = try await search(name, "name")
            guard answer.ok else { return .refused(answer) }
        }
        guard ids.count == 1, let id = ids.first else { return .notFound(status: answer.status) }
        let update = try await exchange(OutboundRequest(method: "PUT", url: "\(base)/api/v1/persons/\(id)",
                                                        headers: auth + [("Content-Type", "application/json")], body: json(values(job))))
        return update.ok ? .done(status: update.status) : .refused(update)
    }

    /// HubSpot: contacts/search by e-mail (EQ); one match is updated (PATCH with the mapped
    /// properties); none: created only when the destination's `create` is true, else not found.
    static func hubspot(_ job: Job, _ exchange: Exchange) async throws -> Delivered {
        guard let email = job.contact["email"] else { return .skipped("no e-mail to find the contact by") }
        let base = DestinationKind.hubspot.base(job.settings)
        let headers = [("Authorization", "Bearer \(job.credential)"), ("Content-Type", "application/json")]
        let search: [String: Any] = ["filterGroups": [["filters": [["propertyName": "email", "operator": "EQ", "value": email]]]],
                                     "properties": ["email"], "limit": 2]
        let found = try await exchange(OutboundRequest(url: "\(base)/crm/v3/objects/contacts/search", headers: headers, body: json(search)))
        guard found.ok else { return .refused(found) }
        let ids = (((found.json as? [String: Any])?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        if ids.count == 1, let id = ids.first {
            let update = try await exchange(OutboundRequest(method: "PATCH", url: "\(base)/crm/v3/objects/contacts/\(query(id))", headers: headers,
                                                            body: json(["properties": values(job)])))
            return update.ok ? .done(status: update.status) : .refused(update)
        }
        guard ids.isEmpty, job.settings["create"] == "true" else { return .notFound(status: found.status) }
        var properties = values(job)
        properties["email"] = email
        let created = try await exchange(OutboundRequest(url: "\(base)/crm/v3/objects/contacts", headers: headers,
                                                         body: json(["properties": properties])))
        return created.ok ? .done(status: created.status) : .refused(created)
    }
}
