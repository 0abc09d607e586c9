import Foundation
import TOMLKit

/// How precise stored geography may be.
public enum GeoLevel: String, Sendable, Comparable, CaseIterable {
    case none, country, region, city
    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// Consent modes (DESIGN.md).
public enum ConsentMode: String, Sendable, CaseIterable {
    /// Nothing identified before consent; anonymous counting only if the policy allows it.
    case optIn = "opt-in"
    /// Identified unless the visitor objects (denies, DNT, GPC).
    case optOut = "opt-out"
    /// Never identified, no device storage.
    case cookieless
    /// The CNIL's consent-free audience measurement: never identified, nothing on the device
    /// but a visitor's opt-out, addresses truncated before any use, referrer hosts only, no
    /// campaign values or click ids, no attribution (the loader refuses contradicting settings).
    case cnilExempt = "cnil-exempt"

    /// Modes that never identify a visitor (and never store on the device).
    public var neverIdentifies: Bool { self == .cookieless || self == .cnilExempt }
}

/// Why a site under the cnil-exempt mode takes no webhook conversions (so its commission
/// reports stay empty): they attribute outcomes in other systems to visits, which is not
/// audience measurement.
public enum ConversionsRefusal {
    public static let cnilExempt = "this site's policy is cnil-exempt (audience measurement without consent): "
        + "webhook conversions attribute outcomes in other systems to visits, which the exemption does not cover"
}

/// Where a visitor's consent comes from: Candor's banner (or `candor('consent', …)` calls), a
/// CMP through IAB TCF v2.2 (`__tcfapi`), or Google Consent Mode v2 (`gtag('consent', …)`).
public enum ConsentSource: String, Sendable, CaseIterable {
    case candor, tcf, gcm
}

/// Data classes with their own retention.
public enum DataClass: String, Sendable, CaseIterable {
    case events, sessions, rollups, consentRecords = "consent_records", conversions, leads
    case deletionRequests = "deletion_requests", auditLog = "audit_log"
}

/// Identifying columns a policy may clear before their rows expire.
public enum ColumnGroup: String, Sendable, CaseIterable {
    /// Subject hash (events, sessions, consent records) and e-mail hash of leads.
    case subject
    case clickID = "click_id"
    /// Region and city (country stays).
    case geoDetail = "geo_detail"
}

/// A named policy, read from `policies/NAME.toml`. Sites reference one by name.
public struct Policy: Sendable, Equatable {
    public var name: String
    public var version: Int
    public var mode: ConsentMode
    /// Count visitors anonymously (daily hash only) when they are not identified.
    public var anonymousCounting: Bool
    public var honorDNT: Bool
    public var honorGPC: Bool
    public var anonymousGeo: GeoLevel
    public var identifiedGeo: GeoLevel
    /// Keep the ASN number and organisation (a network, not a person) when geo is at least country.
    public var keepASN: Bool
    /// Query-string keys kept in stored paths besides UTM and click-id kinds.
    public var queryAllowlist: [String]
    /// Form fields whose values may be kept under marketing consent.
    public var formFieldAllowlist: [String]
    /// Days per data class; nil means keep.
    public var retentionDays: [DataClass: Int]
    /// Dashboard k-anonymity threshold.
    public var kThreshold: Int
    /// Whether managers receive figures under the k-anonymity rule like viewers (owners and
    /// admins never do; viewers and API keys always do).
    public var restrictManagers: Bool = true
    /// Days after which identifying columns are cleared while their rows stay; absent keeps
    /// them as long as the row.
    public var columnExpiryDays: [ColumnGroup: Int] = [.subject: 90, .clickID: 30]
    /// Days within which a deletion request must be carried out.
    public var deletionDeadlineDays: Int = 30
    /// On erasure, keep the subject's consent records with the link to the subject removed
    /// (proof of what was consented to and when), instead of deleting them.
    public var keepConsentProof: Bool = true
    /// Count nothing from the autonomous systems of data centres (the list given with
    /// `--datacenter-asns`, addresses mapped by the ASN database): their traffic is mostly
    /// scripts, but people behind a VPN or a cloud proxy are lost with it.
    public var dropDatacenterNetworks: Bool = false
    /// The consent sources trusted, in the order consent.js asks them (the first present on a
    /// page decides); a grant reported from any other source counts as no choice.
    public var consentSources: [ConsentSource] = [.tcf, .gcm, .candor]
    /// When set, a TCF grant also needs consent for this IAB vendor id (an operator registered
    /// as a vendor); 0 reads the purpose consents alone (README: consent sources).
    public var tcfVendorID: Int = 0

    public static let `default` = Policy(
        name: "default", version: 1, mode: .optIn, anonymousCounting: true, honorDNT: true, honorGPC: true,
        anonymousGeo: .country, identifiedGeo: .city, keepASN: true, queryAllowlist: [], formFieldAllowlist: [],
        retentionDays: [.events: 180, .sessions: 180, .rollups: 760, .consentRecords: 1095, .conversions: 760,
                        .leads: 365, .deletionRequests: 1095],
        kThreshold: 5)

    public init(name: String, version: Int, mode: ConsentMode, anonymousCounting: Bool, honorDNT: Bool,
                honorGPC: Bool, anonymousGeo: GeoLevel, identifiedGeo: GeoLevel, keepASN: Bool,
                queryAllowlist: [String], formFieldAllowlist: [String], retentionDays: [DataClass: Int],
                kThreshold: Int) {
        self.name = name; self.version = version; self.mode = mode; self.anonymousCounting = anonymousCounting
        self.honorDNT = honorDNT; self.honorGPC = honorGPC; self.anonymousGeo = anonymousGeo
        self.identifiedGeo = identifiedGeo; self.keepASN = keepASN; self.queryAllowlist = queryAllowlist
        self.formFieldAllowlist = formFieldAllowlist; self.retentionDays = retentionDays; self.kThreshold = kThreshold
    }
}

public struct PolicyError: Error, CustomStringConvertible {
    public let description: String
    init(_ file: String, _ message: String) { description = "\(file): \(message)" }
}

extension Policy {
    /// Parses a policy file. Unknown keys are errors (a typo must not silently weaken a policy).
    public init(toml text: String, name: String) throws {
        let file = "\(name).toml"
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch { throw PolicyError(file, "not valid TOML: \(error)") }
        var p = Policy.default
        p.name = name
        try Self.checkKeys(table, allowed: ["version", "consent", "geo", "collect", "retention", "expire", "privacy", "dashboard", "bots"], file, "")
        if let v = table["version"] { p.version = try Self.int(v, file, "version") }
        if let consent = table["consent"]?.table {
            try Self.checkKeys(consent, allowed: ["mode", "anonymous_counting", "honor_dnt", "honor_gpc", "sources", "tcf_vendor_id"],
                               file, "consent.")
            if let m = consent["mode"] {
                let s = try Self.string(m, file, "consent.mode")
                guard let mode = ConsentMode(rawValue: s) else {
                    throw PolicyError(file, "consent.mode must be opt-in, opt-out, cookieless or cnil-exempt, not \(s)")
                }
                p.mode = mode
            }
            if let v = consent["sources"] {
                let names = try Self.strings(v, file, "consent.sources")
                p.consentSources = try names.map { name in
                    guard let source = ConsentSource(rawValue: name) else {
                        throw PolicyError(file, "consent.sources takes candor, tcf and gcm, not \(name)")
                    }
                    return source
                }
                guard !p.consentSources.isEmpty, Set(p.consentSources).count == p.consentSources.count else {
                    throw PolicyError(file, "consent.sources must name each source at most once, and at least one")
                }
            }
            if let v = consent["tcf_vendor_id"] {
                p.tcfVendorID = try Self.int(v, file, "consent.tcf_vendor_id")
                guard p.tcfVendorID >= 0 else { throw PolicyError(file, "consent.tcf_vendor_id must be ≥ 0 (0 = purposes only)") }
            }
            if let v = consent["anonymous_counting"] { p.anonymousCounting = try Self.bool(v, file, "consent.anonymous_counting") }
            if let v = consent["honor_dnt"] { p.honorDNT = try Self.bool(v, file, "consent.honor_dnt") }
            if let v = consent["honor_gpc"] { p.honorGPC = try Self.bool(v, file, "consent.honor_gpc") }
        }
        if let geo = table["geo"]?.table {
            try Self.checkKeys(geo, allowed: ["anonymous", "identified", "keep_asn"], file, "geo.")
            if let v = geo["anonymous"] { p.anonymousGeo = try Self.level(v, file, "geo.anonymous") }
            if let v = geo["identified"] { p.identifiedGeo = try Self.level(v, file, "geo.identified") }
            if let v = geo["keep_asn"] { p.keepASN = try Self.bool(v, file, "geo.keep_asn") }
        }
        if let collect = table["collect"]?.table {
            try Self.checkKeys(collect, allowed: ["query_allowlist", "form_field_allowlist"], file, "collect.")
            if let v = collect["query_allowlist"] { p.queryAllowlist = try Self.strings(v, file, "collect.query_allowlist") }
            if let v = collect["form_field_allowlist"] { p.formFieldAllowlist = try Self.strings(v, file, "collect.form_field_allowlist") }
        }
        if let retention = table["retention"]?.table {
            try Self.checkKeys(retention, allowed: Set(DataClass.allCases.map(\.rawValue)), file, "retention.")
            for c in DataClass.allCases {
                guard let v = retention[c.rawValue] else { continue }
                let days = try Self.int(v, file, "retention.\(c.rawValue)")
                guard days >= 0 else { throw PolicyError(file, "retention.\(c.rawValue) must be ≥ 0 (0 = keep)") }
                p.retentionDays[c] = days == 0 ? nil : days
            }
        }
        if let expire = table["expire"]?.table {
            try Self.checkKeys(expire, allowed: Set(ColumnGroup.allCases.map(\.rawValue)), file, "expire.")
            for c in ColumnGroup.allCases {
                guard let v = expire[c.rawValue] else { continue }
                let days = try Self.int(v, file, "expire.\(c.rawValue)")
                guard days >= 0 else { throw PolicyError(file, "expire.\(c.rawValue) must be ≥ 0 (0 = with the row)") }
                p.columnExpiryDays[c] = days == 0 ? nil : days
            }
        }
        if let privacy = table["privacy"]?.table {
            try Self.checkKeys(privacy, allowed: ["deletion_deadline_days", "keep_consent_proof"], file, "privacy.")
            if let v = privacy["deletion_deadline_days"] {
                p.deletionDeadlineDays = try Self.int(v, file, "privacy.deletion_deadline_days")
                guard (1...90).contains(p.deletionDeadlineDays) else {
                    throw PolicyError(file, "privacy.deletion_deadline_days must be between 1 and 90")
                }
            }
            if let v = privacy["keep_consent_proof"] { p.keepConsentProof = try Self.bool(v, file, "privacy.keep_consent_proof") }
        }
        if let dash = table["dashboard"]?.table {
            try Self.checkKeys(dash, allowed: ["k_threshold", "restrict_managers"], file, "dashboard.")
            if let v = dash["restrict_managers"] { p.restrictManagers = try Self.bool(v, file, "dashboard.restrict_managers") }
            if let v = dash["k_threshold"] {
                p.kThreshold = try Self.int(v, file, "dashboard.k_threshold")
                guard p.kThreshold >= 1 else { throw PolicyError(file, "dashboard.k_threshold must be ≥ 1") }
            }
        }
        if let bots = table["bots"]?.table {
            try Self.checkKeys(bots, allowed: ["drop_datacenter_networks"], file, "bots.")
            if let v = bots["drop_datacenter_networks"] { p.dropDatacenterNetworks = try Self.bool(v, file, "bots.drop_datacenter_networks") }
        }
        if p.mode.neverIdentifies && p.identifiedGeo > p.anonymousGeo {
            // These modes never identify; the identified level is unused but must not mislead.
            p.identifiedGeo = p.anonymousGeo
        }
        if p.mode == .cnilExempt {
            if let conflict = p.cnilConflicts.first { throw PolicyError(file, "consent.mode = \"cnil-exempt\": \(conflict)") }
        }
        self = p
    }

    /// The CNIL's conditions for audience measurement without consent (its 2020 guidelines on
    /// cookies and trackers, art. 5; the "exempted audience measurement" sheet, 2021) that a
    /// policy's settings can contradict, each as the reason it is refused. The conditions Candor
    /// meets by construction in that mode (addresses truncated, referrer hosts only, no campaign
    /// values or click ids, nothing identified, no identifier across sites, no attribution) are
    /// listed in the record of processing.
    public var cnilConflicts: [String] {
        var out: [String] = []
        if !anonymousCounting { out.append("consent.anonymous_counting must be true (the exemption is what lets it count)") }
        let campaignKeys = queryAllowlist.filter(Self.isCampaignKey)
        if !campaignKeys.isEmpty {
            out.append("collect.query_allowlist must not keep campaign values or click ids (\(campaignKeys.joined(separator: ", ")))")
        }
        if !formFieldAllowlist.isEmpty { out.append("collect.form_field_allowlist must be empty (form values are not audience measurement)") }
        for c in [DataClass.events, .sessions, .rollups] {
            guard let days = retentionDays[c] else {
                out.append("retention.\(c.rawValue) must be set: data is kept at most 25 months (760 days), not forever"); continue
            }
            if days > Self.cnilMaximumRetentionDays {
                out.append("retention.\(c.rawValue) = \(days) is over 25 months (\(Self.cnilMaximumRetentionDays) days)")
            }
        }
        if kThreshold < 5 { out.append("dashboard.k_threshold must be at least 5 (published figures are k-suppressed)") }
        if !restrictManagers { out.append("dashboard.restrict_managers must be true (figures outside the owners are k-suppressed)") }
        return out
    }

    /// A query key (or pixel property) that carries a campaign value or an ad click id: `utm_*`,
    /// the keys the classifier reads as a campaign source (`ref`, `source`), the click-id keys
    /// and other ad platforms' tracking keys.
    public static func isCampaignKey(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.hasPrefix("utm_") || clickIDKeys.contains(k) || ["ref", "source", "_gl", "yclid", "gad_source", "srsltid", "mc_cid", "mc_eid"].contains(k)
    }

    /// 25 months, counted as 30.4 days each and rounded down.
    public static let cnilMaximumRetentionDays = 760
    /// A stored opt-out (the only device storage in that mode) is honoured for 13 months and not
    /// extended; pixel.js applies it.
    public static let cnilMaximumStorageDays = 395
    /// Query keys that carry an ad click id, in the order the classifier tries them: only the
    /// kind is kept when anonymous, the value only when identified with marketing consent, and
    /// neither in cnil-exempt mode.
    public static let clickIDKeys = ["gclid", "fbclid", "msclkid", "ttclid", "twclid", "li_fat_id", "sc_click_id", "dclid", "wbraid", "gbraid"]

    private static func checkKeys(_ t: TOMLTable, allowed: Set<String>, _ file: String, _ prefix: String) throws {
        for key in t.keys where !allowed.contains(key) {
            throw PolicyError(file, "unknown key \(prefix)\(key)")
        }
    }
    private static func string(_ v: any TOMLValueConvertible, _ file: String, _ key: String) throws -> String {
        guard let s = v.string else { throw PolicyError(file, "\(key) must be a string") }
        return s
    }
    private static func bool(_ v: any TOMLValueConvertible, _ file: String, _ key: String) throws -> Bool {
        guard let b = v.bool else { throw PolicyError(file, "\(key) must be true or false") }
        return b
    }
    private static func int(_ v: any TOMLValueConvertible, _ file: String, _ key: String) throws -> Int {
        guard let i = v.int else { throw PolicyError(file, "\(key) must be an integer") }
        return i
    }
    private static func strings(_ v: any TOMLValueConvertible, _ file: String, _ key: String) throws -> [String] {
        guard let a = v.array else { throw PolicyError(file, "\(key) must be an array of strings") }
        return try a.map { try string($0, file, key) }
    }
    private static func level(_ v: any TOMLValueConvertible, _ file: String, _ key: String) throws -> GeoLevel {
        let s = try string(v, file, key)
        guard let l = GeoLevel(rawValue: s) else { throw PolicyError(file, "\(key) must be none, country, region or city") }
        return l
    }
}

/// The policies of an install, loaded from a directory of `NAME.toml` files.
public struct PolicyBook: Sendable {
    public private(set) var policies: [String: Policy]

    public init(policies: [Policy]) {
        self.policies = Dictionary(policies.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Loads every `*.toml` in `directory`. A missing directory yields just the built-in default.
    public init(directory: String) throws {
        var found: [Policy] = []
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: directory) {
            for file in names.sorted() where file.hasSuffix(".toml") {
                let name = String(file.dropLast(5))
                let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                found.append(try Policy(toml: text, name: name))
            }
        }
        if !found.contains(where: { $0.name == "default" }) { found.append(.default) }
        self.init(policies: found)
    }

    public subscript(name: String) -> Policy? { policies[name] }
}
