public import Store
import Storage
import Consent
import Privacy

extension Administration {
    /// Stores another tool's daily aggregates of a site (read by `Imports.Importer`) as one import:
    /// the days before the site's first collected day and before today, each replacing what an
    /// earlier import held for it. Audited with the days taken and skipped.
    public func importAggregates(site: String, source: ImportSource, files: [String], data: ImportedAggregates,
                                 by actor: Actor) throws -> ImportRecord {
        try require(actor, .importData)
        guard !data.days.isEmpty else { throw ActionError.invalid("The files hold no day to import.") }
        return try database.transaction { tx in
            guard let s = try tx.site(id: site) else { throw ActionError.notFound("no site \(site.prefix(64))") }
            let today = s.calendar.day(of: nowMs)
            // Days the retention job would remove at once (imported days are kept as long as the rollups).
            let kept = (policies[s.policy] ?? .default).retentionDays[.rollups].map { s.calendar.day(of: nowMs - Int64($0) * 86_400_000) }
            guard let record = try tx.storeImport(site: site, source: source, files: files, data: data, today: today, oldest: kept ?? .min,
                                                  now: nowMs, by: actor.label) else {
                throw ActionError.invalid("None of the \(data.days.count) day(s) in the files can be imported: only days before today, "
                    + "before the site's first collected day (a day counted by Candor and by \(source.label) would count twice) "
                    + "and within the policy's retention of daily aggregates are.")
            }
            try audit.record(in: tx, actor: actor.label, action: "data_imported", site: site, detail: [
                "import": .int(record.id), "source": .string(source.rawValue), "files": .string(files.joined(separator: ", ")),
                "first_day": .string(SiteCalendar.dateText(record.firstDay)), "last_day": .string(SiteCalendar.dateText(record.lastDay)),
                "days": .int(Int64(record.days)), "skipped_days": .int(Int64(record.skippedDays)),
            ])
            return record
        }
    }

    /// Removes an import of a site and the days it holds.
    public func removeImport(site: String, id: Int64, by actor: Actor) throws {
        try require(actor, .importData)
        try database.transaction { tx in
            guard let record = try tx.imports(site: site).first(where: { $0.id == id }), try tx.deleteImport(site: site, id: id) else {
                throw ActionError.notFound("no import \(id) on site \(site.prefix(64))")
            }
            try audit.record(in: tx, actor: actor.label, action: "import_removed", site: site,
                             detail: ["import": .int(id), "source": .string(record.source.rawValue), "days": .int(Int64(record.heldDays))])
        }
    }
}
