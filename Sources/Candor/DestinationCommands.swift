import ArgumentParser
import Destinations
import Foundation
import Privacy
import Store

struct DestinationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destinations",
        abstract: "Forward consented conversions to ad platforms and webhooks (per site, opt-in).",
        subcommands: [Add.self, List.self, Enable.self, Disable.self, Remove.self, Replay.self])

    /// The database and the setup; the secret key is loaded (and must match the database's) only
    /// for a command that seals a credential.
    static func setup(_ data: DataOptions, sealing: Bool = false) throws -> (AppDatabase, DestinationSetup) {
        try data.ensureDirectory()
        let database = try AppDatabase(path: data.databasePath)
        let box = sealing ? try SecretBox.load(directory: data.data, database: database) : nil
        return (database, DestinationSetup(database: database, box: box, audit: AuditLog(database: database)))
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a destination; prints its id. The credential is read from a file or an environment variable, sealed, and never shown again.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "webhook, meta, ga4 or linkedin.") var kind: String
        @Option(help: "Display name.") var label: String?
        @Option(help: "A setting NAME=VALUE (see `candor destinations list --kinds`); repeatable.") var setting: [String] = []
        @Option(name: .customLong("credential-file"), help: "File holding the token, API secret or signing secret.") var credentialFile: String?
        @Option(name: .customLong("credential-env"), help: "Environment variable holding it.") var credentialEnv: String?

        func run() throws {
            guard let k = DestinationKind(rawValue: kind) else {
                throw ValidationError("--kind is one of \(DestinationKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var settings: [String: String] = [:]
            for s in setting {
                guard let eq = s.firstIndex(of: "=") else { throw ValidationError("--setting takes NAME=VALUE") }
                settings[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            let credential: String
            if let file = credentialFile {
                guard let d = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                credential = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            } else if let name = credentialEnv, let value = env(name) {
                credential = value
            } else {
                throw ValidationError("give the \(k.credentialName) with --credential-file or --credential-env")
            }
            let (_, setup) = try DestinationsCommand.setup(data, sealing: true)
            print(try setup.add(site: site, kind: k, label: label, settings: settings, credential: credential, actor: "cli"))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a site's destinations with today's delivery figures, or the kinds and what each sends.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String?
        @Flag(help: "Describe each kind: settings and the fields that leave the appliance.") var kinds = false

        func run() throws {
            if kinds || site == nil {
                for k in DestinationKind.allCases {
                    print("\(k.rawValue)\t\(k.title)\tcredential: \(k.credentialName)")
                    for s in k.settings { print("  setting \(s.name)\(s.required ? " (required)" : "")\t\(s.help)") }
                    for f in k.fields { print("  sends\t\(f)") }
                }
                return
            }
            let (database, _) = try DestinationsCommand.setup(data)
            let start = Int64(Calendar.current.startOfDay(for: Date()).timeIntervalSince1970 * 1000)
            let stats = Dictionary(uniqueKeysWithValues: try database.deliveryStats(site: site!, dayStart: start).map { ($0.destination, $0) })
            print("id\tkind\tlabel\tenabled\tsent today\tfailed today\tpending\tdead")
            for d in try database.destinations(site: site!) {
                let s = stats[d.id]
                print("\(d.id)\t\(d.kind)\t\(d.label)\t\(d.enabled)\t\(s?.sentToday ?? 0)\t\(s?.failedToday ?? 0)\t\(s?.pending ?? 0)\t\(s?.dead ?? 0)")
            }
        }
    }

    /// The destination a command acts on.
    struct Target: ParsableArguments {
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "Destination id.") var id: Int64
        var setup: DestinationSetup { get throws { try DestinationsCommand.setup(data).1 } }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a destination.")
        @OptionGroup var target: Target
        func run() throws { try target.setup.setEnabled(target.id, site: target.site, enabled: true, actor: "cli") }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a destination: nothing is queued for it, what is queued waits.")
        @OptionGroup var target: Target
        func run() throws { try target.setup.setEnabled(target.id, site: target.site, enabled: false, actor: "cli") }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a destination and its deliveries.")
        @OptionGroup var target: Target
        func run() throws { try target.setup.remove(target.id, site: target.site, actor: "cli") }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue a site's dead-lettered deliveries again (a running server sends them).")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(help: "Only this destination.") var destination: Int64?
        func run() throws {
            print(try DestinationsCommand.setup(data).1.replay(site: site, destination: destination, actor: "cli"))
        }
    }
}
