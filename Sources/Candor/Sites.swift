import Actions
import ArgumentParser
import Consent
import Foundation
import Privacy
import Retention
import Logging
import Store
import Storage

struct Sites: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage client sites.", subcommands: [Add.self, List.self, SetTimeZone.self, Archive.self, Restore.self, Delete.self, Annotate.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a site; prints its id.")
        @OptionGroup var data: DataOptions
        @Option(help: "Display name.") var name: String
        @Option(help: "Domain the site's pages are served from (subdomains included); repeatable.")
        var domain: [String]
        @Option(help: "Policy name (a file in the policies directory).") var policy: String = "default"
        @Option(help: "IANA time zone of the site's days, months and charts (Europe/Berlin, America/New_York…).")
        var timezone: String = "UTC"

        func run() throws {
            try data.ensureDirectory()
            let database = try AppDatabase(path: data.databasePath)
            let site = try Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .addSite(name: name, domains: domain, policy: policy, timezone: timezone, by: .cli)
            for shared in Administration.sharedDomains(of: site, among: try database.sites()) {
                FileHandle.standardError.write(Data("note: \(shared.domain) meets \(shared.otherDomain), a domain of site \(shared.other.id) (\(shared.other.name)): both accept events from those pages\n".utf8))
            }
            print(site.id)
        }
    }

    struct SetTimeZone: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-timezone",
            abstract: "Move a site to another IANA time zone; its days are recounted from its first stored event.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "IANA time zone (Europe/Berlin, America/New_York…, or UTC).") var timezone: String

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            guard let s = try database.site(id: site) else { throw ValidationError("no site \(site)") }
            let changed = try Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .changeSite(id: s.id, name: s.name, domains: s.domains, policy: s.policy, timezone: timezone, by: .cli)
            print("\(changed.id)\t\(changed.calendar)")
        }
    }

    /// Archives a site (`archived`) or brings it back, and says which it now is.
    static func setArchived(_ data: DataOptions, site: String, _ archived: Bool) throws {
        let database = try AppDatabase(path: data.databasePath)
        let s = try Administration(database: database, policies: try PolicyBook(directory: data.policies)).setArchived(site: site, archived, by: .cli)
        print("\(s.id)\t\(s.archivedAt == nil ? "collecting" : "archived")")
    }

    struct Archive: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a site collecting (within 30 s of a running server); its data stays until retention removes it.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        func run() throws { try Sites.setArchived(data, site: site, true) }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bring an archived site back: it collects again.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        func run() throws { try Sites.setArchived(data, site: site, false) }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an archived site and all its data now (secure delete, then the WAL truncated); prints rows per table.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "The site's name, exactly, as confirmation.") var confirm: String

        func run() async throws {
            let database = try AppDatabase(path: data.databasePath)
            let deletion = try await Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .deleteSite(id: site, confirmation: confirm, by: .cli)
            for (table, n) in deletion.rows { print("\(table)\t\(n)") }
            print("write-ahead log: " + (deletion.scrub.truncation.map { "truncated at \(ISO.string($0.at))" }
                ?? "not truncated yet (\(deletion.scrub.problems.joined(separator: "; "))); the server's scrubber retries every minute"))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sites.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            for site in try database.sites() {
                print([site.id, site.name, site.domains.joined(separator: ","), site.policy, site.calendar.identifier,
                       site.archivedAt == nil ? "collecting" : "archived"].joined(separator: "\t"))
            }
        }
    }
}

extension Sites {
    struct Annotate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a note to the charts' day (a site's, or every site's with --site all); prints its id.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id, or all.") var site: String
        @Option(help: "The day, YYYY-MM-DD, in the site's time zone.") var date: String
        @Option(help: "The note (one line, up to 200 characters).") var text: String

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            let note = try Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .annotate(site: site == "all" ? nil : site, date: date, text: text, by: .cli)
            print(note.id)
        }
    }
}

struct Initialize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the database, the owner account (password printed once) and a demo site.")
    @OptionGroup var data: DataOptions
    @Option(help: "E-mail of the owner account.") var email: String = "admin@localhost"
    @Option(help: "Domain of the demo site.") var demoDomain: String = "localhost"
    @Option(help: "Roles that must sign in with a second factor, for a new install (owner,admin,manager,viewer or none).")
    var twoFactorRoles: String = "owner,admin"

    func run() throws {
        try data.ensureDirectory()
        let database = try AppDatabase(path: data.databasePath)
        let administration = Administration(database: database, policies: try PolicyBook(directory: data.policies))
        guard let required = Role.set(parsing: twoFactorRoles) else { throw UsageError(description: "--two-factor-roles lists owner, admin, manager, viewer or none") }
        if let password = try administration.ensureOwner(email: email) {
            try administration.setTwoFactorRoles(required, by: .cli)
            print("Admin login: \(email) / \(password)   (shown once; only its argon2id hash is stored)")
            if !required.isEmpty { print("Two-factor sign-in required for: \(Role.list(required)) (set it up with an authenticator app at first sign-in)") }
        } else {
            print("Admin login: existing account(s) kept; the password was shown when it was created.")
        }
        let demo = try database.sites().first(where: { $0.name == "Demo site" })
            ?? administration.addSite(name: "Demo site", domains: [demoDomain, "127.0.0.1"], policy: "default", by: .cli)
        print("Demo site id: \(demo.id) (domains: \(demo.domains.joined(separator: ", ")))")
    }
}

struct RotateSalt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-salt",
        abstract: "Create today's salt and destroy expired ones now (the server also does this on schedule).")
    @OptionGroup var data: DataOptions

    func run() async throws {
        let database = try AppDatabase(path: data.databasePath)
        let service = SaltRotationService(keeper: try SaltKeeper(database: database), logger: Logger(label: "candor"),
                                          scrubber: Scrubber(database: database, policies: try PolicyBook(directory: data.policies)))
        let pass = try await service.tick()
        print("salt days kept: \(try database.saltDays().map(String.init).joined(separator: ",")); "
              + "destroyed: \(pass.destroyed.map(String.init).joined(separator: ","))")
        let waiting = try database.pendingSaltDestructions()
        if !waiting.isEmpty {
            print("deleted, destruction not verified yet (WAL not truncated: \(pass.problems.joined(separator: "; "))): "
                  + waiting.map(String.init).joined(separator: ","))
            throw ExitCode(3)
        }
    }
}
