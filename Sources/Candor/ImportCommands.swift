import Actions
import ArgumentParser
import Consent
import Foundation
import Imports
import Store
import Storage
import Traffic

/// `candor import plausible|umami|list|remove`.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import another tool's history as daily aggregates (Plausible's CSV export, Umami's event export).",
        subcommands: [Plausible.self, Umami.self, List.self, Remove.self])

    struct Source: ParsableArguments {
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Option(name: .customLong("referrer-list"),
                help: "referer-parser's referers.json, or 'none' (env CANDOR_REFERRER_LIST): sources are classified as the collector classifies them.")
        var referrerList: String = env("CANDOR_REFERRER_LIST") ?? DatasetPaths.defaultReferrers
        @Argument(help: "CSV files, or directories of them.") var paths: [String]

        func run(_ source: ImportSource) throws {
            let database = try AppDatabase(path: data.databasePath)
            guard let site = try database.site(id: site) else { throw ValidationError("no site \(self.site)") }
            let files = try paths.flatMap(ImportFile.files(at:))
            let referrers = try ReferrerList(json: referrerList == "none" ? nil : referrerList)
            let aggregates = try Importer(referrers: referrers, calendar: site.calendar).read(source, files)
            let record = try Administration(database: database, policies: try PolicyBook(directory: data.policies))
                .importAggregates(site: site.id, source: source, files: files.map(\.name), data: aggregates, by: .cli)
            print("import \(record.id): \(record.days) day(s) from \(SiteCalendar.dateText(record.firstDay)) to \(SiteCalendar.dateText(record.lastDay))"
                  + (record.skippedDays > 0 ? "; \(record.skippedDays) day(s) skipped (today or later, or with collected data)" : ""))
        }
    }

    struct Plausible: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import Plausible's CSV export (the unzipped imported_*.csv files; imported_visitors is required).")
        @OptionGroup var source: Source
        func run() throws { try source.run(.plausible) }
    }

    struct Umami: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import Umami's event export (CSV, one row per event).")
        @OptionGroup var source: Source
        func run() throws { try source.run(.umami) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a site's imports: id, source, first and last day, days held, files.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            for r in try database.imports(site: site) {
                print([String(r.id), r.source.rawValue, SiteCalendar.dateText(r.firstDay), SiteCalendar.dateText(r.lastDay), String(r.heldDays),
                       r.files.joined(separator: ",")].joined(separator: "\t"))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an import and the days it holds.")
        @OptionGroup var data: DataOptions
        @Option(help: "Site id.") var site: String
        @Argument(help: "Import id (see import list).") var id: Int64

        func run() throws {
            let database = try AppDatabase(path: data.databasePath)
            try Administration(database: database, policies: try PolicyBook(directory: data.policies)).removeImport(site: site, id: id, by: .cli)
        }
    }
}
