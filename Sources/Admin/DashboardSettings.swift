import Consent
import Foundation
import Hummingbird
import HTTPTypes
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Store

/// Site settings (goals, funnels, snippet, API keys) and the account page.
extension DashboardRoutes {
    // MARK: Site settings (owner, admin, or a manager of the site)

    func mayConfigure(_ v: Viewer, _ site: String) -> Bool { v.may(see: site) && v.user.role != .viewer }

    func settings(_ request: Request, _ v: Viewer, _ id: String, message: String?, newKey: String? = nil,
                  status: HTTPResponse.Status = .ok) throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        var c = base(v, title: "Settings — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name, "domains": site.domains.joined(separator: " ")]
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0, "selected": $0 == site.policy] }
        if let message { c["message"] = message }
        if let newKey { c["newKey"] = newKey }
        let origin = "http://" + (request.head.authority ?? "localhost:8080")
        c["snippet"] = """
            <script defer src="\(origin)/pixel.js" data-site="\(site.id)"></script>
            <script defer src="\(origin)/consent.js" data-site="\(site.id)"></script>
            """
        let last = try database.newest(.events, site: id)
        c["installed"] = last != nil
        c["lastEvent"] = last.map { ISO.string($0) } ?? ""
        let goals = try database.goals(site: id)
        c["goals"] = goals.map { ["id": $0.id ?? 0, "name": $0.name, "kind": $0.kind.rawValue, "match": $0.match] }
        c["hasGoals"] = !goals.isEmpty
        c["stepSlots"] = (1...5).map { ["n": $0, "goals": goals.map { ["id": $0.id ?? 0, "name": $0.name] }] }
        let names = Dictionary(uniqueKeysWithValues: goals.compactMap { g in g.id.map { ($0, g.name) } })
        c["funnels"] = try database.funnels(site: id).map { f in
            ["id": f.id ?? 0, "name": f.name, "steps": f.steps.compactMap { names[$0] }.joined(separator: " → ")]
        }
        c["keys"] = try database.apiKeys(site: id).map { ["id": $0.id, "label": $0.label, "created": ISO.string($0.createdAt),
                                                          "used": $0.lastUsedAt.map { ISO.string($0) } ?? "never"] }
        return html("settings", c, status: status)
    }

    func changeSettings(_ request: Request, _ v: Viewer, _ id: String, _ action: String) async throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        func refuse(_ why: String) throws -> Response { try settings(request, v, id, message: why, status: .badRequest) }
        let actor = "user:\(v.user.email)"
        switch action {
        case "site":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
            guard (1...200).contains(name.count) else { return try refuse("The name must be 1–200 characters.") }
            guard let policy = f["policy"], policies[policy] != nil else { return try refuse("Choose one of the policies.") }
            let domains: [String]
            switch Bootstrap.domains((f["domains"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" }).map(String.init)) {
            case .success(let d): domains = d
            case .failure(let problem): return try refuse(problem.description)
            }
            try database.updateSite(id: id, name: name, domains: domains, policy: policy)
            try office.audit.record(actor: actor, action: "site_changed", site: id,
                                    detail: ["policy": .string(policy), "domains": .string(domains.joined(separator: " "))])
            if policy != site.policy {
                try office.audit.record(actor: actor, action: "policy_changed", site: id, detail: ["from": .string(site.policy), "to": .string(policy)])
            }
            return try settings(request, v, id, message: "Saved.")
        case "goal":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces), match = (f["match"] ?? "").trimmingCharacters(in: .whitespaces)
            guard let kind = Goal.Kind(rawValue: f["kind"] ?? ""), (1...100).contains(name.count), (1...200).contains(match.count) else {
                return try refuse("A goal needs a name, a kind and what to match.")
            }
            if kind == .conversion && !["sale", "lead", "call"].contains(match) { return try refuse("A conversion goal matches sale, lead or call.") }
            if kind == .page && !match.hasPrefix("/") { return try refuse("A page goal matches a path starting with /.") }
            try database.addGoal(Goal(siteID: id, name: name, kind: kind, match: match))
            return try settings(request, v, id, message: "Goal added.")
        case "delete-goal":
            guard let g = f["goal"].flatMap(Int64.init) else { return try refuse("No goal given.") }
            try database.deleteGoal(site: id, id: g)
            return try settings(request, v, id, message: "Goal deleted.")
        case "funnel":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
            let known = Set(try database.goals(site: id).compactMap(\.id))
            let steps = (1...5).compactMap { f["step\($0)"].flatMap(Int64.init) }.filter(known.contains)
            guard (1...100).contains(name.count), steps.count >= 2 else { return try refuse("A funnel needs a name and at least two steps.") }
            try database.addFunnel(Funnel(siteID: id, name: name, steps: steps))
            return try settings(request, v, id, message: "Funnel added.")
        case "delete-funnel":
            guard let fid = f["funnel"].flatMap(Int64.init) else { return try refuse("No funnel given.") }
            try database.deleteFunnel(site: id, id: fid)
            return try settings(request, v, id, message: "Funnel deleted.")
        case "key":
            let key = try APIKeys.issue(database: database, site: id, label: f["label"].map { String($0.prefix(100)) } ?? "api", now: now())
            try office.audit.record(actor: actor, action: "api_key_issued", site: id, detail: ["key": .string(String(key.split(separator: "_")[1]))])
            return try settings(request, v, id, message: "Key created. Copy it now: it is not shown again.", newKey: key)
        default:
            return notFound()
        }
    }

    // MARK: Account

    func account(_ v: Viewer, message: String?, status: HTTPResponse.Status = .ok) -> Response {
        var c = base(v, title: "Account")
        if let message { c["message"] = message }
        return html("account", c, status: status)
    }

    func changePassword(_ request: Request, _ v: Viewer) async throws -> Response {
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        guard PasswordHasher.verify(f["current"] ?? "", hash: v.user.passwordHash) else {
            return account(v, message: "The current password is wrong.", status: .badRequest)
        }
        let new = f["new"] ?? ""
        guard new.count >= 12, new.count <= 200 else { return account(v, message: "Choose at least 12 characters.", status: .badRequest) }
        guard new == f["confirm"] else { return account(v, message: "The two new passwords differ.", status: .badRequest) }
        try database.setPasswordHash(user: v.user.id!, hash: PasswordHasher.hash(new))
        try office.audit.record(actor: "user:\(v.user.email)", action: "password_changed")
        // Every session of the account ended with the change; sign in again.
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: Self.endSessionCookie])
    }
}
