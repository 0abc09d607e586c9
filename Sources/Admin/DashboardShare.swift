import Actions
import Foundation
import Hummingbird
import HTTPTypes
import Integrations
import Privacy
import Store

/// A site page read through a shared link.
struct SharedView {
    let link: SharedLink
    /// `/share/TOKEN`: where the page's own links lead.
    let path: String

    /// Filters as a query string (`f.path=%2Fpricing&f.country=DE`), as the settings form takes them.
    static func filterQuery(_ terms: [(Store.Dimension, String)]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return terms.map { "f.\($0.0.rawValue)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    /// Filters from such a query string; nil when a key is not a filter.
    static func filters(parsing text: String) -> [(Store.Dimension, String)]? {
        var out: [(Store.Dimension, String)] = []
        for pair in text.trimmingCharacters(in: .whitespaces).split(separator: "&") {
            let fields = FormFields.urlencoded(Array(pair.utf8))
            guard let (key, value) = fields.first, key.hasPrefix("f."), let d = Store.Dimension(rawValue: String(key.dropFirst(2))) else { return nil }
            out.append((d, value))
        }
        return out
    }
}

/// Read-only links to a site's view: anyone with the link reads the site page as a restricted
/// reader (k-anonymised), within the link's filters, after its password when it has one; an
/// expired, revoked or unknown link is a 404 like any missing page.
extension DashboardRoutes {
    static var shareCookie: String { "candor_share" }

    func addShareRoutes(to router: Router<Context>) {
        router.get("/share/:token") { request, context in try await self.sharedView(request, context.parameters.get("token") ?? "") }
        router.post("/share/:token") { request, context in try await self.unlockShare(request, context, context.parameters.get("token") ?? "") }
    }

    /// The live link a token opens.
    func liveLink(_ token: String) throws -> SharedLink? {
        guard token.utf8.count == 64, let link = try database.sharedLink(tokenHash: Administration.sharedLinkHash(token)),
              link.isLive(at: Int64(now().timeIntervalSince1970 * 1000)), let site = try database.site(id: link.siteID), site.deletingAt == nil
        else { return nil }
        return link
    }

    /// The cookie that says this browser gave the link's password (bound to the link and its
    /// password; it ends with a restart of the server).
    func unlocked(_ link: SharedLink) -> String {
        Hex.encode(clientKey.withUnsafeBytes { k in Array("share\(link.id)\(link.passwordHash ?? "")".utf8).withUnsafeBytes { Sodium.keyedHash(key: k, message: $0) } })
    }

    func sharePasswordPage(error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var c: [String: Any] = ["title": "Shared view"]
        if let error { c["error"] = error }
        return html("share", c, status: status)
    }

    func sharedView(_ request: Request, _ token: String) async throws -> Response {
        guard let link = try liveLink(token) else { return notFound() }
        if link.passwordHash != nil, cookie(Self.shareCookie, request) != unlocked(link) { return sharePasswordPage(error: nil) }
        // The link's filters replace any of the same dimension in the address.
        let fixed = Set(link.filters.map { "f.\($0.0.rawValue)" })
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        func enc(_ s: Substring) -> String { String(s).addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }
        var query = request.uri.queryParameters.filter { !fixed.contains(String($0.key)) }.map { "\(enc($0.key))=\(enc($0.value))" }
        query += SharedView.filterQuery(link.filters).split(separator: "&").map(String.init)
        var head = request.head
        let path = "/share/\(token)"
        head.path = path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let viewer = Viewer(user: User(email: "shared link \(link.id)", passwordHash: "", role: .viewer, createdAt: Date(timeIntervalSince1970: 0)),
                            siteIDs: [link.siteID], csrf: "", sessionID: "", mustEnrolTwoFactor: false)
        return try await Format.$locale.withValue(Format.locale(acceptLanguage: request.headers[.acceptLanguage])) {
            var r = try site(Request(head: head, body: request.body), viewer, link.siteID, shared: SharedView(link: link, path: path))
            r.headers[.init("X-Robots-Tag")!] = "noindex, nofollow"
            return r
        }
    }

    func unlockShare(_ request: Request, _ context: Context, _ token: String) async throws -> Response {
        guard let link = try liveLink(token), let hash = link.passwordHash else { return notFound() }
        let f = try await form(request)
        // Password guesses count against the caller's address in the sign-in throttle.
        let attempt: LoginThrottle.Attempt
        switch auth.throttle.begin(address: addressKey(request, context), account: nil, device: nil, now: now()) {
        case .failure(let wait):
            var r = sharePasswordPage(error: "Too many wrong passwords; try again in \(wait.seconds) seconds.", status: .tooManyRequests)
            r.headers[.retryAfter] = String(wait.seconds)
            return r
        case .success(let a): attempt = a
        }
        let password = f["password"] ?? ""
        guard let right = await auth.gate.run({ PasswordHasher.verify(password, hash: hash) }) else {
            auth.throttle.settle(attempt, succeeded: false, checked: false)
            return sharePasswordPage(error: "Too many sign-ins at once; try again in a moment.", status: .serviceUnavailable)
        }
        guard right else { return sharePasswordPage(error: "That password is not right.", status: .unauthorized) }
        auth.throttle.settle(attempt, succeeded: true)
        let secure = secureCookies ? "; Secure" : ""
        return Response(status: .seeOther, headers: [.location: "/share/\(token)", .setCookie:
            "\(Self.shareCookie)=\(unlocked(link)); Path=/share/\(token); HttpOnly; SameSite=Lax; Max-Age=\(Int(Authenticator.sessionLifetime))\(secure)"])
    }

    // MARK: Settings

    /// The settings page's list of the site's shared links.
    func sharedLinksContext(_ site: Site, _ v: Viewer) throws -> [[String: Any]] {
        try database.sharedLinks(site: site.id).map { link -> [String: Any] in
            ["id": link.id, "label": link.label,
             "filters": link.filters.isEmpty ? "none" : link.filters.map { "\($0.0.label) = \(Format.shown($0.0, $0.1))" }.joined(separator: ", "),
             "password": link.passwordHash != nil ? "yes" : "no",
             "expires": link.expiresAt.map { (link.isLive(at: Int64(now().timeIntervalSince1970 * 1000)) ? "" : "expired ") + when($0, v) } ?? "never",
             "created": when(link.createdAt, v), "createdBy": link.createdBy]
        }
    }

    /// Creates a link (answered directly: its address is shown once) or revokes one.
    func changeSharedLinks(_ request: Request, _ v: Viewer, _ site: Site, _ f: [String: String], revoke: Bool) throws -> Response {
        do {
            if revoke {
                try administration.revokeSharedLink(site: site.id, id: f["link"] ?? "", by: v.actor)
                return Response(status: .seeOther, headers: [.location: "/sites/\(site.id)/settings?done=link-revoked#shared-links"])
            }
            guard let filters = SharedView.filters(parsing: f["filters"] ?? "") else {
                return try settings(request, v, site.id, message: "Filters are written as on the site page's address: f.path=%2Fpricing&f.country=DE.",
                                    status: .badRequest)
            }
            let days = (f["days"] ?? "").trimmingCharacters(in: .whitespaces)
            guard days.isEmpty || Int(days) != nil else { return try settings(request, v, site.id, message: "Expiry is a number of days, or empty.", status: .badRequest) }
            let password = (f["password"] ?? "").isEmpty ? nil : f["password"]
            let made = try administration.shareSite(site: site.id, label: f["label"] ?? "", filters: filters, password: password,
                                                    expiresInDays: Int(days), by: v.actor)
            return try settings(request, v, site.id, message: "Shared link created. Copy it now: it is not shown again.",
                                newLink: origin(of: request) + "/share/" + made.token)
        } catch let error as ActionError {
            return try settings(request, v, site.id, message: error.description, status: error == .forbidden(error.description) ? .forbidden : .badRequest)
        }
    }
}
