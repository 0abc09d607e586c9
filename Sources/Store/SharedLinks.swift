public import Foundation
import GRDB

/// A read-only link to a site's view, always k-anonymised: only its token's hash is stored; the
/// filters it fixes (a query string of `f.DIMENSION=VALUE`), an optional password (argon2id
/// hash) and expiry.
public struct SharedLink: Sendable, Equatable {
    /// Public id (names the link in lists, revocation and the audit log; not the token).
    public var id: String
    public var siteID: String
    public var label: String
    public var filters: [(Dimension, String)]
    public var passwordHash: String?
    public var expiresAt: Int64?
    public var createdBy: String
    public var createdAt: Int64

    public init(id: String, siteID: String, label: String, filters: [(Dimension, String)], passwordHash: String?, expiresAt: Int64?,
                createdBy: String, createdAt: Int64) {
        self.id = id; self.siteID = siteID; self.label = label; self.filters = filters; self.passwordHash = passwordHash
        self.expiresAt = expiresAt; self.createdBy = createdBy; self.createdAt = createdAt
    }

    public func isLive(at ms: Int64) -> Bool { expiresAt.map { $0 > ms } ?? true }

    public static func == (a: SharedLink, b: SharedLink) -> Bool {
        a.id == b.id && a.siteID == b.siteID && a.label == b.label && a.filters.map { "\($0.0.rawValue)=\($0.1)" } == b.filters.map { "\($0.0.rawValue)=\($0.1)" }
            && a.passwordHash == b.passwordHash && a.expiresAt == b.expiresAt && a.createdBy == b.createdBy && a.createdAt == b.createdAt
    }

    /// The filters as stored: one `dimension\tvalue` per line (values hold no tab or newline).
    static func encode(_ filters: [(Dimension, String)]) -> String {
        filters.map { "\($0.0.rawValue)\t\($0.1)" }.joined(separator: "\n")
    }

    static func decode(_ text: String) -> [(Dimension, String)] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let d = Dimension(rawValue: String(parts[0])) else { return nil }
            return (d, String(parts[1]))
        }
    }

    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], label: row["label"], filters: Self.decode(row["filters"]),
                  passwordHash: row["password_hash"], expiresAt: row["expires_at"], createdBy: row["created_by"], createdAt: row["created_at"])
    }
}

extension WriteTransaction {
    public func insertSharedLink(_ link: SharedLink, tokenHash: [UInt8]) throws {
        try db.execute(sql: """
            INSERT INTO shared_links (id, token_hash, site_id, label, filters, password_hash, expires_at, created_by, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [link.id, Data(tokenHash), link.siteID, link.label, SharedLink.encode(link.filters), link.passwordHash,
                             link.expiresAt, link.createdBy, link.createdAt])
    }

    /// Removes a link of the site; the removed link, or nil when there was none.
    public func deleteSharedLink(site: String, id: String) throws -> SharedLink? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM shared_links WHERE site_id = ? AND id = ?", arguments: [site, id]) else { return nil }
        try db.execute(sql: "DELETE FROM shared_links WHERE site_id = ? AND id = ?", arguments: [site, id])
        return SharedLink(row: row)
    }
}

extension AppDatabase {
    public func sharedLinks(site: String) throws -> [SharedLink] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM shared_links WHERE site_id = ? ORDER BY created_at, id", arguments: [site]).map(SharedLink.init(row:))
        }
    }

    /// The link a token opens (any state: the caller checks expiry).
    public func sharedLink(tokenHash: [UInt8]) throws -> SharedLink? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM shared_links WHERE token_hash = ?", arguments: [Data(tokenHash)]).map(SharedLink.init(row:))
        }
    }
}
