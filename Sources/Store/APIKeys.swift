import Foundation
import GRDB

/// What an API key may do. A key has one scope.
public enum APIKeyScope: String, Sendable, CaseIterable {
    /// The stats and commission APIs (figures k-anonymized as for client viewers).
    case statsRead = "stats:read"
    /// The privacy officer API: file deletion requests, read their receipts, export a subject.
    case privacyOfficer = "privacy:officer"
    /// The provisioning API (sites, goals, statistics keys, managers' and viewers' accounts; what
    /// it may do is Actions.Actor's standing `provisioningKey`). Install-wide: a key of this scope
    /// belongs to no site.
    case provision = "admin:provision"

    /// Whether a key of this scope belongs to one site (all but `provision`).
    public var perSite: Bool { self != .provision }
}

/// An API key as stored: the secret part only as a hash (see Privacy.APIKeys). Per-site keys
/// name their site; provisioning keys none.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: String
    public var siteID: String?
    public var secretHash: [UInt8]
    public var label: String
    public var createdAt: Int64
    public var lastUsedAt: Int64?
    public var scope: APIKeyScope
    /// Who issued it (an audit actor: "cli", "user:EMAIL").
    public var issuedBy: String

    public init(id: String, siteID: String?, secretHash: [UInt8], label: String, createdAt: Int64, lastUsedAt: Int64? = nil,
                scope: APIKeyScope = .statsRead, issuedBy: String = "unknown") {
        self.id = id; self.siteID = siteID; self.secretHash = secretHash; self.label = label
        self.createdAt = createdAt; self.lastUsedAt = lastUsedAt; self.scope = scope; self.issuedBy = issuedBy
    }

    init(row: Row) {
        self.init(id: row["id"], siteID: row["site_id"], secretHash: [UInt8](row["secret_hash"] as Data), label: row["label"],
                  createdAt: row["created_at"], lastUsedAt: row["last_used_at"],
                  scope: APIKeyScope(rawValue: row["scope"]) ?? .statsRead, issuedBy: row["issued_by"])
    }
}

extension WriteTransaction {
    public func insertAPIKey(_ key: APIKeyRecord) throws {
        try db.execute(sql: "INSERT INTO api_keys (id, site_id, secret_hash, label, created_at, scope, issued_by) VALUES (?,?,?,?,?,?,?)",
                       arguments: [key.id, key.siteID, Data(key.secretHash), key.label, key.createdAt, key.scope.rawValue, key.issuedBy])
    }

    public func apiKey(id: String) throws -> APIKeyRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]).map(APIKeyRecord.init(row:))
    }

    public func deleteAPIKey(id: String) throws -> Bool {
        try db.execute(sql: "DELETE FROM api_keys WHERE id = ?", arguments: [id])
        return db.changesCount == 1
    }
}

extension AppDatabase {
    public func apiKey(id: String) throws -> APIKeyRecord? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]).map(APIKeyRecord.init(row:))
        }
    }

    public func apiKeys(site: String) throws -> [APIKeyRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE site_id = ? ORDER BY created_at", arguments: [site])
                .map(APIKeyRecord.init(row:))
        }
    }

    /// The install-wide (provisioning) keys.
    public func installKeys() throws -> [APIKeyRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE site_id IS NULL ORDER BY created_at").map(APIKeyRecord.init(row:))
        }
    }

    public func touchAPIKey(id: String, at: Int64) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", arguments: [at, id])
        }
    }
}
