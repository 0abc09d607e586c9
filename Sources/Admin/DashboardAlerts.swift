import Actions
import Consent
import Foundation
import Hummingbird
import HTTPTypes
import Notify
import Privacy
import Store

/// Alerts: the rules a reader may manage (their sites', and the install's for owners and admins),
/// the channels, and the history of what fired and resolved.
extension DashboardRoutes {
    func addAlertRoutes(to router: Router<Context>) {
        router.get("/alerts") { request, _ in
            try await self.withViewer(request) { v in try self.alertsPage(v, message: Self.alertsDone(request.uri.queryParameters.get("done"))) }
        }
        router.post("/alerts/:action") { request, context in
            try await self.withViewer(request) { v in try await self.changeAlerts(request, v, context.parameters.get("action") ?? "") }
        }
        router.post("/account/reports/:action") { request, context in
            try await self.withViewer(request) { v in try await self.changeReports(request, v, context.parameters.get("action") ?? "") }
        }
        router.post("/account/alerts") { request, _ in
            try await self.withViewer(request) { v in
                guard let f = try await self.postedForm(request, v) else { return self.invalidForm() }
                try self.administration.setAlertEmails(email: v.user.email, f["on"] == "1", by: v.actor)
                return try self.account(v, message: f["on"] == "1" ? "Alerts will come by e-mail." : "No more alert e-mail.")
            }
        }
    }

    /// Sites whose alerts the reader manages.
    func alertSites(_ v: Viewer) throws -> [Site] {
        try database.sites().filter { v.may(see: $0.id) && v.actor.may(.configure(site: $0.id)) }
    }

    func alertsPage(_ v: Viewer, message: String?, status: HTTPResponse.Status = .ok) throws -> Response {
        let sites = try alertSites(v)
        let install = v.actor.may(.installAlerts)
        guard install || !sites.isEmpty else { return notFound() }
        let names = Dictionary(uniqueKeysWithValues: sites.map { ($0.id, $0.name) })
        func visible(_ site: String?) -> Bool { site.map { names[$0] != nil } ?? install }
        func scope(_ site: String?) -> String { site.flatMap { names[$0] } ?? "Whole install" }
        var c = base(v, title: "Alerts")
        if let message { c["message"] = message }
        c["rules"] = try database.alertRules().filter { visible($0.siteID) }.map { r -> [String: Any] in
            ["id": r.id, "scope": scope(r.siteID), "kind": r.kind, "threshold": Format.decimal(r.threshold),
             "meaning": AlertKind(rawValue: r.kind)?.thresholdMeaning ?? "", "cooldown": r.cooldownMinutes,
             "state": r.firingSince.map { "firing since " + when($0, v) } ?? "quiet"]
        }
        c["channels"] = try database.notificationChannels().filter { install && visible($0.siteID) }.map { ch -> [String: Any] in
            ["id": ch.id, "scope": scope(ch.siteID), "kind": ch.kind, "label": ch.label, "created": when(ch.createdAt, v)]
        }
        // Messages hold exact counts: only where the reader reads exact figures.
        let exact = Set(sites.filter { readsExactFigures(v.user.role, policy: policies[$0.policy] ?? .default) }.map(\.id))
        c["history"] = try database.alertHistory(limit: 500).filter { h in h.siteID.map(exact.contains) ?? install }.prefix(100).map { h -> [String: Any] in
            ["at": when(h.at, v), "scope": scope(h.siteID), "kind": h.kind, "state": h.state, "message": h.message,
             "delivered": h.delivered.isEmpty ? "–" : h.delivered]
        }
        c["scopes"] = (install ? [["id": "", "name": "Whole install"]] : []) + sites.map { ["id": $0.id, "name": $0.name] }
        c["kinds"] = AlertKind.allCases.filter { install || $0.siteScoped }.map {
            ["name": $0.rawValue, "meaning": $0.thresholdMeaning, "site": $0.siteScoped]
        }
        c["mail"] = mailer != nil
        c["sealing"] = secretBox != nil && install
        c["manageChannels"] = install
        return html("alerts", c, status: status)
    }

    static func alertsDone(_ done: String?) -> String? {
        switch done {
        case "rule-added"?: "Rule added: it is checked every minute."
        case "rule-removed"?: "Rule removed."
        case "channel-added"?: "Channel added; its URL is stored sealed and not shown again."
        case "channel-removed"?: "Channel removed."
        default: nil
        }
    }

    func changeAlerts(_ request: Request, _ v: Viewer, _ action: String) async throws -> Response {
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        let site = (f["site"] ?? "").isEmpty ? nil : f["site"]
        if let site, !v.may(see: site) { return notFound() }
        func done(_ what: String) -> Response { Response(status: .seeOther, headers: [.location: "/alerts?done=\(what)"]) }
        do {
            switch action {
            case "add-rule":
                guard let kind = AlertKind(rawValue: f["kind"] ?? "") else { return try alertsPage(v, message: "Choose what to watch.", status: .badRequest) }
                guard let threshold = Double((f["threshold"] ?? "").replacingOccurrences(of: ",", with: ".")),
                      let cooldown = Int(f["cooldown"] ?? "60") else {
                    return try alertsPage(v, message: "The threshold and the cooldown are numbers.", status: .badRequest)
                }
                _ = try administration.addAlertRule(site: site, kind: kind.rawValue, siteScoped: kind.siteScoped, threshold: threshold,
                                                    cooldownMinutes: cooldown, by: v.actor)
                return done("rule-added")
            case "remove-rule":
                try administration.removeAlertRule(id: f["rule"] ?? "", by: v.actor)
                return done("rule-removed")
            case "add-channel":
                _ = try administration.addNotificationChannel(site: site, kind: f["kind"] ?? "", label: f["label"] ?? "", url: f["url"] ?? "",
                                                              secret: (f["secret"] ?? "").isEmpty ? nil : f["secret"], box: secretBox, by: v.actor)
                return done("channel-added")
            case "remove-channel":
                try administration.removeNotificationChannel(id: f["channel"] ?? "", by: v.actor)
                return done("channel-removed")
            default:
                return notFound()
            }
        } catch let error as ActionError {
            let status: HTTPResponse.Status = switch error { case .forbidden: .forbidden; case .notFound: .notFound; case .invalid: .badRequest }
            return try alertsPage(v, message: error.description, status: status)
        }
    }

    /// Adds or removes one of the reader's scheduled reports.
    func changeReports(_ request: Request, _ v: Viewer, _ action: String) async throws -> Response {
        guard let f = try await postedForm(request, v), let me = v.user.id else { return invalidForm() }
        switch action {
        case "add":
            // "*": the consolidated report of every site the account may read.
            guard let chosen = f["site"], chosen == "*" || v.may(see: chosen), let period = ReportMaker.Period(rawValue: f["period"] ?? "") else {
                return try account(v, message: "Choose a site and a period.", status: .badRequest)
            }
            let site: String? = chosen == "*" ? nil : chosen
            if try database.reportSubscriptions(user: me).contains(where: { $0.siteID == site && $0.period == period.rawValue }) {
                return try account(v, message: "You get this report already.", status: .badRequest)
            }
            try database.insertReportSubscription(ReportSubscription(id: Hex.encode(Sodium.randomBytes(8)), userID: me, siteID: site,
                                                                     period: period.rawValue, csv: site != nil && f["csv"] == "1",
                                                                     createdAt: Int64(now().timeIntervalSince1970 * 1000)))
            return try account(v, message: "You will get the \(period.adjective) report\(mailer == nil ? " once an SMTP server is configured" : "").")
        case "remove":
            _ = try database.deleteReportSubscription(id: f["subscription"] ?? "", user: me)
            return try account(v, message: "Report removed.")
        default:
            return notFound()
        }
    }
}
