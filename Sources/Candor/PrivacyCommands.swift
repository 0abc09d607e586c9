import Actions
import ArgumentParser
import Consent
import Foundation
import JSONOutput
import Privacy
import Retention
import Store
import Storage

/// Opens the data directory for the privacy-office commands.
struct Office {
    let database: AppDatabase
    let policies: PolicyBook
    let office: PrivacyOffice
    /// Staff actions, done as the operator (`cli` in the audit log).
    let administration: Administration

    init(_ data: DataOptions) throws {
        guard FileManager.default.fileExists(atPath: data.databasePath) else {
            throw UsageError(description: "no database at \(data.databasePath): run candor init first")
        }
        database = try AppDatabase(path: data.databasePath)
        policies = try PolicyBook(directory: data.policies)
        office = PrivacyOffice(database: database, policies: policies, subjects: try SubjectHasher(database: database))
        administration = Administration(database: database, policies: policies)
    }
}

/// --subject / --email / --user-id: exactly one.
struct SubjectOptions: ParsableArguments {
    @Option(help: "The subject id the pixel stored in the visitor's browser.") var subject: String?
    @Option(help: "An e-mail address (matched by its keyed hash).") var email: String?
    @Option(name: .customLong("user-id"), help: "A user id from the site's own systems.") var userID: String?

    var identifier: PrivacyOffice.Identifier {
        get throws {
            let given = [subject.map(PrivacyOffice.Identifier.subject), email.map(PrivacyOffice.Identifier.email),
                         userID.map(PrivacyOffice.Identifier.userID)].compactMap { $0 }
            guard given.count == 1 else { throw UsageError(description: "give exactly one of --subject, --email, --user-id") }
            return given[0]
        }
    }
}

struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "File a deletion request (GDPR Art. 17 / CCPA). The scheduler carries it out; --now does it at once.")
    @OptionGroup var data: DataOptions
    @Option(help: "Site id.") var site: String
    @OptionGroup var who: SubjectOptions
    @Flag(help: "Carry the request out now and print its receipt.") var now = false

    func run() async throws {
        let o = try Office(data)
        let filed = try o.office.file(site: site, identifier: try who.identifier, filedBy: "cli")
        print("\(filed.id)\treceived\tdeadline \(ISO.string(filed.deadlineAt))")
        if now {
            let after = try await o.office.process(filed, actor: "cli")
            guard after.status == .done, let receipt = after.receipt else {
                print("\(after.id)\t\(after.status.rawValue)\trows deleted; the write-ahead log could not be truncated yet, "
                      + "so the request is not done: candor requests run (or the server) retries it")
                throw ExitCode(3)
            }
            print(receipt)
        }
    }
}

struct Requests: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deletion requests: list, run now, reject, receipts.",
        subcommands: [List.self, Run.self, Reject.self, Receipt.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List requests, newest first (tab-separated).")
        @OptionGroup var data: DataOptions
        @Option(help: "Only this site.") var site: String?
        @Flag(help: "Only open requests.") var open = false

        func run() throws {
            let o = try Office(data)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            print(["id", "site", "kind", "status", "received", "deadline", "overdue", "filed_by", "reason"].joined(separator: "\t"))
            for r in try o.database.privacyRequests(site: site, openOnly: open) {
                print([r.id, r.siteID, r.subjectKind.rawValue, r.status.rawValue, ISO.string(r.receivedAt), ISO.string(r.deadlineAt),
                       r.isOpen && r.deadlineAt < now ? "OVERDUE" : "", r.filedBy, r.reason ?? ""].joined(separator: "\t"))
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Carry out every open request now; exit 3 when some are left waiting or failed (they are retried).")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let report = await (try Office(data)).office.processOpenRequests(actor: "cli")
            for r in report.done { print("\(r.id)\tdone") }
            for r in report.erasing { print("\(r.id)\terasing") }
            for f in report.failed { print("\(f.id)\tfailed\t\(f.reason)") }
            print(report.summary)
            if !report.erasing.isEmpty || !report.failed.isEmpty || !report.problems.isEmpty { throw ExitCode(3) }
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an open request without carrying it out.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Request id.") var id: String
        @Option(help: "Why (kept with the request and in the audit log).") var reason: String

        func run() throws {
            guard try Office(data).office.reject(id: id, reason: reason, actor: "cli") else {
                throw UsageError(description: "no open request \(id)")
            }
            print("\(id)\trejected")
        }
    }

    struct Receipt: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a done request's receipt (JSON).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Request id.") var id: String

        func run() throws {
            guard let r = try Office(data).database.privacyRequest(id: id) else { throw UsageError(description: "no request \(id)") }
            guard let receipt = r.receipt else { throw UsageError(description: "request \(id) is \(r.status.rawValue); no receipt") }
            print(receipt)
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export everything held on a subject (GDPR Art. 15/20): JSON, or a directory of CSV files.")
    @OptionGroup var data: DataOptions
    @Option(help: "Site id.") var site: String
    @OptionGroup var who: SubjectOptions
    @Option(help: "json or csv.") var format: String = "json"
    @Option(help: "Output file (json) or directory (csv); json defaults to standard output.") var out: String?

    func run() throws {
        let export = try Office(data).office.export(site: site, identifier: try who.identifier, actor: "cli")
        switch format {
        case "json":
            if let out { try export.json.write(toFile: out, atomically: true, encoding: .utf8) } else { print(export.json) }
        case "csv":
            guard let out else { throw UsageError(description: "--format csv needs --out DIRECTORY") }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for table in export.tables {
                try CSVRendering.text(table).write(toFile: "\(out)/\(table.name).csv", atomically: true, encoding: .utf8)
            }
            try export.json.write(toFile: "\(out)/export.json", atomically: true, encoding: .utf8)
            print("wrote \(export.tables.map { "\($0.name).csv" }.joined(separator: ", ")) and export.json to \(out)")
        default:
            throw UsageError(description: "--format must be json or csv")
        }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply retention now (per site policy); --dry-run only reports.")
    @OptionGroup var data: DataOptions
    @Flag(name: .customLong("dry-run"), help: "Print what would be deleted and why; change nothing.") var dryRun = false

    func run() async throws {
        let o = try Office(data)
        let purger = Purger(database: o.database, policies: o.policies)
        let outcome = dryRun ? nil : try await purger.run(actor: "cli")
        let lines = try outcome?.lines ?? purger.plan()
        print(["site", "class", "rows", "reason"].joined(separator: "\t"))
        for l in lines {
            print([l.site ?? "*", l.target, String(l.rows), l.reason].joined(separator: "\t"))
        }
        print("\(dryRun ? "would delete or clear" : "deleted or cleared") \(lines.reduce(0) { $0 + $1.rows }) row(s)")
        if let outcome {
            if let t = outcome.truncation {
                print("write-ahead log truncated at \(ISO.string(t.at)); purge_ran recorded")
            } else {
                print("the write-ahead log could not be truncated yet (\(outcome.problems.joined(separator: "; "))); "
                      + "purge_ran is recorded once it is (the server retries every minute; or run candor purge again)")
                throw ExitCode(3)
            }
        }
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The tamper-evident audit log.", subcommands: [Verify.self, List.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute the hash chain; exit 1 at the first broken link.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let o = try Office(data)
            let v = try o.office.audit.verify()
            if let broken = v.firstBroken {
                print("BROKEN at entry \(broken): \(v.problem ?? "")")
                throw ExitCode(1)
            }
            print("ok: \(v.entries) entries; head \(v.headSeq.map(String.init) ?? "-") \(v.head.map(Hex.encode) ?? "-")")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the newest entries (tab-separated).")
        @OptionGroup var data: DataOptions
        @Option(help: "How many.") var limit = 50

        func run() throws {
            for e in try Office(data).database.recentAuditEntries(limit: limit) {
                print([String(e.seq), ISO.string(e.timestamp), e.actor, e.action, e.siteID ?? "", e.detail].joined(separator: "\t"))
            }
        }
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "API keys: per site, or install-wide for the provisioning API.", subcommands: [Add.self, List.self, Revoke.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a key; it is printed once (only its hash is stored).")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id (not for admin:provision).") var site: String?
        @Option(help: "What the key is for.") var label: String = "api"
        @Option(help: "stats:read (the stats and commission APIs), privacy:officer (deletion requests, receipts, subject exports) or admin:provision (the provisioning API, install-wide, acting as an admin).")
        var scope: String = APIKeyScope.statsRead.rawValue

        func run() throws {
            guard let s = APIKeyScope(rawValue: scope) else {
                throw UsageError(description: "--scope must be \(APIKeyScope.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            print(try Office(data).administration.issueKey(site: site, label: label, scope: s, by: .cli).key)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a site's keys (or, without --site, the provisioning keys): id, label, scope, issued by, created, last used.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String?

        func run() throws {
            let database = try Office(data).database
            for k in try site.map({ try database.apiKeys(site: $0) }) ?? database.installKeys() {
                print([k.id, k.label, k.scope.rawValue, k.issuedBy, ISO.string(k.createdAt), k.lastUsedAt.map(ISO.string) ?? "never used"]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke (delete) a key; it stops working at once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Key id (the part after ck_).") var id: String

        func run() throws {
            try Office(data).administration.revokeKey(id: id, by: .cli)
            print("\(id)\trevoked")
        }
    }
}

struct ProcessingRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record-of-processing",
        abstract: "Print the record of processing (GDPR Art. 30) generated from the policies.")
    @OptionGroup var data: DataOptions
    @Option(help: "md or json.") var format: String = "md"

    func run() throws {
        let book = try PolicyBook(directory: data.policies)
        print(format == "json" ? RecordOfProcessing.json(book).text : RecordOfProcessing.markdown(book))
    }
}
