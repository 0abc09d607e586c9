/// Channel groups after GA4's default channel grouping, plus AI assistants.
public enum Channel: String, Sendable, CaseIterable {
    case direct = "Direct", organicSearch = "Organic Search", paidSearch = "Paid Search"
    case organicSocial = "Organic Social", paidSocial = "Paid Social", email = "Email"
    case affiliates = "Affiliates", display = "Display", paidOther = "Paid Other"
    case ai = "AI Assistants", referral = "Referral", other = "Other"

    /// The coarse source type stored with every visit (the dashboard's Sources).
    public var sourceType: String {
        switch self {
        case .direct: "direct"
        case .organicSearch: "organic"
        case .paidSearch, .paidSocial, .display, .paidOther, .affiliates: "paid"
        case .organicSocial: "social"
        case .email: "email"
        case .ai: "ai"
        case .referral, .other: "referral"
        }
    }
}

/// How a visit arrived: channel, the known source behind it (name and kind), if any, and what
/// the referrer itself is (the source may be the campaign's instead).
public struct Acquisition: Sendable, Equatable {
    public var channel: Channel
    public var source: KnownReferrer?
    public var referrer: KnownReferrer?
    public var sourceType: String { channel.sourceType }

    public init(channel: Channel, source: KnownReferrer?, referrer: KnownReferrer? = nil) {
        self.channel = channel; self.source = source; self.referrer = referrer
    }
}

extension ReferrerList {
    static let paidSearchClicks: Set<String> = ["gclid", "wbraid", "gbraid", "msclkid"]
    static let paidSocialClicks: Set<String> = ["ttclid", "li_fat_id", "sc_click_id"]
    /// Added by Facebook and X to organic outbound links as well: social, not paid.
    static let socialClicks: [String: String] = ["fbclid": "Facebook", "twclid": "X"]
    static let displayMediums: Set<String> = ["display", "banner", "expandable", "interstitial", "cpm"]
    static let emailMediums: Set<String> = ["email", "e-mail", "e_mail", "e mail", "newsletter"]
    static let socialMediums: Set<String> = ["social", "social-network", "social-media", "sm", "social network",
                                             "social media", "social_network", "social_media"]
    static let searchMediums: Set<String> = ["organic", "seo"]
    static let referralMediums: Set<String> = ["referral", "app", "link"]
    static let affiliateMediums: Set<String> = ["affiliate", "affiliates"]

    /// GA4's paid-medium rule: `^(.*cp.*|ppc|retargeting|paid.*)$`.
    static func isPaid(medium m: String) -> Bool {
        m.contains("cp") || m == "ppc" || m == "retargeting" || m.hasPrefix("paid")
    }

    /// The one classification of acquisition, used for events (from the landing page and its
    /// referrer) and for webhook conversions (from the campaign fields they carry).
    /// `referrerHost` is an external referrer (self-referrals already removed).
    public func acquisition(referrerHost: String?, referrerPath: Substring = "/", utmSource: String?, utmMedium: String?,
                            clickIDKind: String?) -> Acquisition {
        var medium = utmMedium.map { $0.lowercased().trimmingSpaces() }.flatMap { $0.isEmpty ? nil : $0 }
        var source = utmSource.map { $0.trimmingSpaces() }.flatMap { $0.isEmpty ? nil : $0 }
        // GA4's own notation for no campaign.
        if source?.lowercased() == "(direct)" { source = nil }
        if medium == "(none)" || medium == "(not set)" { medium = nil }
        // The campaign's source, when it names one, is the source (as in GA4); else the referrer.
        let referrer = referrerHost.flatMap { lookup(host: $0, path: referrerPath) }
        var known: KnownReferrer?
        if let source { known = lookup(source: source) } else { known = referrer }
        if known == nil, let click = clickIDKind, let name = Self.socialClicks[click] {
            known = KnownReferrer(name: name, kind: .social)
        }
        func result(_ channel: Channel) -> Acquisition { Acquisition(channel: channel, source: known, referrer: referrer) }

        if referrerHost == nil, source == nil, medium == nil, clickIDKind == nil { return result(.direct) }
        let m = medium ?? ""
        if Self.affiliateMediums.contains(m) { return result(.affiliates) }
        let click = clickIDKind ?? ""
        if Self.isPaid(medium: m) || Self.paidSearchClicks.contains(click) || Self.paidSocialClicks.contains(click) || click == "dclid"
            || known?.kind == .paid {
            if known?.kind == .search || Self.paidSearchClicks.contains(click) { return result(.paidSearch) }
            if known?.kind == .social || Self.paidSocialClicks.contains(click) { return result(.paidSocial) }
            if Self.displayMediums.contains(m) || click == "dclid" { return result(.display) }
            return result(.paidOther)
        }
        if Self.displayMediums.contains(m) { return result(.display) }
        // GA4's order from here: social, search, referral medium, e-mail; AI assistants first.
        if known?.kind == .ai { return result(.ai) }
        if known?.kind == .social || Self.socialMediums.contains(m) { return result(.organicSocial) }
        if known?.kind == .search || Self.searchMediums.contains(m) { return result(.organicSearch) }
        if Self.referralMediums.contains(m) { return result(.referral) }
        if known?.kind == .email || Self.emailMediums.contains(m) || source.map({ Self.emailMediums.contains($0.lowercased()) }) == true {
            return result(.email)
        }
        if referrerHost != nil { return result(.referral) }
        return result(.other)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
