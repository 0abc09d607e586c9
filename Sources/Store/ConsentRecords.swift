import Foundation
import GRDB

/// Proof of consent: what a visitor chose, when, under which banner and policy version.
public struct ConsentRecord: Sendable, Equatable {
    public var siteID: String
    public var timestamp: Int64
    public var bannerVersion: String
    public var policy: String
    public var policyVersion: Int
    public var analytics: Bool
    public var marketing: Bool
    /// Keyed hash of the pixel's subject id, only when analytics was granted.
    public var subject: Int64?

    public init(siteID: String, timestamp: Int64, bannerVersion: String, policy: String, policyVersion: Int,
                analytics: Bool, marketing: Bool, subject: Int64?) {
        self.siteID = siteID; self.timestamp = timestamp; self.bannerVersion = bannerVersion; self.policy = policy
        self.policyVersion = policyVersion; self.analytics = analytics; self.marketing = marketing; self.subject = subject
    }
}

extension AppDatabase {
    public func insertConsentRecord(_ r: ConsentRecord) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO consent_records (site_id, ts, banner_version, policy, policy_version, analytics, marketing, subject)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.siteID, r.timestamp, r.bannerVersion, r.policy, r.policyVersion, r.analytics, r.marketing, r.subject])
        }
    }

    public func consentRecords(site: String) throws -> [ConsentRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM consent_records WHERE site_id = ? ORDER BY id", arguments: [site]).map {
                ConsentRecord(siteID: $0["site_id"], timestamp: $0["ts"], bannerVersion: $0["banner_version"], policy: $0["policy"],
                              policyVersion: $0["policy_version"], analytics: $0["analytics"], marketing: $0["marketing"],
                              subject: $0["subject"])
            }
        }
    }
}
