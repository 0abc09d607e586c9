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
    /// Where the choice was read: candor (the banner), tcf or gcm, with what the CMP reported.
    public var source: String = "candor"
    public var cmp: CMPDetails = .init()

    /// What a CMP reported with a choice (the TC string itself is never kept).
    public struct CMPDetails: Sendable, Equatable {
        public var cmpID: Int?
        public var cmpVersion: Int?
        public var tcfPolicyVersion: Int?
        /// TCF purposes consented to, ascending ("1,7,8").
        public var purposes: String?
        /// Consent Mode signals ("ad_personalization=denied,ad_storage=granted,…").
        public var signals: String?
        public init(cmpID: Int? = nil, cmpVersion: Int? = nil, tcfPolicyVersion: Int? = nil, purposes: String? = nil, signals: String? = nil) {
            self.cmpID = cmpID; self.cmpVersion = cmpVersion; self.tcfPolicyVersion = tcfPolicyVersion
            self.purposes = purposes; self.signals = signals
        }
    }

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
                INSERT INTO consent_records (site_id, ts, banner_version, policy, policy_version, analytics, marketing, subject,
                                             source, cmp_id, cmp_version, tcf_policy_version, purposes, signals)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.siteID, r.timestamp, r.bannerVersion, r.policy, r.policyVersion, r.analytics, r.marketing, r.subject,
                                 r.source, r.cmp.cmpID, r.cmp.cmpVersion, r.cmp.tcfPolicyVersion, r.cmp.purposes, r.cmp.signals])
            // A recorded refusal of marketing stops forwarding from the subject's visits (queued
            // deliveries are checked again when sent).
            if !r.marketing, let subject = r.subject {
                try db.execute(sql: "UPDATE sessions SET forwardable = 0 WHERE subject = ? AND site_id = ? AND forwardable = 1",
                               arguments: [subject, r.siteID])
            }
        }
    }

    public func consentRecords(site: String) throws -> [ConsentRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM consent_records WHERE site_id = ? ORDER BY id", arguments: [site]).map {
                var r = ConsentRecord(siteID: $0["site_id"], timestamp: $0["ts"], bannerVersion: $0["banner_version"], policy: $0["policy"],
                                      policyVersion: $0["policy_version"], analytics: $0["analytics"], marketing: $0["marketing"],
                                      subject: $0["subject"])
                r.source = $0["source"]
                r.cmp = ConsentRecord.CMPDetails(cmpID: $0["cmp_id"], cmpVersion: $0["cmp_version"], tcfPolicyVersion: $0["tcf_policy_version"],
                                   purposes: $0["purposes"], signals: $0["signals"])
                return r
            }
        }
    }
}
