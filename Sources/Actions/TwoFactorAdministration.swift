import Privacy
public import Store

/// Second-factor rules the command line and the dashboard share.
extension Administration {
    /// Sets the roles that must sign in with a second factor (their members without one are led
    /// to enrolment on their next page).
    public func setTwoFactorRoles(_ roles: Set<Role>, by actor: Actor) throws {
        try require(actor, .requireTwoFactor)
        try database.transaction { tx in
            let before = Role.set(parsing: try tx.installSetting(.twoFactorRoles) ?? "") ?? []
            try tx.setInstallSetting(.twoFactorRoles, Role.list(roles))
            try audit.record(in: tx, actor: actor.label, action: "two_factor_roles_changed",
                             detail: ["from": .string(Role.list(before)), "to": .string(Role.list(roles))])
        }
    }

    /// Removes an account's second factor and recovery codes and ends its sessions (a lost phone
    /// and lost codes). With its role required to use one, the account enrols again at its next sign-in.
    public func resetTwoFactor(email: String, by actor: Actor) throws {
        try database.transaction { tx in
            guard let user = try tx.user(email: email), let id = user.id else { throw ActionError.notFound("no account \(email.prefix(80))") }
            try require(actor, .manageUser(current: user.role, new: user.role))
            // One's own second factor is turned off from the account page, with password and code.
            if case .user(let me, _, _) = actor.standing, me == id { throw ActionError.invalid("Turn your own second factor off from your account page.") }
            guard try tx.removeTwoFactor(user: id) else { throw ActionError.invalid("\(email.prefix(80)) has no second factor") }
            try tx.deleteWebSessions(user: id)
            try audit.record(in: tx, actor: actor.label, action: "two_factor_reset", detail: ["user": .string(user.email)])
        }
    }
}
