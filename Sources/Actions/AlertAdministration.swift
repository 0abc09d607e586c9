public import Foundation
public import Privacy
public import Store

/// Alert rules and channels, shared by the command line and the dashboard: a site's by whoever
/// configures the site, the install's by owners and admins.
extension Administration {
    func requireAlerts(_ actor: Actor, site: String?) throws(ActionError) {
        try require(actor, site.map { .configure(site: $0) } ?? .installAlerts)
    }

    /// Kinds and their scope: `siteScoped` kinds need a site, the others must not have one.
    public func addAlertRule(site: String?, kind: String, siteScoped: Bool, threshold: Double, cooldownMinutes: Int, by actor: Actor) throws -> AlertRule {
        try requireAlerts(actor, site: site)
        guard siteScoped == (site != nil) else {
            throw ActionError.invalid(siteScoped ? "A \(kind.prefix(20)) rule watches a site: name one." : "A \(kind.prefix(20)) rule watches the install: name no site.")
        }
        guard threshold > 0, threshold <= 100_000 else { throw ActionError.invalid("The threshold is a positive number.") }
        guard (0...10_080).contains(cooldownMinutes) else { throw ActionError.invalid("The cooldown is 0 to 10,080 minutes (a week).") }
        let rule = AlertRule(id: Hex.encode(Sodium.randomBytes(8)), siteID: site, kind: kind, threshold: threshold, cooldownMinutes: cooldownMinutes,
                             createdBy: actor.label, createdAt: nowMs)
        try database.transaction { tx in
            if let site, try tx.site(id: site) == nil { throw ActionError.notFound("no site \(site.prefix(64))") }
            try tx.insertAlertRule(rule)
            try audit.record(in: tx, actor: actor.label, action: "alert_rule_added", site: site,
                             detail: ["rule": .string(rule.id), "kind": .string(kind), "threshold": .string("\(threshold)"), "cooldown_minutes": .int(Int64(cooldownMinutes))])
        }
        return rule
    }

    public func removeAlertRule(id: String, by actor: Actor) throws {
        try database.transaction { tx in
            guard let rule = try tx.alertRule(id: id) else { throw ActionError.notFound("no such rule") }
            try requireAlerts(actor, site: rule.siteID)
            try tx.deleteAlertRule(id: id)
            try audit.record(in: tx, actor: actor.label, action: "alert_rule_removed", site: rule.siteID, detail: ["rule": .string(id)])
        }
    }

    /// Adds a Slack or Teams incoming webhook, or a signed webhook, for a site's alerts or the install's
    /// (then it gets every alert). The URL and secret are sealed under the install's secret key.
    /// Owners and admins only: alert messages hold exact counts, and the server posts to any URL
    /// given here (one inside its own network too).
    public func addNotificationChannel(site: String?, kind: String, label: String, url: String, secret: String?, box: SecretBox?,
                                       by actor: Actor) throws -> NotificationChannel {
        try require(actor, .installAlerts)
        guard let box else { throw ActionError.invalid("This server has no secret key to seal the channel's URL with.") }
        guard ["slack", "teams", "webhook"].contains(kind) else { throw ActionError.invalid("A channel is slack, teams or webhook.") }
        guard let parsed = URL(string: url), parsed.scheme == "https" || parsed.scheme == "http", parsed.host != nil, url.count <= 2000 else {
            throw ActionError.invalid("The channel's URL is an http(s) URL.")
        }
        if kind == "webhook", (secret ?? "").count < 16 { throw ActionError.invalid("A webhook channel needs a signing secret of 16 characters or more.") }
        try box.claim(database)
        let label = String(label.trimmingCharacters(in: .whitespaces).prefix(100))
        let channel = NotificationChannel(id: Hex.encode(Sodium.randomBytes(8)), siteID: site, kind: kind, label: label.isEmpty ? kind : label,
                                          sealedURL: box.seal(Array(url.utf8)), sealedSecret: secret.map { box.seal(Array($0.utf8)) }, createdAt: nowMs)
        try database.transaction { tx in
            if let site, try tx.site(id: site) == nil { throw ActionError.notFound("no site \(site.prefix(64))") }
            try tx.insertNotificationChannel(channel)
            try audit.record(in: tx, actor: actor.label, action: "alert_channel_added", site: site,
                             detail: ["channel": .string(channel.id), "kind": .string(kind), "label": .string(channel.label)])
        }
        return channel
    }

    public func removeNotificationChannel(id: String, by actor: Actor) throws {
        try database.transaction { tx in
            guard let channel = try tx.notificationChannel(id: id) else { throw ActionError.notFound("no such channel") }
            try require(actor, .installAlerts)
            try tx.deleteNotificationChannel(id: id)
            try audit.record(in: tx, actor: actor.label, action: "alert_channel_removed", site: channel.siteID, detail: ["channel": .string(id)])
        }
    }

    /// Whether an account gets alerts by e-mail (its own choice, or the operator's).
    public func setAlertEmails(email: String, _ on: Bool, by actor: Actor) throws {
        try database.transaction { tx in
            guard let user = try tx.user(email: email), let id = user.id else { throw ActionError.notFound("no account \(email.prefix(80))") }
            if case .user(let me, _, _) = actor.standing, me != id { try require(actor, .manageUser(current: user.role, new: user.role)) }
            try tx.setAlertEmails(user: id, on)
        }
    }
}
