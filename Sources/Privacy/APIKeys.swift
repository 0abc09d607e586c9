public import Foundation
public import Store

/// API keys: `ck_<id>_<secret>`. The id finds the row; only a BLAKE2b hash of the
/// secret is stored, compared in constant time. The full key is shown once, when issued.
public enum APIKeys {
    /// A new key for `site` (nil for a provisioning key): the record to store and the key's text (the only time the secret
    /// exists outside the caller). Issuing is an audited action (Actions.Administration).
    public static func make(site: String?, label: String, scope: APIKeyScope, issuedBy: String, now: Date = Date()) -> (APIKeyRecord, String) {
        let id = PasswordHasher.randomPassword(length: 10).lowercased().filter { $0.isLetter || $0.isNumber }
        let secret = PasswordHasher.randomPassword(length: 32)
        let record = APIKeyRecord(id: id, siteID: site, secretHash: hash(secret), label: String(label.prefix(100)),
                                  createdAt: Int64(now.timeIntervalSince1970 * 1000), scope: scope, issuedBy: issuedBy)
        return (record, "ck_\(id)_\(secret)")
    }

    /// The key record a presented token belongs to, or nil.
    public static func authenticate(database: AppDatabase, token: String, now: Date = Date()) throws -> APIKeyRecord? {
        let parts = token.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "ck", parts[1].count <= 16, parts[2].count <= 64,
              let record = try database.apiKey(id: String(parts[1])) else { return nil }
        guard Sodium.equal(record.secretHash, hash(String(parts[2]))) else { return nil }
        try database.touchAPIKey(id: record.id, at: Int64(now.timeIntervalSince1970 * 1000))
        return record
    }

    static func hash(_ secret: String) -> [UInt8] {
        Sodium.hash(Array(secret.utf8))
    }
}
