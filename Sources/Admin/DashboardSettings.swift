import Consent
import Foundation
import Hummingbird
import HTTPTypes
import Actions
import Analytics
import Integrations
import JSONOutput
import NIOCore
import Privacy
import Store
import Storage
import Imports
import Traffic
import Synchronization

/// Site settings (goals, funnels, snippet, API keys) and the account page.
extension DashboardRoutes {
    // MARK: Site settings (owner, admin, or a manager of the site)

    func mayConfigure(_ v: Viewer, _ site: String) -> Bool { v.may(see: site) && v.actor.may(.configure(site: site)) }

    func settings(_ request: Request, _ v: Viewer, _ id: String, message: String?, newKey: String? = nil, newLink: String? = nil,
                  status: HTTPResponse.Status = .ok) throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        var c = base(v, title: "Settings — \(site.name)")
        c["site"] = ["id": site.id, "name": site.name, "domains": site.domains.joined(separator: " ")]
        c["policies"] = policies.policies.keys.sorted().map { ["name": $0, "selected": $0 == site.policy] }
        c["mayChangePolicy"] = v.actor.may(.changePolicy)
        c["policy"] = site.policy
        c["policyWords"] = RecordOfProcessing.inWords(policies[site.policy] ?? .default).map { ["title": $0.title, "items": $0.items] }
        c["zones"] = Self.zones(selected: site.calendar.identifier)
        if let message = message ?? Self.settingsDone(request.uri.queryParameters.get("done")) { c["message"] = message }
        if let newKey { c["newKey"] = newKey }
        if let newLink { c["newLink"] = newLink }
        c["sharedLinks"] = try sharedLinksContext(site, v)
        c["shareFilters"] = request.uri.queryParameters.get("share").map { String($0) } ?? ""
        let mode = (policies[site.policy] ?? .default).mode
        let language = BannerTexts.language(request.uri.queryParameters.get("lang"))
        c["bannerLanguages"] = BannerTexts.languageCodes.map { ["code": $0, "selected": $0 == language] }
        c["bannerLanguage"] = language
        c["bannerFields"] = BannerTexts.keys.map { key -> [String: Any] in
            ["key": key, "label": Self.bannerLabels[key] ?? key, "value": site.bannerTexts[language]?[key] ?? "",
             "builtIn": BannerTexts.builtIn(key, language), "long": key == "text", "max": BannerTexts.maximumLength(key)]
        }
        c["bannerShown"] = !mode.neverIdentifies
        c["snippet"] = Self.snippet(site: site.id, origin: origin(of: request), mode: mode)
        c["snippetNote"] = Self.snippetNote(mode)
        c["sharedDomains"] = Administration.sharedDomains(of: site, among: try database.sites()).filter { v.may(see: $0.other.id) }.map {
            ["domain": $0.domain, "otherDomain": $0.otherDomain, "otherName": $0.other.name, "otherID": $0.other.id]
        }
        let last = try database.newest(.events, site: id)
        c["installed"] = last != nil
        // A restricted reader learns that events arrive, not when the last visitor came.
        let restricted = disclosure(v, policies[site.policy] ?? .default).restricted
        c["lastEvent"] = restricted ? "" : last.map { "last event " + Format.moment($0, site.calendar) } ?? ""
        let goals = try database.goals(site: id)
        c["goals"] = goals.map { ["id": $0.id ?? 0, "name": $0.name, "kind": $0.kind.rawValue, "match": $0.match] }
        c["hasGoals"] = !goals.isEmpty
        c["stepSlots"] = (1...5).map { ["n": $0, "goals": goals.map { ["id": $0.id ?? 0, "name": $0.name] }] }
        let names = Dictionary(uniqueKeysWithValues: goals.compactMap { g in g.id.map { ($0, g.name) } })
        c["funnels"] = try database.funnels(site: id).map { f in
            ["id": f.id ?? 0, "name": f.name, "steps": f.steps.compactMap { names[$0] }.joined(separator: " → ")]
        }
        c["keys"] = try database.apiKeys(site: id).map { k -> [String: Any] in
            ["id": k.id, "label": k.label, "scope": k.scope.rawValue, "issuedBy": k.issuedBy, "created": self.when(k.createdAt, v),
             "used": k.lastUsedAt.map { self.when($0, v) } ?? "never", "revocable": v.actor.may(.revokeKey(site: id, scope: k.scope))]
        }
        c["scopes"] = APIKeyScope.allCases.filter { v.actor.may(.issueKey(site: id, scope: $0)) }.map { ["name": $0.rawValue] }
        if v.actor.may(.removeSites) { c["removal"] = removal(site, newestEvent: last, v) }
        if v.actor.may(.importData) {
            c["imports"] = ["limit": "\(Self.importUploadLimit / 1_048_576) MiB", "list": try database.imports(site: id).map { r -> [String: Any] in
                var row: [String: Any] = ["id": r.id, "source": r.source.label, "first": SiteCalendar.dateText(r.firstDay),
                                          "last": SiteCalendar.dateText(r.lastDay), "held": r.heldDays, "files": r.files.joined(separator: ", "),
                                          "created": when(r.createdAt, v), "by": r.createdBy]
                if r.skippedDays > 0 { row["skipped"] = r.skippedDays }
                return row
            }]
        }
        return html("settings", c, status: status)
    }

    /// The archive and delete section: what each does, in the words of the site's policy.
    func removal(_ site: Site, newestEvent: Int64?, _ v: Viewer) -> [String: Any] {
        let policy = policies[site.policy] ?? .default
        var r: [String: Any] = ["archived": site.archivedAt != nil, "name": site.name,
                                "collectorSeconds": Int(Site.collectorRefresh)]
        // The audit log is the install's, not the site's: it keeps its entries either way.
        r["retention"] = DataClass.allCases.filter { $0 != .auditLog }.map { cls in
            "\(cls.rawValue): " + (policy.retentionDays[cls].map { "removed \($0) days after it was recorded" } ?? "kept until the site is deleted")
        }
        if let newestEvent, let days = policy.retentionDays[.events] {
            r["eventsGone"] = Format.day(site.calendar.day(of: newestEvent) + Int64(days) + 1)
        }
        if let at = site.archivedAt { r["archivedAt"] = Format.moment(at, site.calendar) }
        return r
    }

    /// The note a settings change redirects to (POST-redirect-GET): fixed texts, never the address's.
    static func settingsDone(_ done: String?) -> String? {
        switch done {
        case "saved"?: "Saved."
        case "banner"?: "Banner texts saved (visitors see them within about five minutes)."
        case "goal-added"?: "Goal added."
        case "goal-deleted"?: "Goal deleted."
        case "funnel-added"?: "Funnel added."
        case "funnel-deleted"?: "Funnel deleted."
        case "key-revoked"?: "Key revoked."
        case "link-revoked"?: "Shared link revoked: it answers 404 from now on."
        case "archived"?: "Site archived: within \(Int(Site.collectorRefresh)) seconds nothing more is collected. Its data stays until retention removes it."
        case "restored"?: "Site brought back: it collects again within \(Int(Site.collectorRefresh)) seconds."
        case "import-removed"?: "Import removed: its days no longer count."
        case "imported"?: "Imported: the list below says which days (each day with collected data, today and later ones are skipped)."
        default: nil
        }
    }

    /// The install snippet for the site's consent mode, from `origin`: the pixel, and consent.js
    /// (the banner or the site's CMP, and the visitor's rights) where anyone can be identified.
    static func snippet(site: String, origin: String, mode: ConsentMode) -> String {
        if mode.neverIdentifies {
            return "<script defer src=\"\(origin)/pixel.js\" data-site=\"\(site)\" data-mode=\"\(mode.rawValue)\"></script>"
        }
        return """
        <script defer src="\(origin)/pixel.js" data-site="\(site)"></script>
        <script defer src="\(origin)/consent.js" data-site="\(site)"></script>
        """
    }

    static var bannerLabels: [String: String] { [
        "title": "Title", "text": "Explanation", "accept": "Accept button", "reject": "Reject button",
        "customize": "Customize button", "save": "Save button", "necessary": "Necessary category",
        "analytics": "Analytics category", "marketing": "Marketing category", "settings": "Reopen button",
    ] }

    static func snippetNote(_ mode: ConsentMode) -> String {
        switch mode {
        case .cnilExempt:
            "Consent-free audience measurement (CNIL): no banner. Offer the opt-out the exemption requires: "
                + "a button on your privacy page whose click handler calls candor('optout')."
        case .cookieless:
            "Cookieless: nothing is stored on visitors' devices and nobody is identified, so no banner is needed for Candor."
        case .optIn, .optOut:
            "consent.js shows Candor's banner, or reads the choice from your CMP (IAB TCF or Google Consent Mode) "
                + "when the policy's consent.sources list it and the page has one. For pageviews only, use pixel-lite.js."
        }
    }

    /// Where the browser reached this server: the scheme a reverse proxy says it used
    /// (`X-Forwarded-Proto`), else https when cookies are marked Secure (served behind TLS), else
    /// http; the host the request named.
    func origin(of request: Request) -> String {
        let forwarded = request.headers[.init("X-Forwarded-Proto")!]?.split(separator: ",").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        let scheme = forwarded == "https" || forwarded == "http" ? forwarded! : (secureCookies ? "https" : "http")
        return scheme + "://" + (request.head.authority ?? "localhost:8080")
    }

    /// The zones for a select, `selected` marked (and listed, when it is a name settings do not
    /// offer, such as a link set on the command line: saving the form must not change it).
    static func zones(selected: String) -> [[String: Any]] {
        let names = SiteCalendar.knownIdentifiers
        return (names.contains(selected) ? names : [selected] + names).map { ["name": $0, "selected": $0 == selected] }
    }

    func changeSettings(_ request: Request, _ v: Viewer, _ id: String, _ action: String) async throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        func refuse(_ why: String) throws -> Response { try settings(request, v, id, message: why, status: .badRequest) }
        // Done: back to the page by GET, so a reload does not send the form again. (A new API key
        // is the exception: it is answered directly, once, since it is never stored to show again.)
        func done(_ what: String) -> Response { Response(status: .seeOther, headers: [.location: "/sites/\(id)/settings?done=\(what)"]) }
        switch action {
        case "site":
            do {
                _ = try administration.changeSite(id: id, name: f["name"] ?? "", domains: Self.list(f["domains"]), policy: f["policy"] ?? "",
                                                  timezone: f["timezone"], by: v.actor)
            } catch let error as ActionError { return try refuse(error.description) }
            return done("saved")
        case "banner":
            do {
                try administration.setBannerTexts(site: id, language: f["lang"] ?? "", fields: f, by: v.actor)
            } catch let error as ActionError { return try refuse(error.description) }
            return done("banner")
        case "goal":
            guard let kind = Goal.Kind(rawValue: f["kind"] ?? "") else { return try refuse("A goal needs a name, a kind and what to match.") }
            do {
                try administration.addGoal(site: id, name: f["name"] ?? "", kind: kind, match: f["match"] ?? "", by: v.actor)
            } catch let error as ActionError { return try refuse(error.description) }
            return done("goal-added")
        case "delete-goal":
            guard let g = f["goal"].flatMap(Int64.init) else { return try refuse("No goal given.") }
            do {
                try administration.removeGoal(site: id, id: g, by: v.actor)
            } catch let error as ActionError { return try refuse(error.description) }
            return done("goal-deleted")
        case "funnel":
            let name = (f["name"] ?? "").trimmingCharacters(in: .whitespaces)
            let known = Set(try database.goals(site: id).compactMap(\.id))
            let steps = (1...5).compactMap { f["step\($0)"].flatMap(Int64.init) }.filter(known.contains)
            guard (1...100).contains(name.count), steps.count >= 2 else { return try refuse("A funnel needs a name and at least two steps.") }
            try database.addFunnel(Funnel(siteID: id, name: name, steps: steps))
            return done("funnel-added")
        case "delete-funnel":
            guard let fid = f["funnel"].flatMap(Int64.init) else { return try refuse("No funnel given.") }
            try database.deleteFunnel(site: id, id: fid)
            return done("funnel-deleted")
        case "key":
            guard let scope = APIKeyScope(rawValue: f["scope"] ?? APIKeyScope.statsRead.rawValue) else { return try refuse("Choose a scope.") }
            do {
                let issued = try administration.issueKey(site: id, label: String((f["label"] ?? "api").prefix(100)), scope: scope, by: v.actor)
                return try settings(request, v, id, message: "Key created. Copy it now: it is not shown again.", newKey: issued.key)
            } catch let error as ActionError { return try refuse(error.description) }
        case "revoke-key":
            // Only a key of this site, revoked by someone allowed to.
            guard let keyID = f["key"], let key = try database.apiKey(id: keyID), key.siteID == id else { return try refuse("No such key.") }
            do { try administration.revokeKey(id: key.id, by: v.actor) } catch let error as ActionError { return try refuse(error.description) }
            return done("key-revoked")
        case "annotate", "unannotate":
            // Back to the site page the note was written on.
            do {
                if action == "annotate" {
                    _ = try administration.annotate(site: f["every"] == "1" ? nil : id, date: f["date"] ?? "", text: f["text"] ?? "", by: v.actor)
                } else {
                    try administration.removeAnnotation(id: f["note"] ?? "", by: v.actor)
                }
            } catch let error as ActionError { return try refuse(error.description) }
            return Response(status: .seeOther, headers: [.location: "/sites/\(id)?range=\(f["range"].flatMap { ["today", "7d", "30d", "90d", "month"].contains($0) ? $0 : nil } ?? "30d")#notes"])
        case "remove-import":
            guard let i = f["import"].flatMap(Int64.init) else { return try refuse("No import given.") }
            do { try administration.removeImport(site: id, id: i, by: v.actor) } catch let error as ActionError { return try refuse(error.description) }
            return done("import-removed")
        case "share", "unshare":
            return try changeSharedLinks(request, v, site, f, revoke: action == "unshare")
        case "archive", "restore":
            do { try administration.setArchived(site: id, action == "archive", by: v.actor) } catch let error as ActionError {
                return try refuse(error.description)
            }
            return done(action == "archive" ? "archived" : "restored")
        case "delete":
            do {
                _ = try await administration.deleteSite(id: id, confirmation: f["confirm"] ?? "", by: v.actor)
            } catch let error as ActionError { return try refuse(error.description) }
            return Response(status: .seeOther, headers: [.location: "/?done=site-deleted"])
        default:
            return notFound()
        }
    }

    /// Most bytes one upload of export files may have (larger exports: `candor import` on the server).
    static var importUploadLimit: Int { 64 * 1_048_576 }

    /// `POST /sites/:site/imports`: another tool's export files (multipart/form-data: `csrf`,
    /// `source`, `files`), imported by owners and admins. The body is read only after the
    /// permission check, up to ``importUploadLimit``.
    func importUpload(_ request: Request, _ v: Viewer, _ id: String) async throws -> Response {
        guard mayConfigure(v, id), let site = try database.site(id: id) else { return notFound() }
        func refuse(_ why: String, _ status: HTTPResponse.Status = .badRequest) throws -> Response {
            try settings(request, v, id, message: why, status: status)
        }
        guard v.actor.may(.importData) else { return try refuse("Only owners and admins import data.", .forbidden) }
        guard let boundary = MultipartForm.boundary(contentType: request.headers[.contentType]) else {
            return try refuse("Send the files as multipart/form-data.", .unsupportedMediaType)
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: Self.importUploadLimit) } catch {
            return try refuse("The files are larger than \(Self.importUploadLimit / 1_048_576) MiB in all: import them with candor import on the server.",
                              .contentTooLarge)
        }
        let parts: [MultipartForm.Part]
        do { parts = try MultipartForm.parts(Array(body.readableBytesView), boundary: boundary) } catch {
            return try refuse("The upload could not be read (\(error)).")
        }
        func field(_ name: String) -> String? {
            parts.last { $0.name == name && $0.filename == nil }.map { String(decoding: $0.body, as: UTF8.self) }
        }
        guard Sodium.equal(Array((field("csrf") ?? "").utf8), Array(v.csrf.utf8)) else { return invalidForm() }
        guard let source = field("source").flatMap(ImportSource.init(rawValue:)) else { return try refuse("Choose Plausible or Umami.") }
        let files = parts.filter { $0.name == "files" && !$0.body.isEmpty }.compactMap { part -> ImportFile? in
            guard let name = part.filename.map({ ($0 as NSString).lastPathComponent }), (1...200).contains(name.count) else { return nil }
            return ImportFile(name: name, data: Data(part.body))
        }
        guard !files.isEmpty else { return try refuse("Choose the export's CSV files.") }
        // One import at a time, read and stored on a thread of its own (not the server's event loops).
        guard ImportGate.enter() else { return try refuse("Another import is running: try again when it is done.", .tooManyRequests) }
        defer { ImportGate.leave() }
        let importer = Importer(referrers: try referrers ?? ReferrerList(json: nil), calendar: site.calendar, maxCells: Self.importCellLimit)
        let administration = administration, actor = v.actor
        do {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                Thread.detachNewThread {
                    done.resume(with: Result {
                        let data = try importer.read(source, files)
                        _ = try administration.importAggregates(site: id, source: source, files: files.map(\.name), data: data, by: actor)
                    })
                }
            }
        } catch let error as ImportError {
            return try refuse(error.description)
        } catch let error as ActionError {
            return try refuse(error.description)
        }
        return Response(status: .seeOther, headers: [.location: "/sites/\(id)/settings?done=imported#imports"])
    }

    /// Most distinct (day, value, session) triples an uploaded Umami export may hold while counted
    /// (about 32 bytes each: some 130 MB at most).
    static var importCellLimit: Int { 4_000_000 }

    // MARK: Account

    /// The password form, the second factor's state, and the account's signed-in browsers.
    func account(_ v: Viewer, message: String?, status: HTTPResponse.Status = .ok) throws -> Response {
        var c = base(v, title: "Account")
        if let message { c["message"] = message }
        let id = v.user.id ?? -1
        if let factor = try database.twoFactor(user: id), let since = factor.confirmedAt {
            c["twoFactor"] = ["since": when(since, v), "left": factor.unusedRecoveryCodes,
                              "required": try database.twoFactorRoles().contains(v.user.role)] as [String: Any]
        }
        let sessions = try database.webSessions(user: id, now: Int64(now().timeIntervalSince1970 * 1000))
        c["sessions"] = sessions.map { s -> [String: Any] in
            ["id": s.id, "device": s.device.isEmpty ? "Unknown browser" : s.device, "created": when(s.createdAt, v),
             "seen": when(s.lastSeenAt, v), "current": s.id == v.sessionID]
        }
        c["others"] = sessions.count > 1
        c["alertEmails"] = try database.alertEmails(user: id)
        let names = Dictionary(uniqueKeysWithValues: try database.sites().filter { v.may(see: $0.id) }.map { ($0.id, $0.name) })
        c["reports"] = try database.reportSubscriptions(user: id).compactMap { s -> [String: Any]? in
            guard let name = s.siteID.map({ names[$0] }) ?? "All my sites" else { return nil }
            return ["id": s.id, "site": name, "period": s.period, "csv": s.csv ? "with CSV" : "",
                    "last": s.lastFirstDay.map { "last: from " + SiteCalendar.dateText($0) } ?? "none sent yet"]
        }
        c["reportSites"] = names.sorted { $0.value < $1.value }.map { ["id": $0.key, "name": $0.value] }
        c["mail"] = mailer != nil
        return html("account", c, status: status)
    }

    func changePassword(_ request: Request, _ v: Viewer) async throws -> Response {
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        guard PasswordHasher.verify(f["current"] ?? "", hash: v.user.passwordHash) else {
            return try account(v, message: "The current password is wrong.", status: .badRequest)
        }
        let new = f["new"] ?? ""
        guard new.count >= 12, new.count <= 200 else { return try account(v, message: "Choose at least 12 characters.", status: .badRequest) }
        guard new == f["confirm"] else { return try account(v, message: "The two new passwords differ.", status: .badRequest) }
        try administration.changeOwnPassword(user: v.user, newPassword: new)
        // Every session of the account ended with the change; sign in again.
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: Self.endSessionCookie])
    }
}

/// Accounts (owners and admins): add, change role and sites, reset a password, remove.
extension DashboardRoutes {
    func users(_ v: Viewer, message: String?, newPassword: (String, String)? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        guard v.actor.may(.manageUser(current: .viewer, new: .viewer)) else { return notFound() }
        var c = base(v, title: "Users")
        if let message { c["message"] = message }
        if let (email, password) = newPassword { c["newPassword"] = ["email": email, "password": password] }
        let sites = try database.sites()
        c["users"] = try database.users().map { u -> [String: Any] in
            let assigned = Set(try database.siteIDs(user: u.id ?? -1))
            let manageable = v.actor.may(.manageUser(current: u.role, new: u.role))
            return ["email": u.email, "role": u.role.rawValue, "created": self.when(Int64(u.createdAt.timeIntervalSince1970 * 1000), v),
                    "twoFactor": try database.twoFactor(user: u.id ?? -1)?.isOn == true,
                    "sites": sites.filter { assigned.contains($0.id) }.map(\.name).joined(separator: ", "),
                    "manageable": manageable && u.id != v.user.id, "me": u.id == v.user.id,
                    "roles": Role.allCases.filter { v.actor.may(.manageUser(current: u.role, new: $0)) }
                        .map { ["name": $0.rawValue, "selected": $0 == u.role] },
                    "siteChoices": sites.map { ["id": $0.id, "name": $0.name, "checked": assigned.contains($0.id)] }]
        }
        c["roles"] = Role.allCases.filter { v.actor.may(.manageUser(current: nil, new: $0)) }.map { ["name": $0.rawValue] }
        c["sites"] = sites.map { ["id": $0.id, "name": $0.name] }
        if v.actor.may(.requireTwoFactor) {
            let required = try database.twoFactorRoles()
            c["requireForm"] = true
            c["twoFactorRoles"] = Role.allCases.map { ["name": $0.rawValue, "checked": required.contains($0)] }
        }
        return html("users", c, status: status)
    }

    func changeUsers(_ request: Request, _ v: Viewer, _ action: String) async throws -> Response {
        guard v.actor.may(.manageUser(current: .viewer, new: .viewer)) else { return notFound() }
        guard let f = try await postedForm(request, v) else { return invalidForm() }
        let email = (f["email"] ?? "").trimmingCharacters(in: .whitespaces)
        // Checkboxes named site.ID.
        let sites = f.keys.filter { $0.hasPrefix("site.") }.map { String($0.dropFirst(5)) }.sorted()
        do {
            switch action {
            case "add":
                guard let role = Role(rawValue: f["role"] ?? "") else { return try users(v, message: "Choose a role.", status: .badRequest) }
                let added = try administration.addUser(email: email, role: role, sites: sites, by: v.actor)
                return try users(v, message: "Account \(added.user.email) created. Give them the password; it is not shown again.",
                                 newPassword: (added.user.email, added.password))
            case "change":
                guard let role = Role(rawValue: f["role"] ?? "") else { return try users(v, message: "Choose a role.", status: .badRequest) }
                try administration.changeUser(email: email, role: role, sites: sites, by: v.actor)
                return try users(v, message: "\(email) is now \(role.rawValue); their sessions ended.")
            case "reset":
                let password = try administration.resetPassword(email: email, by: v.actor)
                return try users(v, message: "New password for \(email); their sessions ended.", newPassword: (email, password))
            case "remove":
                try administration.removeUser(email: email, by: v.actor)
                return try users(v, message: "\(email) removed.")
            case "reset-2fa":
                try administration.resetTwoFactor(email: email, by: v.actor)
                return try users(v, message: "\(email)'s second factor was removed and their sessions ended.")
            case "require-2fa":
                let roles = Set(Role.allCases.filter { f["role.\($0.rawValue)"] != nil })
                try administration.setTwoFactorRoles(roles, by: v.actor)
                return try users(v, message: roles.isEmpty ? "No role must use a second factor." :
                                    "\(Role.list(roles).replacingOccurrences(of: ",", with: ", ")) must sign in with a second factor.")
            default:
                return notFound()
            }
        } catch let error as ActionError {
            let status: HTTPResponse.Status = switch error { case .forbidden: .forbidden; case .notFound: .notFound; case .invalid: .badRequest }
            return try users(v, message: error.description, status: status)
        }
    }
}

/// Whether an upload is being imported (one at a time per process).
enum ImportGate {
    private static let busy = Mutex(false)
    static func enter() -> Bool { busy.withLock { b in if b { return false }; b = true; return true } }
    static func leave() { busy.withLock { $0 = false } }
}
