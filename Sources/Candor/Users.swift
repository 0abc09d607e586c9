import Actions
import ArgumentParser
import Foundation
import Privacy
import Store

struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dashboard accounts.", subcommands: [Add.self, List.self, SetRole.self, ResetPassword.self, Remove.self, ResetTwoFactor.self, RequireTwoFactor.self])

    static func role(_ text: String) throws -> Role {
        guard let r = Role(rawValue: text) else { throw UsageError(description: "--role must be owner, admin, manager or viewer") }
        return r
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account; prints its password once.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail (the login).") var email: String
        @Option(help: "owner, admin, manager or viewer.") var role: String
        @Option(help: "A site the account may see (managers and viewers); repeatable.") var site: [String] = []

        func run() throws {
            let added = try Office(data).administration.addUser(email: email, role: try Users.role(role), sites: site, by: .cli)
            print("\(added.user.email) / \(added.password)   (shown once; only its argon2id hash is stored)")
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

    struct SetRole: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-role", abstract: "Change an account's role and sites; ends its sessions.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String
        @Option(help: "owner, admin, manager or viewer.") var role: String
        @Option(help: "A site the account may see (managers and viewers); repeatable; replaces the current list.") var site: [String] = []

        func run() throws {
            let user = try Office(data).administration.changeUser(email: email, role: try Users.role(role), sites: site, by: .cli)
            print("\(user.email)\t\(user.role.rawValue)")
        }
    }

    struct ResetPassword: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reset-password", abstract: "Set a new random password (printed once); ends the account's sessions.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String

        func run() throws {
            print("\(email) / \(try Office(data).administration.resetPassword(email: email, by: .cli))")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an account (its sessions end; the last owner cannot be removed).")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String

        func run() throws {
            try Office(data).administration.removeUser(email: email, by: .cli)
            print("\(email)\tremoved")
        }
    }

    struct ResetTwoFactor: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-2fa", abstract: "Remove an account's second factor and recovery codes (a lost phone); ends its sessions.")
        @OptionGroup var data: DataOptions
        @Option(help: "E-mail of the account.") var email: String

        func run() throws {
            try Office(data).administration.resetTwoFactor(email: email, by: .cli)
            print("\(email)\tsecond factor removed")
        }
    }

    struct RequireTwoFactor: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "require-2fa", abstract: "Set the roles that must sign in with a second factor.")
        @OptionGroup var data: DataOptions
        @Option(help: "Comma-separated roles (owner,admin,manager,viewer), or none.") var roles: String

        func run() throws {
            guard let set = Role.set(parsing: roles) else { throw UsageError(description: "--roles lists owner, admin, manager, viewer or none") }
            try Office(data).administration.setTwoFactorRoles(set, by: .cli)
            print("two-factor required for: \(set.isEmpty ? "none" : Role.list(set))")
        }
    }
}
