import Consent
import Destinations
import Foundation
import Hummingbird
import HTTPTypes
import Actions
import Privacy
import Store
import Storage

/// A site's destinations (issue 17): what is forwarded and to whom, delivery figures, the error
/// log with retry status, replay of dead letters, and forms to add, pause or remove a
/// destination. Owners and admins only: sending personal data to a third party is the
/// controller's decision, as the policy is.
extension DashboardRoutes {
    func mayForward(_ v: Viewer, _ site: String) -> Bool { v.may(see: site) && v.actor.may(.configureDestinations) }

    func destinationsPage(_ v: Viewer, _ id: String, message: String? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        guard mayForward(v, id), let site = try database.site(id: id) else { return notFound() }
        var c = base(v, title: "Destinations — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name]
        if let message { c["message"] = message }
        let policy = policies[site.policy] ?? .default
        c["exempt"] = policy.mode == .cnilExempt
        c["configured"] = destinationSetup?.canSeal == true
        let nowMs = Int64(now().timeIntervalSince1970 * 1000)
        let today = site.calendar.start(of: site.calendar.day(of: nowMs))
        let stats = Dictionary(uniqueKeysWithValues: try database.deliveryStats(site: id, dayStart: today).map { ($0.destination, $0) })
        let destinations = try database.destinations(site: id)
        let labels = Dictionary(uniqueKeysWithValues: destinations.map { ($0.id, $0.label) })
        c["destinations"] = destinations.map { d -> [String: Any] in
            let s = stats[d.id]
            let kind = DestinationKind(rawValue: d.kind)
            let sent = s?.sentToday ?? 0, failed = s?.failedToday ?? 0
            return [
                "id": d.id, "label": d.label, "kind": kind?.title ?? d.kind, "kindShown": d.label != (kind?.title ?? d.kind), "enabled": d.enabled,
                "sent": Format.grouped(sent), "failed": Format.grouped(failed), "skipped": Format.grouped(s?.skippedToday ?? 0),
                "pending": Format.grouped(s?.pending ?? 0), "dead": Format.grouped(s?.dead ?? 0), "hasDead": (s?.dead ?? 0) > 0,
                "rate": sent + failed == 0 ? "–" : Format.percent(Double(sent) / Double(sent + failed)),
                "average": s?.averageMs.map { String(format: "%.0f\u{00A0}ms", $0) } ?? "–",
                "lastSuccess": s?.lastSuccess.map { Format.moment($0, site.calendar) } ?? "never",
                "fields": (kind?.fields ?? []).map { ["text": $0] },
                "settings": d.settings.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] },
            ]
        }
        c["hasDestinations"] = !destinations.isEmpty
        c["errors"] = try database.deliveryErrors(site: id).map { e -> [String: Any] in
            ["destination": labels[e.destination] ?? "#\(e.destination)", "event": e.eventID, "attempts": e.attempts,
             "status": e.status == "pending" ? "retrying" : e.status == "dead" ? "dead-lettered" : "not sent",
             "http": e.httpStatus.map(String.init) ?? "–", "error": e.error,
             "next": e.status == "pending" ? Format.moment(e.dueAt, site.calendar) : "–", "created": Format.moment(e.createdAt, site.calendar)]
        }
        c["kinds"] = DestinationKind.allCases.map { k -> [String: Any] in
            ["kind": k.rawValue, "title": k.title, "credential": k.credentialName,
             "settings": k.settings.map { ["name": $0.name, "required": $0.required, "help": $0.help] },
             "fields": k.fields.map { ["text": $0] }]
        }
        return html("destinations", c, status: status)
    }

    func changeDestinations(_ request: Request, _ v: Viewer, _ id: String, _ action: String) async throws -> Response {
        guard mayForward(v, id), try database.site(id: id) != nil else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        guard let setup = destinationSetup else { return try destinationsPage(v, id, message: "Destinations are not available on this server.", status: .serviceUnavailable) }
        let actor = "user:\(v.user.email)"
        let target = f["destination"].flatMap(Int64.init)
        do {
            switch action {
            case "add":
                guard let kind = DestinationKind(rawValue: f["kind"] ?? "") else { return try destinationsPage(v, id, message: "Choose a kind.", status: .badRequest) }
                var settings: [String: String] = [:]
                for s in kind.settings { if let value = f["setting." + s.name] { settings[s.name] = value } }
                try setup.add(site: id, kind: kind, label: f["label"], settings: settings, credential: f["credential"] ?? "", actor: actor)
                return redirect(id, "added")
            case "enable", "disable":
                guard let target else { break }
                try setup.setEnabled(target, site: id, enabled: action == "enable", actor: actor)
                return redirect(id, action == "enable" ? "enabled" : "paused")
            case "remove":
                guard let target else { break }
                try setup.remove(target, site: id, actor: actor)
                return redirect(id, "removed")
            case "replay":
                let n = try setup.replay(site: id, destination: target, actor: actor)
                return redirect(id, "replayed", n: n)
            default: break
            }
        } catch let error as DestinationSetupError {
            return try destinationsPage(v, id, message: error.description, status: .badRequest)
        }
        return notFound()
    }

    /// After a change, the page again by GET (a refresh does not post twice), saying what was
    /// done by a code (a link cannot put words of its own on the page).
    func redirect(_ site: String, _ done: String, n: Int = 0) -> Response {
        Response(status: .seeOther, headers: [.location: "/sites/\(site)/destinations?done=\(done)&n=\(n)"])
    }

    static func doneMessage(_ done: String?, _ n: Int) -> String? {
        switch done {
        case "added"?: "Destination added. Its credential is stored sealed and is not shown again."
        case "enabled"?: "Destination enabled."
        case "paused"?: "Destination paused: nothing new is queued for it; what is queued waits."
        case "removed"?: "Destination removed with its deliveries."
        case "replayed"?: "\(n) dead-lettered deliver\(n == 1 ? "y" : "ies") queued again."
        default: nil
        }
    }
}
