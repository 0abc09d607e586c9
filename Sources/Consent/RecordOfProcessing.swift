public import JSONOutput

extension Policy {
    /// The policy's settings as JSON (exports, receipts, record of processing).
    public var summary: JSON {
        let geo: JSON = .object([("anonymous", .string(anonymousGeo.rawValue)), ("identified", .string(identifiedGeo.rawValue)),
                                 ("keep_asn", .bool(keepASN))])
        let retention: [(String, JSON)] = DataClass.allCases.map { c in (c.rawValue, retentionDays[c].map { JSON($0) } ?? .string("kept")) }
        let expiry: [(String, JSON)] = ColumnGroup.allCases.map { c in (c.rawValue, columnExpiryDays[c].map { JSON($0) } ?? .string("with the row")) }
        var members: [(String, JSON)] = [("name", .string(name)), ("version", JSON(version)), ("consent_mode", .string(mode.rawValue))]
        members.append(("anonymous_counting", .bool(anonymousCounting)))
        members.append(("honor_dnt", .bool(honorDNT)))
        members.append(("honor_gpc", .bool(honorGPC)))
        members.append(("geo", geo))
        members.append(("retention_days", .object(retention)))
        members.append(("column_expiry_days", .object(expiry)))
        members.append(("deletion_deadline_days", JSON(deletionDeadlineDays)))
        members.append(("keep_consent_proof", .bool(keepConsentProof)))
        members.append(("k_threshold", JSON(kThreshold)))
        members.append(("drop_datacenter_networks", .bool(dropDatacenterNetworks)))
        return .object(members)
    }
}

/// The record of processing activities (GDPR Art. 30) generated from the active policies:
/// what is collected at each consent level, retention per data class, processors.
public enum RecordOfProcessing {
    static let alwaysDropped = [
        "IP address (used in memory for the visitor hash and the geo lookup, never stored or logged)",
        "full user-agent string (reduced to browser family + major version, OS family, device class)",
        "query strings other than UTM fields and allowlisted keys; e-mails, long numbers and tokens in paths",
        "cookies: none are set by Candor",
    ]

    /// The conditions of the CNIL's exemption for audience measurement, as Candor meets them in
    /// the cnil-exempt mode (README: CNIL-exempt mode).
    static func cnilConditions(_ p: Policy) -> [String] {
        [
            "purpose: audience measurement for the site's publisher only; no attribution of conversions "
                + "(webhooks refused), no commission, no forwarding to third parties",
            "no identifier shared across sites: the visitor hash is keyed per site and its salt destroyed daily; "
                + "no subject id, nothing identified",
            "device storage: none, except a visitor's opt-out (candor('optout')), honoured for "
                + "\(Policy.cnilMaximumStorageDays) days (13 months) from when it was given and not extended",
            "IP address truncated before any use (last byte of IPv4, last 80 bits of IPv6), for the visitor hash, "
                + "the geo lookup and rate limits alike",
            "geography no finer than: \(p.anonymousGeo.rawValue)",
            "referrer: host only; no UTM values, no click ids (not even their kind)",
            "kept at most \(Policy.cnilMaximumRetentionDays) days (25 months): events \(p.retentionDays[.events] ?? 0), "
                + "sessions \(p.retentionDays[.sessions] ?? 0), rollups \(p.retentionDays[.rollups] ?? 0) days",
            "figures shown to viewers, managers and API keys suppressed below k = \(p.kThreshold) visitors",
            "opt-out: candor('optout') stops every event from that browser; nothing else is read or written",
        ]
    }

    static func collected(_ p: Policy, identified: Bool) -> [String] {
        let geo = identified ? p.identifiedGeo : p.anonymousGeo
        if p.mode == .cnilExempt {
            return [
                "page path (minimized), event name, custom event properties (e-mails and long numbers redacted)",
                "referrer host and source type (from the referrer alone)",
                "browser family and major version, OS family, device class, screen width bucket",
                "country/region/city up to: \(geo.rawValue), from the truncated address"
                    + (p.keepASN && geo != .none ? "; network (ASN number and organisation)" : ""),
                "visitor hash: keyed BLAKE2b of site, truncated IP and user agent under a salt that is destroyed after a day",
            ]
        }
        var items = [
            "page path (minimized), event name, custom event properties (e-mails and long numbers redacted)",
            "referrer host and path, source type, UTM fields",
            "browser family and major version, OS family, device class, screen width bucket",
            "country/region/city up to: \(geo.rawValue)" + (p.keepASN && geo != .none ? "; network (ASN number and organisation)" : ""),
            "visitor hash: keyed BLAKE2b of site, IP and user agent under a salt that is destroyed after a day",
        ]
        if identified {
            items.append("subject hash: keyed hash of a random id stored in the visitor's browser (links visits across days)")
            items.append("ad click id kinds; click id values and allowlisted form fields only under marketing consent "
                + "(e-mail addresses as keyed hashes)")
        } else {
            items.append("ad click id kinds only (never the value)")
        }
        return items
    }

    static func levels(_ p: Policy) -> [(String, [String])] {
        var out: [(String, [String])] = []
        if p.anonymousCounting { out.append(("anonymous (no consent needed, or consent not given)", collected(p, identified: false))) }
        if !p.mode.neverIdentifies {
            out.append(("identified (\(p.mode == .optIn ? "after the visitor agrees" : "unless the visitor objects, DNT or GPC"))",
                        collected(p, identified: true)))
        }
        return out
    }

    /// What a policy does, in words, by topic (the site settings page shows it; the record of
    /// processing writes the same facts as Markdown).
    public static func inWords(_ p: Policy) -> [(title: String, items: [String])] {
        var consent = [p.mode == .cnilExempt ? "Consent mode: cnil-exempt (audience measurement without consent, under the CNIL's conditions)"
                                             : "Consent mode: \(p.mode.rawValue)",
                       p.anonymousCounting ? "Visits without consent are counted anonymously."
                                           : "Nothing is counted without consent.",
                       "Do Not Track " + (p.honorDNT ? "is honoured." : "is not honoured."),
                       "Global Privacy Control " + (p.honorGPC ? "is honoured." : "is not honoured.")]
        if p.dropDatacenterNetworks { consent.append("Nothing is counted from data-centre networks.") }
        var out: [(title: String, items: [String])] = [("Consent", consent)]
        if p.mode == .cnilExempt { out.append(("The CNIL's conditions, as met", cnilConditions(p))) }
        for (level, items) in levels(p) { out.append(("Collected when \(level)", items)) }
        out.append(("Never stored", alwaysDropped))
        out.append(("Kept for", DataClass.allCases.map { c in "\(c.rawValue): " + (p.retentionDays[c].map { "\($0) days" } ?? "kept") }
            + ColumnGroup.allCases.map { c in "\(c.rawValue) columns cleared " + (p.columnExpiryDays[c].map { "after \($0) days" } ?? "with the row") }))
        out.append(("Requests and readers", requests(p)
            + ["Viewers\(p.restrictManagers ? ", managers" : "") and API keys see no figure from fewer than \(p.kThreshold) visitors."]))
        return out
    }

    /// How deletion requests and consent records are handled.
    static func requests(_ p: Policy) -> [String] {
        ["Deletion requests are carried out within \(p.deletionDeadlineDays) days.",
         p.keepConsentProof ? "Consent records are kept, unlinked from the subject, as proof of consent."
                            : "Consent records linked to the subject are deleted with it."]
    }

    public static func markdown(_ book: PolicyBook) -> String {
        var md = "# Record of processing — Candor web analytics\n\n"
        md += "Controller: the operator of this Candor install. Purpose: aggregate web analytics and conversion "
        md += "attribution for the operator's sites. Processors: none (self-hosted; no data leaves this server). "
        md += "Recipients: staff with dashboard access, who see breakdowns with fewer than k visitors suppressed.\n"
        for name in book.policies.keys.sorted() {
            let p = book.policies[name]!
            md += "\n## Policy `\(name)` (version \(p.version), consent mode \(p.mode.rawValue))\n\n"
            md += "Do Not Track honoured: \(p.honorDNT ? "yes" : "no"). Global Privacy Control honoured: \(p.honorGPC ? "yes" : "no").\n"
            if p.dropDatacenterNetworks { md += "Nothing is counted from data-centre networks (by the address's autonomous system).\n" }
            if p.mode == .cnilExempt {
                md += "\nLegal basis: exempt from consent as audience measurement under the CNIL's conditions "
                md += "(délibération 2020-091, art. 5; CNIL, « Cookies : solutions pour les outils de mesure d'audience »). "
                md += "The conditions, as met:\n\n" + cnilConditions(p).map { "- \($0)\n" }.joined()
            }
            for (level, items) in levels(p) {
                md += "\n### Collected when \(level)\n\n" + items.map { "- \($0)\n" }.joined()
            }
            md += "\n### Never stored\n\n" + alwaysDropped.map { "- \($0)\n" }.joined()
            md += "\n### Retention\n\n| data class | kept for |\n|---|---|\n"
            for c in DataClass.allCases { md += "| \(c.rawValue) | \(p.retentionDays[c].map { "\($0) days" } ?? "kept") |\n" }
            md += "\n| identifying column | cleared after |\n|---|---|\n"
            for c in ColumnGroup.allCases { md += "| \(c.rawValue) | \(p.columnExpiryDays[c].map { "\($0) days" } ?? "with the row") |\n" }
            md += "\n" + requests(p).joined(separator: " ") + "\n"
        }
        return md
    }

    public static func json(_ book: PolicyBook) -> JSON {
        let policies: [JSON] = book.policies.keys.sorted().map { name in
            let p = book.policies[name]!
            guard case .object(var entry) = p.summary else { return p.summary }
            entry.append(("collected", .object(levels(p).map { ($0.0, .array($0.1.map(JSON.string))) })))
            entry.append(("never_stored", .array(alwaysDropped.map(JSON.string))))
            if p.mode == .cnilExempt {
                entry.append(("consent_exemption", ["authority": "CNIL", "basis": "audience measurement exempt from consent",
                                                    "conditions": .array(cnilConditions(p).map(JSON.string))]))
            }
            return .object(entry)
        }
        return ["controller": "the operator of this Candor install", "processors": [],
                "purpose": "aggregate web analytics and conversion attribution", "policies": .array(policies)]
    }
}
