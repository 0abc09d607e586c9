public import Foundation
import GRDB

/// A client site that may send events.
public struct Site: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Registrable domains the site's pages are served from; subdomains are included.
    public var domains: [String]
    /// Name of the policy file (without extension) in force for the site.
    public var policy: String
    public var createdAt: Date

    public init(id: String, name: String, domains: [String], policy: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.domains = domains
        self.policy = policy
        self.createdAt = createdAt
    }
}

extension Site {
    init(row: Row) {
        id = row["id"]
        name = row["name"]
        domains = (row["domains"] as String).split(separator: " ").map(String.init)
        policy = row["policy"]
        createdAt = Date(timeIntervalSince1970: Double(row["created_at"] as Int64) / 1000)
    }
}

extension WriteTransaction {
    public func addSite(_ site: Site) throws {
        try db.execute(sql: "INSERT INTO sites (id, name, domains, policy, created_at) VALUES (?, ?, ?, ?, ?)",
                       arguments: [site.id, site.name, site.domains.joined(separator: " "), site.policy,
                                   Int64(site.createdAt.timeIntervalSince1970 * 1000)])
    }

    public func updateSite(id: String, name: String, domains: [String], policy: String) throws {
        try db.execute(sql: "UPDATE sites SET name = ?, domains = ?, policy = ? WHERE id = ?",
                       arguments: [name, domains.joined(separator: " "), policy, id])
    }

    public func site(id: String) throws -> Site? {
        try Row.fetchOne(db, sql: "SELECT * FROM sites WHERE id = ?", arguments: [id]).map(Site.init(row:))
    }
}

extension AppDatabase {
    public func addSite(_ site: Site) throws {
        try transaction { tx in try tx.addSite(site) }
    }

    public func sites() throws -> [Site] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sites ORDER BY created_at, id").map(Site.init(row:))
        }
    }

    public func site(id: String) throws -> Site? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sites WHERE id = ?", arguments: [id]).map(Site.init(row:))
        }
    }
}
