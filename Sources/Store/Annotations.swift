public import Foundation
import GRDB

/// A note on a day of the charts ("Newsletter sent", "Pixel moved to the new theme"): a site's, or
/// every site's (`siteID` nil: it is shown on each site's day of that date).
public struct Annotation: Sendable, Equatable {
    public var id: String
    public var siteID: String?
    /// The day, "YYYY-MM-DD", in the site's days.
    public var day: String
    public var text: String
    public var createdBy: String
    public var createdAt: Int64

    public init(id: String, siteID: String?, day: String, text: String, createdBy: String, createdAt: Int64) {
        self.id = id; self.siteID = siteID; self.day = day; self.text = text; self.createdBy = createdBy; self.createdAt = createdAt
    }

    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], day: row["day"], text: row["text"], createdBy: row["created_by"], createdAt: row["created_at"])
    }
}

extension WriteTransaction {
    public func insertAnnotation(_ a: Annotation) throws {
        try db.execute(sql: "INSERT INTO annotations (id, site_id, day, text, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [a.id, a.siteID, a.day, a.text, a.createdBy, a.createdAt])
    }

    public func annotation(id: String) throws -> Annotation? {
        try Row.fetchOne(db, sql: "SELECT * FROM annotations WHERE id = ?", arguments: [id]).map(Annotation.init(row:))
    }

    public func deleteAnnotation(id: String) throws {
        try db.execute(sql: "DELETE FROM annotations WHERE id = ?", arguments: [id])
    }
}

extension AppDatabase {
    /// The site's notes and every site's, of the days `first` to `last` ("YYYY-MM-DD", both included), by day.
    public func annotations(site: String, first: String, last: String) throws -> [Annotation] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM annotations WHERE (site_id = ? OR site_id IS NULL) AND day >= ? AND day <= ? ORDER BY day, created_at, id
                """, arguments: [site, first, last]).map(Annotation.init(row:))
        }
    }
}
