public import Consent
public import Foundation
public import Integrations
public import Privacy
public import Store
import Storage

/// The staff actions the command line and the dashboard share: sites, accounts, API keys,
/// webhook sources and client terms. Each checks the actor's permission (``Actor/may(_:)``),
/// validates its input, and commits its change together with the audit entry that records it,
/// so every path leaves the same trail.
public struct Administration: Sendable {
    public let database: AppDatabase
    public let policies: PolicyBook
    let audit: AuditLog
    let now: @Sendable () -> Date

    public init(database: AppDatabase, policies: PolicyBook, now: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.policies = policies
        self.now = now
        self.audit = AuditLog(database: database, now: now)
    }

    var nowMs: Int64 { Int64(now().timeIntervalSince1970 * 1000) }

    func require(_ actor: Actor, _ permission: Permission) throws(ActionError) {
        guard actor.may(permission) else { throw .forbidden("\(actor.label) may not do this") }
    }

    // MARK: Sites

    /// Checked name, domains and policy of a site.
    func siteFields(name: String, domains: [String], policy: String) throws(ActionError) -> (String, [String]) {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(name.count) else { throw .invalid("The name must be 1–200 characters.") }
        guard policies[policy] != nil else {
            throw .invalid("No policy named \(policy.prefix(60)) (have: \(policies.policies.keys.sorted().joined(separator: ", "))).")
        }
        switch Bootstrap.domains(domains) {
        case .success(let d): return (name, d)
        case .failure(let problem): throw .invalid(problem.description)
        }
    }

    /// Refuses a name another site has (letter case aside): lists and exports name sites.
    func checkNameIsFree(_ name: String, except id: String?, _ tx: WriteTransaction) throws {
        if try tx.sites().contains(where: { $0.id != id && $0.name.lowercased() == name.lowercased() }) {
            throw ActionError.invalid("Another site is already named \(name.prefix(200)): choose another name.")
        }
    }

    /// Where the domains of `site` meet another site's: the same domain, or one under the other.
    /// Both sites then accept events from those pages (an event names its site); settings and
    /// `candor sites add` say so.
    public static func sharedDomains(of site: Site, among sites: [Site]) -> [(domain: String, other: Site, otherDomain: String)] {
        func meets(_ a: String, _ b: String) -> Bool { a == b || a.hasSuffix("." + b) || b.hasSuffix("." + a) }
        var found: [(String, Site, String)] = []
        for other in sites where other.id != site.id {
            for d in site.domains { for o in other.domains where meets(d, o) { found.append((d, other, o)) } }
        }
        return found
    }

    @discardableResult
    public func addSite(name: String, domains: [String], policy: String, timezone: String = "UTC", by actor: Actor) throws -> Site {
        try require(actor, .addSites)
        let (name, domains) = try siteFields(name: name, domains: domains, policy: policy)
        let site = Site(id: Bootstrap.newSiteID(), name: name, domains: domains, policy: policy, createdAt: now(),
                        calendar: try Self.calendar(timezone))
        try database.transaction { tx in
            try checkNameIsFree(name, except: nil, tx)
            try tx.addSite(site)
            try audit.record(in: tx, actor: actor.label, action: "site_added", site: site.id,
                             detail: ["name": .string(name), "domains": .string(domains.joined(separator: " ")), "policy": .string(policy),
                                      "timezone": .string(site.calendar.identifier)])
        }
        return site
    }

    /// Changes a site's fields; `timezone` nil keeps its zone. A new zone recounts the site's
    /// days from its first stored event (see `WriteTransaction.setTimeZone`).
    @discardableResult
    public func changeSite(id: String, name: String, domains: [String], policy: String, timezone: String? = nil, by actor: Actor) throws -> Site {
        try require(actor, .configure(site: id))
        let (name, domains) = try siteFields(name: name, domains: domains, policy: policy)
        let calendar = try timezone.map(Self.calendar)
        return try database.transaction { tx in
            guard let before = try tx.site(id: id) else { throw ActionError.notFound("no site \(id.prefix(64))") }
            if policy != before.policy { try require(actor, .changePolicy) }
            // Installs that already have two sites of one name can still save other changes.
            if name.lowercased() != before.name.lowercased() { try checkNameIsFree(name, except: id, tx) }
            try tx.updateSite(id: id, name: name, domains: domains, policy: policy)
            try audit.record(in: tx, actor: actor.label, action: "site_changed", site: id,
                             detail: ["name": .string(name), "domains": .string(domains.joined(separator: " ")), "policy": .string(policy)])
            if policy != before.policy {
                try audit.record(in: tx, actor: actor.label, action: "policy_changed", site: id,
                                 detail: ["from": .string(before.policy), "to": .string(policy)])
            }
            if let calendar, calendar != before.calendar {
                try tx.setTimeZone(site: id, to: calendar)
                try audit.record(in: tx, actor: actor.label, action: "timezone_changed", site: id,
                                 detail: ["from": .string(before.calendar.identifier), "to": .string(calendar.identifier)])
            }
            return Site(id: id, name: name, domains: domains, policy: policy, createdAt: before.createdAt, calendar: calendar ?? before.calendar)
        }
    }

    // MARK: Archiving and deleting

    /// Archives a site, or brings it back. An archived site collects nothing: the collector
    /// answers its events, consent records and webhooks as for an unknown site (once its cache of
    /// sites is renewed, within ``Site/collectorRefresh``). What it stored stays, readable in the
    /// dashboard, until the policy's retention removes it or the site is deleted.
    @discardableResult
    public func setArchived(site id: String, _ archived: Bool, by actor: Actor) throws -> Site {
        try require(actor, .removeSites)
        return try database.transaction { tx in
            guard var site = try tx.site(id: id) else { throw ActionError.notFound("no site \(id.prefix(64))") }
            guard (site.archivedAt != nil) != archived else { return site }
            if site.deletingAt != nil { throw ActionError.invalid("The site is being deleted: it cannot be brought back.") }
            site.archivedAt = archived ? nowMs : nil
            try tx.setArchived(site: id, at: site.archivedAt)
            try audit.record(in: tx, actor: actor.label, action: archived ? "site_archived" : "site_restored", site: id,
                             detail: ["name": .string(site.name)])
            return site
        }
    }

    /// What deleting a site removed (rows per table) and the scrubber's run after it.
    public struct SiteDeletion: Sendable {
        public var rows: [(table: String, count: Int)]
        public var scrub: Scrubber.Report
        public var total: Int { rows.reduce(0) { $0 + $1.count } }
    }

    /// Deletes an archived site and everything stored for it, now. `confirmation` must be the
    /// site's name. Refused while the site is archived for less than twice
    /// ``Site/collectorRefresh`` (the collector may still be writing its events), has open
    /// deletion requests (they are carried out first, with their receipts; checked again when
    /// the site's row goes), or another deletion of it is under way (one stopped for over ten
    /// minutes is resumed). Once started the site cannot be brought back. The rows go chunk by
    /// chunk (ingestion goes on between chunks) as one purge run: `secure_delete` overwrites their bytes in the database
    /// file, and the run is verified, and audited as `purge_ran`, once the write-ahead log has
    /// been truncated after it (``Scrubber``), which this call attempts at once. The site's row
    /// goes last, with its settings, goals, keys, webhooks, destinations and closed requests'
    /// receipts; the audit log keeps its entries.
    public func deleteSite(id: String, confirmation: String, by actor: Actor) async throws -> SiteDeletion {
        try require(actor, .removeSites)
        guard let site = try database.site(id: id) else { throw ActionError.notFound("no site \(id.prefix(64))") }
        guard let archivedAt = site.archivedAt else { throw ActionError.invalid("Archive the site before deleting it.") }
        let settled = archivedAt + Int64(2 * Site.collectorRefresh * 1000)
        guard nowMs >= settled else {
            throw ActionError.invalid("The site was archived \((nowMs - archivedAt) / 1000) s ago: the collector may still be taking its events. Delete it in \((settled - nowMs + 999) / 1000) s.")
        }
        guard confirmation.trimmingCharacters(in: .whitespaces) == site.name else {
            throw ActionError.invalid("Type the site's name exactly to delete it.")
        }
        let openRequests = ActionError.invalid("The site has open deletion requests: carry them out first (privacy center).")
        guard try database.privacyRequests(site: id, openOnly: true, limit: 1).isEmpty else { throw openRequests }
        let stamp = nowMs
        let run = try database.transaction { tx in
            guard try tx.startDeletingSite(id, at: stamp, stale: 600_000) else {
                throw ActionError.invalid("A deletion of this site is under way.")
            }
            let run = try tx.startPurgeRun(actor: actor.label, at: nowMs)
            try audit.record(in: tx, actor: actor.label, action: "site_deleting", site: id, detail: ["name": .string(site.name), "run": .int(run)])
            return run
        }
        var rows: [(table: String, count: Int)] = []
        do {
            for table in AppDatabase.siteDataTables {
                var count = 0
                // Bounded: each chunk deletes at least one row, and no table holds more than Int.max.
                while true {
                    let n = try database.transaction { tx in
                        let n = try tx.deleteSiteRows(table, site: id, limit: 5_000)
                        try tx.countPurged(run: run, target: "\(id):\(table)", rows: n, at: nowMs)
                        return n
                    }
                    if n == 0 { break }
                    count += n
                    try await Task.sleep(for: .milliseconds(2))   // room for the event writer between chunks
                }
                rows.append((table, count))
            }
            try database.transaction { tx in
                // A request filed meanwhile is carried out first (its receipt would go with the site).
                if try tx.hasOpenPrivacyRequests(site: id) { throw openRequests }
                guard try tx.deleteSite(id, stamp: stamp) else { throw ActionError.invalid("Another deletion of this site took over.") }
                try tx.finishPurgeRun(run, at: nowMs)
                var detail: [String: AuditValue] = ["name": .string(site.name), "run": .int(run)]
                for (table, n) in rows where n > 0 { detail[table] = .init(n) }
                try audit.record(in: tx, actor: actor.label, action: "site_deleted", site: id, detail: detail)
            }
        } catch {
            // Stopped (an error, a request filed meanwhile): what was deleted stays deleted (the
            // purge run records it); the site may be deleted again, or kept archived.
            try? database.transaction { tx in try tx.stopDeletingSite(id, stamp: stamp) }
            throw error
        }
        let scrub = await Scrubber(database: database, policies: policies, now: now).run(actor: actor.label)
        return SiteDeletion(rows: rows, scrub: scrub)
    }

    /// Sets the consent banner's texts of one language for a site (empty fields: the built-in text).
    public func setBannerTexts(site id: String, language: String, fields: [String: String], by actor: Actor) throws {
        try require(actor, .configure(site: id))
        try database.transaction { tx in
            guard let site = try tx.site(id: id) else { throw ActionError.notFound("no site \(id.prefix(64))") }
            let texts: BannerTexts.Overrides
            switch BannerTexts.replacing(language, with: fields, in: site.bannerTexts) {
            case .failure(let error): throw ActionError.invalid("Banner texts: \(error.description).")
            case .success(let t): texts = t
            }
            guard texts != site.bannerTexts else { return }
            try tx.setBannerTexts(site: id, texts)
            try audit.record(in: tx, actor: actor.label, action: "banner_texts_changed", site: id,
                             detail: ["language": .string(language),
                                      "overridden": .string((texts[language] ?? [:]).keys.sorted().joined(separator: ","))])
        }
    }

    /// The calendar of an IANA zone name, or a clear refusal.
    static func calendar(_ name: String) throws(ActionError) -> SiteCalendar {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard let c = SiteCalendar(identifier: name.isEmpty ? "UTC" : name) else {
            throw .invalid("unknown time zone \"\(name.prefix(64))\": use an IANA name such as Europe/Berlin or America/New_York, or UTC")
        }
        return c
    }

    // MARK: Accounts

    /// A login: local part, "@", a host (`admin@localhost` is fine), no spaces or controls.
    static func checkedEmail(_ email: String) throws(ActionError) -> String {
        let e = email.trimmingCharacters(in: .whitespaces)
        let parts = e.split(separator: "@", omittingEmptySubsequences: false)
        guard e.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !e.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalid("\(e.prefix(80)) is not an e-mail address.")
        }
        return e
    }

    func checkedSites(_ sites: [String], role: Role, _ tx: WriteTransaction) throws -> [String] {
        // Owners and admins see every site; assignments matter for managers and viewers.
        guard role == .manager || role == .viewer else { return [] }
        for s in sites where try tx.site(id: s) == nil { throw ActionError.invalid("no site \(s.prefix(64))") }
        return sites
    }

    /// Creates an account; returns it with its generated password (shown once, stored as an argon2id hash).
    public func addUser(email: String, role: Role, sites: [String], by actor: Actor) throws -> (user: User, password: String) {
        try require(actor, .manageUser(current: nil, new: role))
        let email = try Self.checkedEmail(email)
        let password = PasswordHasher.randomPassword()
        let hash = PasswordHasher.hash(password)
        let user = try database.transaction { tx in
            guard try tx.user(email: email) == nil else { throw ActionError.invalid("An account \(email) exists already.") }
            let sites = try checkedSites(sites, role: role, tx)
            let user = try tx.addUser(User(email: email, passwordHash: hash, role: role, createdAt: now()))
            try tx.setUserSites(user: user.id!, sites: sites)
            try audit.record(in: tx, actor: actor.label, action: "user_added",
                             detail: ["user": .string(email), "role": .string(role.rawValue), "sites": .string(sites.joined(separator: ","))])
            return user
        }
        return (user, password)
    }

    /// Creates the owner account of a new install (`candor init`, `make run`); nil when accounts exist.
    public func ensureOwner(email: String) throws -> String? {
        guard try database.userCount() == 0 else { return nil }
        return try addUser(email: email, role: .owner, sites: [], by: .cli).password
    }

    /// Changes an account's role and sites; its sessions end (what it may see changed).
    @discardableResult
    public func changeUser(email: String, role: Role, sites: [String], by actor: Actor) throws -> User {
        try database.transaction { tx in
            guard var user = try tx.user(email: email), let id = user.id else { throw ActionError.notFound("no account \(email.prefix(80))") }
            try require(actor, .manageUser(current: user.role, new: role))
            let owners = try tx.ownerCount()
            if user.role == .owner && role != .owner && owners <= 1 {
                throw ActionError.invalid("\(email) is the only owner; make someone else owner first.")
            }
            let sites = try checkedSites(sites, role: role, tx)
            try tx.setRole(user: id, role: role)
            try tx.setUserSites(user: id, sites: sites)
            try audit.record(in: tx, actor: actor.label, action: "user_role_changed",
                             detail: ["user": .string(user.email), "from": .string(user.role.rawValue), "role": .string(role.rawValue),
                                      "sites": .string(sites.joined(separator: ","))])
            user.role = role
            return user
        }
    }

    /// Removes an account with its sessions, sites and known devices.
    public func removeUser(email: String, by actor: Actor) throws {
        try database.transaction { tx in
            guard let user = try tx.user(email: email), let id = user.id else { throw ActionError.notFound("no account \(email.prefix(80))") }
            try require(actor, .manageUser(current: user.role, new: nil))
            if case .user(let me, _, _) = actor.standing, me == id { throw ActionError.invalid("You cannot remove your own account.") }
            let owners = try tx.ownerCount()
            if user.role == .owner && owners <= 1 { throw ActionError.invalid("\(email) is the only owner.") }
            try tx.deleteUser(id: id)
            try audit.record(in: tx, actor: actor.label, action: "user_removed",
                             detail: ["user": .string(user.email), "role": .string(user.role.rawValue)])
        }
    }

    /// A new random password (returned once); the account's sessions end.
    public func resetPassword(email: String, by actor: Actor) throws -> String {
        let password = PasswordHasher.randomPassword()
        let hash = PasswordHasher.hash(password)
        try database.transaction { tx in
            guard let user = try tx.user(email: email), let id = user.id else { throw ActionError.notFound("no account \(email.prefix(80))") }
            try require(actor, .manageUser(current: user.role, new: user.role))
            try tx.setPasswordHash(user: id, hash: hash)
            try audit.record(in: tx, actor: actor.label, action: "password_reset", detail: ["user": .string(user.email)])
        }
        return password
    }

    /// A user's own new password (the caller checked the current one); every session of the account ends.
    public func changeOwnPassword(user: User, newPassword: String) throws {
        guard let id = user.id else { throw ActionError.notFound("no account") }
        let hash = PasswordHasher.hash(newPassword)
        try database.transaction { tx in
            try tx.setPasswordHash(user: id, hash: hash)
            try audit.record(in: tx, actor: "user:\(user.email)", action: "password_changed")
        }
    }

    // MARK: API keys

    /// Issues a key for `site` (nil: an install-wide provisioning key); returns its record and its
    /// text (shown once; only its hash is stored).
    public func issueKey(site: String?, label: String, scope: APIKeyScope, by actor: Actor) throws -> (record: APIKeyRecord, key: String) {
        guard scope.perSite == (site != nil) else {
            throw ActionError.invalid(scope.perSite ? "A \(scope.rawValue) key belongs to a site: name it." : "A provisioning key belongs to no site.")
        }
        try require(actor, .issueKey(site: site, scope: scope))
        let (record, key) = APIKeys.make(site: site, label: label.trimmingCharacters(in: .whitespaces).isEmpty ? "api" : label,
                                         scope: scope, issuedBy: actor.label, now: now())
        try database.transaction { tx in
            if let site, try tx.site(id: site) == nil { throw ActionError.notFound("no site \(site.prefix(64))") }
            try tx.insertAPIKey(record)
            try audit.record(in: tx, actor: actor.label, action: "api_key_issued", site: site,
                             detail: ["key": .string(record.id), "scope": .string(scope.rawValue), "label": .string(record.label)])
        }
        return (record, key)
    }

    /// Revokes (deletes) a key; it stops working at once.
    @discardableResult
    public func revokeKey(id: String, by actor: Actor) throws -> APIKeyRecord {
        try database.transaction { tx in
            guard let key = try tx.apiKey(id: id) else { throw ActionError.notFound("no key \(id.prefix(40))") }
            try require(actor, .revokeKey(site: key.siteID, scope: key.scope))
            _ = try tx.deleteAPIKey(id: id)
            try audit.record(in: tx, actor: actor.label, action: "api_key_revoked", site: key.siteID,
                             detail: ["key": .string(key.id), "scope": .string(key.scope.rawValue)])
            return key
        }
    }

    // MARK: Goals

    /// Adds a goal to a site: a page (a path from /, `*` matching any characters), a custom event
    /// (its name) or a conversion (sale, lead or call).
    @discardableResult
    public func addGoal(site: String, name: String, kind: Goal.Kind, match: String, by actor: Actor) throws -> Goal {
        try require(actor, .configure(site: site))
        let name = name.trimmingCharacters(in: .whitespaces), match = match.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count), (1...200).contains(match.count) else { throw ActionError.invalid("A goal needs a name (1–100 characters) and what to match (1–200).") }
        if kind == .conversion && !["sale", "lead", "call"].contains(match) { throw ActionError.invalid("A conversion goal matches sale, lead or call.") }
        if kind == .page && !match.hasPrefix("/") { throw ActionError.invalid("A page goal matches a path starting with /.") }
        return try database.transaction { tx in
            guard try tx.site(id: site) != nil else { throw ActionError.notFound("no site \(site.prefix(64))") }
            let goal = try tx.addGoal(Goal(siteID: site, name: name, kind: kind, match: match))
            try audit.record(in: tx, actor: actor.label, action: "goal_added", site: site,
                             detail: ["goal": .int(goal.id ?? 0), "name": .string(name), "kind": .string(kind.rawValue), "match": .string(match)])
            return goal
        }
    }

    /// Removes a goal of a site (funnels that used it lose that step).
    public func removeGoal(site: String, id: Int64, by actor: Actor) throws {
        try require(actor, .configure(site: site))
        try database.transaction { tx in
            guard let goal = try tx.goal(site: site, id: id) else { throw ActionError.notFound("no goal \(id) on site \(site.prefix(64))") }
            try tx.deleteGoal(site: site, id: id)
            try audit.record(in: tx, actor: actor.label, action: "goal_removed", site: site,
                             detail: ["goal": .int(id), "name": .string(goal.name)])
        }
    }

    // MARK: Webhook sources and client terms

    /// Configures a provider for a site; returns the secret (generated when none is given).
    public func setWebhook(site: String, provider: Provider, secret: String?, by actor: Actor) throws -> String {
        try require(actor, .configureWebhooks)
        let value = secret ?? PasswordHasher.randomPassword(length: 40)
        guard (16...200).contains(value.utf8.count) else { throw ActionError.invalid("the secret must be 16-200 characters") }
        try database.transaction { tx in
            guard let found = try tx.site(id: site) else { throw ActionError.notFound("no site \(site.prefix(64))") }
            if policies[found.policy]?.mode == .cnilExempt { throw ActionError.invalid(ConversionsRefusal.cnilExempt) }
            try tx.setWebhookSecret(site: site, provider: provider.rawValue, secret: value, at: nowMs)
            try audit.record(in: tx, actor: actor.label, action: "webhook_configured", site: site, detail: ["provider": .string(provider.rawValue)])
        }
        return value
    }

    public func setTerms(_ terms: ClientTerms, by actor: Actor) throws {
        try require(actor, .setTerms)
        guard terms.currency.count == 3, (1...365).contains(terms.lookbackDays), (0...100).contains(terms.percent), terms.perLead >= 0,
              terms.perCall >= 0, terms.monthlyMinimum >= 0 else {
            throw ActionError.invalid("check the values: currency of 3 letters, lookback 1-365, percent 0-100, fees ≥ 0")
        }
        try database.transaction { tx in
            guard try tx.site(id: terms.siteID) != nil else { throw ActionError.notFound("no site \(terms.siteID.prefix(64))") }
            try tx.setClientTerms(terms, at: nowMs)
            try audit.record(in: tx, actor: actor.label, action: "terms_changed", site: terms.siteID,
                             detail: ["percent": .string(String(terms.percent)), "per_lead": .string(String(terms.perLead)),
                                      "per_call": .string(String(terms.perCall)), "minimum": .string(String(terms.monthlyMinimum))])
        }
    }
}
