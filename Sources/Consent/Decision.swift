/// The consent state the pixel reports with each event.
public enum ConsentState: Sendable, Equatable {
    /// The visitor has not chosen yet.
    case unset
    case granted(analytics: Bool, marketing: Bool)
    case denied

    var analyticsGranted: Bool {
        if case .granted(let analytics, _) = self { return analytics }
        return false
    }
    var marketingGranted: Bool {
        if case .granted(_, let marketing) = self { return marketing }
        return false
    }
}

/// Browser privacy signals.
public struct PrivacySignals: Sendable, Equatable {
    /// `DNT: 1`
    public var doNotTrack: Bool
    /// `Sec-GPC: 1`
    public var globalPrivacyControl: Bool
    public init(doNotTrack: Bool = false, globalPrivacyControl: Bool = false) {
        self.doNotTrack = doNotTrack
        self.globalPrivacyControl = globalPrivacyControl
    }
}

/// What may be stored for one event.
public enum ConsentDecision: Sendable, Equatable {
    case drop(DropCause)
    /// Daily visitor hash only: no subject, no click-id values, coarse geo, no form values.
    case anonymous
    /// Subject id (hashed), cross-day attribution, finer geo; `marketing` allows click-id
    /// values and allowlisted form values.
    case identified(marketing: Bool)

    /// Identified with marketing consent: click-id values and allowlisted form values may be kept.
    public var allowsMarketing: Bool { self == .identified(marketing: true) }

    public enum DropCause: String, Sendable {
        /// The visitor denied consent (or gave it only without analytics) and the policy does not count anonymously.
        case consentDenied = "consent_denied"
        /// No choice yet under opt-in, and the policy does not count anonymously.
        case consentMissing = "consent_missing"
        /// DNT or GPC, and the policy does not count anonymously.
        case optOutSignal = "opt_out_signal"
    }
}

public enum ConsentDecider {
    /// The per-event decision (DESIGN.md, "Consent decision").
    ///
    /// - DNT or GPC (when the policy honours them) ⇒ never identified; anonymous if the policy
    ///   counts anonymously, else drop.
    /// - opt-in: identified only after analytics consent; before it (or after refusal) anonymous
    ///   if allowed, else drop.
    /// - opt-out: identified unless refused; refusal ⇒ anonymous if allowed, else drop.
    /// - cookieless and cnil-exempt: never identified; anonymous if allowed, else drop.
    /// - A grant read from a consent source the policy does not trust (`source`, nil for
    ///   Candor's own banner and API) counts as no choice; a refusal counts from any source,
    ///   also the refused part of such a grant (no analytics: not identified; no marketing:
    ///   identified without marketing where no choice would identify).
    public static func decide(policy: Policy, state: ConsentState, source: ConsentSource? = nil,
                              signals: PrivacySignals) -> ConsentDecision {
        let anonymousOr = { (cause: ConsentDecision.DropCause) -> ConsentDecision in
            policy.anonymousCounting ? .anonymous : .drop(cause)
        }
        let objects = (policy.honorDNT && signals.doNotTrack) || (policy.honorGPC && signals.globalPrivacyControl)
        if objects { return anonymousOr(.optOutSignal) }
        if case .granted(let analytics, let marketing) = state, !policy.consentSources.contains(source ?? .candor) {
            // What such a source grants counts as no choice; what it refuses still counts.
            guard analytics else { return decide(policy: policy, state: .denied, signals: signals) }
            let decision = decide(policy: policy, state: .unset, signals: signals)
            return decision == .identified(marketing: true) && !marketing ? .identified(marketing: false) : decision
        }
        switch (policy.mode, state) {
        case (.cookieless, .denied), (.cnilExempt, .denied):
            return anonymousOr(.consentDenied)
        case (.cookieless, _), (.cnilExempt, _):
            return anonymousOr(.consentMissing)
        case (.optIn, .unset):
            return anonymousOr(.consentMissing)
        case (.optIn, .denied), (.optOut, .denied):
            return anonymousOr(.consentDenied)
        case (.optIn, .granted(let analytics, let marketing)), (.optOut, .granted(let analytics, let marketing)):
            return analytics ? .identified(marketing: marketing) : anonymousOr(.consentDenied)
        case (.optOut, .unset):
            // Objection-based: identified, and marketing too unless the visitor objects.
            return .identified(marketing: true)
        }
    }

    /// The geo precision allowed under a decision.
    public static func geoLevel(policy: Policy, decision: ConsentDecision) -> GeoLevel {
        switch decision {
        case .drop: .none
        case .anonymous: policy.anonymousGeo
        case .identified: max(policy.identifiedGeo, policy.anonymousGeo)
        }
    }
}
