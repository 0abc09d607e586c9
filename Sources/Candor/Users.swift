import Admin
import ArgumentParser
import Foundation
import Privacy
import Store

struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Dashboard accounts.", subcommands: [Add.self, List.self, ResetPassword.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account; prints its password once.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail (the login).") var email: String
        @Option(help: "owner, admin, manager or viewer.") var role: String
        @Option(help: "A site the account may see (managers and viewers); repeatable.") var site: [String] = []

        func run() throws {
            guard let r = Role(rawValue: role) else { throw UsageError(description: "--role must be owner, admin, manager or viewer") }
            let o = try Office(data)
            for s in site where try o.database.site(id: s) == nil { throw UsageError(description: "no site \(s)") }
            let password = PasswordHasher.randomPassword()
            let user = try o.database.addUser(User(email: email, passwordHash: PasswordHasher.hash(password), role: r, createdAt: Date()))
            try o.database.setUserSites(user: user.id!, sites: site)
            try o.office.audit.record(actor: "cli", action: "user_role_changed",
                                      detail: ["user": .string(email), "role": .string(r.rawValue), "sites": .string(site.joined(separator: ","))])
            print("\(email) / \(password)   (shown once; only its argon2id hash is stored)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts with role and sites.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let o = try Office(data)
            for u in try o.database.users() {
                print([u.email, u.role.rawValue, try o.database.siteIDs(user: u.id!).joined(separator: ",")].joined(separator: "\t"))
            }
        }
    }

    struct ResetPassword: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reset-password", abstract: "Set a new random password (printed once); ends the account's sessions.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String

        func run() throws {
            let o = try Office(data)
            guard let u = try o.database.user(email: email), let id = u.id else { throw UsageError(description: "no account \(email)") }
            let password = PasswordHasher.randomPassword()
            try o.database.setPasswordHash(user: id, hash: PasswordHasher.hash(password))
            try o.office.audit.record(actor: "cli", action: "password_reset", detail: ["user": .string(email)])
            print("\(email) / \(password)")
        }
    }
}
